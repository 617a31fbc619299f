// SPDX-License-Identifier: GPL-2.0
/*
 * timers: a fork child does not inherit its parent's timers (fork(2):
 * setitimer, alarm, timer_create). The original arms ITIMER_REAL (1000 s,
 * interval 100 s), ITIMER_VIRTUAL and ITIMER_PROF (500 s / 600 s), and a
 * POSIX timer (CLOCK_MONOTONIC, SIGRTMIN+1, 1000 s). Afterwards:
 *   - the original still has them all armed (getitimer, timer_gettime);
 *   - a clone has none: getitimer gives zero, alarm(0) returns 0, and
 *     timer_gettime on the original's timer id fails with EINVAL;
 *   - timers work: a new POSIX timer (50 ms) and setitimer (30 ms) fire.
 */
#include "ps.h"
#include <sys/time.h>
#include <time.h>

static timer_t tid0;
static volatile sig_atomic_t rt_fired, alrm_fired;

static void on_rt(int sig)
{
	(void)sig;
	rt_fired++;
}

static void on_alrm(int sig)
{
	(void)sig;
	alrm_fired++;
}

static void setup(void)
{
	struct itimerval real = { { 100, 0 }, { 1000, 0 } }, virt = { { 0, 0 }, { 500, 0 } },
			 prof = { { 0, 0 }, { 600, 0 } };
	struct itimerspec its = { { 0, 0 }, { 1000, 0 } };
	struct sigevent sev;

	signal(SIGRTMIN + 1, on_rt);
	signal(SIGALRM, on_alrm);
	PS_SETUP(setitimer(ITIMER_REAL, &real, NULL) == 0);
	PS_SETUP(setitimer(ITIMER_VIRTUAL, &virt, NULL) == 0);
	PS_SETUP(setitimer(ITIMER_PROF, &prof, NULL) == 0);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 1;
	PS_SETUP(timer_create(CLOCK_MONOTONIC, &sev, &tid0) == 0);
	PS_SETUP(timer_settime(tid0, 0, &its, NULL) == 0);
}

static void verify(void)
{
	struct itimerval it, t30 = { { 0, 0 }, { 0, 30000 } };
	struct itimerspec its, t50 = { { 0, 0 }, { 0, 50 * 1000 * 1000 } };
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	struct sigevent sev;
	timer_t t;
	int r;

	if (ps_clone) {
		static const char *const names[] = { "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF" };

		for (int w = 0; w < 3; w++)
			CHECK(getitimer(w, &it) == 0 && !it.it_value.tv_sec && !it.it_value.tv_usec &&
				      !it.it_interval.tv_sec && !it.it_interval.tv_usec,
			      "the clone inherited %s: %ld.%06ld s, interval %ld.%06ld s (a fork child does not)",
			      names[w], (long)it.it_value.tv_sec, (long)it.it_value.tv_usec,
			      (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
		r = alarm(0);
		CHECK(r == 0, "alarm(0) returned %d: an alarm was pending", r);
		r = timer_gettime(tid0, &its);
		CHECK(r == -1 && errno == EINVAL, "timer_gettime on the original's timer: %s (it_value %ld s)",
		      r == 0 ? "the clone has it" : strerror(errno), (long)its.it_value.tv_sec);
	} else {
		CHECK(getitimer(ITIMER_REAL, &it) == 0 && it.it_value.tv_sec > 500 && it.it_interval.tv_sec == 100,
		      "original ITIMER_REAL %ld s, interval %ld s", (long)it.it_value.tv_sec,
		      (long)it.it_interval.tv_sec);
		CHECK(getitimer(ITIMER_VIRTUAL, &it) == 0 && it.it_value.tv_sec > 400, "original ITIMER_VIRTUAL %ld s",
		      (long)it.it_value.tv_sec);
		CHECK(getitimer(ITIMER_PROF, &it) == 0 && it.it_value.tv_sec > 500, "original ITIMER_PROF %ld s",
		      (long)it.it_value.tv_sec);
		CHECK(timer_gettime(tid0, &its) == 0 && its.it_value.tv_sec > 500, "original timer: %s, %ld s",
		      strerror(errno), (long)its.it_value.tv_sec);
		/* Stop them before testing new ones. */
		alarm(0);
		timer_delete(tid0);
	}
	CHECK(alrm_fired == 0 && rt_fired == 0, "a timer of the original fired: SIGALRM %d, SIGRTMIN+1 %d",
	      alrm_fired, rt_fired);
	/* New timers work. */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 1;
	if (CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create: %s", strerror(errno))) {
		CHECK(timer_settime(t, 0, &t50, NULL) == 0, "timer_settime: %s", strerror(errno));
		for (int i = 0; i < 200 && !rt_fired; i++)
			nanosleep(&nap, NULL);
		CHECK(rt_fired == 1, "a new 50 ms POSIX timer fired %d times in 2 s", rt_fired);
		timer_delete(t);
	}
	CHECK(setitimer(ITIMER_REAL, &t30, NULL) == 0, "setitimer: %s", strerror(errno));
	for (int i = 0; i < 200 && !alrm_fired; i++)
		nanosleep(&nap, NULL);
	CHECK(alrm_fired == 1, "a new 30 ms ITIMER_REAL fired %d times in 2 s", alrm_fired);
}

static void tamper(void)
{
	/* As if the clone had inherited an interval timer. */
	struct itimerval prof = { { 0, 0 }, { 600, 0 } };

	setitimer(ITIMER_PROF, &prof, NULL);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "timers", NULL, setup, verify, tamper);
}
