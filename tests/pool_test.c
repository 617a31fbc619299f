// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork pool tests (one guest, run as root, pool not attached at start):
 * the device, attach/info/detach, every errno of bad input leaving no state,
 * superblock persistence and validation, host slot rules, module unload.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"


FIXTURE(pool) {
	int fd;
	unsigned long long base, size;
};

FIXTURE_SETUP(pool)
{
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", CXLFORK_DEV, strerror(errno));
	ASSERT_EQ(0, dax_range(dax_dev(), &self->base, &self->size));
	/* Every test starts detached. */
	detach(self->fd);
}

FIXTURE_TEARDOWN(pool)
{
	detach(self->fd);
	close(self->fd);
}

static void assert_no_pool(struct __test_metadata *_metadata, int fd)
{
	struct cxlfork_pool_info info;

	ASSERT_EQ(-ENODEV, pool_info(fd, &info));
}

TEST(device_present)
{
	struct stat st;

	ASSERT_EQ(0, stat(CXLFORK_DEV, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(10, major(st.st_rdev)); /* misc */
}

TEST_F(pool, unknown_ioctl_is_enotty)
{
	struct cxlfork_pool_attach a = { .size = sizeof(a) };

	ASSERT_EQ(-ENOTTY, xioctl(self->fd, _IO('x', 1), NULL));
	ASSERT_EQ(-ENOTTY, xioctl(self->fd, _IO(CXLFORK_IOC_MAGIC, 0x7f), NULL));
	/* Right number, wrong direction. */
	ASSERT_EQ(-ENOTTY, xioctl(self->fd, _IOR(CXLFORK_IOC_MAGIC, 0x01, struct cxlfork_pool_attach), &a));
	assert_no_pool(_metadata, self->fd);
}

TEST_F(pool, no_pool_is_enodev)
{
	assert_no_pool(_metadata, self->fd);
	ASSERT_EQ(-ENODEV, detach(self->fd));
}

TEST_F(pool, unformatted_pool_is_ebadmsg)
{
	unsigned char *head = map_pool_head(_metadata);

	/* No superblock (as on a new device): attach without FORMAT refuses. */
	memset(head, 0, 4096);
	ASSERT_EQ(-EBADMSG, attach(self->fd, self->base, self->size, 0, 0));
	assert_no_pool(_metadata, self->fd);
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	ASSERT_EQ(0, memcmp(head, "CXLFORK", 8));
	munmap(head, 2 * MIB);
}

/*
 * An attach request that is valid but for the one field a case changes is
 * refused with EINVAL, and leaves nothing behind. EINVAL does not say which
 * check refused it; the kernel log does: the range checks name the range
 * they refused, the argument checks before them log nothing. So a case that
 * got past the check it names (and was refused later, for another reason)
 * shows up as a log line it should not have.
 */
static void refused(struct __test_metadata *_metadata, int fd, struct cxlfork_pool_attach *a,
		    const char *what, const char *log_line)
{
	static char log[16384];
	struct cxlfork_pool_info info;
	int k = kmsg_open(), r;

	ASSERT_LE(0, k);
	r = xioctl(fd, CXLFORK_IOC_POOL_ATTACH, a);
	kmsg_read(k, log, sizeof(log));
	close(k);
	ASSERT_EQ(-EINVAL, r) TH_LOG("%s: %s", what, strerror(-r));
	ASSERT_EQ(-ENODEV, pool_info(fd, &info)) TH_LOG("%s: attached", what);
	if (log_line) {
		ASSERT_NE(NULL, strstr(log, log_line)) TH_LOG("%s: refused without \"%s\"; log:\n%s", what, log_line, log);
	} else {
		ASSERT_EQ(NULL, strstr(log, "attach:")) TH_LOG("%s: got past the argument checks; log:\n%s", what, log);
	}
}

TEST_F(pool, attach_bad_input_leaves_nothing)
{
	unsigned long long b = self->base, s = self->size;
	struct cxlfork_pool_attach base = { .size = sizeof(base), .phys_base = b, .phys_size = s },
		fmt = base, a;
	struct cxlfork_pool_info info, before;
	char line[128];
	unsigned char *head = map_pool_head(_metadata);
	unsigned char uuid[16];
	struct {
		struct cxlfork_pool_attach a;
		__u64 extra;
	} big;

	/* A formatted pool (8 host slots) that `base` attaches to as host 0. */
	fmt.flags = CXLFORK_ATTACH_FORMAT;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, &fmt));
	ASSERT_EQ(0, pool_info(self->fd, &before));
	ASSERT_EQ(CXLFORK_DEFAULT_HOSTS, before.max_hosts);
	ASSERT_EQ(0, detach(self->fd));
	memcpy(uuid, head + 16, 16);
	ASSERT_EQ(0, memcmp(uuid, before.uuid, 16));

	/* Argument checks: no log line. */
	a = base; a.flags = 1U << 7;
	refused(_metadata, self->fd, &a, "unknown flag", NULL);
	/* (Without the alignment check this range, running 4 KiB past the
	 * region, would be refused by the range check, with a log line.) */
	a = base; a.phys_base = b + 4096;
	refused(_metadata, self->fd, &a, "misaligned base", NULL);
	a = base; a.phys_size = 0;
	refused(_metadata, self->fd, &a, "empty range", NULL);
	/* (Without it: the superblock's size mismatch, EBADMSG.) */
	a = base; a.phys_size = s - 4096;
	refused(_metadata, self->fd, &a, "misaligned size", NULL);
	a = base; a.phys_base = -2 * MIB;
	refused(_metadata, self->fd, &a, "base + size overflows", NULL);
	a = base; a.host_id = CXLFORK_MAX_HOSTS;
	refused(_metadata, self->fd, &a, "host id >= CXLFORK_MAX_HOSTS", NULL);
	a = base; a.max_hosts = 2;
	refused(_metadata, self->fd, &a, "max_hosts without FORMAT", NULL);
	a = fmt; a.max_hosts = CXLFORK_MAX_HOSTS + 1;
	refused(_metadata, self->fd, &a, "max_hosts > CXLFORK_MAX_HOSTS", NULL);
	ASSERT_EQ(0, memcmp(uuid, head + 16, 16)) TH_LOG("the refused format rewrote the superblock");
	/* (Without the size check the 28 bytes read, max_hosts taken as 0,
	 * would attach.) */
	a = base; a.size = sizeof(a) - 4;
	refused(_metadata, self->fd, &a, "struct smaller than its first version", NULL);

	/* Range checks: System RAM (guest RAM starts at 0), unclaimed
	 * address space, a range running past the region into the rest of
	 * the CXL window. Each logs the range it refused. */
	a = base; a.phys_base = 2 * MIB; a.phys_size = 2 * MIB;
	snprintf(line, sizeof(line), "attach: [%#llx, +%#llx) is System RAM or not a claimed device range", 2 * MIB, 2 * MIB);
	refused(_metadata, self->fd, &a, "System RAM", line);
	a = base; a.phys_base = 0x7f0000000000ULL; a.phys_size = 2 * MIB;
	snprintf(line, sizeof(line), "attach: [%#llx, +%#llx) is System RAM or not a claimed device range", 0x7f0000000000ULL, 2 * MIB);
	refused(_metadata, self->fd, &a, "unclaimed range", line);
	a = base; a.phys_size = s + 2 * MIB;
	snprintf(line, sizeof(line), "attach: [%#llx, +%#llx) is System RAM or not a claimed device range", b, s + 2 * MIB);
	refused(_metadata, self->fd, &a, "past the region", line);

	/* Checks against the pool's own superblock: host 8 of an 8-slot
	 * pool (host 7, the last slot, attaches), and a format for 2 hosts
	 * asked of host 2 (refused before the superblock is written). */
	a = base; a.host_id = CXLFORK_DEFAULT_HOSTS;
	refused(_metadata, self->fd, &a, "host id beyond the pool's slots", "host id 8 is beyond the pool's 8 host slots");
	a.host_id = CXLFORK_DEFAULT_HOSTS - 1;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, &a));
	ASSERT_EQ(0, detach(self->fd));
	a = fmt; a.max_hosts = 2; a.host_id = 2;
	refused(_metadata, self->fd, &a, "host id beyond the slots of the format", "host id 2 is beyond the pool's 2 host slots");
	ASSERT_EQ(0, memcmp(uuid, head + 16, 16)) TH_LOG("the refused format rewrote the superblock");

	/* Larger struct with unknown non-zero bytes; bad pointers. */
	memset(&big, 0, sizeof(big));
	big.a = base;
	big.a.size = sizeof(big);
	big.extra = 1;
	ASSERT_EQ(-E2BIG, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, &big));
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, NULL));
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, (void *)16));
	assert_no_pool(_metadata, self->fd);

	/* Nothing was left: the same pool, and host 0's slot was claimed by
	 * no refused attach (its generation is the format's + 1). A larger
	 * struct whose extra bytes are zero is accepted (forward compat). */
	big.extra = 0;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, &big));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(0, memcmp(before.uuid, info.uuid, 16));
	ASSERT_EQ(CXLFORK_DEFAULT_HOSTS, info.max_hosts);
	ASSERT_EQ(before.hosts[0].generation + 1, info.hosts[0].generation);
	ASSERT_EQ(1, info.hosts[CXLFORK_DEFAULT_HOSTS - 1].generation);
	munmap(head, 2 * MIB);
}

TEST_F(pool, unprivileged_caller_gets_eperm)
{
	pid_t pid = fork();
	int status;

	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open_as_nobody();

		if (attach(fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT) != -EPERM)
			_exit(92);
		/* Privilege is checked before the argument is touched. */
		if (xioctl(fd, CXLFORK_IOC_POOL_ATTACH, NULL) != -EPERM)
			_exit(93);
		if (detach(fd) != -EPERM)
			_exit(94);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);
	assert_no_pool(_metadata, self->fd);

	/* An unprivileged caller cannot detach a live pool either. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cxlfork_pool_info info;
		int fd = open_as_nobody();

		if (detach(fd) != -EPERM)
			_exit(94);
		/* ... but may read its status. */
		_exit(pool_info(fd, &info) == 0 ? 0 : 95);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);
	struct cxlfork_pool_info info;
	ASSERT_EQ(0, pool_info(self->fd, &info));
}

TEST_F(pool, info_round_trip)
{
	struct cxlfork_pool_info info;
	struct utsname u;
	static const __u8 zero[16];

	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(sizeof(info), info.size);
	ASSERT_EQ(CXLFORK_ABI_VERSION, info.abi_version);
	ASSERT_NE(0, memcmp(info.uuid, zero, 16));
	ASSERT_EQ(self->base, info.phys_base);
	ASSERT_EQ(self->size, info.pool_size);
	ASSERT_EQ(0, info.host_id);
	ASSERT_EQ(CXLFORK_DEFAULT_HOSTS, info.max_hosts);
	ASSERT_EQ(1, info.format_version);
	ASSERT_EQ(1, info.hosts_in_use);
	ASSERT_EQ(0, info.part_size % (2 * MIB));
	ASSERT_LE(info.part_size * info.max_hosts, info.pool_size);
	ASSERT_GT(info.part_size * info.max_hosts + 4 * MIB, info.pool_size - info.pool_size / 8);
	ASSERT_EQ(info.part_size, info.part_free);
	ASSERT_EQ(info.part_size * info.max_hosts, info.free_bytes);
	ASSERT_EQ(CXLFORK_SLOT_ATTACHED, info.hosts[0].state);
	ASSERT_EQ(1, info.hosts[0].generation);
	ASSERT_NE(0, info.hosts[0].attach_time_ns);
	ASSERT_EQ(0, uname(&u));
	ASSERT_STREQ(u.nodename, info.hosts[0].nodename);
	for (unsigned int i = 1; i < info.max_hosts; i++)
		ASSERT_EQ(CXLFORK_SLOT_FREE, info.hosts[i].state);

	/* An older caller with a v1-sized struct gets exactly that much. */
	struct {
		struct cxlfork_pool_info info;
		__u64 canary;
	} padded;
	memset(&padded, 0, sizeof(padded));
	padded.info.size = sizeof(padded);
	padded.canary = 0;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_POOL_INFO, &padded));
	ASSERT_EQ(sizeof(info), padded.info.size);
	ASSERT_EQ(0, padded.canary);
	ASSERT_EQ(0, memcmp(info.uuid, padded.info.uuid, 16));
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_POOL_INFO, NULL));
}

TEST_F(pool, double_attach_is_ebusy)
{
	struct cxlfork_pool_info before, after;

	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	ASSERT_EQ(0, pool_info(self->fd, &before));
	ASSERT_EQ(-EBUSY, attach(self->fd, self->base, self->size, 0, 0));
	ASSERT_EQ(-EBUSY, attach(self->fd, self->base, self->size, 1, CXLFORK_ATTACH_FORMAT));
	/* The refused attach (even with FORMAT) changed nothing. */
	ASSERT_EQ(0, pool_info(self->fd, &after));
	ASSERT_EQ(0, memcmp(before.uuid, after.uuid, 16));
	ASSERT_EQ(before.hosts[0].generation, after.hosts[0].generation);
}

TEST_F(pool, superblock_persists_across_detach)
{
	struct cxlfork_pool_info a, b, c;

	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT | 0));
	ASSERT_EQ(0, pool_info(self->fd, &a));
	ASSERT_EQ(0, detach(self->fd));
	assert_no_pool(_metadata, self->fd);
	ASSERT_EQ(-ENODEV, detach(self->fd));

	/* Same pool found again; the slot was marked detached, so no EBUSY. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, 0));
	ASSERT_EQ(0, pool_info(self->fd, &b));
	ASSERT_EQ(0, memcmp(a.uuid, b.uuid, 16));
	ASSERT_EQ(a.hosts[0].generation + 1, b.hosts[0].generation);
	ASSERT_EQ(0, detach(self->fd));

	/* Another host id of the same pool, and the first one shows detached. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 3, 0));
	ASSERT_EQ(0, pool_info(self->fd, &c));
	ASSERT_EQ(3, c.host_id);
	ASSERT_EQ(CXLFORK_SLOT_DETACHED, c.hosts[0].state);
	ASSERT_EQ(CXLFORK_SLOT_ATTACHED, c.hosts[3].state);
	ASSERT_EQ(1, c.hosts_in_use);
	ASSERT_EQ(0, detach(self->fd));

	/* Re-format: new uuid, fresh slots; host count chosen at format. */
	struct cxlfork_pool_attach f = { .size = sizeof(f), .flags = CXLFORK_ATTACH_FORMAT,
		.phys_base = self->base, .phys_size = self->size, .max_hosts = 2 };
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_POOL_ATTACH, &f));
	ASSERT_EQ(0, pool_info(self->fd, &c));
	ASSERT_NE(0, memcmp(a.uuid, c.uuid, 16));
	ASSERT_EQ(2, c.max_hosts);
	ASSERT_EQ(1, c.hosts[0].generation);
	ASSERT_EQ(0, detach(self->fd));
	/* host id 3 no longer exists in a 2-host pool (host 1 does). */
	ASSERT_EQ(-EINVAL, attach(self->fd, self->base, self->size, 3, 0));
	assert_no_pool(_metadata, self->fd);
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 1, 0));
	ASSERT_EQ(0, detach(self->fd));
}

TEST_F(pool, corrupt_superblock_is_ebadmsg)
{
	unsigned char *head;

	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	ASSERT_EQ(0, detach(self->fd));
	head = map_pool_head(_metadata);
	ASSERT_EQ(0, memcmp(head, "CXLFORK", 8));

	/* One flipped bit in the uuid: checksum mismatch. */
	head[20] ^= 0x10;
	ASSERT_EQ(-EBADMSG, attach(self->fd, self->base, self->size, 0, 0));
	assert_no_pool(_metadata, self->fd);
	head[20] ^= 0x10;
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, 0));
	ASSERT_EQ(0, detach(self->fd));

	/* Wrong magic. */
	head[0] = 'X';
	ASSERT_EQ(-EBADMSG, attach(self->fd, self->base, self->size, 0, 0));
	head[0] = 'C';

	/* A corrupt slot of this host is refused too. */
	head[SLOT_OFF(0) + 16] ^= 1;
	ASSERT_EQ(-EBADMSG, attach(self->fd, self->base, self->size, 0, 0));
	head[SLOT_OFF(0) + 16] ^= 1;

	/* Another host's corrupt slot does not stop this host, and shows as invalid. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 1, 0));
	ASSERT_EQ(0, detach(self->fd));
	head[SLOT_OFF(1) + 16] ^= 1;
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, 0));
	struct cxlfork_pool_info info;
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(CXLFORK_SLOT_INVALID, info.hosts[1].state);
	ASSERT_EQ(info.part_size * (info.max_hosts - 1), info.free_bytes);
	head[SLOT_OFF(1) + 16] ^= 1;
	munmap(head, 2 * MIB);
}

TEST_F(pool, held_slot_is_ebusy_until_takeover)
{
	unsigned char saved[4096], *head;
	struct cxlfork_pool_info info;

	/* Simulate a host that died attached: save its slot while attached. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_FORMAT));
	head = map_pool_head(_metadata);
	memcpy(saved, head + SLOT_OFF(0), sizeof(saved));
	ASSERT_EQ(0, detach(self->fd));
	memcpy(head + SLOT_OFF(0), saved, sizeof(saved));

	ASSERT_EQ(-EBUSY, attach(self->fd, self->base, self->size, 0, 0));
	assert_no_pool(_metadata, self->fd);
	/* Other slots are free to use. */
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 1, 0));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(2, info.hosts_in_use);
	ASSERT_EQ(0, detach(self->fd));
	ASSERT_EQ(0, attach(self->fd, self->base, self->size, 0, CXLFORK_ATTACH_TAKEOVER));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(2, info.hosts[0].generation);
	munmap(head, 2 * MIB);
}

static unsigned int module_refcnt(void)
{
	FILE *f = fopen("/sys/module/cxlfork/refcnt", "r");
	unsigned int n = ~0U;

	if (f) {
		if (fscanf(f, "%u", &n) != 1)
			n = ~0U;
		fclose(f);
	}
	return n;
}

TEST(module_unload_rules)
{
	int fd = open(CXLFORK_DEV, O_RDWR), status, p[2];
	unsigned long long base, size;
	struct cxlfork_pool_info info;
	pid_t holder;
	char c;
	int r;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
	detach(fd);
	ASSERT_EQ(0, attach(fd, base, size, 0, CXLFORK_ATTACH_FORMAT));
	ASSERT_TRUE(module_loaded("cxlfork"));

	/* An open descriptor pins the module: unloading it fails with
	 * EWOULDBLOCK (EBUSY from older kernels), and the module, its device
	 * and the attached pool stay. */
	r = unload_module("cxlfork");
	ASSERT_TRUE(r == -EWOULDBLOCK || r == -EBUSY)
		TH_LOG("unload with a descriptor open: %s (refcnt %u)", r ? strerror(-r) : "succeeded", module_refcnt());
	ASSERT_TRUE(module_loaded("cxlfork"));
	ASSERT_EQ(0, access(CXLFORK_DEV, F_OK));
	ASSERT_EQ(0, pool_info(fd, &info));

	/* So does one held by another process only. */
	ASSERT_EQ(0, pipe(p));
	holder = fork();
	ASSERT_LE(0, holder);
	if (holder == 0) {
		int hfd = open(CXLFORK_DEV, O_RDWR);

		close(fd);
		if (write(p[1], hfd >= 0 ? "y" : "n", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ASSERT_EQ(1, read(p[0], &c, 1));
	ASSERT_EQ('y', c);
	close(fd);
	r = unload_module("cxlfork");
	ASSERT_TRUE(r == -EWOULDBLOCK || r == -EBUSY)
		TH_LOG("unload with another process's descriptor open: %s", r ? strerror(-r) : "succeeded");
	ASSERT_TRUE(module_loaded("cxlfork"));
	kill(holder, SIGKILL);
	ASSERT_EQ(holder, waitpid(holder, &status, 0));

	/* With none open it unloads, and detaches the pool cleanly. */
	ASSERT_EQ(0, unload_module("cxlfork")) TH_LOG("refcnt %u", module_refcnt());
	ASSERT_FALSE(module_loaded("cxlfork"));
	ASSERT_NE(0, access(CXLFORK_DEV, F_OK));
	ASSERT_EQ(0, system("insmod /cxlfork/cxlfork.ko && chmod 0666 /dev/cxlfork"));
	fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, fd);
	/* Not attached after reload; the slot reads detached, so no EBUSY. */
	ASSERT_EQ(-ENODEV, pool_info(fd, &info));
	ASSERT_EQ(0, attach(fd, base, size, 0, 0));
	ASSERT_EQ(0, pool_info(fd, &info));
	ASSERT_EQ(2, info.hosts[0].generation);
	ASSERT_EQ(0, detach(fd));
	close(fd);
}

TEST_HARNESS_MAIN
