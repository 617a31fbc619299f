// SPDX-License-Identifier: GPL-2.0
/*
 * tid: the main thread's identity. gettid() == getpid(). glibc caches the
 * thread id in its TCB (struct pthread's tid, the address it registered
 * with set_tid_address); its fork() updates both in the child, so a fork
 * child's cached tid is its own: an error-checking mutex locked by the
 * main thread records that tid as its owner (__data.__owner) and must
 * equal gettid(). The kernel's clear_child_tid (PR_GET_TID_ADDRESS) is the
 * original's address. raise(SIGUSR2) and pthread_kill(pthread_self(),
 * SIGUSR2) deliver to this very thread (the handler sees our tid); a new
 * thread gets its own tid, and pthread_kill to it works.
 */
#include "ps.h"
#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

static unsigned long tid_addr0;
static int have_tid_addr;
static volatile sig_atomic_t usr2_n, usr2_tid;
static pthread_mutex_t m;

static void on_usr2(int sig)
{
	(void)sig;
	usr2_n++;
	usr2_tid = gettid();
}

static void *thread_fn(void *arg)
{
	pid_t *t = arg;

	*t = gettid();
	while (!usr2_n)
		usleep(1000);
	return NULL;
}

static void setup(void)
{
	pthread_mutexattr_t a;

	signal(SIGUSR2, on_usr2);
	have_tid_addr = prctl(PR_GET_TID_ADDRESS, &tid_addr0, 0, 0, 0) == 0;
	if (!have_tid_addr)
		ps_say("# note: no PR_GET_TID_ADDRESS (CONFIG_CHECKPOINT_RESTORE): not checked");
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	PS_SETUP(pthread_mutex_init(&m, &a) == 0);
}

static void verify(void)
{
	unsigned long addr = 0;
	pid_t t_tid = 0;
	pthread_t th;
	int r;

	CHECK(gettid() == getpid(), "gettid() %d, getpid() %d", gettid(), getpid());
	CHECK(syscall(SYS_gettid) == getpid(), "SYS_gettid %ld, getpid() %d", syscall(SYS_gettid), getpid());
	if (have_tid_addr)
		CHECK(prctl(PR_GET_TID_ADDRESS, &addr, 0, 0, 0) == 0 && addr == tid_addr0,
		      "clear_child_tid %#lx, was %#lx (glibc's tid field)", addr, tid_addr0);
	/* glibc's cached tid, as a mutex owner. */
	r = pthread_mutex_trylock(&m);
	if (CHECK(r == 0, "pthread_mutex_trylock: %s", strerror(r))) {
		CHECK(m.__data.__owner == gettid(), "glibc's cached tid (mutex owner) %d, gettid() %d", m.__data.__owner,
		      gettid());
		r = pthread_mutex_unlock(&m);
		CHECK(r == 0, "pthread_mutex_unlock: %s", strerror(r));
	}
	raise(SIGUSR2);
	CHECK(usr2_n == 1 && usr2_tid == gettid(), "raise: handler ran %d times, in tid %d (we are %d)", usr2_n,
	      usr2_tid, gettid());
	r = pthread_kill(pthread_self(), SIGUSR2);
	CHECK(r == 0 && usr2_n == 2 && usr2_tid == gettid(), "pthread_kill(self): %s, handler ran %d times in tid %d",
	      strerror(r), usr2_n, usr2_tid);
	/* A new thread. */
	usr2_n = 0;
	r = pthread_create(&th, NULL, thread_fn, &t_tid);
	if (CHECK(r == 0, "pthread_create: %s", strerror(r))) {
		while (!*(volatile pid_t *)&t_tid)
			usleep(1000);
		r = pthread_kill(th, SIGUSR2);
		CHECK(r == 0, "pthread_kill(thread): %s", strerror(r));
		pthread_join(th, NULL);
		CHECK(t_tid != getpid() && usr2_tid == t_tid, "thread tid %d, the handler ran in %d", t_tid, usr2_tid);
	}
}

static void tamper(void)
{
	/* As if glibc's cached tid were stale (the original's). */
	if (have_tid_addr)
		*(volatile pid_t *)tid_addr0 = ps_pid0;
	else
		m.__data.__lock = 1;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "tid", NULL, setup, verify, tamper);
}
