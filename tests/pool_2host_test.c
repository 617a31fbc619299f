// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork two-host pool test: run at the same time in two guests whose CXL
 * devices share one backing file (qemu/run --hosts 2). Host 0 formatted the
 * pool, host 1 attached to it. Each host reads what the other published in
 * its slot; host 1 checks that host 0's live slot cannot be taken.
 * Host 0 then checkpoints a process; host 1 finds the image in host 0's
 * directory, validates and reads it, and may not delete it.
 * Each host prints "# pool-uuid: ..." for the harness to compare.
 */
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"

#define WAIT_S 180

static unsigned int host_id(void)
{
	const char *h = getenv("CXLFORK_HOST_ID");

	return h ? atoi(h) : 0;
}

/* Polls the pool until pred(info) holds or WAIT_S pass; 0 if it held. */
static int wait_info(int fd, struct cxlfork_pool_info *info,
		     int (*pred)(const struct cxlfork_pool_info *))
{
	for (int i = 0; i < WAIT_S * 10; i++) {
		if (pool_info(fd, info) == 0 && pred(info))
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static int peer_attached(const struct cxlfork_pool_info *i)
{
	return i->hosts[1 - i->host_id].state == CXLFORK_SLOT_ATTACHED;
}

static int peer1_reattached(const struct cxlfork_pool_info *i)
{
	return i->hosts[1].generation >= 2;
}

FIXTURE(two_hosts) {
	int fd;
	unsigned int me;
};

FIXTURE_SETUP(two_hosts)
{
	self->me = host_id();
	ASSERT_GT(2, self->me) TH_LOG("run with qemu/run --hosts 2");
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(two_hosts)
{
	close(self->fd);
}

TEST_F_TIMEOUT(two_hosts, same_pool_and_peer_slot_visible, WAIT_S + 20)
{
	struct cxlfork_pool_info info;
	char want[32];

	ASSERT_EQ(0, pool_info(self->fd, &info)) TH_LOG("the runner attached the pool");
	ASSERT_EQ(self->me, info.host_id);
	printf("# pool-uuid: ");
	for (int i = 0; i < 16; i++)
		printf("%02x", info.uuid[i]);
	printf("\n");

	/* The peer's slot, written by the other guest, becomes visible here. */
	ASSERT_EQ(0, wait_info(self->fd, &info, peer_attached))
		TH_LOG("host %u never saw its peer attach", self->me);
	snprintf(want, sizeof(want), "cxl-host%u", 1 - self->me);
	ASSERT_STREQ(want, info.hosts[1 - self->me].nodename);
	ASSERT_LE(1, info.hosts[1 - self->me].generation);
	ASSERT_EQ(2, info.hosts_in_use);
	ASSERT_EQ(info.part_size * info.max_hosts, info.free_bytes);
}

TEST_F_TIMEOUT(two_hosts, live_peer_slot_cannot_be_taken, WAIT_S + 20)
{
	struct cxlfork_pool_info info;
	unsigned long long base, size;

	ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
	if (self->me == 0) {
		/* Host 1 tries our slot, then re-attaches as itself: we see
		 * its generation move while ours stays. (Host 0 does not wait
		 * for more: host 1's next test waits for host 0's.) */
		ASSERT_EQ(0, wait_info(self->fd, &info, peer1_reattached))
			TH_LOG("host 0 never saw host 1 re-attach: state %u gen %llu", info.hosts[1].state,
			       (unsigned long long)info.hosts[1].generation);
		ASSERT_EQ(CXLFORK_SLOT_ATTACHED, info.hosts[0].state);
		ASSERT_EQ(1, info.hosts[0].generation);
		return;
	}
	ASSERT_EQ(0, wait_info(self->fd, &info, peer_attached));
	ASSERT_EQ(0, detach(self->fd));
	/* Host 0 is alive and attached: its slot is not ours to take. */
	ASSERT_EQ(-EBUSY, attach(self->fd, base, size, 0, 0));
	ASSERT_EQ(-ENODEV, pool_info(self->fd, &info));
	ASSERT_EQ(0, attach(self->fd, base, size, 1, 0));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(2, info.hosts[1].generation);
	ASSERT_EQ(CXLFORK_SLOT_ATTACHED, info.hosts[0].state);
	/* Let host 0 observe generation 2 before we leave. */
	sleep(3);
	ASSERT_EQ(0, detach(self->fd));
}

#define SHARED_ADDR 0x7e0000000000UL
#define SHARED_PAGES 4

static int run(const char *cmd, unsigned char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, len, f);
	return pclose(f) == 0 ? (int)n : -1;
}

TEST_F_TIMEOUT(two_hosts, image_published_on_one_host_is_read_on_the_other, WAIT_S + 20)
{
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l) };
	struct cxlfork_pool_info info;
	unsigned long long base, size;
	unsigned char page[4096];
	char cmd[128];
	int found = -1;

	if (self->me == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		int p[2];
		pid_t pid;
		char ok;

		ASSERT_EQ(0, pipe(p));
		pid = fork();
		if (pid == 0) {
			char *m = mmap((void *)SHARED_ADDR, SHARED_PAGES * 4096, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			for (int i = 0; i < SHARED_PAGES; i++)
				memset(m + i * 4096, 0xa0 + i, 4096);
			if (write(p[1], "", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		ASSERT_EQ(1, read(p[0], &ok, 1));
		c.pid = pid;
		c.mem_fd = proc_mem_fd(pid);
		strcpy(c.name, "from-host0");
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c));
		close(c.mem_fd);
		printf("# host 0 published image %llu (%llu pages)\n",
		       (unsigned long long)c.image_id, (unsigned long long)c.pages);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	/* Host 1 (re-attached: the previous test detached it). */
	ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
	if (pool_info(self->fd, &info) == -ENODEV)
		ASSERT_EQ(0, attach(self->fd, base, size, 1, 0));
	for (int i = 0; i < WAIT_S * 10 && found < 0; i++) {
		l.count = 64;
		l.images = (unsigned long)infos;
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
		for (unsigned int k = 0; k < l.count; k++)
			if (infos[k].owner_host == 0 && !strcmp(infos[k].name, "from-host0"))
				found = k;
		if (found < 0)
			usleep(100 * 1000);
	}
	ASSERT_LE(0, found) TH_LOG("host 1 never saw host 0's image");
	ASSERT_EQ(1, infos[found].valid);
	ASSERT_LE(SHARED_PAGES, infos[found].pages);

	/* Validated and read from this host: the bytes host 0's process held. */
	for (int i = 0; i < SHARED_PAGES; i++) {
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect 0:%llu --page %#lx",
			 (unsigned long long)(infos[found].id & 0xffffffffffffULL), SHARED_ADDR + i * 4096);
		ASSERT_EQ(4096, run(cmd, page, sizeof(page)));
		for (int b = 0; b < 4096; b++)
			ASSERT_EQ(0xa0 + i, page[b]);
	}
	/* Only the owner host deletes. */
	struct cxlfork_delete d = { .size = sizeof(d), .id = infos[found].id };
	ASSERT_EQ(-EXDEV, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	ASSERT_EQ(0, detach(self->fd));
}

static int image_named(int fd, const char *name, struct cxlfork_image_info *out)
{
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };

	if (xioctl(fd, CXLFORK_IOC_LIST, &l))
		return -1;
	for (unsigned int k = 0; k < l.count; k++)
		if (infos[k].owner_host == 0 && !strcmp(infos[k].name, name)) {
			*out = infos[k];
			return 0;
		}
	return -1;
}

/* Remote fork: host 0 checkpoints a process; host 1, at the same time,
 * restores clones of it that run there; host 0 cannot delete the image
 * while they live, and can once they have exited. */
TEST_F_TIMEOUT(two_hosts, remote_fork, WAIT_S + 60)
{
	struct cxlfork_stat st = { .size = sizeof(st) };
	struct cxlfork_delete d = { .size = sizeof(d) };
	struct cxlfork_image_info img;
	unsigned char out[4096];
	char cmd[160];
	int i, n;

	if (self->me == 0) {
		ASSERT_EQ(0, system("fork_like 8"));
		ASSERT_EQ(0, image_named(self->fd, "fork-like", &img));
		st.id = d.id = img.id;
		for (i = 0; i < WAIT_S * 10; i++) {
			ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
			if (st.info.leases)
				break;
			usleep(100 * 1000);
		}
		ASSERT_EQ(1, st.info.leases) TH_LOG("host 1's clones never took a lease");
		ASSERT_EQ(-EBUSY, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
		for (i = 0; i < WAIT_S * 10; i++) {
			ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
			if (!st.info.leases)
				break;
			usleep(100 * 1000);
		}
		ASSERT_EQ(0, st.info.leases) TH_LOG("host 1's lease was never dropped");
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
		return;
	}
	{
		unsigned long long base, size;
		struct cxlfork_pool_info info;

		ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
		if (pool_info(self->fd, &info) == -ENODEV)
			ASSERT_EQ(0, attach(self->fd, base, size, 1, 0));
	}
	for (i = 0; i < WAIT_S * 10 && image_named(self->fd, "fork-like", &img); i++)
		usleep(100 * 1000);
	ASSERT_EQ(0, image_named(self->fd, "fork-like", &img)) TH_LOG("no image from host 0");
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore 0:%llu --count 3 --wait",
		 (unsigned long long)(img.id & 0xffffffffffffULL));
	n = run(cmd, out, sizeof(out) - 1);
	ASSERT_LT(0, n) TH_LOG("remote fork failed");
	out[n] = 0;
	printf("%s", (char *)out);
	for (i = 1; i <= 3; i++) {
		char want[16];

		snprintf(want, sizeof(want), "clone %d:", i);
		ASSERT_NE(NULL, strstr((char *)out, want)) TH_LOG("%s", out);
	}
	ASSERT_NE(NULL, strstr((char *)out, "state sum 93822844764160"));
}

TEST_HARNESS_MAIN
