// SPDX-License-Identifier: GPL-2.0
/*
 * tls: thread-local storage. Initialised (.tdata) and zero-initialised
 * (.tbss) __thread variables written with patterns, the fs base
 * (arch_prctl ARCH_GET_FS, and %fs:0, the TCB's pointer to itself), the gs
 * base, the stack-protector canary (%fs:0x28) and pointer guard (%fs:0x30)
 * libc keeps there, and errno (a TLS variable: its address, and in self
 * mode its value right after the successful checkpoint call) are the
 * original's.
 */
#include "ps.h"
#include <asm/prctl.h>

static __thread uint64_t t_init = 0x7115eed0000001ULL;
static __thread char t_buf[3000];
static __thread int *t_ptr;
static int target;

static unsigned long fs0, gs0, canary0, guard0;
static int *errno_addr0;

static unsigned long fs_word(unsigned long off)
{
	unsigned long v;

	__asm__ volatile("mov %%fs:(%1), %0" : "=r"(v) : "r"(off));
	return v;
}

static void setup(void)
{
	PS_SETUP(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs0) == 0);
	PS_SETUP(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs0) == 0);
	canary0 = fs_word(0x28);
	guard0 = fs_word(0x30);
	errno_addr0 = &errno;
	t_init ^= 0xff00ff;
	ps_fill(t_buf, sizeof(t_buf) / 8 * 8, 0x7b0f);
	t_ptr = &target;
	/* Self mode: errno must keep this across the successful call. */
	errno = 4321;
}

static void verify(void)
{
	unsigned long fs = 0, gs = 0;

	if (ps_mode == PS_SELF || ps_mode == PS_FORK)
		CHECK(ps_errno_ckpt == 4321, "errno is %d right after the checkpoint call, was 4321", ps_errno_ckpt);
	CHECK(&errno == errno_addr0, "&errno %p, was %p", (void *)&errno, (void *)errno_addr0);
	errno = 77;
	CHECK(*errno_addr0 == 77, "errno writes go elsewhere");
	CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0 && fs == fs0, "fs base %#lx, was %#lx", fs, fs0);
	CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0 && gs == gs0, "gs base %#lx, was %#lx", gs, gs0);
	CHECK(fs_word(0) == fs0, "%%fs:0 (the TCB's self pointer) %#lx, fs base %#lx", fs_word(0), fs0);
	CHECK(fs_word(0x28) == canary0, "stack canary %#lx, was %#lx", fs_word(0x28), canary0);
	CHECK(fs_word(0x30) == guard0, "pointer guard %#lx, was %#lx", fs_word(0x30), guard0);
	CHECK(t_init == (0x7115eed0000001ULL ^ 0xff00ff), "t_init %#llx", (unsigned long long)t_init);
	CHECK_PAT(t_buf, sizeof(t_buf) / 8 * 8, 0x7b0f);
	CHECK(t_ptr == &target, "t_ptr %p, not %p", (void *)t_ptr, (void *)&target);
	CHECK((unsigned long)&t_init - fs0 < 65536 || fs0 - (unsigned long)&t_init < 65536,
	      "&t_init %p is not near the fs base %#lx", (void *)&t_init, fs0);
}

static void tamper(void)
{
	/* As if the gs base and a TLS byte were not restored. */
	syscall(SYS_arch_prctl, ARCH_SET_GS, 0x10000UL);
	t_buf[100] ^= 1;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "tls", NULL, setup, verify, tamper);
}
