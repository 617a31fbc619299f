// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork restore refusals (one guest, pool attached, run as root).
 *
 * Everything a restore could fail on after its point of no return must be
 * checked before it: a valid image restored where it cannot be given to
 * the caller fails with an errno and leaves the caller as it was (alive,
 * able to report it), never killed halfway. Each case takes a valid image
 * and a restorer (the cxlfork-restore stub itself, compiled in) in one
 * condition that used to pass the checks and then fail: an address-space
 * or data rlimit too small, a descriptor beyond RLIMIT_NOFILE, a mapped
 * file changed since the checkpoint, an executable mapping of a file on a
 * mount now noexec, a mapping below mmap_min_addr for a caller without
 * CAP_SYS_RAWIO, a sealed mapping in the caller, a caller sharing its file
 * table or its mm, a caller with a thread, a private writable mapping
 * larger than this host's memory (the original made it under
 * overcommit_memory=1, as on a bigger host; the restore finds the default
 * heuristic). Then the same image restores fine without the condition.
 * An image with an eventfd, a pipe holding bytes and an epoll watching
 * them needs the restorer to create them (CXLFORK_RESTORE_PREPARED_FDS):
 * without the flag, without the objects, or with an object unlike the
 * image's (counter, capacity, a registration missing), the restore is
 * refused with EOPNOTSUPP, EBADF or EINVAL; prepared right, the clone finds
 * them as its original left them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"

/* The restore stub, as cxlfork-ctl runs it: its main is ours to call. */
#define main cxlfork_restore_main
#include "../tools/cxlfork-restore.c"
#undef main

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define RX_DIR "/tmp/cxlfork-rx"
#define RX_FILE RX_DIR "/code"
#define HIGH_FD 700
#define LOW_ADDR 0x10000UL
/* A clone of the workload exits with this: the restore went through. */
#define CLONE_EXIT 200

enum { W_LOW = 1, W_HUGE = 2, W_THREADS = 4, W_EVENTS = 8 };
/* W_EVENTS: the id goes through this file (the report pipe's other end
 * would not be restorable without --skip-files); the descriptors. */
#define ID_FILE RX_DIR "/id"
enum { EV_EFD = 10, EV_PIPE_R = 11, EV_PIPE_W = 12, EV_EPOLL = 13 };
/* W_THREADS: the image's threads besides the main one. */
#define W_NTHREADS 2
/* W_HUGE: a private writable mapping of this size (the guest has 1-2 GiB). */
#define HUGE_SIZE (64UL << 30)

static void *thread_sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* Moves descriptor fd to number to: 0, or -1. */
static int move_fd(int fd, int to)
{
	if (fd < 0 || dup2(fd, to) != to)
		return -1;
	close(fd);
	return 0;
}

/* The workload: an executable mapping of RX_FILE, fd HIGH_FD open, an
 * mprotect'ed read-only region written before, optionally a page at
 * LOW_ADDR; it checkpoints itself and reports the image id. */
static pid_t workload(int flags, __u64 *id)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		struct rlimit nofile = { 1024, 1024 };
		char *ro;
		long r;
		int fd;

		close(p[0]);
		if (flags & W_LOW) {
			if (setgid(65534) || setuid(65534))
				_exit(90);
			if (mmap((void *)LOW_ADDR, PAGE_SIZE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)LOW_ADDR)
				_exit(91);
			*(volatile char *)LOW_ADDR = 1;
		}
		if (flags & W_HUGE) {
			char *h = mmap(NULL, HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (h == MAP_FAILED)
				_exit(89);
			h[0] = 1;
		}
		if (flags & W_THREADS) {
			pthread_t t;

			for (int i = 0; i < W_NTHREADS; i++)
				if (pthread_create(&t, NULL, thread_sleeper, NULL))
					_exit(88);
		}
		setrlimit(RLIMIT_NOFILE, &nofile);
		fd = open(RX_FILE, O_RDONLY);
		if (fd < 0 || mmap(NULL, PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			_exit(92);
		if (dup2(fd, HIGH_FD) != HIGH_FD)
			_exit(93);
		close(fd);
		/* Keeps fd 700 under a lower limit (as a fork child would). */
		nofile.rlim_cur = nofile.rlim_max = 600;
		setrlimit(RLIMIT_NOFILE, &nofile);
		/* 64 MiB of reserved address space (as a runtime's heap arena). */
		if (mmap(NULL, 64 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			_exit(94);
		ro = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(ro, 0x5a, 4 * PAGE_SIZE);
		mprotect(ro, 4 * PAGE_SIZE, PROT_READ);
		if (flags & W_EVENTS) {
			struct epoll_event ev = { .events = EPOLLIN };
			uint64_t v = 5;
			int pp[2];

			close(p[1]);
			if (move_fd(eventfd(0, EFD_NONBLOCK), EV_EFD) || write(EV_EFD, &v, 8) != 8 || pipe(pp) ||
			    move_fd(pp[0], EV_PIPE_R) || move_fd(pp[1], EV_PIPE_W) || write(EV_PIPE_W, "xy", 2) != 2 ||
			    move_fd(epoll_create1(0), EV_EPOLL))
				_exit(86);
			ev.data.u64 = 1;
			if (epoll_ctl(EV_EPOLL, EPOLL_CTL_ADD, EV_EFD, &ev))
				_exit(86);
			ev.data.u64 = 2;
			if (epoll_ctl(EV_EPOLL, EPOLL_CTL_ADD, EV_PIPE_R, &ev))
				_exit(86);
		}
		fd = open(CXLFORK_DEV, O_RDWR);
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0 && (flags & W_EVENTS)) {
			struct epoll_event evs[4];
			uint64_t v = 0;
			char b[4] = "";

			/* Both ready, the counter and the bytes as they were. */
			if (epoll_wait(EV_EPOLL, evs, 4, 0) != 2 || read(EV_EFD, &v, 8) != 8 || v != 5 ||
			    read(EV_PIPE_R, b, 4) != 2 || memcmp(b, "xy", 2))
				_exit(87);
		}
		if (r > 0)
			_exit(ro[PAGE_SIZE] == 0x5a ? CLONE_EXIT : 94);
		if (flags & W_EVENTS) {
			FILE *f = fopen(ID_FILE ".tmp", "w");

			if (!f || fprintf(f, "%llu\n", (unsigned long long)c.image_id) < 0 || fclose(f) ||
			    rename(ID_FILE ".tmp", ID_FILE))
				_exit(95);
		} else if (write(p[1], &c.image_id, sizeof(c.image_id)) != sizeof(c.image_id))
			_exit(95);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (flags & W_EVENTS) {
		FILE *f = NULL;
		unsigned long long v = 0;

		for (int i = 0; i < 300 && !(f = fopen(ID_FILE, "r")); i++)
			usleep(100 * 1000);
		if (f && fscanf(f, "%llu", &v) != 1)
			v = 0;
		if (f)
			fclose(f);
		unlink(ID_FILE);
		*id = v;
	} else if (read(p[0], id, sizeof(*id)) != sizeof(*id)) {
		*id = 0;
	}
	close(p[0]);
	return pid;
}

/* Kills a workload and deletes its image. */
static void end_workload(pid_t orig, __u64 id)
{
	char cmd[96];

	kill(orig, SIGKILL);
	waitpid(orig, NULL, 0);
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl rm %llu:%llu", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL));
	system(cmd);
}

/* The stub's arguments for image id, as `cxlfork-ctl restore --dry-run`
 * gives them (argv[0] is the stub's path). */
static int stub_args(__u64 id, char *buf, size_t len, char **argv, int max)
{
	char cmd[128];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %llu:%llu --dry-run --skip-files",
		 (unsigned long long)(id >> 48), (unsigned long long)(id & 0xffffffffffffULL));
	f = popen(cmd, "r");
	if (!f || !fgets(buf, len, f)) {
		if (f)
			pclose(f);
		return -1;
	}
	pclose(f);
	for (char *t = strtok(buf, " \n"); t && n < max - 1; t = strtok(NULL, " \n"))
		argv[n++] = t;
	argv[n] = NULL;
	return n;
}

enum cond {
	C_NONE, C_AS, C_NOFILE, C_SEAL, C_SHARED_FILES, C_SHARED_MM, C_THREAD, C_NOBODY,
	/* Of an image of W_NTHREADS + 1 threads: */
	C_FEWER,	/* one thread fewer waiting to become the image's */
	C_WRONG_ID,	/* one waiting for another image */
	/* Of an image of W_EVENTS, without SKIP_FILES: */
	C_EV_NOFLAG,	/* the objects created, PREPARED_FDS not set */
	C_EV_UNPREPARED,	/* PREPARED_FDS set, no object created */
	C_EV_COUNT,	/* the eventfd's counter 6, not 5 */
	C_EV_CAPACITY,	/* the pipe of another capacity */
	C_EV_WATCH,	/* the epoll without its second registration */
	C_EV_RIGHT,	/* as cxlfork-ctl prepares them */
};

/* The stub's ID POLICY FLAGS come after its options: &argv[FLAGS]. */
static char **flags_arg(char **argv)
{
	int i = 1;

	while (argv[i] && argv[i][0] == '-' && argv[i + 1])
		i += 2;
	return argv[i] && argv[i + 1] && argv[i + 2] ? &argv[i + 2] : NULL;
}

/* Drops argv[i] and argv[i + 1]. */
static void drop2(char **argv, int i)
{
	do
		argv[i] = argv[i + 2];
	while (argv[i++]);
}

/* Rewrites the stub's arguments for a C_EV_* condition; 0 or -1. */
static int events_cond(char **argv, enum cond c)
{
	static char flags[16], spec[4][64];
	char **fl = flags_arg(argv);
	unsigned long f;
	int k = 0, last_e = -1;

	if (!fl)
		return -1;
	f = strtoul(*fl, NULL, 0) & ~CXLFORK_RESTORE_SKIP_FILES;
	if (c == C_EV_NOFLAG)
		f &= ~CXLFORK_RESTORE_PREPARED_FDS;
	snprintf(flags, sizeof(flags), "%lu", f);
	*fl = flags;
	for (int i = 1; argv[i] && argv[i + 1];) {
		if (!strcmp(argv[i], "-E"))
			last_e = i;
		if (c == C_EV_UNPREPARED && (!strcmp(argv[i], "-F") || !strcmp(argv[i], "-E"))) {
			drop2(argv, i);
			continue;
		}
		if (!strcmp(argv[i], "-F") && k < 4) {
			int fd, obj, cl, sub;
			unsigned int fls;
			unsigned long long val;
			char kind[8];

			if (sscanf(argv[i + 1], "%d,%7[a-z],%d,%i,%d,%d,%llu", &fd, kind, &obj, (int *)&fls, &cl, &sub, &val) != 7)
				return -1;
			if (c == C_EV_COUNT && !strcmp(kind, "eventfd"))
				val++;
			if (c == C_EV_CAPACITY && !strcmp(kind, "pipe"))
				val *= 2;
			snprintf(spec[k], sizeof(spec[k]), "%d,%s,%d,0%o,%d,%d,%llu", fd, kind, obj, fls, cl, sub, val);
			argv[i + 1] = spec[k++];
		}
		i += 2;
	}
	if (c == C_EV_WATCH) {
		if (last_e < 0)
			return -1;
		drop2(argv, last_e);
	}
	return 0;
}

/* The image id a waiting thread of C_WRONG_ID names, and what each got. */
static __u64 wrong_id_of[2];
static int follower_err[2];

static void *follower_thread(void *arg)
{
	long i = (long)arg;
	struct cxlfork_restore_thread rt = { .size = sizeof(rt), .id = wrong_id_of[i] };
	int fd = open(CXLFORK_DEV, O_RDWR);

	follower_err[i] = ioctl(fd, CXLFORK_IOC_RESTORE_THREAD, &rt) < 0 ? errno : 0;
	return NULL;
}

/* The value after "-T" in the stub's arguments, or NULL. */
static char **threads_arg(char **argv)
{
	for (int i = 0; argv[i]; i++)
		if (!strcmp(argv[i], "-T") && argv[i + 1])
			return &argv[i + 1];
	return NULL;
}

static int sleeper(void *arg)
{
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pause();
	return 0;
}

/* Restores image id in a child under condition c; returns its wait status. */
static int restore_under(__u64 id, enum cond c)
{
	static char buf[8192];
	char *argv[128];
	int argc = stub_args(id, buf, sizeof(buf), argv, 128), st;
	pid_t pid;

	if (argc < 4)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct rlimit rl;

		switch (c) {
		case C_NONE:
			break;
		case C_AS:
			rl.rlim_cur = rl.rlim_max = 16 << 20;
			setrlimit(RLIMIT_AS, &rl);
			break;
		case C_NOFILE:	/* the image's own hard limit: fd 700 is above it */
			rl.rlim_cur = rl.rlim_max = 600;
			setrlimit(RLIMIT_NOFILE, &rl);
			break;
		case C_SEAL: {
			void *m = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m == MAP_FAILED || syscall(462 /* mseal */, m, PAGE_SIZE, 0))
				_exit(96);
			break;
		}
		case C_SHARED_FILES: {
			static char stack[64 << 10];

			if (clone(sleeper, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL) < 0)
				_exit(97);
			break;
		}
		case C_SHARED_MM: {	/* a CLONE_VM child, not a thread of it */
			static char stack[64 << 10];

			if (clone(sleeper, stack + sizeof(stack), CLONE_VM | SIGCHLD, NULL) < 0)
				_exit(97);
			break;
		}
		case C_THREAD: {
			pthread_t t;

			if (pthread_create(&t, NULL, thread_sleeper, NULL))
				_exit(97);
			break;
		}
		case C_NOBODY:
			if (setgid(65534) || setuid(65534))
				_exit(98);
			break;
		case C_FEWER: {
			static char fewer[16];
			char **t = threads_arg(argv);

			if (!t)
				_exit(99);
			snprintf(fewer, sizeof(fewer), "%d", atoi(*t) - 1);
			*t = fewer;
			break;
		}
		case C_WRONG_ID: {	/* the stub starts none: two of ours instead */
			char **t = threads_arg(argv);
			pthread_t f[2];
			int r;

			if (!t)
				_exit(99);
			*t = "1";
			wrong_id_of[0] = id;
			wrong_id_of[1] = id + 1;
			for (long i = 0; i < 2; i++)
				if (pthread_create(&f[i], NULL, follower_thread, (void *)i))
					_exit(97);
			r = cxlfork_restore_main(argc, argv);
			pthread_join(f[0], NULL);
			pthread_join(f[1], NULL);
			/* Each waiting thread got the leader's errno back. */
			_exit(follower_err[0] == EINVAL && follower_err[1] == EINVAL ? r : 99);
		}
		case C_EV_NOFLAG:
		case C_EV_UNPREPARED:
		case C_EV_COUNT:
		case C_EV_CAPACITY:
		case C_EV_WATCH:
		case C_EV_RIGHT:
			if (events_cond(argv, c))
				_exit(99);
			for (argc = 0; argv[argc]; argc++)
				;
			break;
		}
		_exit(cxlfork_restore_main(argc, argv));
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

/* No restore of this test died after its point of no return. */
static int clean_log(void)
{
	return system("dmesg | grep -q 'point of no return'") != 0;
}

FIXTURE(refuse) {
	pid_t orig;
	__u64 id;
};

FIXTURE_SETUP(refuse)
{
	static char code[PAGE_SIZE];
	int fd;

	memset(code, 0xc3, sizeof(code));
	mkdir(RX_DIR, 0755);
	ASSERT_EQ(0, mount("tmpfs", RX_DIR, "tmpfs", 0, "size=1m"));
	fd = open(RX_FILE, O_RDWR | O_CREAT, 0755);
	ASSERT_LE(0, fd);
	ASSERT_EQ(PAGE_SIZE, write(fd, code, PAGE_SIZE));
	close(fd);
	self->orig = workload(0, &self->id);
	ASSERT_LT(0, self->orig);
	ASSERT_NE(0, self->id);
}

FIXTURE_TEARDOWN(refuse)
{
	end_workload(self->orig, self->id);
	umount(RX_DIR);
}

/* The caller exits with err (the stub's exit status is the errno): it was
 * refused before the point of no return and lived to say so. */
#define ASSERT_REFUSED(st, err) do {						\
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("the restorer was killed (signal %d)", WTERMSIG(st)); \
	ASSERT_EQ((err) & 0x7f, WEXITSTATUS(st));				\
	ASSERT_TRUE(clean_log());						\
} while (0)

TEST_F(refuse, address_space_limit)
{
	ASSERT_REFUSED(restore_under(self->id, C_AS), ENOMEM);
}

TEST_F(refuse, descriptor_beyond_nofile)
{
	ASSERT_REFUSED(restore_under(self->id, C_NOFILE), EMFILE);
}

TEST_F(refuse, sealed_mapping_in_the_caller)
{
	ASSERT_REFUSED(restore_under(self->id, C_SEAL), EPERM);
}

TEST_F(refuse, caller_sharing_its_file_table)
{
	ASSERT_REFUSED(restore_under(self->id, C_SHARED_FILES), EBUSY);
}

TEST_F(refuse, caller_sharing_its_mm)
{
	ASSERT_REFUSED(restore_under(self->id, C_SHARED_MM), EBUSY);
}

TEST_F(refuse, caller_with_a_thread)
{
	ASSERT_REFUSED(restore_under(self->id, C_THREAD), EBUSY);
}

/* A mapping the original could make where memory is plentiful (here:
 * overcommit_memory=1) and this host's heuristic refuses. */
TEST_F(refuse, mapping_larger_than_this_hosts_memory)
{
	__u64 id;
	pid_t orig;
	int st, st2;

	ASSERT_EQ(0, system("echo 1 > /proc/sys/vm/overcommit_memory"));
	orig = workload(W_HUGE, &id);
	ASSERT_EQ(0, system("echo 0 > /proc/sys/vm/overcommit_memory"));
	ASSERT_LT(0, orig);
	ASSERT_NE(0, id);
	st = restore_under(id, C_NONE);
	/* Where the memory is there (as the original had it), it restores. */
	ASSERT_EQ(0, system("echo 1 > /proc/sys/vm/overcommit_memory"));
	st2 = restore_under(id, C_NONE);
	ASSERT_EQ(0, system("echo 0 > /proc/sys/vm/overcommit_memory"));
	end_workload(orig, id);
	ASSERT_REFUSED(st, ENOMEM);
	ASSERT_TRUE(WIFEXITED(st2));
	ASSERT_EQ(CLONE_EXIT, WEXITSTATUS(st2));
}

TEST_F(refuse, mapped_file_changed)
{
	int fd = open(RX_FILE, O_WRONLY | O_APPEND);

	ASSERT_EQ(1, write(fd, "x", 1));
	close(fd);
	ASSERT_REFUSED(restore_under(self->id, C_NONE), ESTALE);
}

TEST_F(refuse, exec_mapping_on_a_noexec_mount)
{
	ASSERT_EQ(0, mount(NULL, RX_DIR, NULL, MS_REMOUNT | MS_NOEXEC, "size=1m"));
	ASSERT_REFUSED(restore_under(self->id, C_NONE), EPERM);
}

TEST_F(refuse, mapping_below_mmap_min_addr)
{
	__u64 id;
	pid_t orig = workload(W_LOW, &id);
	int st;

	ASSERT_LT(0, orig);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, system("echo 1048576 > /proc/sys/vm/mmap_min_addr"));
	st = restore_under(id, C_NOBODY);
	system("echo 65536 > /proc/sys/vm/mmap_min_addr");
	end_workload(orig, id);
	ASSERT_REFUSED(st, EPERM);
}

/*
 * An image of several threads needs exactly that many threads in the
 * restorer, the others waiting in RESTORE_THREAD for this image: one fewer
 * (ETIMEDOUT after 10 s), one more that is not waiting (EBUSY), one
 * waiting for another image (EINVAL, which the waiting threads get back
 * too) are refused with the restorer intact; the image restores with the
 * right ones (its clone's main thread exits CLONE_EXIT).
 */
TEST_F(refuse, thread_group)
{
	__u64 id;
	pid_t orig = workload(W_THREADS, &id);
	int st[4];

	ASSERT_LT(0, orig);
	ASSERT_NE(0, id);
	st[0] = restore_under(id, C_FEWER);
	st[1] = restore_under(id, C_THREAD);
	st[2] = restore_under(id, C_WRONG_ID);
	st[3] = restore_under(id, C_NONE);
	end_workload(orig, id);
	ASSERT_REFUSED(st[0], ETIMEDOUT);
	ASSERT_REFUSED(st[1], EBUSY);
	ASSERT_REFUSED(st[2], EINVAL);
	ASSERT_TRUE(WIFEXITED(st[3]));
	ASSERT_EQ(CLONE_EXIT, WEXITSTATUS(st[3]));
}

/* RESTORE_THREAD alone: from the main thread (EBUSY), with flags
 * (EINVAL); threads waiting for a leader that never comes die with their
 * process (the group is freed: kmemleak on the debug kernel). */
TEST(restore_thread_alone)
{
	struct cxlfork_restore_thread rt = { .size = sizeof(rt), .id = 1 };
	int fd = open(CXLFORK_DEV, O_RDWR), st;
	pid_t pid;

	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, ioctl(fd, CXLFORK_IOC_RESTORE_THREAD, &rt));
	ASSERT_EQ(EBUSY, errno);
	pid = fork();
	if (pid == 0) {
		pthread_t t[2];

		wrong_id_of[0] = wrong_id_of[1] = 1;
		for (long i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, follower_thread, (void *)i);
		usleep(200 * 1000);
		rt.flags = 1;
		_exit(ioctl(fd, CXLFORK_IOC_RESTORE_THREAD, &rt) < 0 && errno == EINVAL ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	close(fd);
}

/*
 * eventfd, pipe and epoll descriptors: refused unless the restorer created
 * them as the image has them; then the clone finds the counter, the bytes
 * and both registrations ready (it exits CLONE_EXIT, else 87).
 */
TEST_F(refuse, prepared_descriptors)
{
	__u64 id;
	pid_t orig = workload(W_EVENTS, &id);
	int st[6];

	ASSERT_LT(0, orig);
	ASSERT_NE(0, id);
	st[0] = restore_under(id, C_EV_NOFLAG);
	st[1] = restore_under(id, C_EV_UNPREPARED);
	st[2] = restore_under(id, C_EV_COUNT);
	st[3] = restore_under(id, C_EV_CAPACITY);
	st[4] = restore_under(id, C_EV_WATCH);
	st[5] = restore_under(id, C_EV_RIGHT);
	end_workload(orig, id);
	ASSERT_REFUSED(st[0], EOPNOTSUPP);
	ASSERT_REFUSED(st[1], EBADF);
	ASSERT_REFUSED(st[2], EINVAL);
	ASSERT_REFUSED(st[3], EINVAL);
	ASSERT_REFUSED(st[4], EINVAL);
	ASSERT_TRUE(WIFEXITED(st[5]));
	ASSERT_EQ(CLONE_EXIT, WEXITSTATUS(st[5]));
}

/* The control: the same image, no condition, restores into a clone (which
 * exits CLONE_EXIT after checking its read-only region). */
TEST_F(refuse, restores_without_the_condition)
{
	int st = restore_under(self->id, C_NONE);

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(CLONE_EXIT, WEXITSTATUS(st));
	ASSERT_TRUE(clean_log());
}

TEST_HARNESS_MAIN
