// SPDX-License-Identifier: GPL-2.0
/*
 * regs: the general-purpose registers and flags, bit-exact.
 *
 * pid:  an asm loop keeps every general-purpose register but rsp (rax, rbx,
 *       rcx, rdx, rsi, rdi, rbp, r8-r15) at 64-bit values derived from a
 *       counter (register i holds K[i] + counter * D[i]; rax starts as
 *       0x1122334455667788) and CF/ZF at a pattern that alternates with the
 *       counter's parity, and checks them all at every iteration. It runs
 *       in user mode all the time, so the driver's checkpoint (after a
 *       random delay) stops it at an arbitrary instruction; the clone goes
 *       on looping and must see no corruption; SIGUSR1's handler ends the
 *       loop.
 *   self, fork: rbx, rbp, r8-r10, r12-r15 are loaded with such values and
 *       CF/ZF set right before the checkpoint's (fork's) syscall
 *       instruction; after it, they, rdi, rsi, rdx (the call's arguments)
 *       and CF/ZF must hold the same values, as a system call leaves them
 *       (it clobbers rax, rcx and r11 only).
 */
#include "ps.h"

/* Register order: 0 rax 1 rbx 2 rcx 3 rdx 4 rsi 5 rdi 6 rbp 7-14 r8-r15. */
uint64_t regs_k[15] = {
	0x1122334455667788ULL, 0x8877665544332211ULL, 0xfedcba9876543210ULL, 0x0123456789abcdefULL,
	0xdeadbeefcafef00dULL, 0xa5a5a5a55a5a5a5aULL, 0x7fffffff00000001ULL, 0x8000000000000001ULL,
	0x1000000100000001ULL, 0xf0f0f0f00f0f0f0fULL, 0x3333333344444444ULL, 0xc3c3c3c33c3c3c3cULL,
	0x0000ffff0000ffffULL, 0xffff0000ffff0000ULL, 0x9e3779b97f4a7c15ULL,
};
uint64_t regs_d[15] = {
	0x0000000100000001ULL, 0x0101010101010101ULL, 0x0000000000000003ULL, 0x0000000500000000ULL,
	0x0000000000010001ULL, 0x1000000000000007ULL, 0x0000000000000101ULL, 0x0000000200000002ULL,
	0x0000001100000000ULL, 0x0000000000000013ULL, 0x0001000000010000ULL, 0x0000000000000017ULL,
	0x0000001900000019ULL, 0x0000000000001d00ULL, 0x0000001f0000001fULL,
};
uint64_t regs_ctr, regs_fail_code, regs_fail_val, regs_fail_exp, regs_args[3];
uint64_t regs_zero = 0, regs_one = 1;
volatile int regs_stop, regs_last;

/* long regs_loop(void): until regs_stop; 0, or 1 + the failing register's
 * index (16: flags), with regs_fail_val / regs_fail_exp. */
__asm__(".text\n"
	".globl regs_loop\n"
	".type regs_loop, @function\n"
	"regs_loop:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	movq $0, regs_ctr(%rip)\n"
	"	movq $0, regs_fail_code(%rip)\n"
	"	movl $0, regs_last(%rip)\n"
	"	mov regs_k+0(%rip), %rax\n	mov regs_k+8(%rip), %rbx\n	mov regs_k+16(%rip), %rcx\n"
	"	mov regs_k+24(%rip), %rdx\n	mov regs_k+32(%rip), %rsi\n	mov regs_k+40(%rip), %rdi\n"
	"	mov regs_k+48(%rip), %rbp\n	mov regs_k+56(%rip), %r8\n	mov regs_k+64(%rip), %r9\n"
	"	mov regs_k+72(%rip), %r10\n	mov regs_k+80(%rip), %r11\n	mov regs_k+88(%rip), %r12\n"
	"	mov regs_k+96(%rip), %r13\n	mov regs_k+104(%rip), %r14\n	mov regs_k+112(%rip), %r15\n"
	".macro RCHK reg, idx\n"
	"	mov regs_ctr(%rip), %rax\n"
	"	imul regs_d+8*\\idx(%rip), %rax\n"
	"	add regs_k+8*\\idx(%rip), %rax\n"
	"	cmp %rax, %\\reg\n"
	"	je .Lok\\@\n"
	"	mov %\\reg, regs_fail_val(%rip)\n"
	"	mov %rax, regs_fail_exp(%rip)\n"
	"	movq $\\idx+1, regs_fail_code(%rip)\n"
	"	pop %rax\n"
	"	jmp .Lout\n"
	".Lok\\@:\n"
	".endm\n"
	".Lloop:\n"
	"	testq $1, regs_ctr(%rip)\n"
	"	jnz .Lodd\n"
	"	cmpq $0, regs_zero(%rip)\n"	/* ZF=1 CF=0 */
	"	stc\n"				/* CF=1 */
	"	.rept 40\n	nop\n	.endr\n"
	"	jnc .Lflags\n"
	"	jnz .Lflags\n"
	"	jmp .Lcheck\n"
	".Lodd:\n"
	"	cmpq $0, regs_one(%rip)\n"	/* ZF=0 CF=0 */
	"	.rept 40\n	nop\n	.endr\n"
	"	jc .Lflags\n"
	"	jz .Lflags\n"
	".Lcheck:\n"
	"	push %rax\n"
	"	RCHK rbx, 1\n	RCHK rcx, 2\n	RCHK rdx, 3\n	RCHK rsi, 4\n	RCHK rdi, 5\n	RCHK rbp, 6\n"
	"	RCHK r8, 7\n	RCHK r9, 8\n	RCHK r10, 9\n	RCHK r11, 10\n	RCHK r12, 11\n	RCHK r13, 12\n"
	"	RCHK r14, 13\n	RCHK r15, 14\n"
	"	mov regs_ctr(%rip), %rax\n"
	"	imul regs_d(%rip), %rax\n"
	"	add regs_k(%rip), %rax\n"
	"	cmp %rax, (%rsp)\n"
	"	je .Lrax_ok\n"
	"	mov %rax, regs_fail_exp(%rip)\n"
	"	popq regs_fail_val(%rip)\n"
	"	movq $1, regs_fail_code(%rip)\n"
	"	jmp .Lout\n"
	".Lrax_ok:\n"
	"	pop %rax\n"
	/* stop after one more full iteration once regs_stop is seen */
	"	cmpl $0, regs_stop(%rip)\n"
	"	je .Lnext\n"
	"	cmpl $0, regs_last(%rip)\n"
	"	jne .Lout\n"
	"	movl $1, regs_last(%rip)\n"
	".Lnext:\n"
	"	incq regs_ctr(%rip)\n"
	"	add regs_d+0(%rip), %rax\n	add regs_d+8(%rip), %rbx\n	add regs_d+16(%rip), %rcx\n"
	"	add regs_d+24(%rip), %rdx\n	add regs_d+32(%rip), %rsi\n	add regs_d+40(%rip), %rdi\n"
	"	add regs_d+48(%rip), %rbp\n	add regs_d+56(%rip), %r8\n	add regs_d+64(%rip), %r9\n"
	"	add regs_d+72(%rip), %r10\n	add regs_d+80(%rip), %r11\n	add regs_d+88(%rip), %r12\n"
	"	add regs_d+96(%rip), %r13\n	add regs_d+104(%rip), %r14\n	add regs_d+112(%rip), %r15\n"
	"	jmp .Lloop\n"
	".Lflags:\n"
	"	pushfq\n"
	"	popq regs_fail_val(%rip)\n"
	"	movq $16, regs_fail_code(%rip)\n"
	".Lout:\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	mov regs_fail_code(%rip), %rax\n"
	"	ret\n"
	".size regs_loop, .-regs_loop\n"
	".purgem RCHK\n"

	/* long regs_syscall(long nr, long a0, long a1, long a2) */
	".globl regs_syscall\n"
	".type regs_syscall, @function\n"
	"regs_syscall:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	movq $0, regs_fail_code(%rip)\n"
	"	mov %rdi, %rax\n	mov %rsi, %rdi\n	mov %rdx, %rsi\n	mov %rcx, %rdx\n"
	"	mov %rdi, regs_args(%rip)\n	mov %rsi, regs_args+8(%rip)\n	mov %rdx, regs_args+16(%rip)\n"
	"	mov regs_k+8(%rip), %rbx\n	mov regs_k+48(%rip), %rbp\n	mov regs_k+56(%rip), %r8\n"
	"	mov regs_k+64(%rip), %r9\n	mov regs_k+72(%rip), %r10\n	mov regs_k+88(%rip), %r12\n"
	"	mov regs_k+96(%rip), %r13\n	mov regs_k+104(%rip), %r14\n	mov regs_k+112(%rip), %r15\n"
	"	cmpq $0, regs_zero(%rip)\n"	/* ZF=1 */
	"	stc\n"				/* CF=1 */
	"	syscall\n"
	"	jnc .Lsflags\n"
	"	jnz .Lsflags\n"
	".macro SCHK reg, mem, idx\n"
	"	cmp \\mem(%rip), %\\reg\n"
	"	je .Lsok\\@\n"
	"	mov %\\reg, regs_fail_val(%rip)\n"
	"	movq $\\idx+1, regs_fail_code(%rip)\n"
	"	jmp .Lsout\n"
	".Lsok\\@:\n"
	".endm\n"
	"	SCHK rbx, regs_k+8, 1\n	SCHK rbp, regs_k+48, 6\n	SCHK r8, regs_k+56, 7\n"
	"	SCHK r9, regs_k+64, 8\n	SCHK r10, regs_k+72, 9\n	SCHK r12, regs_k+88, 11\n"
	"	SCHK r13, regs_k+96, 12\n	SCHK r14, regs_k+104, 13\n	SCHK r15, regs_k+112, 14\n"
	"	SCHK rdi, regs_args, 5\n	SCHK rsi, regs_args+8, 4\n	SCHK rdx, regs_args+16, 3\n"
	"	jmp .Lsout\n"
	".Lsflags:\n"
	"	mov %rax, %rcx\n"
	"	pushfq\n"
	"	popq regs_fail_val(%rip)\n"
	"	movq $16, regs_fail_code(%rip)\n"
	"	mov %rcx, %rax\n"
	".Lsout:\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n"
	".size regs_syscall, .-regs_syscall\n"
	".purgem SCHK\n");

long regs_loop(void);
long regs_syscall(long nr, long a0, long a1, long a2);

static const char *const names[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10",
				     "r11", "r12", "r13", "r14", "r15", "rflags" };

static void on_usr1(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	const char *t = getenv("PS_TAMPER");

	(void)sig;
	(void)si;
	/* PS_TAMPER: as if r13 had been restored wrong. */
	if (t && !strcmp(t, "1"))
		uc->uc_mcontext.gregs[REG_R13] ^= 1ULL << 40;
	regs_stop = 1;
}

static void report(long code, const char *when)
{
	if (code == 16)
		CHECK(0, "%s: CF/ZF lost: rflags %#llx (counter %llu)", when, (unsigned long long)regs_fail_val,
		      (unsigned long long)regs_ctr);
	else if (code)
		CHECK(0, "%s: %s = %#llx, expected %#llx (counter %llu)", when, code >= 1 && code <= 15 ? names[code - 1] : "?",
		      (unsigned long long)regs_fail_val, (unsigned long long)regs_fail_exp, (unsigned long long)regs_ctr);
}

int main(int argc, char **argv)
{
	struct cxlfork_checkpoint c;
	long r;
	int fd;

	ps_init(argc, argv, "regs");
	if (ps_mode == PS_INSTALL)
		return 0;
	if (ps_mode == PS_PID) {
		struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO };
		sigset_t s;

		sigaction(SIGUSR1, &sa, NULL);
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		ps_say("ready %d", getpid());
		r = regs_loop();
		if (ps_is_clone())
			ps_became_clone(1);
		report(r, "loop");
		ps_say("# %s: %llu iterations", ps_role(), (unsigned long long)regs_ctr);
		return ps_finish();
	}
	if (ps_mode == PS_SELF) {
		memset(&c, 0, sizeof(c));
		c.size = sizeof(c);
		snprintf(c.name, sizeof(c.name), "%s", getenv("PS_IMAGE_NAME") ? getenv("PS_IMAGE_NAME") : "regs");
		fd = open("/dev/cxlfork", O_RDWR);
		PS_SETUP(fd >= 0);
		r = regs_syscall(SYS_ioctl, fd, CXLFORK_IOC_CHECKPOINT, (long)&c);
		close(fd);
		if (r < 0 && r > -4096) {
			ps_say("FAIL checkpoint: %s", strerror(-r));
			return 1;
		}
		if (r != 0) {
			ps_became_clone(r);
		} else {
			ps_say("ckpt %llu:%llu", (unsigned long long)(c.image_id >> 48),
			       (unsigned long long)(c.image_id & ((1ULL << 48) - 1)));
			ps_wait_usr1();
		}
	} else {
		r = regs_syscall(SYS_fork, 0, 0, 0);
		PS_SETUP(r >= 0);
		if (r == 0)
			ps_became_clone(1);
		else
			waitpid(r, NULL, 0);
	}
	report(regs_fail_code, "across the system call");
	return ps_finish();
}
