// SPDX-License-Identifier: GPL-2.0
/*
 * The paper's comparison in one guest run: a synthetic FaaS function
 * started cold, forked locally, and remote-forked by cxlfork under MoW, MoA
 * and HT, on whatever pool backend the guest has (CXLFORK_POOL_BACKEND).
 *
 *   faas_bench [-t 1|0] [-p mow,moa,ht] [-n N,N...] [-y PY_MB] MB...
 *                                           the driver
 *   faas_bench func MB THP                  the function (started by the driver)
 *
 * The function: MB MiB of anonymous memory in the paper's footprint mix,
 * all written at initialisation: 72% init-only (never touched again), 23%
 * read by every request, 5% written by every request. THP per -t
 * (MADV_HUGEPAGE or MADV_NOHUGEPAGE). A request reads one word per cache
 * line of the read-only part and rewrites the read-write part.
 *
 * Per footprint, each method's figures (all times from CLOCK_MONOTONIC in
 * the same guest):
 *   cold    exec + initialisation; + the first request
 *   fork    the fork() call of the warm function; fork() to the end of the
 *           child's first request
 *   mow/moa/ht
 *           time inside CXLFORK_IOC_RESTORE (the module's figure);
 *           `cxlfork-ctl restore` started to the end of the clone's first
 *           request
 * and for fork children and clones: the mean of STEADY later requests
 * (what pool-mapped pages cost a request), Rss and Pss after them. The
 * checkpoint (the function checkpoints itself) is set against the best
 * plain memcpy() of the same bytes into an unused part of the pool,
 * through the dax device. With -n, for each N: N clones (MoW) started by one
 * `cxlfork-ctl restore --count N` and N fork children: time until all
 * served a request (clones per second) and Pss per clone.
 *
 * Where the guest has CRIU (/usr/sbin/criu: make bench's kernel and root
 * tree), the same function is also dumped by `criu dump` and restored by
 * `criu restore -d` (criu_peer): dump time and image bytes, restore time,
 * restore to the end of the first request, steady requests, Rss and Pss.
 *
 * With -y, the real function too: Debian's python3.11 running pyfunc.py
 * with PY_MB MiB of warm state (python_bench), by the same methods.
 *
 * Every figure is printed in a table and as one JSON object per line
 * ("BENCH {...}"), which scripts/bench.sh collects.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/cxlfork.h>

#define MIB (1UL << 20)
#define PMD (2UL << 20)
#define STEADY 5
#define OUTDIR "/tmp/fb"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "faas_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- the function ---- */

struct fn {
	unsigned char *m;
	size_t len, ro_off, ro_len, rw_off, rw_len;
};

static void fn_init(struct fn *f, size_t mb, int thp)
{
	size_t len = mb * MIB;
	unsigned char *p = mmap(NULL, len + PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	f->m = (unsigned char *)(((unsigned long)p + PMD - 1) & ~(PMD - 1));
	f->len = len;
	madvise(f->m, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	/* 72% init-only, 23% read-only, 5% read-write, in whole pages. */
	f->ro_off = (len * 72 / 100) & ~4095UL;
	f->rw_off = (len * 95 / 100) & ~4095UL;
	f->ro_len = f->rw_off - f->ro_off;
	f->rw_len = len - f->rw_off;
	for (size_t i = 0; i < len; i += 4096)
		memset(f->m + i, (int)(i >> 12) | 1, 4096);
}

static unsigned long fn_request(struct fn *f, int n)
{
	unsigned long s = 0;

	for (size_t i = 0; i < f->ro_len; i += 64)
		s += *(volatile unsigned long *)(f->m + f->ro_off + i);
	for (size_t i = 0; i < f->rw_len; i += 4096)
		memset(f->m + f->rw_off + i, n, 4096);
	return s;
}

/* The kB of a smaps_rollup field of pid (0: self). */
static long rollup_kb(pid_t pid, const char *field)
{
	char path[64], line[128];
	long kb = -1, v;
	size_t n = strlen(field);
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &v) == 1) {
			kb = v;
			break;
		}
	if (f)
		fclose(f);
	return kb;
}

/*
 * A fork child or a clone: the first request, STEADY more, then one line
 * "pid t_done first_us steady_us rss_kb restore_us local pool" (restore_us
 * and the page counts 0 for a fork child) to out, and wait to be killed.
 */
static void serve_and_report(struct fn *f, FILE *out, int is_clone)
{
	struct cxlfork_clone_stat st = { .size = sizeof(st) };
	double t0 = now_us(), t_done, first, steady;
	int fd;

	fn_request(f, 1);
	t_done = now_us();
	first = t_done - t0;
	t0 = now_us();
	for (int i = 0; i < STEADY; i++)
		fn_request(f, 2 + i);
	steady = (now_us() - t0) / STEADY;
	if (is_clone) {
		fd = open("/dev/cxlfork", O_RDWR);
		if (fd < 0 || ioctl(fd, CXLFORK_IOC_CLONE_STAT, &st))
			memset(&st, 0, sizeof(st));
		if (fd >= 0)
			close(fd);
	}
	fprintf(out, "%d %.0f %.1f %.1f %ld %.1f %llu %llu\n", getpid(), t_done, first, steady, rollup_kb(0, "Rss"),
		st.restore_ns / 1e3, (unsigned long long)st.local_pages, (unsigned long long)st.pool_pages);
	fflush(out);
	for (;;)
		pause();
}

/*
 * Commands on stdin, one per line; answers on stdout:
 *   r        "sum us"                       a request
 *   f N      "us us ..."                    N fork children, each serving
 *                                           and reporting to OUTDIR/fork-I
 *   c        "id size pages ns"             a self-checkpoint (the clones
 *                                           serve and report to stdout)
 */
static int function_main(size_t mb, int thp)
{
	struct fn f;
	char cmd[64];

	fn_init(&f, mb, thp);
	signal(SIGCHLD, SIG_IGN);	/* fork children are reaped as they are killed */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(cmd, sizeof(cmd), stdin)) {
		if (cmd[0] == 'r') {
			double t0 = now_us();
			unsigned long s = fn_request(&f, 1);

			printf("%lu %.1f\n", s, now_us() - t0);
		} else if (cmd[0] == 'f') {
			int n = atoi(cmd + 2);

			for (int i = 0; i < n; i++) {
				char path[64];
				double t0 = now_us();
				pid_t p = fork();

				if (p == 0) {
					FILE *out;

					snprintf(path, sizeof(path), OUTDIR "/fork-%d", i);
					out = fopen(path, "w");
					if (!out)
						_exit(1);
					fprintf(out, "%.0f ", t0);
					serve_and_report(&f, out, 0);
				}
				printf("%.1f%c", now_us() - t0, i == n - 1 ? '\n' : ' ');
			}
			fflush(stdout);
		} else if (cmd[0] == 'c') {
			struct cxlfork_checkpoint c = { .size = sizeof(c) };
			int fd = open("/dev/cxlfork", O_RDWR), r;

			strcpy(c.name, "faas-bench");
			fflush(stdout);
			r = fd < 0 ? -1 : ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
			if (r > 0) {
				/* A clone: its stdout is the file cxlfork-ctl gave it. */
				close(fd);
				serve_and_report(&f, stdout, 1);
			}
			if (fd >= 0)
				close(fd);
			if (r < 0)
				printf("0 0 0 0\n");
			else
				printf("%llu %llu %llu %llu\n", (unsigned long long)c.image_id,
				       (unsigned long long)c.image_size, (unsigned long long)c.pages,
				       (unsigned long long)c.duration_ns);
		}
	}
	return 0;
}

/*
 * The same function for CRIU, which cannot take the driver's pipes along:
 * a session of its own, stdio on /dev/null, requests by SIGUSR1, each
 * answered by CRIU_DIR/done ("n t_done us", written whole by a rename).
 */
#define CRIU "/usr/sbin/criu"
#define CRIU_DIR "/tmp/fbc"
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static int criu_function_main(size_t mb, int thp)
{
	struct fn f;
	sigset_t block, old;
	FILE *o;

	fn_init(&f, mb, thp);
	signal(SIGUSR1, on_usr1);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	o = fopen(CRIU_DIR "/ready", "w");
	if (!o)
		return 1;
	fclose(o);
	for (int n = 1;; n++) {
		double t0, t1;

		while (!go)
			sigsuspend(&old);
		go = 0;
		t0 = now_us();
		fn_request(&f, n);
		t1 = now_us();
		o = fopen(CRIU_DIR "/done.tmp", "w");
		if (!o)
			return 1;
		fprintf(o, "%d %.0f %.1f\n", n, t1, t1 - t0);
		fclose(o);
		rename(CRIU_DIR "/done.tmp", CRIU_DIR "/done");
	}
}

/* ---- the driver ---- */

struct proc {
	pid_t pid;
	FILE *in, *out;
};

static const char *backend;
static char self[256];

static void start_function(struct proc *p, size_t mb, int thp)
{
	int to[2], from[2];
	char a[32], b[8], line[64];

	if (pipe(to) || pipe(from))
		die("pipe");
	p->pid = fork();
	if (p->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		snprintf(a, sizeof(a), "%zu", mb);
		snprintf(b, sizeof(b), "%d", thp);
		execl(self, self, "func", a, b, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	p->in = fdopen(to[1], "w");
	p->out = fdopen(from[0], "r");
	setvbuf(p->in, NULL, _IOLBF, 0);
	if (!fgets(line, sizeof(line), p->out) || strcmp(line, "ready\n"))
		die("the function did not start");
}

static char *ask(struct proc *p, const char *cmd, char *line, size_t n)
{
	fprintf(p->in, "%s\n", cmd);
	if (!fgets(line, (int)n, p->out))
		die(cmd);
	return line;
}

struct report {
	pid_t pid;
	double t_fork;	/* a fork child's: when fork() was called (0 for a clone) */
	double t_done, first, steady, restore;
	long rss, pss;
	unsigned long long local, pool;
};

/*
 * Waits (up to 600 s) for a report line in path: a fork child's starts
 * with the time of its fork() call.
 */
static int read_report(const char *path, struct report *r, int fork_line)
{
	r->t_fork = 0;
	for (int i = 0; i < 60000; i++) {
		FILE *f = fopen(path, "r");
		int ok = 0;

		if (f) {
			ok = (!fork_line || fscanf(f, "%lf", &r->t_fork) == 1) &&
			     fscanf(f, "%d %lf %lf %lf %ld %lf %llu %llu", &r->pid, &r->t_done, &r->first, &r->steady,
				    &r->rss, &r->restore, &r->local, &r->pool) == 8;
			fclose(f);
		}
		if (ok) {
			r->pss = rollup_kb(r->pid, "Pss");
			return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "faas_bench: no report in %s\n", path);
	return -1;
}

/*
 * Kills a fork child or a clone and waits until its memory is gone (its
 * lease with it): poll its state, up to 10 s (a fork child is the
 * function's, a clone ours only once its restorer has exited).
 */
static void end(pid_t pid)
{
	char path[64], st[512], *p;

	kill(pid, SIGKILL);
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(path, "r");
		int got = f && fgets(st, sizeof(st), f);

		if (f)
			fclose(f);
		p = got ? strrchr(st, ')') : NULL;
		if (!p || p[2] == 'Z' || p[2] == 'X')
			return;
		usleep(10000);
	}
	fprintf(stderr, "faas_bench: pid %d still there 10 s after SIGKILL\n", pid);
}

__attribute__((format(printf, 5, 6)))
static void emit(const char *wl, size_t mb, int thp, const char *method, const char *fmt, ...)
{
	va_list ap;

	printf("BENCH {\"backend\": \"%s\", \"workload\": \"%s\", \"mb\": %zu, \"thp\": %d, \"method\": \"%s\", ", backend,
	       wl, mb, thp, method);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("}\n");
	fflush(stdout);
}

static void clean_outdir(void)
{
	if (system("rm -rf " OUTDIR " && mkdir -p " OUTDIR))
		die("mkdir " OUTDIR);
}

/* Plain copy of len bytes into the pool's last host partition (unused). */
static double plain_copy_us(size_t len)
{
	const char *dax = getenv("CXLFORK_DAX") ? getenv("CXLFORK_DAX") : "/dev/dax0.0";
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	int fd = open("/dev/cxlfork", O_RDWR), dfd = open(dax, O_RDWR);
	double best = -1;
	char *src, *dst;

	if (fd < 0 || dfd < 0 || ioctl(fd, CXLFORK_IOC_POOL_INFO, &info))
		die("pool info");
	len = (len + PMD - 1) & ~(PMD - 1);	/* device-dax maps whole 2 MiB pages */
	if (len > info.part_size)
		goto out;
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dfd,
		   (off_t)(2 * MIB + (info.max_hosts - 1) * info.part_size));
	src = malloc(len);
	if (dst == MAP_FAILED || !src)
		die("mmap dax");
	for (size_t i = 0; i < len; i += 4096)
		memset(src + i, (int)(i >> 12) | 1, 4096);
	/*
	 * The best of two plain copies: one memcpy() of it all (glibc takes
	 * its large-copy path: rep movsb, which TCG runs slowly) and one per
	 * page (its vector loop).
	 */
	for (int r = 0; r < 2; r++) {
		double t0 = now_us(), t;

		if (r & 1) {
			for (size_t o = 0; o < len; o += 4096)
				memcpy(dst + o, src + o, 4096);
		} else {
			memcpy(dst, src, len);
		}
		t = now_us() - t0;
		if (best < 0 || t < best)
			best = t;
	}
	munmap(dst, len);
	free(src);
out:
	close(fd);
	close(dfd);
	return best;
}

static void id_str(unsigned long long id, char *s, size_t n)
{
	snprintf(s, n, "%llu:%llu", id >> 48, id & 0xffffffffffffULL);
}

static const char *policies[8] = { "mow", "moa", "ht" };
static int npolicies = 3, warm_up = 1;

static void one(size_t mb, int thp, const int *concs, int nconc)
{
	struct proc fn;
	struct report r;
	char line[4096], cmd[512], id[64];
	double t0, cold, req, base_steady = 0, copy;
	unsigned long long image, size, pages, ns;
	long fn_rss;

	clean_outdir();
	t0 = now_us();
	start_function(&fn, mb, thp);
	cold = now_us() - t0;
	req = strtod(strchr(ask(&fn, "r", line, sizeof(line)), ' '), NULL);
	for (int i = 0; i < STEADY; i++)
		base_steady += strtod(strchr(ask(&fn, "r", line, sizeof(line)), ' '), NULL) / STEADY;
	fn_rss = rollup_kb(fn.pid, "Rss");
	emit("synthetic", mb, thp, "cold", "\"start_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld",
	     cold, cold + req, base_steady, fn_rss);
	printf("%5zu MiB thp=%d %-5s start %10.1f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB\n", mb, thp,
	       "cold", cold / 1e3, (cold + req) / 1e3, base_steady / 1e3, fn_rss);

	/* fork() of the warm function (once first, not measured: see below). */
	ask(&fn, "f 1", line, sizeof(line));
	if (read_report(OUTDIR "/fork-0", &r, 1))
		exit(1);
	end(r.pid);
	unlink(OUTDIR "/fork-0");
	ask(&fn, "f 1", line, sizeof(line));
	if (read_report(OUTDIR "/fork-0", &r, 1))
		exit(1);
	{
		double fork_us = strtod(line, NULL);

		emit("synthetic", mb, thp, "fork",
		     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld", fork_us,
		     r.t_done - r.t_fork, r.steady, r.rss, r.pss);
		printf("%5zu MiB thp=%d %-5s fork() %9.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB\n",
		       mb, thp, "fork", fork_us / 1e3, (r.t_done - r.t_fork) / 1e3, r.steady / 1e3, r.rss, r.pss);
		end(r.pid);
	}

	/* Checkpoint vs a plain copy of the same bytes. */
	if (sscanf(ask(&fn, "c", line, sizeof(line)), "%llu %llu %llu %llu", &image, &size, &pages, &ns) != 4 || !image) {
		fprintf(stderr, "faas_bench: checkpoint failed at %zu MiB\n", mb);
		exit(1);
	}
	copy = plain_copy_us(pages * 4096);
	emit("synthetic", mb, thp, "checkpoint",
	     "\"ckpt_us\": %.1f, \"copy_us\": %.1f, \"pool_bytes\": %llu, \"data_pages\": %llu", ns / 1e3, copy, size, pages);
	printf("%5zu MiB thp=%d checkpoint %10.1f ms (%7.1f MB/s)  plain copy of its %llu data pages %10.1f ms  ratio %.2f  image %llu KiB\n",
	       mb, thp, ns / 1e6, pages * 4096.0 / (ns / 1e3), pages, copy / 1e3, copy > 0 ? ns / 1e3 / copy : 0, size >> 10);
	id_str(image, id, sizeof(id));

	/*
	 * One restore first, not measured: under TCG the first run of a code
	 * path pays for its translation (the first restore of a boot took
	 * 15 ms, the next ones 2.5 ms).
	 */
	if (warm_up) {
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %s --skip-files --output " OUTDIR "/w >/tmp/fb-ctl.log 2>&1", id);
		if (system(cmd) || read_report(OUTDIR "/w/clone-1.out", &r, 0))
			die("warm-up restore");
		end(r.pid);
		warm_up = 0;
	}
	for (int p = 0; p < npolicies; p++) {
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %s --policy %s --skip-files --output " OUTDIR "/%s >/tmp/fb-ctl.log 2>&1",
			 id, policies[p], policies[p]);
		t0 = now_us();
		if (system(cmd))
			die("cxlfork-ctl restore");
		snprintf(cmd, sizeof(cmd), OUTDIR "/%s/clone-1.out", policies[p]);
		if (read_report(cmd, &r, 0))
			exit(1);
		emit("synthetic", mb, thp, policies[p],
		     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld, \"local_pages\": %llu, \"pool_pages\": %llu",
		     r.restore, r.t_done - t0, r.steady, r.rss, r.pss, r.local, r.pool);
		printf("%5zu MiB thp=%d %-5s restore %8.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB\n",
		       mb, thp, policies[p], r.restore / 1e3, (r.t_done - t0) / 1e3, r.steady / 1e3, r.rss, r.pss);
		end(r.pid);
	}

	/* N at once: N clones from one restore command, N fork children. */
	for (int c = 0; c < nconc; c++) {
		int n = concs[c];
		double last = 0, pss = 0, fork_last = 0, fork_pss = 0;
		struct report *rs = calloc(n, sizeof(*rs));

		clean_outdir();
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %s --count %d --skip-files --output " OUTDIR "/n >/tmp/fb-ctl.log 2>&1", id, n);
		t0 = now_us();
		if (system(cmd))
			die("cxlfork-ctl restore --count");
		for (int i = 0; i < n; i++) {
			snprintf(cmd, sizeof(cmd), OUTDIR "/n/clone-%d.out", i + 1);
			if (read_report(cmd, &rs[i], 0))
				exit(1);
			if (rs[i].t_done - t0 > last)
				last = rs[i].t_done - t0;
		}
		for (int i = 0; i < n; i++) {	/* Pss with all N alive */
			pss += rollup_kb(rs[i].pid, "Pss") / (double)n;
			end(rs[i].pid);
		}
		snprintf(cmd, sizeof(cmd), "f %d", n);
		ask(&fn, cmd, line, sizeof(line));
		for (int i = 0; i < n; i++) {
			snprintf(cmd, sizeof(cmd), OUTDIR "/fork-%d", i);
			if (read_report(cmd, &rs[i], 1))
				exit(1);
			if (i == 0 || rs[i].t_done > fork_last)
				fork_last = rs[i].t_done;
		}
		fork_last -= rs[0].t_fork;
		for (int i = 0; i < n; i++) {
			fork_pss += rollup_kb(rs[i].pid, "Pss") / (double)n;
			end(rs[i].pid);
		}
		emit("synthetic", mb, thp, "concurrent",
		     "\"n\": %d, \"clones_all_done_us\": %.1f, \"clone_pss_kb\": %.0f, \"forks_all_done_us\": %.1f, \"fork_pss_kb\": %.0f",
		     n, last, pss, fork_last, fork_pss);
		printf("%5zu MiB thp=%d N=%-3d clones (mow) all served %9.1f ms (%6.1f clones/s), Pss %7.0f kB each; fork children %9.1f ms, Pss %7.0f kB each\n",
		       mb, thp, n, last / 1e3, n / (last / 1e6), pss, fork_last / 1e3, fork_pss);
		free(rs);
	}

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl rm %s >/dev/null", id);
	fclose(fn.in);
	fclose(fn.out);
	kill(fn.pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	if (system(cmd))
		fprintf(stderr, "faas_bench: could not remove image %s\n", id);
}

/* Waits (up to 600 s) for path to exist. */
static int wait_file(const char *path)
{
	for (int i = 0; i < 3000000; i++) {	/* every 0.2 ms: a figure may include the wait */
		if (!access(path, F_OK))
			return 0;
		usleep(200);
	}
	fprintf(stderr, "faas_bench: no %s\n", path);
	return -1;
}

/*
 * One request of the CRIU function pid: when this process saw its answer
 * (its own clock, polled every 0.2 ms: CRIU restores a process into a time
 * namespace whose clocks go on from the dump, so the function's times are
 * not ours) and how long the request took; 0, or -1.
 */
static int criu_request(pid_t pid, double *t_done, double *us)
{
	double t_fn;
	FILE *f;
	int n, ok;

	unlink(CRIU_DIR "/done");
	kill(pid, SIGUSR1);
	for (int i = 0; access(CRIU_DIR "/done", F_OK); i++) {
		if (i == 3000000) {
			fprintf(stderr, "faas_bench: no answer from the CRIU function %d\n", pid);
			return -1;
		}
		usleep(200);
	}
	*t_done = now_us();
	f = fopen(CRIU_DIR "/done", "r");
	ok = f && fscanf(f, "%d %lf %lf", &n, &t_fn, us) == 3;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Runs a criu command line (its log in the images folder); its status. */
static int criu(const char *args, double *us)
{
	char cmd[512];
	double t0 = now_us();
	int r;

	snprintf(cmd, sizeof(cmd), CRIU " %s -D " CRIU_DIR "/img >/dev/null 2>&1", args);
	r = system(cmd);
	*us = now_us() - t0;
	if (r) {
		fprintf(stderr, "faas_bench: '%s' failed; its log:\n", cmd);
		if (system("tail -15 " CRIU_DIR "/img/*.log >&2"))
			;
	}
	return r;
}

/* Bytes of page images in CRIU's images folder. */
static long long criu_image_bytes(void)
{
	FILE *f = popen("cat " CRIU_DIR "/img/pages-*.img | wc -c", "r");
	char line[64];
	long long bytes = 0;

	if (f && fgets(line, sizeof(line), f))
		bytes = atoll(line);
	if (f)
		pclose(f);
	return bytes;
}

/*
 * CRIU beside cxlfork: the same function dumped by `criu dump` (images in
 * this guest's tmpfs: RAM, not the pool) and restored by `criu restore -d`
 * (the restored process keeps its pid: one at a time), once not measured.
 */
static void criu_peer(size_t mb, int thp)
{
	double dump_us, restore_us = 0, t_done, us, steady = 0, first = 0;
	long long bytes = 0;
	long rss, pss;
	char a[32], b[8], line[256];
	pid_t pid;

	if (access(CRIU, X_OK))
		return;
	if (system("rm -rf " CRIU_DIR " && mkdir -p " CRIU_DIR "/img"))
		die("mkdir " CRIU_DIR);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		setsid();
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		snprintf(a, sizeof(a), "%zu", mb);
		snprintf(b, sizeof(b), "%d", thp);
		execl(self, self, "cfunc", a, b, (char *)NULL);
		_exit(127);
	}
	if (wait_file(CRIU_DIR "/ready") || criu_request(pid, &t_done, &us))
		exit(1);
	snprintf(line, sizeof(line), "dump -t %d -o dump.log", pid);
	if (criu(line, &dump_us)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	waitpid(pid, NULL, 0);
	bytes = criu_image_bytes();
	for (int r = 0; r < 2; r++) {
		double t0 = now_us();

		if (criu("restore -d -o restore.log", &restore_us) || criu_request(pid, &t_done, &us))
			exit(1);
		first = t_done - t0;
		if (r == 1)
			break;
		kill(pid, SIGKILL);	/* the restored process is ours: we are a subreaper */
		waitpid(pid, NULL, 0);
	}
	for (int i = 0; i < STEADY; i++) {
		if (criu_request(pid, &t_done, &us))
			exit(1);
		steady += us / STEADY;
	}
	rss = rollup_kb(pid, "Rss");
	pss = rollup_kb(pid, "Pss");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	emit("synthetic", mb, thp, "criu",
	     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld, \"dump_us\": %.1f, \"image_bytes\": %lld",
	     restore_us, first, steady, rss, pss, dump_us, bytes);
	printf("%5zu MiB thp=%d %-5s restore %8.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB  (dump %.1f ms, %lld MiB of images in tmpfs)\n",
	       mb, thp, "criu", restore_us / 1e3, first / 1e3, steady / 1e3, rss, pss, dump_us / 1e3, bytes >> 20);
}

/* ---- the real function: Debian's python3.11 running pyfunc.py ---- */

#define PY "/usr/bin/python3.11"
#define PYFUNC "/cxlfork/bin/pyfunc.py"
#define PY_DIR "/tmp/fbp"

/* Lines in path (0 if none). */
static int count_lines(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY), n = 0;
	ssize_t r;

	while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	if (fd >= 0)
		close(fd);
	return n;
}

/*
 * One request to a pyfunc process (SIGUSR1): when its answer line appeared
 * in PY_DIR/<pid>.result (polled every 0.2 ms) and how long after the
 * signal; 0, or -1 after 600 s.
 */
static int py_request(pid_t pid, double *t_done, double *us)
{
	char path[64];
	double t0;
	int n;

	snprintf(path, sizeof(path), PY_DIR "/%d.result", pid);
	n = count_lines(path);
	t0 = now_us();
	kill(pid, SIGUSR1);
	for (int i = 0; count_lines(path) <= n; i++) {
		if (i == 3000000) {
			fprintf(stderr, "faas_bench: no answer from python pid %d\n", pid);
			return -1;
		}
		usleep(200);
	}
	*t_done = now_us();
	*us = *t_done - t0;
	return 0;
}

/* The mean of STEADY more requests. */
static double py_steady(pid_t pid)
{
	double t, us, sum = 0;

	for (int i = 0; i < STEADY; i++) {
		if (py_request(pid, &t, &us))
			exit(1);
		sum += us;
	}
	return sum / STEADY;
}

/*
 * Starts pyfunc.py (a session of its own, stdin /dev/null, stdout and
 * stderr PY_DIR/out: CRIU dumps it too); returns when it printed "ready".
 */
static pid_t py_start(size_t mb)
{
	char a[32];
	pid_t pid = fork();

	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), out = open(PY_DIR "/out", O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setsid();
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		for (int fd = 3; fd < 1024; fd++)	/* only stdio: a pipe of ours would pin its image */
			close(fd);
		snprintf(a, sizeof(a), "%zu", mb);
		setenv("RT_DIR", PY_DIR, 1);
		execl(PY, PY, PYFUNC, a, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600000; i++) {
		char line[256];
		FILE *f = fopen(PY_DIR "/out", "r");
		int ready = 0;

		while (f && fgets(line, sizeof(line), f))
			ready |= !strncmp(line, "ready ", 6);
		if (f)
			fclose(f);
		if (ready)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(1000);
	}
	fprintf(stderr, "faas_bench: python did not get ready (" PY_DIR "/out)\n");
	if (system("tail -5 " PY_DIR "/out >&2"))
		;
	exit(1);
}

/* THP for malloc()ed memory: the system's setting ("always": 1). */
static int thp_always(void)
{
	char buf[128];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	int r = f && fgets(buf, sizeof(buf), f) && strstr(buf, "[always]");

	if (f)
		fclose(f);
	return r;
}

/*
 * The real function, pyfunc.py with MB MiB of warm state (a dict, floats,
 * a blob, an in-memory sqlite database: a fragmented malloc heap, its
 * arenas and many mappings of C extensions), by the same methods as the
 * synthetic one: cold start; fork() (SIGUSR2: pyfunc forks itself);
 * checkpoint by pid (CXLFORK_IOC_CHECKPOINT with /proc/PID/mem) against a
 * plain copy of its data pages; MoW/MoA/HT clones; CRIU dump (which ends
 * the original) and restore. Requests: SIGUSR1, answered in a file.
 */
static void python_bench(size_t mb)
{
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	struct cxlfork_clone_stat st = { .size = sizeof(st) };
	double t0, t, us, cold, first, steady, copy, fork_us;
	char cmd[512], path[64], id[64], line[256];
	int thp = thp_always(), fd, mfd;
	long rss, pss;
	pid_t pid, child;
	FILE *f;

	if (access(PY, X_OK) || access(PYFUNC, R_OK))
		return;
	if (system("rm -rf " PY_DIR " && mkdir -p " PY_DIR))
		die("mkdir " PY_DIR);
	t0 = now_us();
	pid = py_start(mb);
	cold = now_us() - t0;
	if (py_request(pid, &t, &us))
		exit(1);
	steady = py_steady(pid);
	rss = rollup_kb(pid, "Rss");
	emit("python", mb, thp, "cold", "\"start_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld",
	     cold, cold + us, steady, rss);
	printf("python %zu MiB cold  start %10.1f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB\n", mb,
	       cold / 1e3, (cold + us) / 1e3, steady / 1e3, rss);

	/* fork(): twice, the first not measured (as for the synthetic one). */
	for (int r = 0; r < 2; r++) {
		snprintf(path, sizeof(path), PY_DIR "/fork-%d", pid);
		unlink(path);
		t0 = now_us();
		kill(pid, SIGUSR2);
		if (wait_file(path) || !(f = fopen(path, "r")) || fscanf(f, "%d %lf", &child, &fork_us) != 2)
			die("python fork");
		fclose(f);
		if (py_request(child, &t, &us))
			exit(1);
		first = t - t0;
		if (r == 0) {
			end(child);
			continue;
		}
		steady = py_steady(child);
		rss = rollup_kb(child, "Rss");
		pss = rollup_kb(child, "Pss");
		emit("python", mb, thp, "fork",
		     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld", fork_us,
		     first, steady, rss, pss);
		printf("python %zu MiB fork  fork() %9.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB\n",
		       mb, fork_us / 1e3, first / 1e3, steady / 1e3, rss, pss);
		end(child);
	}

	/* Checkpoint by pid, against a plain copy of the same data pages. */
	fd = open("/dev/cxlfork", O_RDWR);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mfd = open(path, O_RDONLY);
	c.pid = pid;
	c.mem_fd = mfd;
	strcpy(c.name, "faas-bench-python");
	if (fd < 0 || mfd < 0 || ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c))
		die("checkpoint of python");
	close(mfd);
	copy = plain_copy_us(c.pages * 4096);
	emit("python", mb, thp, "checkpoint", "\"ckpt_us\": %.1f, \"copy_us\": %.1f, \"pool_bytes\": %llu, \"data_pages\": %llu",
	     c.duration_ns / 1e3, copy, (unsigned long long)c.image_size, (unsigned long long)c.pages);
	printf("python %zu MiB checkpoint %10.1f ms (%7.1f MB/s)  plain copy of its %llu data pages %10.1f ms  ratio %.2f  image %llu KiB\n",
	       mb, c.duration_ns / 1e6, c.pages * 4096.0 / (c.duration_ns / 1e3), (unsigned long long)c.pages, copy / 1e3,
	       copy > 0 ? c.duration_ns / 1e3 / copy : 0, (unsigned long long)c.image_size >> 10);
	id_str(c.image_id, id, sizeof(id));

	for (int p = 0; p < npolicies; p++) {
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %s --policy %s --output " PY_DIR "/%s --json >" PY_DIR "/r.json 2>&1",
			 id, policies[p], policies[p]);
		t0 = now_us();
		if (system(cmd)) {
			fprintf(stderr, "faas_bench: '%s' failed:\n", cmd);
			if (system("cat " PY_DIR "/r.json >&2"))
				;
			exit(1);
		}
		f = fopen(PY_DIR "/r.json", "r");
		child = 0;
		while (f && child <= 0 && fgets(line, sizeof(line), f))
			if (strstr(line, "\"pids\":["))
				child = atoi(strstr(line, "\"pids\":[") + 8);
		if (f)
			fclose(f);
		if (child <= 0)
			die("cxlfork-ctl restore --json (python)");
		/*
		 * The restore goes on in the stub cxlfork-ctl started: a SIGUSR1
		 * before it is a clone would kill the stub. Poll until it is.
		 */
		st.pid = child;
		for (int i = 0; ioctl(fd, CXLFORK_IOC_CLONE_STAT, &st); i++) {
			if (i == 600000)
				die("the python clone never became a clone");
			usleep(100);
		}
		if (py_request(child, &t, &us))
			exit(1);
		first = t - t0;
		if (ioctl(fd, CXLFORK_IOC_CLONE_STAT, &st))
			die("clone stat");
		steady = py_steady(child);
		rss = rollup_kb(child, "Rss");
		pss = rollup_kb(child, "Pss");
		emit("python", mb, thp, policies[p],
		     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld, \"local_pages\": %llu, \"pool_pages\": %llu",
		     st.restore_ns / 1e3, first, steady, rss, pss, (unsigned long long)st.local_pages,
		     (unsigned long long)st.pool_pages);
		printf("python %zu MiB %-5s restore %8.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB\n",
		       mb, policies[p], st.restore_ns / 1e6, first / 1e3, steady / 1e3, rss, pss);
		end(child);
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl rm %s >/dev/null", id);
	if (system(cmd))
		fprintf(stderr, "faas_bench: could not remove image %s\n", id);

	/* CRIU: dump (the original ends), restore -d. */
	if (access(CRIU, X_OK) || system("rm -rf " CRIU_DIR " && mkdir -p " CRIU_DIR "/img")) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	snprintf(line, sizeof(line), "dump -t %d -o dump.log", pid);
	if (criu(line, &us)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	while (waitpid(-1, NULL, 0) > 0)	/* the original, and any child it left us */
		;
	{
		double dump_us = us, restore_us = 0;
		long long bytes = criu_image_bytes();

		/*
		 * One restore: the function's stdout (a file) grows with each
		 * answer, and CRIU refuses a file whose size changed since the
		 * dump. Its code was warmed by the synthetic function's runs.
		 */
		t0 = now_us();
		if (criu("restore -d -o restore.log", &restore_us) || py_request(pid, &t, &us))
			exit(1);
		first = t - t0;
		steady = py_steady(pid);
		rss = rollup_kb(pid, "Rss");
		pss = rollup_kb(pid, "Pss");
		emit("python", mb, thp, "criu",
		     "\"restore_us\": %.1f, \"first_us\": %.1f, \"steady_us\": %.1f, \"rss_kb\": %ld, \"pss_kb\": %ld, \"dump_us\": %.1f, \"image_bytes\": %lld",
		     restore_us, first, steady, rss, pss, dump_us, bytes);
		printf("python %zu MiB criu  restore %8.3f ms  first request done %10.1f ms  steady %8.2f ms  Rss %7ld kB  Pss %7ld kB  (dump %.1f ms, %lld MiB of images in tmpfs)\n",
		       mb, restore_us / 1e3, first / 1e3, steady / 1e3, rss, pss, dump_us / 1e3, bytes >> 20);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

int main(int argc, char **argv)
{
	int thps[2] = { 1, 0 }, nthp = 2, concs[16], nconc = 0, opt;
	size_t py_mb = 0;

	if (argc == 4 && !strcmp(argv[1], "func"))
		return function_main(strtoul(argv[2], NULL, 0), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "cfunc"))
		return criu_function_main(strtoul(argv[2], NULL, 0), atoi(argv[3]));
	/* Processes CRIU restores (-d) become ours when criu exits. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		die("readlink");
	backend = getenv("CXLFORK_POOL_BACKEND") ? getenv("CXLFORK_POOL_BACKEND") : "cxl";
	while ((opt = getopt(argc, argv, "t:n:p:y:")) != -1) {
		if (opt == 'y') {
			py_mb = strtoul(optarg, NULL, 0);
		} else if (opt == 't') {
			thps[0] = atoi(optarg);
			nthp = 1;
		} else if (opt == 'p') {
			npolicies = 0;
			for (char *s = strtok(optarg, ","); s && npolicies < 8; s = strtok(NULL, ","))
				policies[npolicies++] = s;
		} else if (opt == 'n') {
			for (char *s = strtok(optarg, ","); s && nconc < 16; s = strtok(NULL, ","))
				concs[nconc++] = atoi(s);
		} else {
			fprintf(stderr, "usage: faas_bench [-t 1|0] [-p POLICY,...] [-n N,N...] [-y PY_MB] MB...\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("# faas_bench: pool backend %s; synthetic function (72%% init-only, 23%% read-only, 5%% read-write anonymous memory)\n",
	       backend);
	for (int t = 0; t < nthp; t++)
		for (int a = optind; a < argc; a++) {
			one(strtoul(argv[a], NULL, 0), thps[t], t == 0 && a == optind ? concs : NULL,
			    t == 0 && a == optind ? nconc : 0);
			criu_peer(strtoul(argv[a], NULL, 0), thps[t]);
		}
	if (py_mb)
		python_bench(py_mb);
	return 0;
}
