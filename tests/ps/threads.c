// SPDX-License-Identifier: GPL-2.0
/*
 * threads: a process of 64 threads, each stopped somewhere else: blocked in
 * FUTEX_WAIT (56 of them), in pthread_cond_wait, in clock_nanosleep and a
 * long nanosleep (restarted), in sigwaitinfo, in read() of an empty pipe
 * (restarted; the pipe is the clone's own), in pthread_join of a thread
 * still running, and computing with a value held in xmm15. Each thread has
 * its own name, signal mask, timer slack, __thread data and (some) an
 * alternate signal stack. After the checkpoint the main thread counts its
 * threads (64), wakes every one the way it waits (FUTEX_WAKE, a broadcast,
 * flags, pthread_kill: which needs glibc's cached tid of the target to be
 * its tid here), and joins them all (which needs the kernel to clear each
 * thread's tid at exit where glibc waits for it). Each thread, once woken,
 * checks its own state: name, mask, slack, TLS, xmm15, altstack, and that
 * glibc's cached tid (an error-checking mutex's owner) is gettid().
 *
 * A clone has every thread (as CRIU restores them); fork(2) copies only
 * the calling one. Fork mode (the reference) therefore checks the
 * original: its threads must behave the same once it resumes; the child
 * only checks it is alone. Likewise a clone of the whole process keeps a
 * MADV_DONTFORK mapping (V8's heap is one), still MADV_DONTFORK (a fork of
 * the clone lacks it), which a fork child lacks. PS_TAMPER=1 makes one thread's cached tid the
 * original's (what a restore that did not rewrite it would leave), in the
 * clone or, in fork mode, in the parent: that thread's checks must fail.
 */
#include "ps.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

#define NTHREADS 63		/* besides the main thread */
enum { T_COND, T_SLEEP, T_LONGSLEEP, T_SIGWAIT, T_COMPUTE, T_JOINER, T_EXITER, T_READ, T_FUTEX0 };

static pthread_t th[NTHREADS];
static unsigned char *dontfork;		/* 4 MADV_DONTFORK pages */
static int fword;				/* FUTEX_WAIT on it while 0 */
static int rp[2];				/* T_READ reads a byte of it */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int go_cond, go_sleep, go_compute, go_exit;
static volatile int started, created;
static int result[NTHREADS];			/* 0 ok; else the line of the first failed check */
static char why[NTHREADS][120];
static unsigned long tid_addr[NTHREADS];	/* each thread's clear_child_tid (glibc's tid field) */
static volatile long computed;
static __thread uint64_t tls_val;
static char altstacks[4][64 << 10];

static int futex(int *uaddr, int op, int val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

#define T_CHECK(i, cond, ...)                                                   \
	do {                                                                    \
		if (!(cond) && !result[i]) {                                    \
			result[i] = __LINE__;                                   \
			snprintf(why[i], sizeof(why[i]), __VA_ARGS__);          \
		}                                                               \
	} while (0)

static void thread_mask(int i, sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGUSR1);
	sigaddset(s, SIGUSR2);
	sigaddset(s, SIGRTMIN + i % 16);
}

/* Per-thread state, set at start and checked once woken. */
static void set_state(int i)
{
	char name[16];
	sigset_t s;

	snprintf(name, sizeof(name), "ps-t%02d", i);
	pthread_setname_np(pthread_self(), name);
	thread_mask(i, &s);
	pthread_sigmask(SIG_SETMASK, &s, NULL);
	prctl(PR_SET_TIMERSLACK, 1000 + i, 0, 0, 0);
	tls_val = ps_word(0x7e57, i);
	if (i < 4) {
		stack_t ss = { .ss_sp = altstacks[i], .ss_size = sizeof(altstacks[i]) };

		sigaltstack(&ss, NULL);
	}
	prctl(PR_GET_TID_ADDRESS, &tid_addr[i], 0, 0, 0);
}

static void check_state(int i)
{
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	char name[16] = "", want[16];
	sigset_t s, w;
	stack_t ss;
	int r;

	snprintf(want, sizeof(want), "ps-t%02d", i);
	pthread_getname_np(pthread_self(), name, sizeof(name));
	T_CHECK(i, !strcmp(name, want), "name %s, want %s", name, want);
	pthread_sigmask(SIG_BLOCK, NULL, &s);
	thread_mask(i, &w);
	for (int sig = 1; sig < SIGRTMAX; sig++)
		T_CHECK(i, sigismember(&s, sig) == sigismember(&w, sig), "signal %d %sblocked", sig,
			sigismember(&s, sig) ? "" : "not ");
	T_CHECK(i, prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 1000 + i, "timer slack %d, want %d",
		prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1000 + i);
	T_CHECK(i, tls_val == ps_word(0x7e57, i), "__thread %#llx", (unsigned long long)tls_val);
	sigaltstack(NULL, &ss);
	if (i < 4)
		T_CHECK(i, ss.ss_sp == altstacks[i] && ss.ss_size == sizeof(altstacks[i]) && !(ss.ss_flags & SS_DISABLE),
			"altstack %p+%zu flags %d", ss.ss_sp, ss.ss_size, ss.ss_flags);
	else
		T_CHECK(i, ss.ss_flags & SS_DISABLE, "an altstack it never set: %p", ss.ss_sp);
	/* glibc's cached tid, as an error-checking mutex's owner. */
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m, &a);
	r = pthread_mutex_lock(&m);
	T_CHECK(i, r == 0 && m.__data.__owner == gettid(), "glibc's cached tid %d, gettid() %d", m.__data.__owner,
		gettid());
	pthread_mutex_unlock(&m);
}

static void *run(void *arg)
{
	int i = (int)(long)arg;
	void *ret;

	set_state(i);
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	switch (i) {
	case T_COND:
		pthread_mutex_lock(&cm);
		while (!go_cond)
			pthread_cond_wait(&cv, &cm);
		pthread_mutex_unlock(&cm);
		break;
	case T_SLEEP:
		while (!go_sleep) {
			struct timespec t = { 0, 20 * 1000 * 1000 };

			clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL);
		}
		break;
	case T_LONGSLEEP: {
		/* Interrupted by the checkpoint: re-issued, it still sleeps. */
		struct timespec t = { 2, 0 };

		while (nanosleep(&t, &t) && errno == EINTR)
			;
		while (!go_sleep)
			usleep(10000);
		break;
	}
	case T_SIGWAIT: {
		sigset_t s;
		siginfo_t si;
		int sig;

		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		while ((sig = sigwaitinfo(&s, &si)) < 0 && errno == EINTR)
			;
		T_CHECK(i, sig == SIGUSR2, "sigwaitinfo: %d", sig);
		break;
	}
	case T_COMPUTE: {
		uint64_t v = ps_word(0xc0de, 1), got;

		__asm__ volatile("movq %0, %%xmm15" : : "r"(v) : "xmm15");
		while (!go_compute) {
			__asm__ volatile("movq %%xmm15, %0" : "=r"(got));
			if (got != v) {
				T_CHECK(i, 0, "xmm15 %#llx, want %#llx", (unsigned long long)got, (unsigned long long)v);
				break;
			}
			computed++;
		}
		break;
	}
	case T_JOINER: {
		/* Joins a thread that outlives the checkpoint: glibc waits on
		 * its tid field, which the clone's kernel clears at its exit. */
		int r;

		while (!created)
			usleep(1000);
		r = pthread_join(th[T_EXITER], &ret);

		T_CHECK(i, r == 0 && ret == (void *)0x5eed, "pthread_join: %s, %p", strerror(r), ret);
		break;
	}
	case T_READ: {
		ssize_t n;
		char c = 0;

		while ((n = read(rp[0], &c, 1)) < 0 && errno == EINTR)
			;
		T_CHECK(i, n == 1 && c == 'r', "read of the pipe: %zd (%s), byte %#x", n, n < 0 ? strerror(errno) : "", c);
		break;
	}
	case T_EXITER:
		while (!go_exit)
			usleep(10000);
		check_state(i);
		return (void *)0x5eed;
	default:
		while (!__atomic_load_n(&fword, __ATOMIC_SEQ_CST))
			futex(&fword, FUTEX_WAIT_PRIVATE, 0);
		break;
	}
	check_state(i);
	return NULL;
}

static void setup(void)
{
	dontfork = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(dontfork != MAP_FAILED);
	ps_fill(dontfork, 4 * PAGE, 0xd0f0);
	PS_SETUP(madvise(dontfork, 4 * PAGE, MADV_DONTFORK) == 0);
	PS_SETUP(pipe(rp) == 0);
	for (long i = 0; i < NTHREADS; i++)
		PS_SETUP(pthread_create(&th[i], NULL, run, (void *)i) == 0);
	created = 1;
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < NTHREADS)
		usleep(1000);
	/* Let the computing thread compute and the others block. */
	usleep(100000);
}

static void verify_threads(void)
{
	struct timespec until;
	long c0 = computed;
	int n = ps_count_threads(), r;

	CHECK(n == NTHREADS + 1, "%d threads, want %d", n, NTHREADS + 1);
	CHECK(ps_probe(dontfork, 0) == 0 && ps_diff(dontfork, 4 * PAGE, 0xd0f0) < 0,
	      "the MADV_DONTFORK mapping: %s, first differing byte %ld", ps_probe(dontfork, 0) ? "gone" : "there",
	      ps_probe(dontfork, 0) ? -1L : ps_diff(dontfork, 4 * PAGE, 0xd0f0));
	{
		/* ... and is MADV_DONTFORK still: a fork child of this process lacks it. */
		pid_t c = fork();
		int st = -1;

		if (c == 0)
			_exit(ps_probe(dontfork, 0) == SIGSEGV ? 0 : 1);
		CHECK(c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "a fork child of this process has the MADV_DONTFORK mapping (status %#x)", st);
	}
	/* The computing thread computes. */
	for (int k = 0; k < 200 && computed == c0; k++)
		usleep(10000);
	CHECK(computed != c0, "the computing thread does not run");
	/* Wake each the way it waits. */
	__atomic_store_n(&fword, 1, __ATOMIC_SEQ_CST);
	futex(&fword, FUTEX_WAKE_PRIVATE, INT_MAX);
	pthread_mutex_lock(&cm);
	go_cond = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&cm);
	go_sleep = go_compute = go_exit = 1;
	CHECK(write(rp[1], "r", 1) == 1, "write to the pipe: %s", strerror(errno));
	r = pthread_kill(th[T_SIGWAIT], SIGUSR2);
	CHECK(r == 0, "pthread_kill: %s", strerror(r));
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	for (int i = 0; i < NTHREADS; i++) {
		if (i == T_EXITER)
			continue;	/* T_JOINER joins it */
		r = pthread_timedjoin_np(th[i], NULL, &until);
		if (!CHECK(r == 0, "thread %d: pthread_join: %s", i, strerror(r)))
			continue;
		CHECK(!result[i], "thread %d (line %d): %s", i, result[i], why[i]);
	}
	CHECK(!result[T_EXITER], "thread %d (line %d): %s", T_EXITER, result[T_EXITER], why[T_EXITER]);
	n = ps_count_threads();
	CHECK(n == 1, "%d threads left after the joins", n);
}

static void tamper(void)
{
	/* Thread T_FUTEX0's cached tid, as a restore that left it would. */
	*(volatile pid_t *)tid_addr[T_FUTEX0] = ps_pid0 + 1000;
}

int main(int argc, char **argv)
{
	long r;

	ps_init(argc, argv, "threads");
	if (ps_mode == PS_INSTALL)
		return 0;
	setup();
	if (ps_mode != PS_FORK) {
		ps_tamper_fn = tamper;
		ps_sync();
		verify_threads();
		return ps_finish();
	}
	/* Fork mode: the child is alone (fork copies the calling thread);
	 * the original's threads must behave as a clone's. */
	r = ps_checkpoint();
	if (r) {
		ps_became_clone(r);
		CHECK(ps_count_threads() == 1, "a fork child with %d threads", ps_count_threads());
		CHECK(ps_probe(dontfork, 0) == SIGSEGV, "a fork child with the MADV_DONTFORK mapping");
		return ps_finish();
	}
	if (getenv("PS_TAMPER") && !strcmp(getenv("PS_TAMPER"), "1"))
		tamper();
	verify_threads();
	return ps_finish();
}
