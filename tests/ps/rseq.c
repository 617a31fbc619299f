// SPDX-License-Identifier: GPL-2.0
/*
 * rseq: glibc (>= 2.35) registers a restartable-sequences area for the main
 * thread at start-up, inside its TCB (__rseq_offset from the thread
 * pointer). A fork child keeps that registration. Afterwards the area is
 * the one registered (not the restorer stub's, not none):
 *   - registering the same area again fails with EBUSY (another registered
 *     area would give EINVAL, none would make it succeed);
 *   - after a sched_yield the kernel has written a valid cpu_id into it;
 *   - unregistering it (RSEQ_FLAG_UNREGISTER, same length and signature)
 *     succeeds and the kernel marks it uninitialised (cpu_id -1);
 *   - registering it again succeeds and cpu_id becomes valid again.
 * SKIP when glibc did not register rseq.
 */
#include "ps.h"
#include <sched.h>
#include <sys/auxv.h>
#include <sys/rseq.h>

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif

static struct rseq *area0;
static unsigned int len;

static struct rseq *area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static int cpu_id(void)
{
	return *(volatile int32_t *)&area0->cpu_id;
}

static void setup(void)
{
	if (__rseq_size == 0)
		ps_skip("glibc did not register rseq (no kernel support or glibc.pthread.rseq=0)");
	area0 = area();
	/* glibc registers 32 bytes (__rseq_size is the feature size on newer glibc) */
	len = __rseq_size < 32 ? 32 : __rseq_size;
	sched_yield();
	PS_SETUP(cpu_id() >= 0);
	ps_say("# rseq area %p, %u bytes, AT_RSEQ_FEATURE_SIZE %lu", (void *)area0, len,
	       getauxval(AT_RSEQ_FEATURE_SIZE));
}

static void verify(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	long r;
	int cpu;

	CHECK(area() == area0, "the rseq area moved: %p, was %p", (void *)area(), (void *)area0);
	r = syscall(SYS_rseq, area0, len, 0, RSEQ_SIG);
	CHECK(r == -1 && errno == EBUSY, "registering our area again: %s (EBUSY if it is the registered one)",
	      r == 0 ? "succeeded: no rseq area was registered" :
	      errno == EINVAL ? "EINVAL: another area is registered" : strerror(errno));
	sched_yield();
	cpu = cpu_id();
	CHECK(cpu >= 0 && cpu < ncpu, "rseq cpu_id %d after sched_yield", cpu);
	CHECK(sched_getcpu() >= 0 && sched_getcpu() < ncpu, "sched_getcpu() %d", sched_getcpu());

	r = syscall(SYS_rseq, area0, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (!CHECK(r == 0, "unregistering the original's rseq area: %s", strerror(errno)))
		return;
	CHECK(cpu_id() == RSEQ_CPU_ID_UNINITIALIZED, "cpu_id %d after unregistering", cpu_id());
	r = syscall(SYS_rseq, area0, len, 0, RSEQ_SIG);
	if (!CHECK(r == 0, "registering the area again: %s", strerror(errno)))
		return;
	sched_yield();
	cpu = cpu_id();
	CHECK(cpu >= 0 && cpu < ncpu, "rseq cpu_id %d after registering again", cpu);
}

static void tamper(void)
{
	/* As if the clone had no rseq registration. */
	syscall(SYS_rseq, area0, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "rseq", NULL, setup, verify, tamper);
}
