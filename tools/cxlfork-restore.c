// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork-restore: the tiny static program that becomes a clone.
 *
 *   cxlfork-restore [-C DIR] [-T THREADS] [-F SPEC]... [-E SPEC]... ID POLICY FLAGS
 *                   [NAME START END]...
 *
 * What the kernel gives a process but a module cannot set, it sets here
 * first: the image's current directory (-C: a fork child keeps its
 * parent's), its special mappings ([vdso], [vvar], [vvar_vclock]) moved to
 * the addresses the image has them at (the checkpointed program's libc
 * cached them), and RLIMIT_NOFILE raised to its hard limit (the restore
 * sizes the descriptor table for the image's highest fd under it). For an
 * image of several threads (-T), it starts the other threads, each waiting
 * in CXLFORK_IOC_RESTORE_THREAD to become one of the image's. The image's
 * eventfd, epoll and pipe objects, which a module cannot create, it
 * creates at the image's descriptor numbers (-F FD,KIND,OBJECT,FLAGS,
 * CLOEXEC,SUB,VALUE: KIND eventfd (SUB 1: EFD_SEMAPHORE; VALUE its
 * counter, written here), pipe (SUB 1: the
 * write end; VALUE its capacity) or epoll; descriptors naming one OBJECT
 * are dups) and registers each epoll's descriptors (-E EPFD,FD,EVENTS,
 * DATA); FLAGS then holds CXLFORK_RESTORE_PREPARED_FDS, and the kernel
 * checks them, writes the pipes' buffered bytes, and keeps them. Then it
 * calls CXLFORK_IOC_RESTORE, which replaces everything else, and only
 * returns on failure. cxlfork-ctl restore computes the arguments from the
 * image. Static and non-PIE: its own code sits at 0x400000, far from where
 * vdso/vvar go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/cxlfork.h>

#define MAX_SPECIAL 4
#define MAX_THREADS 4096
#define FOLLOWER_STACK (64 << 10)

/* The arguments every waiting thread shares (read only). */
struct follower_arg {
	long fd;
	struct cxlfork_restore_thread rt;
};

static long raw_syscall3(long nr, long a, long b, long c)
{
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

/*
 * A thread that waits to become one of the image's other threads. It
 * shares the main thread's TLS (no CLONE_SETTLS), so it calls nothing that
 * writes it (errno): a raw ioctl, which returns only if the restore failed
 * before changing anything, then a raw exit of this thread alone.
 */
static int follower(void *p)
{
	const struct follower_arg *a = p;
	long r = raw_syscall3(SYS_ioctl, a->fd, CXLFORK_IOC_RESTORE_THREAD, (long)&a->rt);

	for (;;)
		raw_syscall3(SYS_exit, r < 0 ? -r : 0, 0, 0);
	return 0;
}

/* Start n threads waiting for image id on fd; 0, or -1 with errno. */
static int start_followers(int fd, unsigned long long id, int n)
{
	static struct follower_arg arg;
	char *stacks;

	if (n <= 0)
		return 0;
	arg.fd = fd;
	arg.rt.size = sizeof(arg.rt);
	arg.rt.id = id;
	stacks = mmap(NULL, (size_t)n * FOLLOWER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stacks == MAP_FAILED)
		return -1;
	for (int i = 0; i < n; i++)
		if (clone(follower, stacks + (size_t)(i + 1) * FOLLOWER_STACK,
			  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, &arg) < 0)
			return -1;
	return 0;
}

/* -F: one of the image's eventfd, epoll or pipe descriptors. */
struct fdspec {
	int fd, object, cloexec, sub;
	char kind[8];
	unsigned int flags;
	unsigned long long value;
};

/* -E: one registration of an epoll. */
struct epspec {
	int epfd, fd;
	unsigned int events;
	unsigned long long data;
};

static struct fdspec *fds;
static struct epspec *eps;
static int n_fds, n_eps;

static int add_spec(char opt, const char *arg)
{
	if (opt == 'F') {
		struct fdspec *f;

		fds = realloc(fds, (n_fds + 1) * sizeof(*fds));
		if (!fds)
			return -1;
		f = &fds[n_fds++];
		return sscanf(arg, "%d,%7[a-z],%d,%i,%d,%d,%llu", &f->fd, f->kind, &f->object, (int *)&f->flags,
			      &f->cloexec, &f->sub, &f->value) == 7 && f->fd >= 0 && f->object > 0 ? 0 : -1;
	}
	eps = realloc(eps, (n_eps + 1) * sizeof(*eps));
	if (!eps)
		return -1;
	return sscanf(arg, "%d,%d,%x,%llx", &eps[n_eps].epfd, &eps[n_eps].fd, &eps[n_eps].events, &eps[n_eps].data) == 4 &&
	       eps[n_eps++].fd >= 0 ? 0 : -1;
}

static void fd_fail(const struct fdspec *f, const char *what)
{
	fprintf(stderr, "cxlfork-restore: the image's fd %d (%s): %s: %s\n", f->fd, f->kind, what, strerror(errno));
}

/*
 * Create the -F objects, each first above every image descriptor (so no
 * creation lands on a number another needs), then dup each to its
 * number(s) with its close-on-exec, register the -E descriptors, and close
 * the temporaries. 0, or -1 (said why).
 */
static int prepare_fds(void)
{
	int base = 3, max_obj = 0, ret = -1;
	int *tmp = calloc(n_fds + 1, sizeof(int)), *pr = NULL, *pw = NULL;

	for (int i = 0; i < n_fds; i++) {
		base = fds[i].fd + 1 > base ? fds[i].fd + 1 : base;
		max_obj = fds[i].object > max_obj ? fds[i].object : max_obj;
	}
	pr = calloc(max_obj + 1, sizeof(int));
	pw = calloc(max_obj + 1, sizeof(int));
	if (!tmp || !pr || !pw)
		goto out;
	for (int i = 0; i < n_fds; i++) {
		struct fdspec *f = &fds[i];
		int raw = -1, dup_of = -1;

		for (int j = 0; j < i && dup_of < 0; j++)
			if (fds[j].object == f->object && (strcmp(f->kind, "pipe") || fds[j].sub == f->sub))
				dup_of = j;
		if (dup_of >= 0) {
			tmp[i] = tmp[dup_of];
			continue;
		}
		if (!strcmp(f->kind, "eventfd")) {
			raw = eventfd(0, EFD_CLOEXEC | (f->sub ? EFD_SEMAPHORE : 0) | (f->flags & O_NONBLOCK ? EFD_NONBLOCK : 0));
			if (raw >= 0 && f->value && write(raw, &f->value, 8) != 8) {
				fd_fail(f, "setting its counter");
				goto out;
			}
		} else if (!strcmp(f->kind, "epoll")) {
			raw = epoll_create1(EPOLL_CLOEXEC);
			if (raw >= 0 && (f->flags & O_NONBLOCK) && fcntl(raw, F_SETFL, O_NONBLOCK) < 0) {
				fd_fail(f, "O_NONBLOCK");
				goto out;
			}
		} else if (!strcmp(f->kind, "pipe")) {
			if (!pr[f->object]) {
				int p[2];

				if (pipe2(p, O_CLOEXEC) ||
				    (fcntl(p[0], F_GETPIPE_SZ) != (long long)f->value && fcntl(p[0], F_SETPIPE_SZ, (int)f->value) < 0)) {
					fd_fail(f, "pipe of the image's capacity");
					goto out;
				}
				pr[f->object] = fcntl(p[0], F_DUPFD_CLOEXEC, base);
				pw[f->object] = fcntl(p[1], F_DUPFD_CLOEXEC, base);
				close(p[0]);
				close(p[1]);
			}
			tmp[i] = f->sub ? pw[f->object] : pr[f->object];
			if (tmp[i] < 0 || fcntl(tmp[i], F_SETFL, f->flags & (O_NONBLOCK | O_DIRECT)) < 0) {
				fd_fail(f, "pipe flags");
				goto out;
			}
			continue;
		} else {
			errno = EINVAL;
			fd_fail(f, "unknown kind");
			goto out;
		}
		if (raw < 0) {
			fd_fail(f, "creating it");
			goto out;
		}
		tmp[i] = fcntl(raw, F_DUPFD_CLOEXEC, base);
		close(raw);
		if (tmp[i] < 0) {
			fd_fail(f, "moving it");
			goto out;
		}
	}
	for (int i = 0; i < n_fds; i++)
		if (dup3(tmp[i], fds[i].fd, fds[i].cloexec ? O_CLOEXEC : 0) < 0) {
			fd_fail(&fds[i], "placing it");
			goto out;
		}
	for (int i = 0; i < n_eps; i++) {
		struct epoll_event ev = { .events = eps[i].events, .data.u64 = eps[i].data };

		if (epoll_ctl(eps[i].epfd, EPOLL_CTL_ADD, eps[i].fd, &ev) < 0) {
			fprintf(stderr, "cxlfork-restore: registering fd %d in the image's epoll fd %d: %s\n", eps[i].fd,
				eps[i].epfd, strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	/* The temporaries (all at or above base; dups repeat one). */
	for (int i = 0; i < n_fds; i++)
		if (tmp && tmp[i] >= base)
			close(tmp[i]);
	free(tmp);
	free(pr);
	free(pw);
	return ret;
}

struct special {
	const char *name;
	unsigned long start, end;	/* where the image has it */
	unsigned long cur, cur_end;	/* where it is now */
};

static int find_own(struct special *s)
{
	char line[512], name[64];
	unsigned long a, b;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		name[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %63s", &a, &b, name) >= 2 && !strcmp(name, s->name)) {
			s->cur = a;
			s->cur_end = b;
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -1;
}

/* Does [a, b) overlap any mapping of ours other than the tmp area? */
static int overlaps(unsigned long a, unsigned long b, unsigned long tmp, unsigned long tmp_end)
{
	char line[512];
	unsigned long s, e;
	FILE *f = fopen("/proc/self/maps", "r");
	int hit = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < b && a < e && !(s >= tmp && e <= tmp_end))
			hit = 1;
	if (f)
		fclose(f);
	return hit;
}

int main(int argc, char **argv)
{
	struct cxlfork_restore r = { .size = sizeof(r) };
	struct special sp[MAX_SPECIAL];
	unsigned long total = 0, off = 0, tmp;
	struct rlimit nofile;
	int n = 0, fd, threads = 1;

	for (int c; (c = getopt(argc, argv, "+C:T:F:E:")) != -1;) {
		switch (c) {
		case 'C':
			if (chdir(optarg)) {
				fprintf(stderr, "cxlfork-restore: the image's current directory %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'T':
			threads = atoi(optarg);
			if (threads < 1 || threads > MAX_THREADS) {
				fprintf(stderr, "cxlfork-restore: -T %s: 1 to %d threads\n", optarg, MAX_THREADS);
				return 2;
			}
			break;
		case 'F':
		case 'E':
			if (add_spec(c, optarg)) {
				fprintf(stderr, "cxlfork-restore: -%c %s: malformed\n", c, optarg);
				return 2;
			}
			break;
		default:
			argc = 0;
		}
	}
	argv += optind - 1;
	argc -= optind - 1;
	if (argc < 4 || (argc - 4) % 3 || (argc - 4) / 3 > MAX_SPECIAL) {
		fprintf(stderr, "usage: cxlfork-restore [-C DIR] [-T THREADS] [-F SPEC]... [-E SPEC]... ID POLICY FLAGS [NAME START END]...\n");
		return 2;
	}
	if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	r.id = strtoull(argv[1], NULL, 0);
	r.policy = strtoul(argv[2], NULL, 0);
	r.flags = strtoul(argv[3], NULL, 0);
	for (int i = 4; i < argc; i += 3, n++) {
		sp[n].name = argv[i];
		sp[n].start = strtoul(argv[i + 1], NULL, 0);
		sp[n].end = strtoul(argv[i + 2], NULL, 0);
		if (find_own(&sp[n]) || sp[n].cur_end - sp[n].cur != sp[n].end - sp[n].start) {
			fprintf(stderr, "cxlfork-restore: no %s of the image's size here (another kernel build?)\n", sp[n].name);
			return 1;
		}
		total += sp[n].end - sp[n].start;
	}
	/* Park them in a reserved area first, so moving one never lands on
	 * another, then move each to its place. */
	tmp = (unsigned long)mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == (unsigned long)MAP_FAILED) {
		perror("cxlfork-restore: mmap");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		unsigned long len = sp[i].end - sp[i].start;

		if (mremap((void *)sp[i].cur, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(tmp + off)) == MAP_FAILED) {
			fprintf(stderr, "cxlfork-restore: mremap %s: %s\n", sp[i].name, strerror(errno));
			return 1;
		}
		sp[i].cur = tmp + off;
		off += len;
	}
	for (int i = 0; i < n; i++) {
		unsigned long len = sp[i].end - sp[i].start;

		if (overlaps(sp[i].start, sp[i].end, tmp, tmp + total)) {
			fprintf(stderr, "cxlfork-restore: the image's %s at %#lx collides with this program's memory\n",
				sp[i].name, sp[i].start);
			return 1;
		}
		if (mremap((void *)sp[i].cur, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)sp[i].start) == MAP_FAILED) {
			fprintf(stderr, "cxlfork-restore: mremap %s: %s\n", sp[i].name, strerror(errno));
			return 1;
		}
	}
	if (prepare_fds())
		return 1;
	fd = open("/dev/cxlfork", O_RDWR);
	if (fd < 0) {
		perror("cxlfork-restore: /dev/cxlfork");
		return 1;
	}
	if (start_followers(fd, r.id, threads - 1)) {
		perror("cxlfork-restore: starting the image's other threads");
		return 1;
	}
	ioctl(fd, CXLFORK_IOC_RESTORE, &r);
	/* Only reached on failure: the caller is as it was. */
	fprintf(stderr, "cxlfork-restore: restore of image %#llx failed: %s\n", (unsigned long long)r.id, strerror(errno));
	return errno == 0 ? 1 : (errno & 0x7f);
}
