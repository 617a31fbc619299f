// SPDX-License-Identifier: GPL-2.0
/*
 * rlimits: per-process attributes a fork child inherits (or, for the
 * parent-death signal, does not). Before the checkpoint: soft and hard
 * limits lowered (NOFILE, CORE, CPU, FSIZE, DATA, MEMLOCK, MSGQUEUE,
 * SIGPENDING, NPROC, AS, STACK), personality ADDR_NO_RANDOMIZE, umask 027,
 * comm "ps-rlim-comm", not dumpable, no_new_privs, timer slack 123457 ns,
 * nice +3, the current directory /tmp/ps-files/cwd, and PR_SET_PDEATHSIG
 * SIGUSR2. Afterwards all 16 limits, the personality, umask, comm (prctl and
 * /proc/self/comm), dumpable, no_new_privs, timer slack, nice and cwd are
 * the original's; the parent-death signal is kept by the original and
 * cleared in a clone (fork clears it).
 */
#include "ps.h"
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define CWD PS_FILES "/cwd"

static struct rlimit lim0[RLIM_NLIMITS];
static int pers0;

static void install(void)
{
	mkdir(PS_FILES, 0755);
	mkdir(CWD, 0755);
}

static void lower(int res, rlim_t cur, rlim_t max)
{
	struct rlimit r;

	PS_SETUP(getrlimit(res, &r) == 0);
	if (r.rlim_max != RLIM_INFINITY && max > r.rlim_max)
		max = r.rlim_max;
	if (cur > max)
		cur = max;
	r.rlim_cur = cur;
	r.rlim_max = max;
	PS_SETUP(setrlimit(res, &r) == 0);
}

static void setup(void)
{
	install();
	lower(RLIMIT_NOFILE, 200, 300);
	lower(RLIMIT_CORE, 0, 1 * MIB);
	lower(RLIMIT_CPU, 1000, 2000);
	lower(RLIMIT_FSIZE, 100 * MIB, 200 * MIB);
	lower(RLIMIT_DATA, 512 * MIB, 768 * MIB);
	lower(RLIMIT_MEMLOCK, 32 * 1024, 64 * 1024);
	lower(RLIMIT_MSGQUEUE, 4096, 8192);
	lower(RLIMIT_SIGPENDING, 500, 600);
	lower(RLIMIT_NPROC, 700, 800);
	lower(RLIMIT_AS, 4096 * MIB, 8192 * MIB);
	lower(RLIMIT_STACK, 7 * MIB, 16 * MIB);
	for (int i = 0; i < RLIM_NLIMITS; i++)
		PS_SETUP(getrlimit(i, &lim0[i]) == 0);
	PS_SETUP(personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE) != -1);
	pers0 = personality(0xffffffff);
	umask(027);
	PS_SETUP(prctl(PR_SET_NAME, "ps-rlim-comm", 0, 0, 0) == 0);
	PS_SETUP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0);
	PS_SETUP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	PS_SETUP(prctl(PR_SET_TIMERSLACK, 123457, 0, 0, 0) == 0);
	PS_SETUP(prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) == 0);
	PS_SETUP(setpriority(PRIO_PROCESS, 0, 3) == 0);
	PS_SETUP(chdir(CWD) == 0);
}

static void verify(void)
{
	static const char *const names[RLIM_NLIMITS] = { "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC",
							   "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING",
							   "MSGQUEUE", "NICE", "RTPRIO", "RTTIME" };
	char comm[17] = "", buf[64], cwd[256];
	struct rlimit r;
	int v, m;

	for (int i = 0; i < RLIM_NLIMITS; i++)
		CHECK(getrlimit(i, &r) == 0 && r.rlim_cur == lim0[i].rlim_cur && r.rlim_max == lim0[i].rlim_max,
		      "RLIMIT_%s: %llu / %llu, was %llu / %llu", names[i], (unsigned long long)r.rlim_cur,
		      (unsigned long long)r.rlim_max, (unsigned long long)lim0[i].rlim_cur,
		      (unsigned long long)lim0[i].rlim_max);
	v = personality(0xffffffff);
	CHECK(v == pers0, "personality %#x, was %#x", v, pers0);
	m = umask(0);
	umask(m);
	CHECK(m == 027, "umask %#o, was 027", m);
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	CHECK(!strcmp(comm, "ps-rlim-comm"), "comm \"%s\"", comm);
	ps_read_file("/proc/self/comm", buf, sizeof(buf));
	CHECK(!strcmp(buf, "ps-rlim-comm\n"), "/proc/self/comm \"%s\"", buf);
	v = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	CHECK(v == 0, "dumpable %d, was 0", v);
	v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	CHECK(v == 1, "no_new_privs %d, was 1", v);
	v = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	CHECK(v == 123457, "timer slack %d ns, was 123457", v);
	errno = 0;
	v = getpriority(PRIO_PROCESS, 0);
	CHECK(v == 3, "nice %d, was 3", v);
	CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, CWD), "cwd \"%s\", was %s", cwd, CWD);
	v = -1;
	prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0);
	if (ps_clone)
		CHECK(v == 0, "the parent-death signal is %d in the clone (fork clears it)", v);
	else
		CHECK(v == SIGUSR2, "the original's parent-death signal is %d, was SIGUSR2", v);
}

static void tamper(void)
{
	/* As if the limits or the directory were the restorer's. */
	struct rlimit r = { 250, 300 };

	setrlimit(RLIMIT_NOFILE, &r);
	chdir("/");
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "rlimits", install, setup, verify, tamper);
}
