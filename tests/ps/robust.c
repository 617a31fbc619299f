// SPDX-License-Identifier: GPL-2.0
/*
 * robust: the main thread's robust-futex list. glibc registers
 * &THREAD_SELF->robust_head with set_robust_list at start-up, and its fork()
 * registers it again in the child: get_robust_list(0) must return the
 * address (and length) the original had. Then end to end: the main thread
 * locks a robust mutex (its futex word holds the tid glibc caches) and
 * exits with pthread_exit while a second thread waits for the mutex; the
 * kernel walks the exiting thread's robust list and marks the mutex
 * owner-dead, so the waiter gets EOWNERDEAD (not a 5 s timeout). The
 * waiter reports the verdict.
 */
#include "ps.h"
#include <pthread.h>
#include <time.h>

static void *head0;
static size_t len0;
static pthread_mutex_t m;

static void *waiter(void *arg)
{
	struct timespec t;
	int r;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += 5;
	r = pthread_mutex_timedlock(&m, &t);
	CHECK(r == EOWNERDEAD, "a robust mutex held by the exited main thread: %s, not EOWNERDEAD",
	      r == ETIMEDOUT ? "still locked after 5 s (the kernel did not release it)" : strerror(r));
	if (r == EOWNERDEAD) {
		CHECK(pthread_mutex_consistent(&m) == 0, "pthread_mutex_consistent");
		pthread_mutex_unlock(&m);
	}
	exit(ps_finish());
}

static void setup(void)
{
	pthread_mutexattr_t a;

	PS_SETUP(syscall(SYS_get_robust_list, 0, &head0, &len0) == 0);
	PS_SETUP(head0 != NULL);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	PS_SETUP(pthread_mutex_init(&m, &a) == 0);
}

static void verify(void)
{
	void *head = NULL;
	size_t len = 0;
	pthread_t th;
	int r;

	CHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head == head0 && len == len0,
	      "robust list %p (%zu bytes), was %p (%zu)", head, len, head0, len0);
	r = pthread_mutex_lock(&m);
	if (!CHECK(r == 0, "pthread_mutex_lock: %s", strerror(r)))
		return;
	CHECK((m.__data.__lock & 0x3fffffff) == gettid(), "the mutex's futex word holds tid %d, we are %d",
	      m.__data.__lock & 0x3fffffff, gettid());
	r = pthread_create(&th, NULL, waiter, NULL);
	if (!CHECK(r == 0, "pthread_create: %s", strerror(r)))
		return;
	usleep(100 * 1000);
	pthread_exit(NULL);
}

static void tamper(void)
{
	/* As if the clone had no robust list registered. */
	syscall(SYS_set_robust_list, NULL, len0);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "robust", NULL, setup, verify, tamper);
}
