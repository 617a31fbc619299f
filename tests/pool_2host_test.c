// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork two-host pool test: run at the same time in two guests whose CXL
 * devices share one backing file (qemu/run --hosts 2). Host 0 formatted the
 * pool, host 1 attached to it. Each host reads what the other published in
 * its slot; host 1 checks that host 0's live slot cannot be taken.
 * Each host prints "# pool-uuid: ..." for the harness to compare.
 */
#include <time.h>
#include <sys/utsname.h>

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
	return i->hosts[1].state == CXLFORK_SLOT_ATTACHED && i->hosts[1].generation >= 2;
}

static int peer1_detached(const struct cxlfork_pool_info *i)
{
	return i->hosts[1].state == CXLFORK_SLOT_DETACHED;
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

TEST_F(two_hosts, same_pool_and_peer_slot_visible)
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

TEST_F(two_hosts, live_peer_slot_cannot_be_taken)
{
	struct cxlfork_pool_info info;
	unsigned long long base, size;

	ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
	if (self->me == 0) {
		/* Host 1 tries our slot, then re-attaches as itself: we see
		 * its generation move while ours stays. */
		ASSERT_EQ(0, wait_info(self->fd, &info, peer1_reattached))
			TH_LOG("host 0 never saw host 1 re-attach");
		ASSERT_EQ(CXLFORK_SLOT_ATTACHED, info.hosts[0].state);
		ASSERT_EQ(1, info.hosts[0].generation);
		ASSERT_EQ(0, wait_info(self->fd, &info, peer1_detached))
			TH_LOG("host 0 never saw host 1 detach");
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

TEST_HARNESS_MAIN
