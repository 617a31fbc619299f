// SPDX-License-Identifier: GPL-2.0
/*
 * fpu: the FPU/SIMD registers across the checkpoint. xmm0-15 (the whole
 * ymm0-15 when the CPU has AVX and the OS enabled it), four 80-bit values on
 * the x87 stack, the x87 control and status words and MXCSR (rounding, FZ,
 * DAZ, a sticky flag) are loaded with patterns and held in the registers:
 *   self: loaded right before the checkpoint's syscall instruction and
 *         stored right after it, in one asm block (a syscall preserves them
 *         all), in the original and in the clone;
 *   pid:  held in a loop around rt_sigsuspend (the driver checkpoints the
 *         process while it sleeps there; SIGUSR1's handler runs between
 *         and sigreturn gives them back), stored when SIGUSR1 came;
 *   fork: as self, with the raw fork system call.
 * Every bit must come back.
 */
#include <stddef.h>
#include "ps.h"

struct fpbuf {
	uint8_t v[16][32];		/* xmm = the first 16 bytes of each */
	uint8_t x87[4][16];		/* 80-bit values (16-byte slots) */
	uint32_t mxcsr;
	uint16_t fcw, fsw;
	uint16_t fcw_std;		/* put back after the test */
	uint32_t mxcsr_std;
};

static struct fpbuf in, out;
static int avx;

#define O(f) [f] "i"(offsetof(struct fpbuf, f))
#define X(i, op, dir) op " " #i "*32(%[" dir "]), %%xmm" #i "\n\t"
#define XS(i, op, dir) op " %%xmm" #i ", " #i "*32(%[" dir "])\n\t"
#define Y(i, op, dir) op " " #i "*32(%[" dir "]), %%ymm" #i "\n\t"
#define YS(i, op, dir) op " %%ymm" #i ", " #i "*32(%[" dir "])\n\t"
#define ALL16(M, op, dir) M(0, op, dir) M(1, op, dir) M(2, op, dir) M(3, op, dir) M(4, op, dir) M(5, op, dir) \
	M(6, op, dir) M(7, op, dir) M(8, op, dir) M(9, op, dir) M(10, op, dir) M(11, op, dir) M(12, op, dir) \
	M(13, op, dir) M(14, op, dir) M(15, op, dir)

#define LOAD_X87 "fldcw %c[fcw](%[in])\n\t" "fldt 0(%[in8])\n\t" "fldt 16(%[in8])\n\t" "fldt 32(%[in8])\n\t" \
	"fldt 48(%[in8])\n\t" "ldmxcsr %c[mxcsr](%[in])\n\t"
/* st0 is the last loaded: slot 3 */
#define STORE_X87 "stmxcsr %c[mxcsr](%[out])\n\t" "fnstcw %c[fcw](%[out])\n\t" "fnstsw %c[fsw](%[out])\n\t" \
	"fstpt 48(%[out8])\n\t" "fstpt 32(%[out8])\n\t" "fstpt 16(%[out8])\n\t" "fstpt 0(%[out8])\n\t" \
	"fldcw %c[fcw_std](%[in])\n\t" "ldmxcsr %c[mxcsr_std](%[in])\n\t"
#define CLOBBERS "rcx", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", \
	"st(4)", "st(5)", "st(6)", "st(7)"
#define OPS [in] "r"(&in), [out] "r"(&out), [in8] "r"(in.x87), [out8] "r"(out.x87), O(fcw), O(fsw), O(mxcsr), \
	O(fcw_std), O(mxcsr_std)

/* One system call with every register loaded around it. */
static long fpu_syscall(long nr, long a0, long a1, long a2)
{
	long ret;

	if (avx)
		__asm__ volatile(LOAD_X87 ALL16(Y, "vmovdqu", "in") "syscall\n\t" ALL16(YS, "vmovdqu", "out") STORE_X87
				 "vzeroupper\n\t"
				 : "=a"(ret)
				 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), OPS
				 : CLOBBERS);
	else
		__asm__ volatile(LOAD_X87 ALL16(X, "movdqu", "in") "syscall\n\t" ALL16(XS, "movdqu", "out") STORE_X87
				 : "=a"(ret)
				 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), OPS
				 : CLOBBERS);
	return ret;
}

/* Pid mode: held across rt_sigsuspend until SIGUSR1 has been handled. */
static void fpu_wait(const sigset_t *mask)
{
	if (avx)
		__asm__ volatile(LOAD_X87 ALL16(Y, "vmovdqu", "in") "1:\n\t"
				 "mov %[nr], %%eax\n\t"
				 "syscall\n\t"
				 "cmpl $0, %[flag]\n\t"
				 "je 1b\n\t" ALL16(YS, "vmovdqu", "out") STORE_X87 "vzeroupper\n\t"
				 :
				 : [nr] "i"(SYS_rt_sigsuspend), "D"(mask), "S"(8L), [flag] "m"(ps_usr1), OPS
				 : "rax", CLOBBERS);
	else
		__asm__ volatile(LOAD_X87 ALL16(X, "movdqu", "in") "1:\n\t"
				 "mov %[nr], %%eax\n\t"
				 "syscall\n\t"
				 "cmpl $0, %[flag]\n\t"
				 "je 1b\n\t" ALL16(XS, "movdqu", "out") STORE_X87
				 :
				 : [nr] "i"(SYS_rt_sigsuspend), "D"(mask), "S"(8L), [flag] "m"(ps_usr1), OPS
				 : "rax", CLOBBERS);
}

/* PS_TAMPER in pid mode: the handler changes xmm3 in the saved frame. */
static void on_usr1_tamper(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	(void)sig;
	(void)si;
	uc->uc_mcontext.fpregs->_xmm[3].element[1] ^= 0x100;
	ps_usr1 = 1;
}

static void setup(void)
{
	static uint8_t fx[512] __attribute__((aligned(64)));
	uint32_t mask;
	long double x[4] = { 1.0L / 3.0L, -3.14159265358979323846264338327950288L * 1e300L,
			     0x1.23456789abcdef12p-1000L, 12345678901234567.25L };

	avx = ps_have_avx();
	if (!avx)
		ps_say("# note: no AVX here: xmm only");
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 32; j++)
			in.v[i][j] = (uint8_t)(0xa5 ^ (i * 32 + j) ^ (j >= 16 ? 0x3c : 0));
	for (int i = 0; i < 4; i++)
		memcpy(in.x87[i], &x[i], 10);
	__asm__ volatile("fxsave %0" : "=m"(fx));
	memcpy(&mask, fx + 28, 4);
	if (!mask)
		mask = 0xffbf;
	/* FZ, round up, DAZ, all exceptions masked, PE (sticky) set */
	in.mxcsr = (0x8000 | 0x4000 | 0x1f80 | 0x0040 | 0x0020) & mask;
	in.fcw = 0x0a7f;		/* round up, double precision, all masked */
	__asm__ volatile("fnstcw %0" : "=m"(in.fcw_std));
	__asm__ volatile("stmxcsr %0" : "=m"(in.mxcsr_std));
}

static void verify(void)
{
	unsigned int n = avx ? 32 : 16;

	for (int i = 0; i < 16; i++)
		for (unsigned int j = 0; j < n; j++)
			if (!CHECK(out.v[i][j] == in.v[i][j], "%smm%d byte %u: %#x, not %#x", avx ? "y" : "x", i, j,
				   out.v[i][j], in.v[i][j]))
				break;
	for (int i = 0; i < 4; i++)
		CHECK(!memcmp(out.x87[i], in.x87[i], 10), "x87 st(%d): %016llx:%04x, not %016llx:%04x", 3 - i,
		      *(unsigned long long *)out.x87[i], *(uint16_t *)(out.x87[i] + 8), *(unsigned long long *)in.x87[i],
		      *(uint16_t *)(in.x87[i] + 8));
	CHECK_EQ(out.mxcsr, in.mxcsr);
	CHECK_EQ(out.fcw, in.fcw);
	/* TOP = 4 after four loads; no exception flags (none was raised). */
	CHECK((out.fsw & 0x3800) == (4 << 11), "x87 status word %#x: TOP %d, not 4", out.fsw, (out.fsw >> 11) & 7);
}

int main(int argc, char **argv)
{
	struct cxlfork_checkpoint c;
	long r;
	int fd = -1;

	ps_init(argc, argv, "fpu");
	if (ps_mode == PS_INSTALL)
		return 0;
	setup();
	if (ps_mode == PS_PID) {
		sigset_t m;
		const char *t = getenv("PS_TAMPER");

		if (t && !strcmp(t, "1")) {
			struct sigaction sa = { .sa_sigaction = on_usr1_tamper, .sa_flags = SA_SIGINFO };

			sigaction(SIGUSR1, &sa, NULL);
			ps_tampered = 1;
		}
		sigprocmask(SIG_BLOCK, NULL, &m);
		sigdelset(&m, SIGUSR1);
		ps_say("ready %d", getpid());
		fpu_wait(&m);
		ps_usr1 = 0;
		if (ps_is_clone())
			ps_became_clone(1);
	} else if (ps_mode == PS_SELF) {
		memset(&c, 0, sizeof(c));
		c.size = sizeof(c);
		snprintf(c.name, sizeof(c.name), "%s", getenv("PS_IMAGE_NAME") ? getenv("PS_IMAGE_NAME") : "fpu");
		fd = open("/dev/cxlfork", O_RDWR);
		PS_SETUP(fd >= 0);
		r = fpu_syscall(SYS_ioctl, fd, CXLFORK_IOC_CHECKPOINT, (long)&c);
		close(fd);
		if (r < 0) {
			ps_say("FAIL checkpoint: %s", strerror(-r));
			return 1;
		}
		if (r > 0) {
			ps_became_clone(r);
		} else {
			ps_say("ckpt %llu:%llu", (unsigned long long)(c.image_id >> 48),
			       (unsigned long long)(c.image_id & ((1ULL << 48) - 1)));
			ps_wait_usr1();
		}
	} else {
		r = fpu_syscall(SYS_fork, 0, 0, 0);
		PS_SETUP(r >= 0);
		if (r == 0) {
			ps_became_clone(1);
			/* PS_TAMPER here only proves the comparison. */
			if (getenv("PS_TAMPER") && !strcmp(getenv("PS_TAMPER"), "1")) {
				out.v[3][1] ^= 1;
				ps_tampered = 1;
			}
		} else {
			int st;

			waitpid(r, &st, 0);
		}
	}
	verify();
	return ps_finish();
}
