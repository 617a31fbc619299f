// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork-restore: the tiny static program that becomes a clone.
 *
 *   cxlfork-restore [-C DIR] [-T THREADS] ID POLICY FLAGS [NAME START END]...
 *
 * What the kernel gives a process but a module cannot set, it sets here
 * first: the image's current directory (-C: a fork child keeps its
 * parent's), its special mappings ([vdso], [vvar], [vvar_vclock]) moved to
 * the addresses the image has them at (the checkpointed program's libc
 * cached them), and RLIMIT_NOFILE raised to its hard limit (the restore
 * sizes the descriptor table for the image's highest fd under it). For an
 * image of several threads (-T), it starts the other threads, each waiting
 * in CXLFORK_IOC_RESTORE_THREAD to become one of the image's. Then it
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

	if (argc > 2 && !strcmp(argv[1], "-C")) {
		if (chdir(argv[2])) {
			fprintf(stderr, "cxlfork-restore: the image's current directory %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && !strcmp(argv[1], "-T")) {
		threads = atoi(argv[2]);
		if (threads < 1 || threads > MAX_THREADS) {
			fprintf(stderr, "cxlfork-restore: -T %s: 1 to %d threads\n", argv[2], MAX_THREADS);
			return 2;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc < 4 || (argc - 4) % 3 || (argc - 4) / 3 > MAX_SPECIAL) {
		fprintf(stderr, "usage: cxlfork-restore [-C DIR] [-T THREADS] ID POLICY FLAGS [NAME START END]...\n");
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
