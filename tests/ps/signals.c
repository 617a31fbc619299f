// SPDX-License-Identifier: GPL-2.0
/*
 * signals: signal state.
 *   - handlers: SIGUSR2 (SA_SIGINFO | SA_RESTART, sa_mask {SIGINT, SIGQUIT}),
 *     SIGHUP (SA_NODEFER | SA_RESETHAND), SIGWINCH (SA_ONSTACK), SIGRTMIN+3
 *     (SA_SIGINFO); SIGTERM and SIGPIPE ignored. Every action (handler,
 *     flags, mask, restorer, as rt_sigaction reports them) is the original's,
 *     and the handlers run: with the right siginfo, with sa_mask and the
 *     signal itself blocked inside, SA_RESETHAND resetting, SA_ONSTACK on the
 *     alternate stack (sigaltstack reports the original's, and SS_ONSTACK
 *     inside), an ignored signal has no effect;
 *   - the blocked mask: SIGINT, SIGRTMIN+5 (and the harness's SIGUSR1),
 *     exactly, after the checkpoint (pid mode: after sigsuspend restored it);
 *   - pending: SIGINT and SIGRTMIN+5 are raised while blocked. The original
 *     keeps them pending; a fork child starts with an EMPTY pending set
 *     (fork(2)), so must a clone.
 */
#include "ps.h"

#define ALTSZ (64 * 1024)

struct ksigaction {
	unsigned long handler, flags, restorer, mask;
};

static int sigs[] = { SIGUSR2, SIGHUP, SIGWINCH, SIGTERM, SIGPIPE, SIGUSR1, SIGCHLD, SIGSEGV, 0, 0 };
static struct ksigaction act0[10];
static sigset_t blocked0;
static stack_t ss0;
static char *altstack;

static volatile sig_atomic_t usr2_n, usr2_code, usr2_pid, usr2_mask_ok, hup_n, winch_n, winch_onstack, rt_n,
	rt_value;

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	(void)uc;
	usr2_n++;
	usr2_code = si->si_code;
	usr2_pid = si->si_pid;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	usr2_mask_ok = sigismember(&cur, SIGINT) && sigismember(&cur, SIGQUIT) && sigismember(&cur, sig);
}

static void on_hup(int sig)
{
	(void)sig;
	hup_n++;
}

static void on_winch(int sig)
{
	stack_t ss;
	char here;

	(void)sig;
	winch_n++;
	sigaltstack(NULL, &ss);
	winch_onstack = (ss.ss_flags & SS_ONSTACK) && &here >= altstack && &here < altstack + ALTSZ;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	rt_n++;
	rt_value = si->si_value.sival_int;
}

static int ksigaction(int sig, struct ksigaction *old)
{
	return syscall(SYS_rt_sigaction, sig, NULL, old, 8);
}

static void setup(void)
{
	struct sigaction sa;
	sigset_t s;

	sigs[8] = SIGRTMIN + 3;
	sigs[9] = SIGRTMIN + 5;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGQUIT);
	PS_SETUP(sigaction(SIGUSR2, &sa, NULL) == 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_NODEFER | SA_RESETHAND;
	PS_SETUP(sigaction(SIGHUP, &sa, NULL) == 0);
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_ONSTACK;
	PS_SETUP(sigaction(SIGWINCH, &sa, NULL) == 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	PS_SETUP(sigaction(SIGRTMIN + 3, &sa, NULL) == 0);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	altstack = mmap(NULL, ALTSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(altstack != MAP_FAILED);
	ss0.ss_sp = altstack;
	ss0.ss_size = ALTSZ;
	ss0.ss_flags = 0;
	PS_SETUP(sigaltstack(&ss0, NULL) == 0);

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGRTMIN + 5);
	PS_SETUP(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
	sigprocmask(SIG_BLOCK, NULL, &blocked0);
	for (int i = 0; i < 10; i++)
		PS_SETUP(ksigaction(sigs[i], &act0[i]) == 0);
	/* Pending, blocked: the original keeps them, a fork child has none. */
	PS_SETUP(raise(SIGINT) == 0);
	PS_SETUP(sigqueue(getpid(), SIGRTMIN + 5, (union sigval){ .sival_int = 55 }) == 0);
}

static void verify(void)
{
	struct ksigaction a;
	sigset_t s;
	stack_t ss;

	for (int i = 0; i < 10; i++) {
		if (!CHECK(ksigaction(sigs[i], &a) == 0, "rt_sigaction(%d): %s", sigs[i], strerror(errno)))
			continue;
		CHECK(!memcmp(&a, &act0[i], sizeof(a)),
		      "signal %d: action {%#lx, flags %#lx, restorer %#lx, mask %#lx}, was {%#lx, %#lx, %#lx, %#lx}",
		      sigs[i], a.handler, a.flags, a.restorer, a.mask, act0[i].handler, act0[i].flags,
		      act0[i].restorer, act0[i].mask);
	}
	sigprocmask(SIG_BLOCK, NULL, &s);
	for (int sig = 1; sig < 65; sig++)
		CHECK(sigismember(&s, sig) == sigismember(&blocked0, sig), "signal %d is%s blocked, was%s", sig,
		      sigismember(&s, sig) ? "" : " not", sigismember(&blocked0, sig) ? "" : " not");
	sigpending(&s);
	for (int sig = 1; sig < 65; sig++) {
		int want = !ps_clone && (sig == SIGINT || sig == SIGRTMIN + 5);

		CHECK(sigismember(&s, sig) == want, "signal %d is%s pending in the %s", sig,
		      sigismember(&s, sig) ? "" : " not", ps_clone ? "clone (a fork child has none pending)" : "original");
	}
	CHECK(sigaltstack(NULL, &ss) == 0 && ss.ss_sp == ss0.ss_sp && ss.ss_size == ss0.ss_size && ss.ss_flags == 0,
	      "sigaltstack %p+%zu flags %d, was %p+%zu", ss.ss_sp, ss.ss_size, ss.ss_flags, ss0.ss_sp, ss0.ss_size);

	/* The handlers run. */
	raise(SIGUSR2);
	CHECK(usr2_n == 1 && usr2_code == SI_TKILL && usr2_pid == getpid() && usr2_mask_ok,
	      "SIGUSR2 handler: ran %d times, si_code %d, si_pid %d (pid %d), sa_mask blocked inside: %d", usr2_n,
	      usr2_code, usr2_pid, getpid(), usr2_mask_ok);
	raise(SIGHUP);
	CHECK(hup_n == 1, "SIGHUP handler ran %d times", hup_n);
	CHECK(ksigaction(SIGHUP, &a) == 0 && a.handler == (unsigned long)SIG_DFL, "SA_RESETHAND: SIGHUP handler %#lx",
	      a.handler);
	raise(SIGWINCH);
	CHECK(winch_n == 1 && winch_onstack, "SIGWINCH handler: ran %d times, on the alternate stack: %d", winch_n,
	      winch_onstack);
	sigqueue(getpid(), SIGRTMIN + 3, (union sigval){ .sival_int = 1234 });
	CHECK(rt_n == 1 && rt_value == 1234, "SIGRTMIN+3 handler: ran %d times, value %d", rt_n, rt_value);
	raise(SIGTERM);		/* ignored */
	raise(SIGPIPE);
	sigpending(&s);
	CHECK(!sigismember(&s, SIGTERM) && !sigismember(&s, SIGPIPE), "an ignored signal is pending");
}

static void tamper(void)
{
	/* As if the handler's flags or the blocked mask had changed. */
	struct sigaction sa;

	sigaction(SIGUSR2, NULL, &sa);
	sa.sa_flags &= ~SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "signals", NULL, setup, verify, tamper);
}
