// SPDX-License-Identifier: GPL-2.0
/*
 * rseq_v2: an rseq area registered the way glibc >= 2.40 registers it
 * (Debian trixie's 2.41): longer than the original 32 bytes, as
 * AT_RSEQ_FEATURE_SIZE says, aligned as AT_RSEQ_ALIGN says. On 7.x such a
 * registration is the kernel's optimized "ABI v2": on each way out to user
 * space the kernel checks the ids in the area against the ones it last
 * wrote, and a mismatch kills the task (SIGSEGV). This program gives up
 * glibc's own 32-byte registration (glibc 2.36 here, static) and registers
 * a v2 area of its own. A fork child keeps the registration and the
 * area's contents. Afterwards:
 *   - the process is alive and running (a clone whose area held its
 *     original's ids died at once, before any check);
 *   - registering the same area again fails with EBUSY (it is the one
 *     registered);
 *   - after a sched_yield the area has a valid cpu_id, the same in
 *     cpu_id_start, and an mm_cid below the number of CPUs;
 *   - unregistering it succeeds (cpu_id -1 after), registering it again too.
 * SKIP when the kernel offers no extended registration (no
 * AT_RSEQ_FEATURE_SIZE above 32) or glibc registered no area to give up.
 */
#include "ps.h"
#include <sched.h>
#include <sys/auxv.h>
#include <sys/rseq.h>

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
#ifndef AT_RSEQ_ALIGN
#define AT_RSEQ_ALIGN 28
#endif

/* Room and alignment for any feature size up to 256 bytes. */
static struct {
	char b[256];
} __attribute__((aligned(256))) room;
static struct rseq *area0 = (struct rseq *)&room;
static unsigned int len;

/* The kernel's struct rseq's mm_cid (after node_id), which glibc 2.36's lacks. */
#define MM_CID_OFFSET 24

static int32_t field(const uint32_t *f)
{
	return *(volatile int32_t *)f;
}

static int32_t mm_cid(void)
{
	return field((const uint32_t *)((const char *)area0 + MM_CID_OFFSET));
}

static void setup(void)
{
	unsigned long feature = getauxval(AT_RSEQ_FEATURE_SIZE), align = getauxval(AT_RSEQ_ALIGN);

	if (feature <= 32 || align > sizeof(room) || feature > sizeof(room))
		ps_skip("no extended rseq registration on this kernel (AT_RSEQ_FEATURE_SIZE <= 32)");
	if (__rseq_size == 0)
		ps_skip("glibc did not register rseq (no kernel support or glibc.pthread.rseq=0)");
	/* glibc's 32 bytes in the TCB go; ours come (glibc >= 2.40's length). */
	PS_SETUP(syscall(SYS_rseq, (char *)__builtin_thread_pointer() + __rseq_offset, 32, RSEQ_FLAG_UNREGISTER,
			 RSEQ_SIG) == 0);
	len = feature;
	PS_SETUP(syscall(SYS_rseq, area0, len, 0, RSEQ_SIG) == 0);
	sched_yield();
	PS_SETUP(field(&area0->cpu_id) >= 0);
	ps_say("# rseq area %p, %u bytes (AT_RSEQ_FEATURE_SIZE %lu, AT_RSEQ_ALIGN %lu)", (void *)area0, len, feature,
	       align);
}

static void verify(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	long r;
	int cpu;

	r = syscall(SYS_rseq, area0, len, 0, RSEQ_SIG);
	CHECK(r == -1 && errno == EBUSY, "registering our area again: %s (EBUSY if it is the registered one)",
	      r == 0 ? "succeeded: no rseq area was registered" :
	      errno == EINVAL ? "EINVAL: another area is registered" : strerror(errno));
	sched_yield();
	cpu = field(&area0->cpu_id);
	CHECK(cpu >= 0 && cpu < ncpu, "rseq cpu_id %d after sched_yield", cpu);
	CHECK(field(&area0->cpu_id_start) == cpu, "cpu_id_start %d, cpu_id %d", field(&area0->cpu_id_start), cpu);
	CHECK(mm_cid() >= 0 && mm_cid() < ncpu, "mm_cid %d", mm_cid());

	r = syscall(SYS_rseq, area0, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (!CHECK(r == 0, "unregistering the area: %s", strerror(errno)))
		return;
	CHECK(field(&area0->cpu_id) == RSEQ_CPU_ID_UNINITIALIZED, "cpu_id %d after unregistering",
	      field(&area0->cpu_id));
	r = syscall(SYS_rseq, area0, len, 0, RSEQ_SIG);
	if (!CHECK(r == 0, "registering the area again: %s", strerror(errno)))
		return;
	sched_yield();
	cpu = field(&area0->cpu_id);
	CHECK(cpu >= 0 && cpu < ncpu, "rseq cpu_id %d after registering again", cpu);
}

static void tamper(void)
{
	/* As if the clone had no rseq registration. */
	syscall(SYS_rseq, area0, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "rseq_v2", NULL, setup, verify, tamper);
}
