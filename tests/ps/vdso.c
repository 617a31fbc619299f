// SPDX-License-Identifier: GPL-2.0
/*
 * vdso: time through the vDSO after the checkpoint. libc cached the vDSO's
 * entry points at start-up, so they must work where they were: the [vdso]
 * mapping is where AT_SYSINFO_EHDR says, [vvar] is there, and
 * clock_gettime (MONOTONIC, REALTIME, BOOTTIME, MONOTONIC_COARSE),
 * gettimeofday, time and sched_getcpu give sane values. On the same host,
 * MONOTONIC and BOOTTIME never go back from the values read just before the
 * checkpoint (self: right before the call; pid: right before waiting); on
 * another host they are another machine's clocks (only their progress is
 * checked). REALTIME is within 10 s (both hosts keep the wall clock).
 */
#include "ps.h"
#include <sched.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>

static struct timespec mono0, real0, boot0;
static unsigned long vdso0;

static long long ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void setup(void)
{
	vdso0 = getauxval(AT_SYSINFO_EHDR);
	if (!vdso0)
		ps_skip("no vDSO");
	clock_gettime(CLOCK_REALTIME, &real0);
	clock_gettime(CLOCK_BOOTTIME, &boot0);
	clock_gettime(CLOCK_MONOTONIC, &mono0);
}

static void verify(void)
{
	struct timespec a, b, c, sleep = { 0, 20 * 1000 * 1000 };
	struct timeval tv;
	struct ps_map m;
	long long d;
	time_t t;
	int cpu;

	CHECK_EQ(getauxval(AT_SYSINFO_EHDR), vdso0);
	CHECK(ps_map_at(vdso0, &m) == 0 && !strcmp(m.path, "[vdso]") && m.start == vdso0,
	      "AT_SYSINFO_EHDR %#lx: maps says %lx-%lx \"%s\"", vdso0, m.start, m.end, m.path);
	CHECK(!memcmp((void *)vdso0, "\177ELF", 4), "no ELF header at the vDSO");
	/* [vvar] right below the vDSO, as the kernel maps them. */
	CHECK(ps_map_at(vdso0 - 1, &m) == 0 && !strncmp(m.path, "[vvar", 5), "below the vDSO: \"%s\"", m.path);

	CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0, "clock_gettime(MONOTONIC): %s", strerror(errno));
	CHECK(clock_gettime(CLOCK_BOOTTIME, &b) == 0, "clock_gettime(BOOTTIME): %s", strerror(errno));
	CHECK(clock_gettime(CLOCK_REALTIME, &c) == 0, "clock_gettime(REALTIME): %s", strerror(errno));
	if (!ps_remote) {
		CHECK(ns(&a) >= ns(&mono0), "CLOCK_MONOTONIC went back: %lld ns before the checkpoint, %lld after",
		      ns(&mono0), ns(&a));
		CHECK(ns(&b) >= ns(&boot0), "CLOCK_BOOTTIME went back: %lld, then %lld", ns(&boot0), ns(&b));
	}
	d = ns(&c) - ns(&real0);
	CHECK(d > -10000000000LL && d < 600 * 1000000000LL, "CLOCK_REALTIME moved by %lld ns", d);
	/* Time goes on: 20 ms asleep. */
	nanosleep(&sleep, NULL);
	CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0 && ns(&b) - ns(&a) >= 20000000LL,
	      "CLOCK_MONOTONIC advanced %lld ns over a 20 ms sleep", ns(&b) - ns(&a));
	CHECK(clock_gettime(CLOCK_MONOTONIC_COARSE, &b) == 0 && ns(&b) > 0, "CLOCK_MONOTONIC_COARSE");
	CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday: %s", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &c);
	d = (long long)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - ns(&c);
	CHECK(d > -2000000000LL && d < 2000000000LL, "gettimeofday and CLOCK_REALTIME differ by %lld ns", d);
	t = time(NULL);
	CHECK(t >= c.tv_sec - 2 && t <= c.tv_sec + 2, "time() %lld, CLOCK_REALTIME %lld", (long long)t,
	      (long long)c.tv_sec);
	cpu = sched_getcpu();
	CHECK(cpu >= 0 && cpu < sysconf(_SC_NPROCESSORS_CONF), "sched_getcpu() = %d", cpu);
}

static void tamper(void)
{
	/* As if the clock had gone back across the checkpoint. */
	mono0.tv_sec += 3600;
	boot0.tv_sec += 3600;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "vdso", NULL, setup, verify, tamper);
}
