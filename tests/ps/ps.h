/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ps.h: the common part of the process-state tests (tests/ps/, in the style
 * of CRIU's zdtm). One small static program per aspect of a process; each
 * sets its state up, is checkpointed, and verifies that state afterwards, in
 * the original and in a clone. What a test asserts is what fork(2) gives a
 * child of the original at the checkpoint instant (pid, ppid and timing
 * aside).
 *
 *   PROG pid      set up, print "ready PID", wait for SIGUSR1 (the driver
 *                 checkpoints the process by pid meanwhile; a clone resumes
 *                 waiting exactly like the original), then verify;
 *   PROG self     set up, checkpoint itself (CXLFORK_IOC_CHECKPOINT, pid 0):
 *                 the original (the call returned 0) prints "ckpt HOST:SEQ"
 *                 and waits for SIGUSR1 before verifying; a clone (the call
 *                 returned its clone number) verifies at once;
 *   PROG fork     the reference: fork() where the checkpoint would be, no
 *                 module needed. The child verifies as a clone, the parent
 *                 waits for it and verifies as the original. Every test must
 *                 pass this way on any kernel: that is what makes its
 *                 assertions fork(2)'s semantics (selftest.sh runs it);
 *   PROG install  create the test's files and exit (a restoring host needs
 *                 them at the same paths: a restore reopens them by path).
 *
 * A process knows it is a clone by its pid (fork's way): getpid() differs
 * from the pid it had at set-up; or by its node name, which differs on
 * another host than its original's (the guests are cxl-hostN), where the
 * clone may get the original's pid number by chance (each host numbers its
 * own pids). The original is told by PS_REMOTE=1 that its clone runs on
 * another host.
 *
 * Output goes through write(2) (no stdio buffer a clone could inherit and
 * flush again). The verdict is the last line: "PASS", "FAIL <first
 * failure>" or "SKIP <why>" (exit 0, 1, 0); every failed check also prints
 * "# FAIL <role> <test>.c:<line>: <what>".
 *
 * Environment: PS_IMAGE_NAME (self mode: the image's name), PS_REMOTE=1
 * (original: its clone runs on another host), PS_TAMPER=1 (perturb the
 * state where a faulty restore would, before verifying, in the clone, the
 * fork child or the pid-mode process: the test must then FAIL; selftest.sh
 * checks that every test can fail), PS_TRACE=1 (a "# trace" line per
 * check, with the time spent since the previous one).
 */
#ifndef CXLFORK_PS_H
#define CXLFORK_PS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/cxlfork.h>

#define PAGE 4096UL
#define MIB (1UL << 20)
/* Where tests keep their files (created by set-up and by `PROG install`). */
#define PS_FILES "/tmp/ps-files"

enum ps_mode { PS_PID, PS_SELF, PS_FORK, PS_INSTALL };

static const char *ps_test;
static enum ps_mode ps_mode;
static pid_t ps_pid0;			/* the original's pid */
static int ps_clone;			/* this process is the clone / fork child */
static int ps_remote;			/* the clone runs on another host */
static int ps_tampered;			/* PS_TAMPER applied */
static struct utsname ps_uts;		/* at set-up */
static int ps_nfail;
static char ps_first[240];
static char ps_image[48];		/* self mode: "HOST:SEQ" */
static int ps_errno_ckpt;		/* self, fork: errno right after the call */
static volatile sig_atomic_t ps_usr1;
/* Optional, set by a test before ps_sync(): perturbs its state (PS_TAMPER). */
static void (*ps_tamper_fn)(void);

static const char *ps_role(void)
{
	return ps_clone ? "clone" : "orig";
}

static void ps_write(const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		n -= w;
	}
}

/* One line to stdout, in one write(2). */
__attribute__((format(printf, 1, 2))) static void ps_say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n, e = errno;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	ps_write(buf, n);
	errno = e;
}

/* PS_TRACE=1: a line per check, with the time since the previous one. */
static int ps_trace;

static const char *ps_base(const char *file)
{
	const char *b = strrchr(file, '/');

	return b ? b + 1 : file;
}

static void ps_trace_line(const char *file, int line)
{
	static long long last;
	struct timespec t;
	long long now;

	clock_gettime(CLOCK_MONOTONIC, &t);
	now = t.tv_sec * 1000000LL + t.tv_nsec / 1000;
	ps_say("# trace %s %s:%d +%lld us", ps_role(), ps_base(file), line, last ? now - last : 0);
	last = now;
}

__attribute__((format(printf, 4, 5))) static int ps_check(int ok, const char *file, int line, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	int e = errno;

	if (ok)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps_nfail < 40)
		ps_say("# FAIL %s %s:%d: %s", ps_role(), ps_base(file), line, msg);
	if (ps_nfail++ == 0)
		snprintf(ps_first, sizeof(ps_first), "%s:%d: %s", ps_base(file), line, msg);
	errno = e;
	return 0;
}

/* CHECK(cond, fmt, ...): records a failure unless cond; returns cond. The
 * message's arguments are evaluated after cond (which may fill them in). */
#define CHECK(cond, ...)                                                    \
	({                                                                  \
		int _ok = !!(cond);                                         \
		if (ps_trace)                                               \
			ps_trace_line(__FILE__, __LINE__);                  \
		_ok ? 1 : ps_check(0, __FILE__, __LINE__, __VA_ARGS__);     \
	})
#define CHECK_EQ(a, b)                                                                          \
	({                                                                                      \
		unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
		CHECK(_a == _b, "%s == %s: %#llx != %#llx", #a, #b, _a, _b);                    \
	})
/* A call that returns -1 with errno on failure. */
#define CHECK_OK(call) ({ long _r = (long)(call); CHECK(_r != -1, "%s: %s", #call, strerror(errno)); _r; })

/* Before the checkpoint only: the test cannot run here. */
static void ps_skip(const char *why)
{
	ps_say("SKIP %s", why);
	exit(0);
}

/* Before the checkpoint only: set-up failed. */
#define PS_SETUP(cond)                                                                        \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			ps_say("FAIL set-up %s.c:%d: %s: %s", ps_test, __LINE__, #cond, strerror(errno)); \
			exit(1);                                                              \
		}                                                                             \
	} while (0)

static int ps_finish(void)
{
	if (ps_nfail) {
		if (ps_nfail > 1)
			ps_say("FAIL %s (+%d more)", ps_first, ps_nfail - 1);
		else
			ps_say("FAIL %s", ps_first);
		return 1;
	}
	ps_say("PASS");
	return 0;
}

/* ---- patterns: every 8-byte word depends on the seed and its offset ---- */

static inline uint64_t ps_word(uint64_t seed, uint64_t off)
{
	return seed ^ (off * 0x9E3779B97F4A7C15ULL) ^ (off >> 12 << 40);
}

/* Fills [p, p + len) as the bytes at offset off0.. of a buffer of `seed`. */
static void ps_fill_at(void *p, size_t len, uint64_t seed, uint64_t off0)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = ps_word(seed, off0 + i * 8);
}

static void ps_fill(void *p, size_t len, uint64_t seed)
{
	ps_fill_at(p, len, seed, 0);
}

/* First offset in [p, p + len) that differs from the pattern, or -1. */
static long ps_diff_at(const void *p, size_t len, uint64_t seed, uint64_t off0)
{
	const volatile uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != ps_word(seed, off0 + i * 8))
			return i * 8;
	return -1;
}

static long ps_diff(const void *p, size_t len, uint64_t seed)
{
	return ps_diff_at(p, len, seed, 0);
}

/* First non-zero offset in [p, p + len), or -1. */
static long ps_nonzero(const void *p, size_t len)
{
	const volatile uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return i * 8;
	return -1;
}

#define CHECK_PAT_AT(p, len, seed, off0)                                                        \
	({                                                                                      \
		long _o = ps_diff_at((p), (len), (seed), (off0));                               \
		CHECK(_o < 0, "%s (%p +%#lx): pattern %#llx broken at +%#lx: %#llx", #p,         \
		      (void *)(p), (unsigned long)(len), (unsigned long long)(seed), _o,         \
		      _o < 0 ? 0ULL : (unsigned long long)*(volatile uint64_t *)((char *)(p) + _o)); \
	})
#define CHECK_PAT(p, len, seed) CHECK_PAT_AT(p, len, seed, 0)
#define CHECK_ZERO(p, len)                                                                      \
	({                                                                                      \
		long _o = ps_nonzero((p), (len));                                               \
		CHECK(_o < 0, "%s (%p +%#lx) must read zero: non-zero at +%#lx: %#llx", #p,      \
		      (void *)(p), (unsigned long)(len), _o,                                     \
		      _o < 0 ? 0ULL : (unsigned long long)*(volatile uint64_t *)((char *)(p) + _o)); \
	})

/* ---- faults ---- */

static sigjmp_buf ps_jb;
static volatile sig_atomic_t ps_probe_sig, ps_probe_code;

static void ps_probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	ps_probe_sig = sig;
	ps_probe_code = si->si_code;
	siglongjmp(ps_jb, 1);
}

/* Reads (write = 0) or writes back (write = 1) the byte at addr: 0 if that
 * worked, else the signal it raised (SIGSEGV, SIGBUS; ps_probe_code holds
 * its si_code). The test's own SIGSEGV/SIGBUS actions are kept. */
static int ps_probe(volatile void *addr, int write)
{
	struct sigaction sa, o_segv, o_bus;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = ps_probe_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, &o_segv);
	sigaction(SIGBUS, &sa, &o_bus);
	ps_probe_sig = 0;
	ps_probe_code = 0;
	if (!sigsetjmp(ps_jb, 1)) {
		volatile char *c = addr;
		char v = *c;

		if (write)
			*c = v;
	}
	sigaction(SIGSEGV, &o_segv, NULL);
	sigaction(SIGBUS, &o_bus, NULL);
	return ps_probe_sig;
}

/* ---- /proc/self/maps and smaps ---- */

struct ps_map {
	unsigned long start, end, off;
	char perms[8];
	char path[256];
};

/* The mapping containing addr; 0 if found. */
static int ps_map_at(unsigned long addr, struct ps_map *m)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = -1;

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		int n = 0;

		memset(m, 0, sizeof(*m));
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &m->start, &m->end, m->perms, &m->off, &n) < 4)
			continue;
		if (addr < m->start || addr >= m->end)
			continue;
		if (n > 0)
			snprintf(m->path, sizeof(m->path), "%s", line + n);
		m->path[strcspn(m->path, "\n")] = 0;
		found = 0;
	}
	fclose(f);
	return found;
}

/* A "Key: value" line of the smaps entry of the mapping containing addr,
 * copied into out (the text after the colon, trimmed); 0 if found. */
static int ps_smaps(unsigned long addr, const char *key, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0, found = -1;
	size_t kl = strlen(key);

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char *v;

		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ':') > strchr(line, ' ')) {
			in = addr >= a && addr < b;
			continue;
		}
		if (!in || strncmp(line, key, kl) || line[kl] != ':')
			continue;
		v = line + kl + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = 0;
		snprintf(out, len, "%s", v);
		found = 0;
	}
	fclose(f);
	return found;
}

/* Whole small file into buf (NUL-terminated); its length or -1. */
static long ps_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0)
		return -1;
	while (n < len - 1) {
		ssize_t r = read(fd, buf + n, len - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	buf[n] = 0;
	close(fd);
	return n;
}

/*
 * A file of `pages` pages holding the pattern `seed` (by file offset), with
 * a fixed modification time: `PROG install` on another host makes the very
 * same file (as a container image would), which a restore may check.
 */
static void ps_make_file(const char *path, unsigned long pages, uint64_t seed)
{
	static char buf[PAGE];
	struct timespec t[2] = { { 1577836800, 0 }, { 1577836800, 0 } };	/* 2020-01-01 */
	int fd;

	mkdir(PS_FILES, 0755);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	PS_SETUP(fd >= 0);
	for (unsigned long i = 0; i < pages; i++) {
		ps_fill_at(buf, PAGE, seed, i * PAGE);
		PS_SETUP(write(fd, buf, PAGE) == (ssize_t)PAGE);
	}
	PS_SETUP(futimens(fd, t) == 0);
	close(fd);
}

/* ---- the checkpoint point ---- */

static void ps_on_usr1(int sig)
{
	(void)sig;
	ps_usr1 = 1;
}

/* Waits for SIGUSR1 (blocked outside this wait, so none is lost). */
static void ps_wait_usr1(void)
{
	sigset_t m;

	sigprocmask(SIG_BLOCK, NULL, &m);
	sigdelset(&m, SIGUSR1);
	while (!ps_usr1)
		sigsuspend(&m);
	ps_usr1 = 0;
}

static void ps_init(int argc, char **argv, const char *test)
{
	struct sigaction sa;
	sigset_t s;

	ps_test = test;
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "pid"))
		ps_mode = PS_PID;
	else if (!strcmp(argv[1], "self"))
		ps_mode = PS_SELF;
	else if (!strcmp(argv[1], "fork"))
		ps_mode = PS_FORK;
	else if (!strcmp(argv[1], "install"))
		ps_mode = PS_INSTALL;
	else
		goto usage;
	ps_pid0 = getpid();
	uname(&ps_uts);
	ps_remote = getenv("PS_REMOTE") && !strcmp(getenv("PS_REMOTE"), "1");
	ps_trace = getenv("PS_TRACE") && !strcmp(getenv("PS_TRACE"), "1");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ps_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	return;
usage:
	fprintf(stderr, "usage: %s pid|self|fork|install\n", argv[0]);
	exit(2);
}

/*
 * Self and fork modes: the checkpoint, with CXLFORK_CKPT_* flags. Returns
 * 0 in the original and the clone number (fork: 1) in the clone. Fork
 * mode: the parent returns only once the child has exited. Exits on a
 * failed checkpoint.
 */
static long ps_checkpoint_flags(unsigned int flags)
{
	struct cxlfork_checkpoint c;
	const char *name = getenv("PS_IMAGE_NAME");
	long r;
	int fd, e;

	if (ps_mode == PS_FORK) {
		pid_t p = fork();
		int st;

		ps_errno_ckpt = errno;
		PS_SETUP(p >= 0);
		if (p == 0)
			return 1;
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		return 0;
	}
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.flags = flags;
	snprintf(c.name, sizeof(c.name), "%s", name ? name : ps_test);
	fd = open("/dev/cxlfork", O_RDWR);
	PS_SETUP(fd >= 0);
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	e = ps_errno_ckpt = errno;
	close(fd);
	if (r < 0) {
		ps_say("FAIL checkpoint: %s", strerror(e));
		exit(1);
	}
	if (r == 0)
		snprintf(ps_image, sizeof(ps_image), "%llu:%llu", (unsigned long long)(c.image_id >> 48),
			 (unsigned long long)(c.image_id & ((1ULL << 48) - 1)));
	return r;
}

static long ps_checkpoint(void)
{
	return ps_checkpoint_flags(0);
}

/* The process's thread count (/proc/self/status), or -1. */
static int ps_count_threads(void)
{
	char buf[4096], *p;

	if (ps_read_file("/proc/self/status", buf, sizeof(buf)) < 0 || !(p = strstr(buf, "Threads:")))
		return -1;
	return atoi(p + 8);
}

/* Running on another host than at set-up (see the top of this file). */
static int ps_other_host(void)
{
	struct utsname u;

	uname(&u);
	return strcmp(u.nodename, ps_uts.nodename) != 0;
}

/* After pid mode's wait: this process is a clone (not the original). */
static int ps_is_clone(void)
{
	return getpid() != ps_pid0 || ps_other_host();
}

/* After the checkpoint, in the clone (or the fork child): who am I. */
static void ps_became_clone(long nr)
{
	ps_clone = 1;
	ps_remote = ps_other_host();
	CHECK(nr > 0, "clone number %ld", nr);
	CHECK(ps_remote || getpid() != ps_pid0, "the clone has the original's pid %d", ps_pid0);
}

static void ps_maybe_tamper(void)
{
	const char *t = getenv("PS_TAMPER");

	if (t && !strcmp(t, "1") && (ps_clone || ps_mode == PS_PID) && ps_tamper_fn) {
		ps_tamper_fn();
		ps_tampered = 1;
	}
}

/*
 * The checkpoint point of most tests: pid mode waits for SIGUSR1; self
 * mode checkpoints (the original then waits for SIGUSR1); fork mode forks.
 * Returns with ps_clone set in a clone.
 */
static void ps_sync(void)
{
	long r;

	switch (ps_mode) {
	case PS_PID:
		ps_say("ready %d", getpid());
		ps_wait_usr1();
		if (ps_is_clone())
			ps_became_clone(1);
		break;
	case PS_SELF:
	case PS_FORK:
		r = ps_checkpoint();
		if (r == 0 && ps_mode == PS_SELF) {
			ps_say("ckpt %s", ps_image);
			ps_wait_usr1();
		}
		if (r != 0)
			ps_became_clone(r);
		break;
	default:
		exit(2);
	}
	ps_maybe_tamper();
}

/* The usual main: set-up, checkpoint point, verification. */
static int ps_run(int argc, char **argv, const char *test, void (*install)(void), void (*setup)(void),
		  void (*verify)(void), void (*tamper)(void))
{
	ps_init(argc, argv, test);
	if (ps_mode == PS_INSTALL) {
		if (install)
			install();
		return 0;
	}
	ps_tamper_fn = tamper;
	setup();
	ps_sync();
	verify();
	return ps_finish();
}

/* ---- CPU features ---- */

static inline void ps_cpuid(unsigned int leaf, unsigned int sub, unsigned int r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* AVX usable: the CPU has it and the OS enabled the YMM state. */
static int ps_have_avx(void)
{
	unsigned int r[4];
	unsigned int lo, hi;

	ps_cpuid(1, 0, r);
	if (!(r[2] & (1u << 28)) || !(r[2] & (1u << 27)))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

#endif
