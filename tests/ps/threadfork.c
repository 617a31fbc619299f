// SPDX-License-Identifier: GPL-2.0
/*
 * threadfork: fork(2) called by a thread that is not the main thread, with
 * other threads running and blocked (a computing one, a futex waiter). The
 * checkpoint takes that thread alone (CXLFORK_CKPT_THIS_THREAD, self mode;
 * fork mode is the reference; pid mode cannot: SKIP). In the clone, as in
 * a fork child, it is the process's only thread and its main thread: its
 * tid is the pid, glibc's cached tid is that tid (an error-checking mutex's
 * owner), its __thread data and stack are its own, and it can create and
 * join a thread; a MADV_DONTFORK page of the original is not there (a
 * fork child does not get one; a clone of every thread does). The original
 * keeps every thread. PS_TAMPER=1 makes the
 * clone's cached tid the original thread's (a restore that did not rewrite
 * it): the checks must fail.
 */
#include "ps.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

static int fword;
static volatile int stop;
static volatile long computed;
static __thread uint64_t tls_val;
static long clone_nr;
static pid_t forker_tid;
static unsigned long tid_addr;
static char *dontfork;		/* a MADV_DONTFORK page */

static void *spin(void *arg)
{
	while (!stop)
		computed++;
	return NULL;
}

static void *waiter(void *arg)
{
	while (!__atomic_load_n(&fword, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return NULL;
}

static void *nothing(void *arg)
{
	return (void *)(long)gettid();
}

/* The forking thread. */
static void *forker(void *arg)
{
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	pthread_t t;
	void *ret = NULL;
	char stack_mark[64];
	int r;

	forker_tid = gettid();
	tls_val = ps_word(0xf0f0, forker_tid);
	memset(stack_mark, 0x5a, sizeof(stack_mark));
	prctl(PR_GET_TID_ADDRESS, &tid_addr, 0, 0, 0);
	clone_nr = ps_checkpoint_flags(CXLFORK_CKPT_THIS_THREAD);
	if (clone_nr == 0)
		return NULL;		/* the original */
	/* The clone, or the fork child: this thread alone. */
	ps_became_clone(clone_nr);
	ps_maybe_tamper();
	CHECK(ps_count_threads() == 1, "%d threads (want only this one)", ps_count_threads());
	CHECK(gettid() == getpid(), "gettid() %d, getpid() %d: not the main thread", gettid(), getpid());
	CHECK(tls_val == ps_word(0xf0f0, forker_tid), "__thread %#llx", (unsigned long long)tls_val);
	for (size_t k = 0; k < sizeof(stack_mark); k++)
		if (!CHECK(stack_mark[k] == 0x5a, "stack byte %zu: %#x", k, stack_mark[k]))
			break;
	r = ps_probe(dontfork, 0);
	CHECK(r == SIGSEGV, "the MADV_DONTFORK page: %s (a fork child has none)", r ? strsignal(r) : "readable");
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m, &a);
	r = pthread_mutex_lock(&m);
	CHECK(r == 0 && m.__data.__owner == gettid(), "glibc's cached tid %d, gettid() %d", m.__data.__owner, gettid());
	pthread_mutex_unlock(&m);
	r = pthread_create(&t, NULL, nothing, NULL);
	if (CHECK(r == 0, "pthread_create: %s", strerror(r))) {
		r = pthread_join(t, &ret);
		CHECK(r == 0 && (long)ret != getpid() && ret, "pthread_join: %s, its tid %ld", strerror(r), (long)ret);
	}
	_exit(ps_finish());
}

static void tamper(void)
{
	*(volatile pid_t *)tid_addr = forker_tid;
}

int main(int argc, char **argv)
{
	pthread_t s, w, f;
	long c0;
	int r;

	ps_init(argc, argv, "threadfork");
	if (ps_mode == PS_INSTALL)
		return 0;
	if (ps_mode == PS_PID)
		ps_skip("a checkpoint of the calling thread alone is a self-checkpoint");
	ps_tamper_fn = tamper;
	dontfork = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(dontfork != MAP_FAILED);
	memset(dontfork, 0x77, PAGE);
	PS_SETUP(madvise(dontfork, PAGE, MADV_DONTFORK) == 0);
	PS_SETUP(pthread_create(&s, NULL, spin, NULL) == 0);
	PS_SETUP(pthread_create(&w, NULL, waiter, NULL) == 0);
	usleep(50000);
	PS_SETUP(pthread_create(&f, NULL, forker, NULL) == 0);
	pthread_join(f, NULL);
	if (ps_mode == PS_SELF) {
		ps_say("ckpt %s", ps_image);
		ps_wait_usr1();
	}
	/* The original keeps every thread, and its MADV_DONTFORK page. */
	CHECK(ps_probe(dontfork, 0) == 0 && dontfork[PAGE - 1] == 0x77, "the original lost its MADV_DONTFORK page");
	r = ps_count_threads();
	CHECK(r == 3, "%d threads in the original (want 3)", r);
	c0 = computed;
	usleep(50000);
	CHECK(computed != c0, "the original's computing thread stopped");
	stop = 1;
	__atomic_store_n(&fword, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	pthread_join(s, NULL);
	pthread_join(w, NULL);
	return ps_finish();
}
