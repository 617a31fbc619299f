// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl_fuzz: an in-guest fuzzer of /dev/cxlfork's ioctls (run as root, in
 * a guest with the pool attached).
 *
 *   ioctl_fuzz [SEED [N]]      N calls in all (default 100000), from SEED
 *                              (default: random, printed at start)
 *
 * Phases (each a KTAP result):
 *  1. sweep: every 0xC7 number 0..0x40 with every direction and a few
 *     sizes, on a zeroed struct: unknown numbers and wrong directions give
 *     ENOTTY, known commands EINVAL (size 0);
 *  2. root: N/2 random calls as root;
 *  3. nobody: N/2 - sweep random calls in a forked child that became
 *     nobody (setuid 65534);
 *  4. detach: the pool is detached (refused while a clone lives), calls
 *     are made against no pool (ATTACH with random arguments, never
 *     FORMAT), then it is re-attached as the guest init did;
 *  5. the pool works: POOL_INFO, same uuid, the reference images listed,
 *     a tiny program checkpointed and restored into a clone that runs;
 *  6. the kernel log of the run holds no report (WARN, BUG, KASAN,
 *     lockdep...) and no "point of no return" failure.
 *
 * A random call: a command (a real one, or any number/direction/size bits),
 * an argument pointer (a struct in a buffer, misaligned, ending at a page
 * boundary before a PROT_NONE page, crossing into it, in a read-only page,
 * crossing into an unmapped hole; NULL, kernel, unmapped, non-canonical
 * addresses), a size field (0, too small, exact, larger up to 8 KiB with
 * zero or non-zero tail, huge), and contents (random bytes, or the real
 * struct with one field randomised: ids, flags, counts, pids, policies,
 * offsets, nested pointers, mem_fd).
 *
 * Checks: every call returns within a timeout (a supervisor process
 * watches a shared record of the call in progress and reports where a
 * stuck one sleeps); its errno is in the set the command documents;
 * exact errnos where the ABI fixes them (ENOTTY for unknown commands,
 * EFAULT for an unreadable struct, EINVAL for a size below the first
 * version, E2BIG above 4 KiB); nobody never attaches, detaches, or deletes
 * root's images.
 *
 * Safety: RESTORE of an existing image is only ever called in a forked
 * child (which may become a clone: it is waited for with a timeout); as
 * root, DETACH is only called in phase 4; as root, CHECKPOINT by pid only
 * targets the fuzzer's own children (never init or the harness); images
 * the fuzzer creates are deleted again.
 *
 * Environment: IOCTL_FUZZ_DENY=ERRNO treats that errno as unexpected (to
 * check that the fuzzer can fail); IOCTL_FUZZ_VERBOSE=1 logs every call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/cxlfork.h>

#define DEV "/dev/cxlfork"
#define PAGE 4096UL
#define MAX_STRUCT 4096U	/* larger sizes are E2BIG (uaccess.rs) */
#define CALL_TIMEOUT_S 60	/* one ioctl in the fuzzer's own process */
#define CHILD_TIMEOUT_S 90	/* a restore child: the restore and its clone */
#define MAX_IDS 256
#define MAX_TARGETS 3
#define CLONE_OF_FUZZER 77	/* a clone of the fuzzer's own image exits with this */
#define REF_EXIT 42		/* a clone of the reference image exits with this */
#define REF_WAIT 43		/* ... of the waiting reference image (after 60 s) */
#define CHILD_REFUSED 0x7e	/* a restore child whose RESTORE returned */

/* -------------------------------------------------------------------- */
/* Random numbers: splitmix64, one stream per phase.                     */

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rndn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static int chance(unsigned pct)
{
	return rndn(100) < pct;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

/* -------------------------------------------------------------------- */
/* State shared by the supervisor and the workers (MAP_SHARED).          */

enum { PH_SWEEP, PH_ROOT, PH_NOBODY, PH_DETACH, PH_FINAL, NPHASE };
static const char *phase_name[NPHASE] = { "sweep", "root", "nobody", "detach", "final" };

#define NERR 134
#define NCMDS 11
#define MAX_NOTES 24
#define MAX_PRINTED 60

struct watch {			/* the call in progress of one process */
	volatile int pid;
	volatile int active;
	volatile uint64_t start_ns;
	volatile uint64_t timeout_ns;
	char desc[240];
};

struct phase_stats {
	uint64_t calls, unexpected, ns, gen_ns, post_ns;
	uint64_t ok[256];	/* successes per command number */
	uint64_t err[NERR];	/* failures per errno */
	uint64_t restore_children, restore_refused, clone_exit, clone_signal, clone_running, clone_of_fuzzer;
	uint64_t checkpoints, deletes, attaches;
	uint64_t cmd_ns[NCMDS + 2], cmd_n[NCMDS + 2];	/* time per command; +1 unknown, +2 restore child */
	int done;
};

struct shared {
	struct watch watch[4];	/* 0: root worker, 1: nobody worker, 2: restore child waits */
	struct phase_stats ph[NPHASE];
	volatile int child_errno;	/* a restore child's errno */
	volatile int hung;
	int notes, printed;
	char note[MAX_NOTES][320];	/* the first unexpected results, for the report */
	int final_ok, detach_ok;
	char final_msg[256], detach_msg[256];
};

static struct shared *sh;
static int my_watch;		/* which watch record this process fills */
static int phase;
static int verbose;
static int deny_errno = -1;
static uint64_t seed;

static void note(const char *fmt, ...)
{
	char buf[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* The guest's output is a slow serial line: the first ones only. */
	if (sh->printed++ < MAX_PRINTED)
		printf("# %s\n", buf);
	if (sh->notes < MAX_NOTES)
		snprintf(sh->note[sh->notes++], sizeof(sh->note[0]), "%s", buf);
}

static void watch_begin(int timeout_s, const char *fmt, ...)
{
	struct watch *w = &sh->watch[my_watch];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->desc, sizeof(w->desc), fmt, ap);
	va_end(ap);
	w->pid = getpid();
	w->timeout_ns = timeout_s * 1000000000ULL;
	w->start_ns = now_ns();
	__atomic_store_n(&w->active, 1, __ATOMIC_SEQ_CST);
}

static void watch_end(void)
{
	__atomic_store_n(&sh->watch[my_watch].active, 0, __ATOMIC_SEQ_CST);
}

/* -------------------------------------------------------------------- */
/* Commands.                                                             */

#define D_NONE 0
#define D_W 1
#define D_R 2
#define D_RW 3

struct cmd {
	unsigned nr, dir, size, min;
	const char *name;
};

static const struct cmd cmds[] = {
	{ 0x01, D_W, sizeof(struct cxlfork_pool_attach), 32, "POOL_ATTACH" },
	{ 0x02, D_RW, sizeof(struct cxlfork_pool_info), 80 + 16 * 96 + 24, "POOL_INFO" },
	{ 0x03, D_NONE, 0, 0, "POOL_DETACH" },
	{ 0x10, D_RW, sizeof(struct cxlfork_checkpoint), 112, "CHECKPOINT" },
	{ 0x11, D_RW, sizeof(struct cxlfork_list), 24, "LIST" },
	{ 0x12, D_RW, sizeof(struct cxlfork_stat), 216, "STAT" },
	{ 0x13, D_W, sizeof(struct cxlfork_read), 40, "READ" },
	{ 0x14, D_W, sizeof(struct cxlfork_delete), 16, "DELETE" },
	{ 0x20, D_W, sizeof(struct cxlfork_restore), 24, "RESTORE" },
	{ 0x21, D_RW, sizeof(struct cxlfork_clone_stat), 88, "CLONE_STAT" },
	/* Always from a main thread here: refused at once (EBUSY), never waits. */
	{ 0x22, D_W, sizeof(struct cxlfork_restore_thread), 16, "RESTORE_THREAD" },
};
_Static_assert(sizeof(cmds) / sizeof(cmds[0]) == NCMDS, "cmds");
enum { C_ATTACH, C_INFO, C_DETACH, C_CKPT, C_LIST, C_STAT, C_READ, C_DELETE, C_RESTORE, C_CLONE_STAT, C_RESTORE_THREAD };

static const struct cmd *cmd_of(unsigned nr, unsigned dir)
{
	for (unsigned i = 0; i < NCMDS; i++)
		if (cmds[i].nr == nr && cmds[i].dir == dir)
			return &cmds[i];
	return NULL;
}

/* Errnos each command may return, from include/uapi/linux/cxlfork.h and
 * its struct rules (EINVAL, E2BIG, EFAULT for every struct); 0 ends a list. */
static const int errs_struct[] = { EINVAL, E2BIG, EFAULT, ENOMEM, 0 };
static const int errs_cmd[NCMDS][16] = {
	[C_ATTACH] = { EPERM, EBUSY, EBADMSG },
	[C_INFO] = { ENODEV },
	[C_DETACH] = { EPERM, ENODEV, EBUSY },
	[C_CKPT] = { ENODEV, ESRCH, EPERM, EOPNOTSUPP, ENOSPC, EAGAIN, EINTR, EBUSY, ETIMEDOUT },
	[C_LIST] = { ENODEV },
	[C_STAT] = { ENODEV, ENOENT, EBADMSG, EPERM },
	[C_READ] = { ENODEV, ENOENT, EPERM },
	[C_DELETE] = { ENODEV, ENOENT, EXDEV, EPERM, EBUSY },
	/* ... and the errno of reopening a file */
	[C_RESTORE] = { ENODEV, ENOENT, EPERM, EBADMSG, ENOEXEC, EBUSY, EOPNOTSUPP, EACCES, ESTALE, EMFILE, ENXIO, EISDIR, ETIMEDOUT },
	[C_CLONE_STAT] = { ESRCH, ENOENT, EAGAIN, EPERM, ENODEV },	/* ENODEV: not in the header */
	[C_RESTORE_THREAD] = { EBUSY, ETIMEDOUT },
};

static int errno_allowed(int c, int e)
{
	if (e <= 0 || c < 0 || c >= (int)NCMDS)
		return 0;
	if (c != C_DETACH)
		for (int i = 0; errs_struct[i]; i++)
			if (errs_struct[i] == e)
				return 1;
	for (int i = 0; i < 16 && errs_cmd[c][i]; i++)
		if (errs_cmd[c][i] == e)
			return 1;
	return 0;
}

/* -------------------------------------------------------------------- */
/* Memory the arguments live in.                                        */

/*
 * arena: pages 0-3 RW | 4 PROT_NONE | 5 read-only | 6 unmapped | 7 RW
 * out:   a large RW buffer (LIST entries, READ bytes) ending at a PROT_NONE page
 */
static char *arena;
#define A_RW (arena)
#define A_GUARD (arena + 4 * PAGE)
#define A_RO (arena + 5 * PAGE)
#define A_HOLE (arena + 6 * PAGE)
static char *outbuf;
static size_t outlen;		/* bytes before its guard page */
static char *unmapped_far;	/* 1 MiB reserved and unmapped again */

static void setup_memory(void)
{
	arena = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED)
		exit(1);
	memset(arena, 0, 8 * PAGE);
	mprotect(A_GUARD, PAGE, PROT_NONE);
	mprotect(A_RO, PAGE, PROT_READ);
	munmap(A_HOLE, PAGE);
	outlen = 8 << 20;
	outbuf = mmap(NULL, outlen + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (outbuf == MAP_FAILED)
		exit(1);
	mprotect(outbuf + outlen, PAGE, PROT_NONE);
	unmapped_far = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(unmapped_far, 1 << 20);
}

/* Reads len bytes at addr without faulting: -1 if any is unreadable
 * (through a pipe: write() reports EFAULT where a load would fault). */
static int probe_pipe[2] = { -1, -1 };

static int safe_read(const void *addr, void *buf, size_t len)
{
	char tmp[64];
	size_t done = 0;
	int ok = 0;

	if (probe_pipe[0] < 0 && pipe2(probe_pipe, O_NONBLOCK | O_CLOEXEC))
		return -1;
	while (done < len) {
		size_t n = len - done > 4096 ? 4096 : len - done;
		ssize_t w = write(probe_pipe[1], (const char *)addr + done, n);

		if (w != (ssize_t)n) {
			ok = -1;
			if (w > 0)
				while (read(probe_pipe[0], tmp, sizeof(tmp)) > 0)
					;
			break;
		}
		if (read(probe_pipe[0], (char *)buf + done, n) != (ssize_t)n)
			return -1;
		done += n;
	}
	return ok;
}

static const uint64_t bad_ptrs[] = {
	0, 1, 16, 4096, 0xffffffff81000000ULL, 0xffff888000000000ULL, 0xffffffffff600000ULL,
	0xfffffffffffffff0ULL, 0x8000000000000000ULL, 0x0000800000000000ULL, 0x00007ffffffff000ULL,
};

/* A user pointer for a nested buffer (LIST images, READ buf) of need bytes. */
static uint64_t nested_ptr(size_t need, const char **how)
{
	unsigned k = rndn(100);

	if (k < 60 && need <= outlen) {
		*how = "out-end";	/* ends at the guard page */
		return (uint64_t)(outbuf + outlen - need);
	}
	if (k < 70) {
		*how = "out-start";	/* a longer write runs into the guard */
		return (uint64_t)outbuf + rndn(8);
	}
	if (k < 75) {
		*how = "ro";
		return (uint64_t)A_RO;
	}
	if (k < 80) {
		*how = "hole";
		return (uint64_t)A_HOLE;
	}
	if (k < 85) {
		*how = "guard";
		return (uint64_t)A_GUARD;
	}
	if (k < 88) {
		*how = "far";
		return (uint64_t)unmapped_far + rndn(1 << 20);
	}
	*how = "bad";
	return bad_ptrs[rndn(sizeof(bad_ptrs) / sizeof(bad_ptrs[0]))];
}

/* -------------------------------------------------------------------- */
/* What the fuzzer knows of the world: images, processes, descriptors.  */

struct img {
	uint64_t id, size;
	uint32_t uid;
	int protect;		/* a reference image: never deleted by the fuzzer */
};
static struct img imgs[MAX_IDS];
static int n_imgs;
static int devfd;
static uint64_t ref_exit_id, ref_wait_id;	/* this identity's reference images */
static uint64_t root_ref_ids[2];		/* root's (for the nobody phase) */
static pid_t live_clone = -1;			/* a live clone of ref_wait */
static struct target {
	pid_t pid;
	int memfd, mapsfd;
} targets[MAX_TARGETS];
static int nullfd, selfmemfd;
static int is_root;
static unsigned host_id;

static int id_known(uint64_t id)
{
	if (id && (id == root_ref_ids[0] || id == root_ref_ids[1] || id == ref_exit_id || id == ref_wait_id))
		return 1;
	for (int i = 0; i < n_imgs; i++)
		if (imgs[i].id == id)
			return 1;
	return 0;
}

static void refresh_images(void)
{
	struct cxlfork_list l = { .size = sizeof(l), .count = outlen / sizeof(struct cxlfork_image_info),
				  .images = (uint64_t)outbuf };
	struct cxlfork_image_info *inf = (void *)outbuf;

	n_imgs = 0;
	if (ioctl(devfd, CXLFORK_IOC_LIST, &l))
		return;
	for (unsigned i = 0; i < l.count && n_imgs < MAX_IDS; i++) {
		imgs[n_imgs].id = inf[i].id;
		imgs[n_imgs].size = inf[i].size;
		imgs[n_imgs].uid = inf[i].uid;
		imgs[n_imgs].protect = inf[i].id == ref_exit_id || inf[i].id == ref_wait_id ||
				       inf[i].id == root_ref_ids[0] || inf[i].id == root_ref_ids[1];
		n_imgs++;
	}
}

/* Deletes every image of this identity the fuzzer made (all but the references). */
static void gc_images(void)
{
	refresh_images();
	for (int i = 0; i < n_imgs; i++) {
		struct cxlfork_delete d = { .size = sizeof(d), .id = imgs[i].id };

		if (imgs[i].protect || imgs[i].uid != getuid())
			continue;
		ioctl(devfd, CXLFORK_IOC_DELETE, &d);
	}
	refresh_images();
}

/* A process that waits, to be checkpointed by pid. */
static void spawn_target(int i)
{
	char path[64];
	pid_t p;

	fflush(stdout);
	p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	targets[i].pid = p;
	snprintf(path, sizeof(path), "/proc/%d/mem", p);
	targets[i].memfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/maps", p);
	targets[i].mapsfd = open(path, O_RDONLY | O_CLOEXEC);
}

static void reap_targets(void)
{
	for (int i = 0; i < MAX_TARGETS; i++) {
		int st;

		if (targets[i].pid > 0 && waitpid(targets[i].pid, &st, WNOHANG) == targets[i].pid) {
			close(targets[i].memfd);
			close(targets[i].mapsfd);
			targets[i].pid = 0;
		}
		if (targets[i].pid <= 0)
			spawn_target(i);
	}
}

static void kill_targets(void)
{
	for (int i = 0; i < MAX_TARGETS; i++) {
		if (targets[i].pid > 0) {
			kill(targets[i].pid, SIGKILL);
			waitpid(targets[i].pid, NULL, 0);
			close(targets[i].memfd);
			close(targets[i].mapsfd);
		}
		targets[i].pid = 0;
	}
}

/* A forked child that checkpoints itself: the original exits, a clone
 * exits with (or, wait: after 60 s with) its code. Returns the image id. */
static uint64_t make_reference(int wait, const char *name)
{
	struct cxlfork_image_info *inf = (void *)outbuf;
	struct cxlfork_list l = { .size = sizeof(l), .count = outlen / sizeof(*inf), .images = (uint64_t)outbuf };
	uint64_t id = 0;
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		long r;

		/* Only what a restore can reopen: stdio and the device. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != devfd)
				close(fd);
		snprintf(c.name, sizeof(c.name), "%s", name);
		r = ioctl(devfd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0) {
			if (wait)
				for (int i = 0; i < 36000; i++)
					usleep(100000);
			_exit(wait ? REF_WAIT : REF_EXIT);
		}
		_exit(r == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 0;
	/* The newest image of that pid. */
	if (ioctl(devfd, CXLFORK_IOC_LIST, &l) == 0)
		for (unsigned i = 0; i < l.count; i++)
			if (inf[i].pid == (uint32_t)pid)
				id = inf[i].id;
	refresh_images();
	return id;
}

/* The wchan of a process (where it sleeps in the kernel). */
static void wchan_of(pid_t pid, char *out, size_t len)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	snprintf(out, len, "?");
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, out, len - 1);

		out[n > 0 ? n : 0] = 0;
		close(fd);
	}
}

/*
 * Makes ioctl(devfd, cmd, arg), a restore of image id (as far as known), in
 * a forked child of this identity, which may become a clone. Returns its
 * wait status; 0x10000 if it became a clone that runs on and keep took it;
 * 0x20000 if it became a clone that ran on and was killed; 0x30000 if the
 * restore did not end in time. *err: its errno if the call returned.
 */
static int run_restore_child(unsigned long cmd, void *arg, uint64_t id, int *err, pid_t *keep, const char *desc)
{
	/* A clone of a waiting image is done when it is a clone; others exit. */
	int waits = id == ref_wait_id || id == root_ref_ids[1];
	uint64_t t0, running_after = (waits ? 100 : 5000) * 1000000ULL;
	pid_t pid;
	int st = 0, pfd;

	sh->child_errno = 0;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		ioctl(devfd, cmd, arg);
		sh->child_errno = errno;
		_exit(CHILD_REFUSED);
	}
	if (pid < 0)
		return -1;
	pfd = syscall(SYS_pidfd_open, pid, 0);
	t0 = now_ns();
	for (;;) {
		struct pollfd pf = { .fd = pfd, .events = POLLIN };
		struct cxlfork_clone_stat cs = { .size = sizeof(cs), .pid = pid };

		poll(&pf, 1, 20);
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (now_ns() - t0 > running_after && ioctl(devfd, CXLFORK_IOC_CLONE_STAT, &cs) == 0) {
			if (keep) {
				*keep = pid;
				close(pfd);
				return 0x10000;
			}
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			sh->ph[phase].clone_running++;
			st = 0x20000;
			break;
		}
		if (now_ns() - t0 > CHILD_TIMEOUT_S * 1000000000ULL) {
			char wchan[64];

			wchan_of(pid, wchan, sizeof(wchan));
			note("HANG: phase %s: restore child %d (%s, image %#llx) not done after %d s, wchan %s",
			     phase_name[phase], pid, desc, (unsigned long long)id, CHILD_TIMEOUT_S, wchan);
			sh->ph[phase].unexpected++;
			kill(pid, SIGKILL);
			for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) != pid; i++)
				usleep(100000);
			if (waitpid(pid, &st, WNOHANG) == 0) {
				wchan_of(pid, wchan, sizeof(wchan));
				note("HANG: restore child %d survives SIGKILL for 10 s, wchan %s", pid, wchan);
			}
			st = 0x30000;
			break;
		}
	}
	close(pfd);
	*err = sh->child_errno;
	return st;
}

static int restore_child(const struct cxlfork_restore *req, int *err, pid_t *keep)
{
	struct cxlfork_restore r = *req;

	return run_restore_child(CXLFORK_IOC_RESTORE, &r, r.id, err, keep, "restore");
}

/* Accounts for a restore child's end. */
static void restore_outcome(const struct cxlfork_restore *r, int st, int err, const char *why)
{
	struct phase_stats *ps = &sh->ph[phase];

	ps->restore_children++;
	if (st >= 0x10000)
		return;
	if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_REFUSED) {
		ps->restore_refused++;
		if (err > 0 && err < NERR)
			ps->err[err]++;
		if (!errno_allowed(C_RESTORE, err) || err == deny_errno) {
			ps->unexpected++;
			note("UNEXPECTED: phase %s: RESTORE (%s) of %#llx policy %u flags %#x size %u: errno %d (%s)",
			     phase_name[phase], why, (unsigned long long)r->id, r->policy, r->flags, r->size, err, strerror(err));
		}
	} else if (WIFEXITED(st) && (WEXITSTATUS(st) == REF_EXIT || WEXITSTATUS(st) == REF_WAIT)) {
		ps->clone_exit++;
		ps->ok[0x20]++;
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == CLONE_OF_FUZZER) {
		ps->clone_of_fuzzer++;
	} else {
		/* A valid image restored under any valid request runs. */
		ps->clone_signal++;
		ps->unexpected++;
		note("UNEXPECTED: phase %s: clone of %#llx (%s, policy %u flags %#x) ended with status %#x (%s %d)",
		     phase_name[phase], (unsigned long long)r->id, why, r->policy, r->flags, st,
		     WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
}

/* -------------------------------------------------------------------- */
/* Interesting values.                                                   */

static uint64_t pick_id(void)
{
	uint64_t base = n_imgs ? imgs[rndn(n_imgs)].id : ((uint64_t)host_id << 48) | 1;

	/* The waiting image's clones run on until killed: rarely. */
	if (base == ref_wait_id && !chance(3))
		base = ref_exit_id;

	switch (rndn(12)) {
	case 0: case 1: case 2: case 3:
		return base;
	case 4:
		return base + 1;
	case 5:
		return base - 1;
	case 6:
		return (base & 0xffffffffffffULL) | ((uint64_t)(1 + rndn(20)) << 48);	/* another host */
	case 7:
		return (base & 0xffffffffffffULL) | (0xffffULL << 48);
	case 8:
		return 0;
	case 9:
		return ~0ULL;
	case 10:
		return rndn(64);
	default:
		return rnd();
	}
}

static uint64_t pick_flags(uint64_t valid)
{
	switch (rndn(8)) {
	case 0: case 1:
		return 0;
	case 2:
		return valid;
	case 3:
		return 1ULL << rndn(32);
	case 4:
		return ~0ULL;
	case 5:
		return rnd();
	default:
		return rnd() & valid;
	}
}

static uint64_t pick_count(uint64_t exact)
{
	static const uint64_t v[] = { 0, 1, 2, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff };

	switch (rndn(4)) {
	case 0:
		return exact;
	case 1:
		return exact + rndn(3) - 1;
	case 2:
		return v[rndn(sizeof(v) / sizeof(v[0]))];
	default:
		return rnd() & 0xffffffff;
	}
}

/* Any pid as the argument of a read-only command (CLONE_STAT). */
static int32_t pick_pid_any(void)
{
	switch (rndn(12)) {
	case 0:
		return 0;
	case 1:
		return getpid();
	case 2: case 3:
		return targets[rndn(MAX_TARGETS)].pid;
	case 4:
		return live_clone > 0 ? live_clone : 1;
	case 5:
		return 1;
	case 6:
		return 2;
	case 7:
		return getppid();
	case 8:
		return 4194304 + rndn(1000);	/* above pid_max */
	case 9:
		return -(int32_t)rndn(3) - 1;
	case 10:
		return INT32_MIN;
	default:
		return rnd();
	}
}

/* A pid a checkpoint may stop, resume or kill: 0, self, the fuzzer's own
 * targets, kernel threads, or no process at all. */
static int checkpoint_pid_ok(int32_t pid)
{
	if (pid <= 0 || pid == getpid() || pid == 2)
		return 1;
	for (int i = 0; i < MAX_TARGETS; i++)
		if (pid == targets[i].pid)
			return 1;
	return kill(pid, 0) && errno == ESRCH;
}

static int32_t pick_pid_ckpt(void)
{
	switch (rndn(10)) {
	case 0:
		return 0;
	case 1:
		return getpid();
	case 2: case 3: case 4: case 5:
		return targets[rndn(MAX_TARGETS)].pid;
	case 6:
		return 2;	/* kthreadd: no mm */
	case 7:
		return 4194304 + rndn(1000);
	case 8:
		return -(int32_t)rndn(3) - 1;
	default:
		return rnd();
	}
}

static int pick_memfd(int32_t pid)
{
	int t = rndn(MAX_TARGETS);

	for (int i = 0; i < MAX_TARGETS; i++)
		if (targets[i].pid == pid && chance(70))
			return targets[i].memfd;
	switch (rndn(10)) {
	case 0: case 1:
		return targets[t].memfd;
	case 2:
		return targets[t].mapsfd;
	case 3:
		return selfmemfd;
	case 4:
		return nullfd;
	case 5:
		return devfd;
	case 6:
		return -1;
	case 7:
		return 0;
	case 8:
		return 1000 + rndn(20);	/* not open */
	default:
		return rnd();
	}
}

/* -------------------------------------------------------------------- */
/* One random call.                                                       */

#define CKPT_MEM_FD(c) (*(int32_t *)((char *)(c) + 12))	/* the field after pid */

struct call {
	unsigned nr, dir, szbits;
	const struct cmd *c;	/* the command it dispatches to, if any */
	int ci;			/* its index in cmds */
	uint8_t buf[3 * PAGE];	/* the bytes at the argument (those readable) */
	size_t len;		/* bytes of buf that are the struct */
	uint32_t size;		/* its size field */
	int random_bytes;
	const char *place, *field, *nested;
	uint64_t arg;
	int readable;		/* the first len bytes at arg can be read */
	int size_readable;	/* the size field can be read */
};

/* Builds a real struct of command ci with one field randomised in b. */
static void real_struct(struct call *k)
{
	uint8_t *b = k->buf;
	const char *f = "none";

	memset(b, 0, sizeof(k->buf));
	switch (k->ci) {
	case C_ATTACH: {
		struct cxlfork_pool_attach *a = (void *)b;

		a->size = sizeof(*a);
		a->phys_base = 0x110000000ULL;
		a->phys_size = 2ULL << 30;
		switch (rndn(5)) {
		case 0: f = "flags"; a->flags = pick_flags(CXLFORK_ATTACH_FLAGS); break;
		case 1: f = "phys_base"; a->phys_base = rnd() & ~(rndn(2) ? 0x1fffffULL : 0); break;
		case 2: f = "phys_size"; a->phys_size = pick_count(2ULL << 30) << (rndn(2) ? 21 : 0); break;
		case 3: f = "host_id"; a->host_id = pick_count(0); break;
		default: f = "max_hosts"; a->max_hosts = pick_count(8); break;
		}
		break;
	}
	case C_INFO:
		((struct cxlfork_pool_info *)b)->size = sizeof(struct cxlfork_pool_info);
		if (chance(30)) {
			f = "abi_version";
			((struct cxlfork_pool_info *)b)->abi_version = rnd();
		}
		break;
	case C_CKPT: {
		struct cxlfork_checkpoint *c = (void *)b;

		c->size = sizeof(*c);
		c->pid = pick_pid_ckpt();
		CKPT_MEM_FD(c) = pick_memfd(c->pid);
		c->flags = rndn(3);
		snprintf(c->name, sizeof(c->name), "fuzz");
		switch (rndn(6)) {
		case 0: f = "flags"; c->flags = pick_flags(CXLFORK_CKPT_FLAGS); break;
		case 1: f = "pid"; c->pid = pick_pid_any(); break;
		case 2: f = "mem_fd"; CKPT_MEM_FD(c) = pick_memfd(-1); break;
		case 3: f = "name"; for (int i = 0; i < CXLFORK_NAME_LEN; i++) c->name[i] = rnd(); break;
		case 4: f = "outputs"; c->image_id = rnd(); c->pages = rnd(); break;
		default: f = "pid+mem_fd"; break;
		}
		break;
	}
	case C_LIST: {
		struct cxlfork_list *l = (void *)b;
		size_t room = outlen / sizeof(struct cxlfork_image_info);

		l->size = sizeof(*l);
		l->count = pick_count(n_imgs + 4);
		l->images = nested_ptr((size_t)(l->count < room ? l->count : room) * sizeof(struct cxlfork_image_info),
				       &k->nested);
		switch (rndn(3)) {
		case 0: f = "reserved"; l->__reserved = pick_flags(0); break;
		case 1: f = "total"; l->total = rnd(); break;
		default: f = "count+images"; break;
		}
		break;
	}
	case C_STAT: {
		struct cxlfork_stat *s = (void *)b;

		s->size = sizeof(*s);
		s->id = pick_id();
		f = "id";
		if (chance(20)) {
			f = "reserved";
			s->__reserved = pick_flags(0);
		}
		break;
	}
	case C_READ: {
		struct cxlfork_read *r = (void *)b;
		uint64_t isz = 0;

		r->size = sizeof(*r);
		r->id = pick_id();
		for (int i = 0; i < n_imgs; i++)
			if (imgs[i].id == r->id)
				isz = imgs[i].size;
		/* Mostly small reads: the pool is slow to read under TCG. */
		switch (rndn(8)) {
		case 0: r->offset = 0; r->length = isz; break;
		case 1: r->offset = isz; r->length = rndn(2); break;
		case 2: r->offset = isz - 1; r->length = 2; break;
		case 3: r->offset = ~0ULL - rndn(4096); r->length = 4096 + rndn(4096); break;
		case 4: r->offset = rndn(isz + 1); r->length = ~0ULL - rndn(4); break;
		default: r->offset = rndn(isz + 1) & ~(rndn(2) ? 4095ULL : 0); r->length = rndn(3 * PAGE); break;
		}
		if (r->offset == 0 && r->length == isz && !chance(10))
			r->length = PAGE;	/* a whole image: rarely */
		r->buf = nested_ptr(r->length < outlen ? r->length : outlen, &k->nested);
		f = "id+offset+length+buf";
		if (chance(15)) {
			f = "reserved";
			r->__reserved = pick_flags(0);
		}
		break;
	}
	case C_DELETE: {
		struct cxlfork_delete *d = (void *)b;

		d->size = sizeof(*d);
		d->id = pick_id();
		f = "id";
		if (chance(15)) {
			f = "reserved";
			d->__reserved = pick_flags(0);
		}
		break;
	}
	case C_RESTORE: {
		struct cxlfork_restore *r = (void *)b;

		r->size = sizeof(*r);
		r->id = pick_id();
		r->policy = rndn(3);
		r->flags = CXLFORK_RESTORE_SKIP_FILES;
		switch (rndn(5)) {
		case 0: f = "flags"; r->flags = pick_flags(CXLFORK_RESTORE_FLAGS); break;
		case 1: f = "policy"; r->policy = pick_count(1); break;
		case 2: f = "reserved"; r->__reserved = pick_flags(0); break;
		default: f = "id"; break;
		}
		break;
	}
	case C_RESTORE_THREAD: {
		struct cxlfork_restore_thread *t = (void *)b;

		t->size = sizeof(*t);
		t->id = pick_id();
		f = "id";
		if (chance(20)) {
			f = "flags";
			t->flags = pick_flags(0);
		}
		break;
	}
	case C_CLONE_STAT: {
		struct cxlfork_clone_stat *s = (void *)b;

		s->size = sizeof(*s);
		s->pid = pick_pid_any();
		f = "pid";
		if (chance(20)) {
			f = "outputs";
			s->image_id = rnd();
		}
		break;
	}
	default:
		break;
	}
	k->field = f;
}

static void gen_call(struct call *k, int allow_detach)
{
	unsigned min, real;
	uint32_t size;

	memset(k, 0, offsetof(struct call, buf));
	k->field = k->nested = "-";
	/* The command. */
	if (chance(75)) {
		/* Weights: the pool is slow to read under TCG (LIST reads every
		 * host's directory), a restore child forks. */
		static const unsigned w[NCMDS] = { 110, 1, 20, 150, 1, 179, 150, 150, 60, 149, 30 };	/* per mille */
		unsigned x = rndn(1000);

		for (k->ci = 0; k->ci < (int)NCMDS - 1 && x >= w[k->ci]; k->ci++)
			x -= w[k->ci];
		k->c = &cmds[k->ci];
		k->nr = k->c->nr;
		k->dir = k->c->dir;
		k->szbits = chance(80) ? k->c->size : rndn(0x4000);
	} else {
		k->nr = chance(90) ? rndn(0x41) : rndn(0x100);
		k->dir = rndn(4);
		k->szbits = rndn(4) == 0 ? rndn(0x4000) : (unsigned[]){ 0, 1, 8, 16, 24, 40, 88, 112, 216, 1640 }[rndn(10)];
		k->c = cmd_of(k->nr, k->dir);
		k->ci = k->c ? (int)(k->c - cmds) : -1;
	}
	if (k->c && k->ci == C_DETACH && !allow_detach)
		k->c = NULL, k->nr = 0x3f, k->ci = -1;	/* as root outside phase 4: an unknown number */
	real = k->c ? k->c->size : 64;
	min = k->c ? k->c->min : 0;

	/* The contents. */
	if (k->c && chance(70)) {
		real_struct(k);
	} else {
		k->random_bytes = 1;
		for (size_t i = 0; i < sizeof(k->buf); i += 8) {
			uint64_t v = rnd();

			memcpy(k->buf + i, &v, 8);
		}
		k->field = "random-bytes";
	}
	/* The size field. */
	switch (rndn(12)) {
	case 0: size = 0; break;
	case 1: size = min ? rndn(min) : 0; break;		/* too small */
	case 2: size = min; break;
	case 3: size = real + 1 + rndn(64); break;		/* larger, tail zero */
	case 4: size = real + 1 + rndn(2 * PAGE - real); break;	/* up to 8 KiB */
	case 5: size = MAX_STRUCT + rndn(2); break;
	case 6: size = (uint32_t[]){ 0x7fffffff, 0x80000000, 0xffffffff, 0x10000 }[rndn(4)]; break;
	default: size = real; break;
	}
	if (k->random_bytes && chance(30))
		memcpy(&size, k->buf, 4);	/* as random as the rest */
	memcpy(k->buf, &size, 4);
	k->size = size;
	k->len = size < 4 ? 4 : size > 2 * PAGE ? 2 * PAGE : size;
	if (k->len < real && real <= 2 * PAGE)
		k->len = real;
	/* A larger struct: its tail, past what the kernel knows, is zero
	 * (accepted) or, sometimes, not (E2BIG). */
	if (!k->random_bytes && size > real && k->len > real) {
		memset(k->buf + real, 0, k->len - real);
		if (chance(30))
			k->buf[real + rndn(k->len - real)] = 1 + rndn(255);
	}

	/* The pointer. */
	switch (rndn(20)) {
	case 0: {
		k->place = "null-or-kernel";
		k->arg = bad_ptrs[rndn(sizeof(bad_ptrs) / sizeof(bad_ptrs[0]))];
		break;
	}
	case 1:
		k->place = "unmapped";
		k->arg = chance(50) ? (uint64_t)A_HOLE : (uint64_t)unmapped_far + rndn(1 << 20);
		break;
	case 2:
		k->place = "prot-none";
		k->arg = (uint64_t)A_GUARD + rndn(PAGE);
		break;
	case 3: case 4: {
		/* Ends at the guard page, or runs k bytes into it. */
		size_t over = chance(50) ? 0 : 1 + rndn(k->len);

		k->place = over ? "crosses-guard" : "ends-at-guard";
		k->arg = (uint64_t)A_GUARD - k->len + over;
		memcpy((void *)k->arg, k->buf, k->len - over);
		break;
	}
	case 5: case 6: {
		/* In the read-only page (outputs cannot be written), or running
		 * from it into the unmapped hole. */
		size_t over = k->len > PAGE || chance(30) ? 1 + rndn(k->len < PAGE ? k->len : PAGE) : 0;
		size_t in = k->len - over;

		if (in > PAGE) {
			over = k->len - PAGE;
			in = PAGE;
		}
		k->place = over ? "ro-crosses-hole" : "read-only";
		k->arg = (uint64_t)A_HOLE - in;
		mprotect(A_RO, PAGE, PROT_READ | PROT_WRITE);
		memcpy((void *)k->arg, k->buf, in);
		mprotect(A_RO, PAGE, PROT_READ);
		break;
	}
	case 7: case 8: {
		size_t mis = 1 + rndn(7);

		k->place = "misaligned";
		k->arg = (uint64_t)A_RW + mis;
		memcpy((void *)k->arg, k->buf, k->len);
		break;
	}
	default:
		k->place = "buffer";
		k->arg = (uint64_t)A_RW;
		memcpy((void *)k->arg, k->buf, k->len);
		break;
	}
	k->size_readable = safe_read((void *)k->arg, &size, 4) == 0;
	if (k->size_readable)
		k->size = size;
	k->readable = safe_read((void *)k->arg, k->buf, k->len) == 0;
}

static unsigned long cmd_number(const struct call *k)
{
	return ((unsigned long)k->dir << 30) | ((unsigned long)(k->szbits & 0x3fff) << 16) |
	       (CXLFORK_IOC_MAGIC << 8) | k->nr;
}

static void describe(const struct call *k, char *out, size_t len)
{
	snprintf(out, len, "%s nr %#x dir %u szbits %#x size %u place %s field %s nested %s arg %#llx",
		 k->c ? k->c->name : "unknown", k->nr, k->dir, k->szbits, k->size, k->place, k->field, k->nested,
		 (unsigned long long)k->arg);
}

/* Would the kernel reach an existing image's restore with this call? Then
 * it is made in a forked child (which may become a clone). */
static int restore_needs_child(const struct call *k)
{
	struct cxlfork_restore r;

	if (k->ci != C_RESTORE)
		return 0;
	if (safe_read((void *)k->arg, &r, sizeof(r)))
		return 0;	/* EFAULT before anything */
	if (r.size < 24 || r.size > MAX_STRUCT)
		return 0;
	return id_known(r.id);
}

/* Writes len bytes at offset off of the argument (even in the read-only page). */
static void patch_arg(struct call *k, size_t off, const void *v, size_t len)
{
	char *p = (char *)k->arg + off;
	int ro = p >= A_RO && p < A_HOLE;

	if (off + len > k->len || safe_read(p, k->buf + off, len))
		return;
	if (ro)
		mprotect(A_RO, PAGE, PROT_READ | PROT_WRITE);
	memcpy(p, v, len);
	if (ro)
		mprotect(A_RO, PAGE, PROT_READ);
	memcpy(k->buf + off, v, len);
}

/* Keeps a call from harming the harness: as root, a checkpoint by pid only
 * of the fuzzer's own processes (never init: SIGKILL/SIGSTOP from the
 * module reach it); the fuzzer's reference images are not deleted. */
static void sanitize(struct call *k)
{
	if (k->ci == C_CKPT && is_root) {
		int32_t pid;

		if (!safe_read((char *)k->arg + 8, &pid, 4) && !checkpoint_pid_ok(pid)) {
			pid = 4194304 + (pid & 0xfff);	/* no such process */
			patch_arg(k, 8, &pid, 4);
		}
	}
	if (k->ci == C_DELETE) {
		uint64_t id;

		if (!safe_read((char *)k->arg + 8, &id, 8) &&
		    (id == ref_exit_id || (id == ref_wait_id && live_clone <= 0))) {
			id ^= 1ULL << 47;	/* no such image */
			patch_arg(k, 8, &id, 8);
		}
	}
}

/* The documented errno of a call whose result the ABI fixes, or 0. */
static int exact_errno(const struct call *k)
{
	if (!k->c)
		return ENOTTY;
	if (k->ci == C_DETACH)
		return is_root ? 0 : EPERM;
	if (k->ci == C_ATTACH && !is_root)
		return EPERM;
	if (!k->size_readable)
		return EFAULT;
	if (k->size < k->c->min)
		return EINVAL;
	if (k->size > MAX_STRUCT)
		return E2BIG;
	return 0;
}

/* After a successful call: clean up what it made. */
static void after_success(const struct call *k)
{
	struct phase_stats *ps = &sh->ph[phase];

	if (k->ci == C_CKPT) {
		struct cxlfork_checkpoint c;
		int gone = 0;

		ps->checkpoints++;
		if (safe_read((void *)k->arg, &c, sizeof(c)) == 0 && c.image_id) {
			struct cxlfork_delete d = { .size = sizeof(d), .id = c.image_id };

			gone = ioctl(devfd, CXLFORK_IOC_DELETE, &d) == 0;
			ps->deletes += gone;
		}
		if (!gone)
			gc_images();	/* LIST is slow: only when the id is unknown */
	} else if (k->ci == C_DELETE) {
		ps->deletes++;
		refresh_images();
	}
}

static void check_result(const struct call *k, long r, int e)
{
	struct phase_stats *ps = &sh->ph[phase];
	char d[200];
	int exact = exact_errno(k);

	ps->calls++;
	if (r == 0 || (r > 0 && k->ci != C_CKPT)) {
		if (k->c)
			ps->ok[k->nr]++;
		if (exact) {
			describe(k, d, sizeof(d));
			ps->unexpected++;
			note("UNEXPECTED: phase %s: %s: returned %ld, expected errno %d (%s)", phase_name[phase], d, r, exact,
			     strerror(exact));
		} else if (!is_root && (k->ci == C_ATTACH || k->ci == C_DETACH)) {
			describe(k, d, sizeof(d));
			ps->unexpected++;
			note("UNEXPECTED: phase %s: %s succeeded as nobody", phase_name[phase], d);
		} else if (k->ci == C_DELETE && !is_root) {
			struct cxlfork_delete dl;

			if (!safe_read((void *)k->arg, &dl, sizeof(dl)) &&
			    (dl.id == root_ref_ids[0] || dl.id == root_ref_ids[1])) {
				describe(k, d, sizeof(d));
				ps->unexpected++;
				note("UNEXPECTED: phase %s: nobody deleted root's image: %s", phase_name[phase], d);
			}
		}
		after_success(k);
		return;
	}
	if (r > 0) {
		/* CHECKPOINT returned > 0: this process is a clone of an image
		 * of the fuzzer (a restore child reached one). */
		_exit(CLONE_OF_FUZZER);
	}
	if (e > 0 && e < NERR)
		ps->err[e]++;
	if ((exact && e != exact) || (!exact && !errno_allowed(k->ci, e)) || e == deny_errno) {
		describe(k, d, sizeof(d));
		ps->unexpected++;
		if (exact && e != exact)
			note("UNEXPECTED: phase %s: %s: errno %d (%s), expected %d (%s)", phase_name[phase], d, e, strerror(e),
			     exact, strerror(exact));
		else
			note("UNEXPECTED: phase %s: %s: errno %d (%s)", phase_name[phase], d, e, strerror(e));
	}
	if (k->ci == C_CKPT && e == EFAULT && k->readable && !strncmp(k->place, "read-only", 9))
		gc_images();	/* a checkpoint whose output could not be written */
}

static void do_call(struct call *k, uint64_t iter)
{
	uint64_t t0;
	long r;
	int e;

	sanitize(k);
	if (verbose) {
		char d[200];

		describe(k, d, sizeof(d));
		printf("# %s %llu: %s\n", phase_name[phase], (unsigned long long)iter, d);
		fflush(stdout);
	}
	if (k->ci == C_RESTORE && restore_needs_child(k)) {
		struct cxlfork_restore req;
		int st, err = 0;

		safe_read((void *)k->arg, &req, sizeof(req));
		/* The child makes the very same call (same pointer, same bytes). */
		watch_begin(CHILD_TIMEOUT_S + 30, "%s %llu: restore child", phase_name[phase], (unsigned long long)iter);
		t0 = now_ns();
		{
			char d[200];

			describe(k, d, sizeof(d));
			st = run_restore_child(cmd_number(k), (void *)k->arg, req.id, &err, NULL, d);
		}
		watch_end();
		sh->ph[phase].calls++;
		sh->ph[phase].cmd_ns[NCMDS + 1] += now_ns() - t0;
		sh->ph[phase].cmd_n[NCMDS + 1]++;
		if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_REFUSED && st < 0x10000) {
			/* As check_result, with the child's errno. */
			int exact = exact_errno(k);
			char d[200];

			sh->ph[phase].restore_children++;
			sh->ph[phase].restore_refused++;
			if (err > 0 && err < NERR)
				sh->ph[phase].err[err]++;
			if ((exact && err != exact) || (!exact && !errno_allowed(C_RESTORE, err)) || err == deny_errno) {
				describe(k, d, sizeof(d));
				sh->ph[phase].unexpected++;
				note("UNEXPECTED: phase %s: %s (in a child): errno %d (%s)", phase_name[phase], d, err, strerror(err));
			}
		} else {
			restore_outcome(&req, st, err, k->field);
		}
		return;
	}
	watch_begin(CALL_TIMEOUT_S, "%s %llu: %s nr %#x dir %u size %u place %s field %s", phase_name[phase],
		    (unsigned long long)iter, k->c ? k->c->name : "unknown", k->nr, k->dir, k->size, k->place, k->field);
	errno = 0;
	t0 = now_ns();
	r = ioctl(devfd, cmd_number(k), (void *)k->arg);
	e = errno;
	t0 = now_ns() - t0;
	watch_end();
	sh->ph[phase].cmd_ns[k->c ? k->ci : NCMDS] += t0;
	sh->ph[phase].cmd_n[k->c ? k->ci : NCMDS]++;
	if (r < 0 && e == 0)
		e = -1;
	t0 = now_ns();
	check_result(k, r, e);
	if (k->ci == C_CKPT)
		reap_targets();
	sh->ph[phase].post_ns += now_ns() - t0;
}

/* -------------------------------------------------------------------- */
/* Phases.                                                               */

static void setup_identity(void)
{
	char path[64];

	devfd = open(DEV, O_RDWR);
	if (devfd < 0) {
		printf("# open %s: %s\n", DEV, strerror(errno));
		exit(1);
	}
	nullfd = open("/dev/null", O_RDWR);
	snprintf(path, sizeof(path), "/proc/%d/mem", getpid());
	selfmemfd = open(path, O_RDONLY);
	is_root = geteuid() == 0;
	for (int i = 0; i < MAX_TARGETS; i++)
		spawn_target(i);
	ref_exit_id = make_reference(0, "ioctl_fuzz-ref");
	ref_wait_id = make_reference(1, "ioctl_fuzz-ref-wait");
	refresh_images();
	printf("# %s: reference images %#llx %#llx, %d images visible\n", phase_name[phase],
	       (unsigned long long)ref_exit_id, (unsigned long long)ref_wait_id, n_imgs);
	/* A live clone: CLONE_STAT has one to look at, DELETE meets a lease. */
	if (ref_wait_id) {
		struct cxlfork_restore r = { .size = sizeof(r), .id = ref_wait_id, .flags = CXLFORK_RESTORE_SKIP_FILES };
		int err = 0, st = restore_child(&r, &err, &live_clone);

		if (st != 0x10000) {
			live_clone = -1;
			note("phase %s: the waiting reference image did not restore (status %#x errno %d)", phase_name[phase], st,
			     err);
			sh->ph[phase].unexpected++;
		}
	}
}

static void end_live_clone(void)
{
	if (live_clone > 0) {
		kill(live_clone, SIGKILL);
		waitpid(live_clone, NULL, 0);
		live_clone = -1;
	}
}

static void sweep(void)
{
	static const unsigned sizes[] = { 0, 1, 8, 24, 112, 216, 1640, 0x3fff };
	struct call k;
	uint64_t t0 = now_ns(), it = 0;

	phase = PH_SWEEP;
	for (unsigned nr = 0; nr <= 0x40; nr++)
		for (unsigned dir = 0; dir < 4; dir++)
			for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
				memset(&k, 0, offsetof(struct call, buf));
				k.nr = nr;
				k.dir = dir;
				k.szbits = sizes[s];
				k.c = cmd_of(nr, dir);
				k.ci = k.c ? (int)(k.c - cmds) : -1;
				if (k.ci == C_DETACH && is_root)
					continue;
				k.place = "zeroed";
				k.field = k.nested = "-";
				k.arg = (uint64_t)A_RW;
				memset(A_RW, 0, 2 * PAGE);
				k.len = 8192;
				k.size = 0;
				k.size_readable = k.readable = 1;
				do_call(&k, it++);
			}
	sh->ph[PH_SWEEP].ns = now_ns() - t0;
	sh->ph[PH_SWEEP].done = 1;
}

static void random_phase(int ph, uint64_t n)
{
	static struct call k;
	uint64_t t0 = now_ns();

	phase = ph;
	rng = seed ^ (0x1000ULL * ph);
	printf("# phase %s: %llu calls as uid %d, seed %llu\n", phase_name[ph], (unsigned long long)n, getuid(),
	       (unsigned long long)seed);
	fflush(stdout);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t tg = now_ns();

		gen_call(&k, ph == PH_DETACH || !is_root);
		sh->ph[ph].gen_ns += now_ns() - tg;
		do_call(&k, i);
		if (i % 5000 == 4999) {
			/* Drop what LIST and READ wrote: a self-checkpoint copies it. */
			madvise(outbuf, outlen, MADV_DONTNEED);
			gc_images();
			reap_targets();
			printf("# phase %s: %llu calls, %.0f calls/s\n", phase_name[ph], (unsigned long long)i + 1,
			       (i + 1) / ((now_ns() - t0) / 1e9));
			fflush(stdout);
		}
	}
	sh->ph[ph].ns = now_ns() - t0;
	gc_images();
}

static int dax_range(unsigned long long *base, unsigned long long *size)
{
	const char *dev = getenv("CXLFORK_DAX"), *name;
	char path[256];
	FILE *f;
	int ok;

	dev = dev ? dev : "/dev/dax0.0";
	name = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/resource", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%llx", base) == 1;
	fclose(f);
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/size", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = ok && fscanf(f, "%llu", size) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* Phase 4 (root): detach, fuzz with no pool (ATTACH with random ranges,
 * never FORMAT), re-attach as the guest init did. */
static void detach_phase(uint64_t n)
{
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	struct phase_stats *ps = &sh->ph[PH_DETACH];
	unsigned long long base = 0, size = 0;
	uint8_t uuid[16];
	uint64_t t0 = now_ns();
	int r, e;

	phase = PH_DETACH;
	rng = seed ^ 0x4000;
	if (ioctl(devfd, CXLFORK_IOC_POOL_INFO, &info) || dax_range(&base, &size)) {
		snprintf(sh->detach_msg, sizeof(sh->detach_msg), "no pool info or dax range: %s", strerror(errno));
		return;
	}
	memcpy(uuid, info.uuid, 16);
	host_id = info.host_id;
	/* A live clone holds the pool. */
	if (live_clone > 0 && waitpid(live_clone, NULL, WNOHANG) == live_clone)
		live_clone = -1;
	if (live_clone <= 0 && ref_wait_id) {
		struct cxlfork_restore rq = { .size = sizeof(rq), .id = ref_wait_id, .flags = CXLFORK_RESTORE_SKIP_FILES };
		int err = 0;

		if (restore_child(&rq, &err, &live_clone) != 0x10000)
			live_clone = -1;
	}
	if (live_clone <= 0) {
		snprintf(sh->detach_msg, sizeof(sh->detach_msg), "no live clone to hold the pool");
		return;
	}
	{
		r = ioctl(devfd, CXLFORK_IOC_POOL_DETACH);
		e = errno;
		ps->calls++;
		if (r == 0 || e != EBUSY) {
			snprintf(sh->detach_msg, sizeof(sh->detach_msg), "detach with a live clone: %d errno %d (%s), expected EBUSY",
				 r, r ? e : 0, r ? strerror(e) : "success");
			if (r == 0)
				goto reattach;
			return;
		}
		end_live_clone();
	}
	kill_targets();
	for (int i = 0; i < 50; i++) {
		r = ioctl(devfd, CXLFORK_IOC_POOL_DETACH);
		e = errno;
		ps->calls++;
		if (r == 0 || e != EBUSY)
			break;
		usleep(100000);
	}
	if (r) {
		snprintf(sh->detach_msg, sizeof(sh->detach_msg), "detach: %s", strerror(e));
		return;
	}
	/* No pool: every call, ATTACH with ranges around the real one. */
	for (uint64_t i = 0; i < n; i++) {
		uint64_t attached_before = ps->ok[0x01];
		struct call k;
		uint32_t flags;

		gen_call(&k, 1);
		if (k.ci == C_ATTACH) {
			static const uint64_t sizes[] = { 0, 2 << 20, 4 << 20, 1ULL << 30, 1ULL << 63 };
			uint64_t pb, psz;
			uint32_t hid = host_id;

			switch (rndn(6)) {
			case 0: pb = base; psz = size; break;
			case 1: pb = base + (2 << 20); psz = size - (2 << 20); break;
			case 2: pb = base; psz = sizes[rndn(5)]; break;
			case 3: pb = rndn(2) ? 0 : 1ULL << 20; psz = 64 << 20; break;	/* System RAM */
			case 4: pb = base + rndn(4096); psz = size; break;
			default: pb = rnd(); psz = rnd(); break;
			}
			if (!k.random_bytes || chance(50)) {
				patch_arg(&k, 8, &pb, 8);
				patch_arg(&k, 16, &psz, 8);
				if (chance(70))
					patch_arg(&k, 24, &hid, 4);
			}
			/* Never FORMAT: it would destroy the pool's images. */
			if (!safe_read((char *)k.arg + 4, &flags, 4)) {
				flags &= ~CXLFORK_ATTACH_FORMAT;
				patch_arg(&k, 4, &flags, 4);
				if (safe_read((char *)k.arg + 4, &flags, 4) || (flags & CXLFORK_ATTACH_FORMAT))
					continue;
			}
		}
		do_call(&k, i);
		if (ps->ok[0x01] != attached_before) {
			/* It attached (as some host): detach again. */
			ps->attaches++;
			if (ioctl(devfd, CXLFORK_IOC_POOL_DETACH))
				note("phase detach: detach after a fuzzed attach: %s", strerror(errno));
		}
	}
reattach:
	{
		struct cxlfork_pool_attach a = { .size = sizeof(a), .phys_base = base, .phys_size = size, .host_id = host_id };

		ioctl(devfd, CXLFORK_IOC_POOL_DETACH);
		if (ioctl(devfd, CXLFORK_IOC_POOL_ATTACH, &a)) {
			snprintf(sh->detach_msg, sizeof(sh->detach_msg), "re-attach [%#llx, +%#llx) as host %u: %s", base, size,
				 host_id, strerror(errno));
			return;
		}
		memset(&info, 0, sizeof(info));
		info.size = sizeof(info);
		if (ioctl(devfd, CXLFORK_IOC_POOL_INFO, &info) || memcmp(uuid, info.uuid, 16)) {
			snprintf(sh->detach_msg, sizeof(sh->detach_msg), "after re-attach: pool info %s or another uuid",
				 strerror(errno));
			return;
		}
	}
	ps->ns = now_ns() - t0;
	if (!sh->detach_msg[0])
		sh->detach_ok = 1;
}

/* Phase 5: the pool works: info, references listed, a round trip. */
static void final_phase(void)
{
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	struct cxlfork_restore r = { .size = sizeof(r), .flags = CXLFORK_RESTORE_SKIP_FILES };
	uint64_t id;
	int st, err = 0, listed = 0;

	phase = PH_FINAL;
	if (ioctl(devfd, CXLFORK_IOC_POOL_INFO, &info)) {
		snprintf(sh->final_msg, sizeof(sh->final_msg), "POOL_INFO: %s", strerror(errno));
		return;
	}
	refresh_images();
	for (int i = 0; i < n_imgs; i++)
		if (imgs[i].id == ref_exit_id)
			listed = 1;
	if (!listed) {
		snprintf(sh->final_msg, sizeof(sh->final_msg), "reference image %#llx no longer listed",
			 (unsigned long long)ref_exit_id);
		return;
	}
	id = make_reference(0, "ioctl_fuzz-final");
	if (!id) {
		snprintf(sh->final_msg, sizeof(sh->final_msg), "checkpoint of a tiny program failed");
		return;
	}
	for (int pol = 0; pol < 3; pol++) {
		r.id = id;
		r.policy = pol;
		st = restore_child(&r, &err, NULL);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != REF_EXIT) {
			snprintf(sh->final_msg, sizeof(sh->final_msg),
				 "restore of %#llx (policy %d): status %#x errno %d (%s), expected a clone exiting %d",
				 (unsigned long long)id, pol, st, err, strerror(err), REF_EXIT);
			return;
		}
	}
	{
		struct cxlfork_delete d = { .size = sizeof(d), .id = id };

		for (int i = 0; i < 50 && ioctl(devfd, CXLFORK_IOC_DELETE, &d) && errno == EBUSY; i++)
			usleep(100000);
	}
	sh->final_ok = 1;
	printf("# final: pool %u MiB free of %llu, %u images; round trip of %#llx under mow, moa, ht\n",
	       (unsigned)(info.free_bytes >> 20), (unsigned long long)info.pool_size >> 20, info.images,
	       (unsigned long long)id);
}

static void nobody_worker(uint64_t n)
{
	uint64_t rr[2] = { ref_exit_id, ref_wait_id };

	my_watch = 1;
	/* Root's clone and targets stay root's (they live on, for phase 4). */
	live_clone = -1;
	for (int i = 0; i < MAX_TARGETS; i++) {
		close(targets[i].memfd);
		close(targets[i].mapsfd);
		targets[i].pid = 0;
	}
	close(devfd);
	close(probe_pipe[0]);
	close(probe_pipe[1]);
	probe_pipe[0] = probe_pipe[1] = -1;
	close(selfmemfd);
	close(nullfd);
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
		printf("# setuid nobody: %s\n", strerror(errno));
		_exit(1);
	}
	/* setuid made this process undumpable: its own children could not
	 * have their /proc/PID/mem opened by it. */
	prctl(PR_SET_DUMPABLE, 1);
	root_ref_ids[0] = rr[0];
	root_ref_ids[1] = rr[1];
	phase = PH_NOBODY;
	setup_identity();
	random_phase(PH_NOBODY, n);
	end_live_clone();
	kill_targets();
	gc_images();
	{
		struct cxlfork_delete d = { .size = sizeof(d) };

		d.id = ref_exit_id;
		ioctl(devfd, CXLFORK_IOC_DELETE, &d);
		d.id = ref_wait_id;
		for (int i = 0; i < 50 && ioctl(devfd, CXLFORK_IOC_DELETE, &d) && errno == EBUSY; i++)
			usleep(100000);
	}
	sh->ph[PH_NOBODY].done = 1;
	_exit(0);
}

static void root_worker(uint64_t n)
{
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	uint64_t n_root, n_nobody, swept;
	pid_t p;
	int st;

	my_watch = 0;
	setup_memory();
	phase = PH_ROOT;
	devfd = open(DEV, O_RDWR);
	if (devfd < 0 || ioctl(devfd, CXLFORK_IOC_POOL_INFO, &info)) {
		printf("# no pool: %s\n", strerror(errno));
		_exit(1);
	}
	host_id = info.host_id;
	close(devfd);
	setup_identity();
	sweep();
	swept = sh->ph[PH_SWEEP].calls;
	n = n > swept ? n - swept : 0;
	n_root = n / 2;
	n_nobody = n - n_root;
	random_phase(PH_ROOT, n_root);
	sh->ph[PH_ROOT].done = 1;
	fflush(stdout);
	p = fork();
	if (p == 0)
		nobody_worker(n_nobody);
	waitpid(p, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		note("the nobody worker ended with status %#x", st);
	detach_phase(2000);
	final_phase();
	end_live_clone();
	kill_targets();
	gc_images();
	{
		struct cxlfork_delete d = { .size = sizeof(d) };

		d.id = ref_exit_id;
		ioctl(devfd, CXLFORK_IOC_DELETE, &d);
		d.id = ref_wait_id;
		for (int i = 0; i < 50 && ioctl(devfd, CXLFORK_IOC_DELETE, &d) && errno == EBUSY; i++)
			usleep(100000);
	}
	_exit(0);
}

/* -------------------------------------------------------------------- */
/* Supervisor: watches for stuck calls, reads the kernel log, reports.   */

static void show_stuck(const struct watch *w)
{
	char path[64], buf[4096];
	int fd;
	ssize_t n;

	printf("# HANG: process %d: %s: no return after %llu s\n", w->pid, w->desc,
	       (unsigned long long)((now_ns() - w->start_ns) / 1000000000ULL));
	snprintf(path, sizeof(path), "/proc/%d/wchan", w->pid);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		printf("# HANG: wchan %s\n", buf);
		close(fd);
	}
	snprintf(path, sizeof(path), "/proc/%d/stack", w->pid);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			printf("# HANG: %s\n", l);
		close(fd);
	}
}

static const char *const kreport[] = {
	"point of no return", "WARNING:", "BUG:", "Oops", "Call Trace", "KASAN", "UBSAN", "lockdep", "possible circular",
	"general protection", "refcount_t", "list_add corruption", "list_del corruption", "Kernel panic", "INFO: task",
	"rcu_sched self-detected", "soft lockup", "kmemleak", "Bad rss-counter", "KFENCE",
};

/* New kernel log records since kfd was opened: the reports among them. */
static int scan_kmsg(int kfd)
{
	char rec[8192];
	int found = 0, shown = 0;

	if (kfd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(kfd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!strncmp(msg, "traps: ", 7))
			continue;	/* a user-space fault (a clone's), not the kernel's */
		for (unsigned i = 0; i < sizeof(kreport) / sizeof(kreport[0]); i++)
			if (strstr(msg, kreport[i])) {
				found++;
				if (shown++ < 40)
					printf("# kmsg: %s", msg);
				break;
			}
	}
	return found;
}

int main(int argc, char **argv)
{
	uint64_t n = 100000, t0;
	size_t total = 0;
	int kfd, st, reports, fails = 0, tn = 0;
	pid_t w;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		seed = strtoull(argv[1], NULL, 0);
	} else {
		int fd = open("/dev/urandom", O_RDONLY);

		if (fd < 0 || read(fd, &seed, sizeof(seed)) != sizeof(seed))
			seed = now_ns();
		seed &= 0xffffffffffffULL;
	}
	if (argc > 2)
		n = strtoull(argv[2], NULL, 0);
	if (getenv("IOCTL_FUZZ_DENY"))
		deny_errno = atoi(getenv("IOCTL_FUZZ_DENY"));
	verbose = getenv("IOCTL_FUZZ_VERBOSE") != NULL;
	rng = seed;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset(sh, 0, sizeof(*sh));
	printf("KTAP version 1\n1..6\n");
	printf("# ioctl_fuzz seed %llu calls %llu (reproduce: ioctl_fuzz %llu %llu)\n", (unsigned long long)seed,
	       (unsigned long long)n, (unsigned long long)seed, (unsigned long long)n);
	if (geteuid() != 0) {
		printf("# must run as root\n");
		for (int i = 1; i <= 6; i++)
			printf("ok %d # SKIP not root\n", i);
		return 0;
	}
	kfd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kfd >= 0)
		lseek(kfd, 0, SEEK_END);
	t0 = now_ns();
	fflush(stdout);
	w = fork();
	if (w == 0)
		root_worker(n);
	/* Watch every call in progress. */
	for (;;) {
		pid_t r = waitpid(w, &st, WNOHANG);

		if (r == w)
			break;
		for (int i = 0; i < 4; i++) {
			struct watch *wt = &sh->watch[i];

			if (wt->active && now_ns() - wt->start_ns > wt->timeout_ns && !sh->hung) {
				sh->hung = 1;
				show_stuck(wt);
				snprintf(sh->note[sh->notes < MAX_NOTES ? sh->notes++ : MAX_NOTES - 1], sizeof(sh->note[0]),
					 "HANG: %s", wt->desc);
				kill(wt->pid, SIGKILL);
				kill(w, SIGKILL);
			}
		}
		if (sh->hung) {
			/* Give the killed processes 10 s to die. */
			for (int i = 0; i < 100 && waitpid(w, &st, WNOHANG) != w; i++)
				usleep(100000);
			break;
		}
		usleep(100000);
	}
	/* Results. */
	{
		static const int ph_test[] = { PH_SWEEP, PH_ROOT, PH_NOBODY };

		for (unsigned i = 0; i < 3; i++) {
			struct phase_stats *ps = &sh->ph[ph_test[i]];
			int ok = ps->done && !ps->unexpected && !sh->hung;

			fails += !ok;
			uint64_t in_calls = 0;

			for (unsigned c = 0; c < NCMDS + 2; c++)
				in_calls += ps->cmd_ns[c];
			printf("# %s: %llu calls in %.1f s (%.0f calls/s; %.1f s in the calls, %.1f s making them, %.1f s after them), %llu unexpected\n",
			       phase_name[ph_test[i]], (unsigned long long)ps->calls, ps->ns / 1e9,
			       ps->ns ? ps->calls / (ps->ns / 1e9) : 0.0, in_calls / 1e9, ps->gen_ns / 1e9,
			       ps->post_ns / 1e9, (unsigned long long)ps->unexpected);
			printf("%s %d %s phase: every call returned in time with an expected errno\n", ok ? "ok" : "not ok",
			       ++tn, phase_name[ph_test[i]]);
		}
		fails += !sh->detach_ok;
		if (!sh->detach_ok)
			printf("# detach: %s\n", sh->detach_msg[0] ? sh->detach_msg : "not reached");
		printf("# detach: %llu calls, %llu unexpected, %llu attaches\n", (unsigned long long)sh->ph[PH_DETACH].calls,
		       (unsigned long long)sh->ph[PH_DETACH].unexpected, (unsigned long long)sh->ph[PH_DETACH].attaches);
		printf("%s %d detach refused with a live clone, calls without a pool, re-attach\n",
		       sh->detach_ok && !sh->ph[PH_DETACH].unexpected ? "ok" : "not ok", ++tn);
		fails += sh->detach_ok && sh->ph[PH_DETACH].unexpected;
		fails += !sh->final_ok;
		if (!sh->final_ok)
			printf("# final: %s\n", sh->final_msg[0] ? sh->final_msg : "not reached");
		printf("%s %d the pool works at the end: info, references, checkpoint + restore round trip\n",
		       sh->final_ok ? "ok" : "not ok", ++tn);
	}
	reports = scan_kmsg(kfd);
	fails += reports != 0;
	printf("%s %d no kernel report or post-commit restore failure in the kernel log (%d found)\n",
	       reports ? "not ok" : "ok", ++tn, reports);
	/* Totals. */
	{
		uint64_t calls = 0, unexpected = 0, errs[NERR] = { 0 }, oks[256] = { 0 };
		uint64_t rc = 0, rr = 0, ce = 0, cs = 0, cr = 0, ck = 0, dl = 0;
		double secs = (now_ns() - t0) / 1e9;
		char line[1024];
		int len;

		for (int p = 0; p < NPHASE; p++) {
			struct phase_stats *ps = &sh->ph[p];

			calls += ps->calls;
			unexpected += ps->unexpected;
			rc += ps->restore_children;
			rr += ps->restore_refused;
			ce += ps->clone_exit;
			cs += ps->clone_signal;
			cr += ps->clone_running;
			ck += ps->checkpoints;
			dl += ps->deletes;
			for (int e = 0; e < NERR; e++)
				errs[e] += ps->err[e];
			for (int c = 0; c < 256; c++)
				oks[c] += ps->ok[c];
		}
		total = calls;
		printf("# calls: %llu in %.1f s: %.0f calls/s\n", (unsigned long long)calls, secs, calls / secs);
		printf("# unexpected: %llu\n", (unsigned long long)unexpected);
		len = snprintf(line, sizeof(line), "# successes:");
		for (unsigned i = 0; i < NCMDS; i++)
			len += snprintf(line + len, sizeof(line) - len, " %s %llu", cmds[i].name,
					(unsigned long long)oks[cmds[i].nr]);
		printf("%s\n", line);
		len = snprintf(line, sizeof(line), "# errnos:");
		for (int e = 0; e < NERR; e++)
			if (errs[e])
				len += snprintf(line + len, sizeof(line) - len, " %s %llu", strerrorname_np(e) ?: "?",
						(unsigned long long)errs[e]);
		printf("%s\n", line);
		printf("# restore children: %llu (refused %llu, clones exited %llu, clones running %llu, clones died %llu)\n",
		       (unsigned long long)rc, (unsigned long long)rr, (unsigned long long)ce, (unsigned long long)cr,
		       (unsigned long long)cs);
		printf("# images made and deleted: %llu checkpoints, %llu deletes\n", (unsigned long long)ck,
		       (unsigned long long)dl);
		len = snprintf(line, sizeof(line), "# ms per call:");
		for (unsigned c = 0; c < NCMDS + 2; c++) {
			uint64_t ns = 0, cnt = 0;

			for (int p = 0; p < NPHASE; p++) {
				ns += sh->ph[p].cmd_ns[c];
				cnt += sh->ph[p].cmd_n[c];
			}
			len += snprintf(line + len, sizeof(line) - len, " %s %.2f (%llu)",
					c < NCMDS ? cmds[c].name : c == NCMDS ? "unknown" : "restore-child",
					cnt ? ns / 1e6 / cnt : 0.0, (unsigned long long)cnt);
		}
		printf("%s\n", line);
		for (int i = 0; i < sh->notes; i++)
			printf("# note: %s\n", sh->note[i]);
		if (total < n)
			printf("# only %zu of %llu calls made\n", total, (unsigned long long)n);
	}
	printf("# reproduce: ioctl_fuzz %llu %llu\n", (unsigned long long)seed, (unsigned long long)n);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", 6 - fails, fails);
	return fails ? 1 : 0;
}
