// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork restore tests (one guest, pool attached, run as root).
 *
 * A workload (workload.h: every mapping kind with known bytes) checkpoints
 * itself; clones are then restored from the image with cxlfork-ctl restore
 * (the cxlfork-restore stub), and each clone checks itself and reports
 * through its exit status, which `cxlfork-ctl restore --wait` collects.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"
#include "workload.h"

/* Descriptors the workload opens on its file (restored by number). */
#define FILE_FD 17

/* What a clone does after restore. */
enum mode { M_VERIFY = 1, M_COW, M_POSIX, M_POLICY, M_HOLD, M_AGAIN };

/* Where a clone that checkpointed itself again leaves its image's id. */
static const char *again_path = "/tmp/cxlfork-again.id";

static __thread int tls_value;
static volatile sig_atomic_t got_usr1, got_term;

static void on_usr1(int s) { (void)s; got_usr1 = 1; }
static void on_term(int s) { (void)s; got_term = 1; }

/* The clone verifies every region; returns a failure code or 0. */
static int verify_memory(const struct work *w)
{
	for (int i = 0; i < ANON_PAGES; i++)
		if (page_has(w->anon + i * PAGE, pat(R_ANON, i)))
			return 10;
	for (int i = 0; i < 3; i++)
		if (page_has(w->heap + i * PAGE, pat(R_HEAP, i)))
			return 11;
	if (page_has(w->stack, pat(R_STACK, 0)))
		return 12;
	for (int i = 0; i < FILE_PAGES; i++)
		if (page_has(w->file + i * PAGE, pat(R_FILE, i >= 4 && i < 6 ? 100 + i : i)))
			return 13;
	for (int i = 0; i < 2; i++)
		if (page_has(w->ro + i * PAGE, pat(R_RO, i)))
			return 14;
	if (mprotect((void *)w->none, 2 * PAGE, PROT_READ) || page_has(w->none + PAGE, pat(R_NONE, 1)))
		return 15;
	mprotect((void *)w->none, 2 * PAGE, PROT_NONE);
	if (page_has(w->sparse, pat(R_SPARSE, 0)) || page_has(w->sparse + (16UL << 20) + 5 * PAGE, pat(R_SPARSE, 0)) ||
	    page_has(w->sparse + SPARSE_SIZE - PAGE, pat(R_SPARSE, 0)))
		return 16;
	if (page_has(w->sparse + (8UL << 20), 0))	/* never touched: zero */
		return 17;
	return 0;
}

static int clone_posix(const struct work *w)
{
	struct timespec a, b;
	int status;
	pid_t pid;
	char *m, *m2;

	/* fork: the child sees the same memory, its writes stay its own. */
	pid = fork();
	if (pid == 0) {
		if (page_has(w->anon, pat(R_ANON, 0)))
			_exit(1);
		memset((void *)w->anon, 0x55, PAGE);
		_exit(page_has(w->anon, 0x55) ? 2 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 20;
	if (page_has(w->anon, pat(R_ANON, 0)))
		return 21;
	/* mremap a restored mapping: its pages follow it. */
	m = mremap((void *)w->anon, ANON_PAGES * PAGE, ANON_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)(w->sparse + (32UL << 20)));
	if (m == MAP_FAILED)
		return 22;
	for (int i = 0; i < ANON_PAGES; i++)
		if (page_has((unsigned long)m + i * PAGE, pat(R_ANON, i)))
			return 23;
	/* mprotect, munmap part, mmap new, brk. */
	if (mprotect(m, PAGE, PROT_READ) || page_has((unsigned long)m, pat(R_ANON, 0)))
		return 24;
	if (munmap(m + PAGE, PAGE))
		return 25;
	m2 = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m2 == MAP_FAILED)
		return 26;
	memset(m2, 7, 4 * PAGE);
	if (page_has((unsigned long)m2 + 3 * PAGE, 7))
		return 27;
	m2 = sbrk(8 * PAGE);
	if (m2 == (void *)-1)
		return 28;
	memset(m2, 9, 8 * PAGE);
	/* The vdso works where the image had it. */
	if (clock_gettime(CLOCK_MONOTONIC, &a) || usleep(1000) || clock_gettime(CLOCK_MONOTONIC, &b))
		return 29;
	if (b.tv_sec * 1000000000L + b.tv_nsec <= a.tv_sec * 1000000000L + a.tv_nsec)
		return 30;
	return 0;
}

/* Reads every workload page, writes the anon region; then checks the
 * clone's statistics against its policy. */
static int clone_policy(const struct work *w)
{
	struct cxlfork_clone_stat st = { .size = sizeof(st) };
	volatile unsigned char sink = 0;
	int fd;

	for (int i = 0; i < ANON_PAGES; i++)
		sink += *(volatile unsigned char *)(w->anon + i * PAGE);
	for (int i = 0; i < FILE_PAGES; i++)
		sink += *(volatile unsigned char *)(w->file + i * PAGE);
	for (int i = 0; i < ANON_PAGES / 2; i++)
		memset((void *)(w->anon + i * PAGE), 0x77, PAGE);
	(void)sink;
	fd = open(CXLFORK_DEV, O_RDWR);
	if (fd < 0 || ioctl(fd, CXLFORK_IOC_CLONE_STAT, &st))
		return 40;
	printf("# clone %u policy %u: pool %llu local %llu prefetched %llu zero %llu file %llu faults %llu leaves %llu restore %.2f ms\n",
	       st.clone_nr, st.policy, (unsigned long long)st.pool_pages, (unsigned long long)st.local_pages,
	       (unsigned long long)st.prefetched_pages, (unsigned long long)st.zero_pages,
	       (unsigned long long)st.file_pages, (unsigned long long)st.faults, (unsigned long long)st.leaves,
	       st.restore_ns / 1e6);
	fflush(stdout);
	if (st.leaves == 0 || st.faults == 0)
		return 41;
	switch (st.policy) {
	case CXLFORK_POLICY_MOW:
		/* Dirty pages in writable VMAs local at their leaf's first
		 * fault, the rest from the pool: every anonymous page here was
		 * written (by the workload, or by the harness before its fork),
		 * so all of them are local; none is copied in the restore call. */
		if (st.prefetched_pages < ANON_PAGES || st.local_pages != st.prefetched_pages)
			return 42;
		break;
	case CXLFORK_POLICY_MOA:	/* every touched page local, none from the pool */
		if (st.pool_pages != 0 || st.local_pages < ANON_PAGES + 6 || st.prefetched_pages)
			return 43;
		break;
	case CXLFORK_POLICY_HT:		/* accessed pages local, cold ones from the pool */
		if (st.local_pages < ANON_PAGES / 2 || st.pool_pages < ANON_PAGES / 2 || st.prefetched_pages)
			return 44;
		break;
	}
	return 0;
}

/* The canary of the original with pid pid: unknown at compile time. */
static unsigned long canary_of(pid_t pid)
{
	return ((unsigned long)pid * 2654435761UL) ^ 0x5eed5eed5eedUL;
}

/* Closes every descriptor of /dev/cxlfork (the original's, reopened by
 * the restore): then only the clone itself holds the module. */
static void close_device_fds(void)
{
	char path[64], link[64];

	for (int fd = 3; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			if (!strcmp(link, CXLFORK_DEV))
				close(fd);
		}
	}
}

/* Runs in each clone: returns its exit status. Not inlined into the
 * original's code, so that nothing it checks can be folded with what the
 * original computed. */
static __attribute__((noinline)) int clone_main(enum mode mode, int nr, const struct work *w, pid_t orig_pid,
						 unsigned long stack_canary, unsigned long reg_canary)
{
	int err = errno, r;

	if (nr <= 0)
		return 50;
	/* Stack, registers, TLS and errno survived: the original's pid (we
	 * are another process) gives both canaries, one read back from its
	 * stack frame, one from wherever the compiler kept it across the
	 * checkpoint call (a callee-saved register, or a spill slot). */
	if (orig_pid == getpid() || stack_canary != canary_of(orig_pid) || reg_canary != canary_of(orig_pid) ||
	    tls_value != 4242 || err != 1234)
		return 51;
	switch (mode) {
	case M_VERIFY:
		/* Open files came back at their numbers, offsets and flags. */
		if (lseek(FILE_FD, 0, SEEK_CUR) != PAGE + 10 || fcntl(FILE_FD, F_GETFD) != 0)
			return 53;
		if (fcntl(FILE_FD + 1, F_GETFD) != FD_CLOEXEC)
			return 54;
		{
			unsigned char b = 0;

			if (read(FILE_FD, &b, 1) != 1 || b != pat(R_FILE, 1))
				return 55;
		}
		return verify_memory(w);
	case M_COW:
		if ((r = verify_memory(w)))
			return r;
		/* Our writes are ours: other clones, the original and the
		 * image still see the original bytes. */
		for (int i = 0; i < ANON_PAGES; i++)
			memset((void *)(w->anon + i * PAGE), 0x80 + nr, PAGE);
		usleep(300 * 1000);
		for (int i = 0; i < ANON_PAGES; i++)
			if (page_has(w->anon + i * PAGE, 0x80 + nr))
				return 60;
		return 0;
	case M_POSIX:
		return clone_posix(w);
	case M_POLICY:
		return clone_policy(w);
	case M_AGAIN: {
		/* A clone checkpoints itself: its own image, made of pages it
		 * maps from the pool, copied local or wrote. */
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		int fd, out;

		if ((r = verify_memory(w)))
			return r;
		memset((void *)w->anon, 0x5c, PAGE);	/* one page of its own */
		fd = open(CXLFORK_DEV, O_RDWR);
		strcpy(c.name, "again");
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0) {	/* a clone of the clone */
			if (page_has(w->anon, 0x5c))
				return 72;
			memset((void *)w->anon, pat(R_ANON, 0), PAGE);
			return verify_memory(w);
		}
		if (r < 0)
			return 70;
		out = open(again_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0 || write(out, &c.image_id, sizeof(c.image_id)) != sizeof(c.image_id))
			return 71;
		close(out);
		return 0;
	}
	case M_HOLD:
		close_device_fds();
		signal(SIGTERM, on_term);
		while (!got_term)
			pause();
		return 0;
	}
	return 52;
}

/* The workload: sets up, checkpoints itself, reports the image id through
 * the pipe; the original then waits for SIGUSR1 and checks its memory. */
static pid_t spawn(enum mode mode, int *rfd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		unsigned char stack_page[2 * PAGE];
		struct work w = { 0 };
		/* Canaries that depend on our pid: one forced into this stack
		 * frame (volatile), one the compiler keeps where it likes. */
		pid_t me = getpid();
		volatile unsigned long stack_canary = canary_of(me);
		unsigned long reg_canary = canary_of(me);
		int fd, r;
		struct cxlfork_checkpoint c = { .size = sizeof(c) };

		close(p[0]);
		setup(&w, (unsigned char *)(((unsigned long)stack_page + PAGE - 1) & ~(PAGE - 1)));
		signal(SIGUSR1, on_usr1);
		tls_value = 4242;
		fd = open(file_path, O_RDONLY);
		dup2(fd, FILE_FD);
		lseek(FILE_FD, PAGE + 10, SEEK_SET);
		fcntl(fd, F_DUPFD_CLOEXEC, FILE_FD + 1);
		close(fd);
		fd = open(CXLFORK_DEV, O_RDWR);
		strcpy(c.name, "restore-test");
		errno = 1234;
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0)
			_exit(clone_main(mode, r, &w, me, stack_canary, reg_canary));
		w.err = r ? errno : 0;
		w.image_id = c.image_id;
		if (write(p[1], &w, sizeof(w)) != sizeof(w))
			_exit(82);
		while (!got_usr1)
			pause();
		_exit(verify_memory(&w));
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static struct work last_work;

static __u64 make_image(struct __test_metadata *_metadata, enum mode mode, pid_t *orig)
{
	struct work w;
	int rfd;

	*orig = spawn(mode, &rfd);
	ASSERT_LT(0, *orig);
	ASSERT_EQ(sizeof(w), read(rfd, &w, sizeof(w)));
	close(rfd);
	ASSERT_EQ(0, w.err) TH_LOG("checkpoint: %s", strerror(w.err));
	last_work = w;
	return w.image_id;
}

/* The original checks its own memory (untouched by the clones) and exits. */
static void finish_original(struct __test_metadata *_metadata, pid_t pid)
{
	int status;

	kill(pid, SIGUSR1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("the original's memory changed");
}

/* The checkpointed bytes of the page at addr; 0 if the image has it. */
static int image_page(__u64 id, unsigned long addr, unsigned char *page)
{
	char cmd[128];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %llu:%llu --page %#lx", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL), addr);
	f = popen(cmd, "r");
	n = fread(page, 1, PAGE, f);
	return pclose(f) == 0 && n == PAGE ? 0 : -1;
}

/* `cxlfork-ctl inspect ID --json`, in a static buffer. */
static char *inspect_json(__u64 id)
{
	static char out[1 << 16];
	char cmd[128];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %llu:%llu --json", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL));
	f = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	pclose(f);
	return out;
}

/* A number from `inspect --json`: the value after "key": */
static long long inspect_num(__u64 id, const char *key)
{
	const char *out = inspect_json(id), *at;
	char k[64];

	snprintf(k, sizeof(k), "\"%s\": ", key);
	at = strstr(out, k);
	return at ? strtoll(at + strlen(k), NULL, 0) : -1;
}

/* Index of the leaf mapping addr, from `inspect --json`'s "leaf_vaddrs". */
static long long leaf_of(__u64 id, unsigned long addr)
{
	char *at = strstr(inspect_json(id), "\"leaf_vaddrs\": [");
	long long k = 0;

	if (!at)
		return -1;
	at = strchr(at, '[') + 1;
	for (;;) {
		char *end;
		unsigned long long v;

		while (*at == ' ' || *at == '\n' || *at == '"')
			at++;
		v = strtoull(at, &end, 0);
		if (end == at)
			return -1;
		if (v == (addr & ~((2UL << 20) - 1)))
			return k;
		k++;
		at = strchr(end, ',');
		if (!at)
			return -1;
		at++;
	}
}

/* Runs a waiting restore, capturing its output; returns its status. */
static int restore_out(__u64 id, const char *args, char *out, size_t len)
{
	char cmd[256];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %llu:%llu --wait --skip-files %s 2>&1",
		 (unsigned long long)(id >> 48), (unsigned long long)(id & 0xffffffffffffULL), args);
	f = popen(cmd, "r");
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	return pclose(f);
}

static int restore_cmd(__u64 id, const char *args)
{
	char cmd[256];

	/* The workload inherits the harness's pipes: those cannot be reopened. */
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %llu:%llu --wait --skip-files %s", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL), args);
	return system(cmd);
}

/* Maps the first len bytes of image id's extent through device-dax (as
 * another host writes it); the mapping outlives the descriptor. */
static unsigned char *map_image(struct __test_metadata *_metadata, int fd, __u64 id, size_t len)
{
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	unsigned long long base = 0, size;
	unsigned char *img;
	int dfd;

	ASSERT_EQ(0, xioctl(fd, CXLFORK_IOC_LIST, &l));
	for (unsigned int i = 0; i < l.count; i++)
		if (infos[i].id == id)
			base = infos[i].base;
	ASSERT_NE(0, base);
	ASSERT_EQ(0, dax_range(dax_dev(), &size, &size));
	dfd = open(dax_dev(), O_RDWR);
	ASSERT_LE(0, dfd);
	img = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, base & ~(2 * MIB - 1));
	ASSERT_NE(MAP_FAILED, img);
	close(dfd);
	return img + (base & (2 * MIB - 1));
}

FIXTURE(rst) {
	int fd;
};

FIXTURE_SETUP(rst)
{
	struct cxlfork_pool_info info;

	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, pool_info(self->fd, &info));
	make_file();
}

FIXTURE_TEARDOWN(rst)
{
	close(self->fd);
}

TEST_F_TIMEOUT(rst, memory_registers_tls_after_restore, 120)
{
	pid_t orig;
	__u64 id = make_image(_metadata, M_VERIFY, &orig);

	ASSERT_EQ(0, restore_cmd(id, ""));
	ASSERT_EQ(0, restore_cmd(id, "--policy moa"));
	ASSERT_EQ(0, restore_cmd(id, "--policy ht"));
	finish_original(_metadata, orig);
}

TEST_F_TIMEOUT(rst, cow_isolation_between_clones_original_and_image, 120)
{
	unsigned char page[PAGE];
	pid_t orig;
	__u64 id = make_image(_metadata, M_COW, &orig);
	struct work w = last_work;

	/* Three clones at once, each checks the original bytes first, then
	 * overwrites them with its own number. */
	ASSERT_EQ(0, restore_cmd(id, "--count 3"));
	ASSERT_EQ(0, restore_cmd(id, "--count 2 --policy moa"));
	/* The original's memory is untouched... */
	finish_original(_metadata, orig);
	/* ...and so is the image. */
	for (int i = 0; i < ANON_PAGES; i++) {
		ASSERT_EQ(0, image_page(id, w.anon + i * PAGE, page));
		ASSERT_EQ(0, page_has((unsigned long)page, pat(R_ANON, i)));
	}
}

/* A clone can itself be checkpointed, and its image restored, under each
 * policy (the first generation's pages mapped from the pool under MoW,
 * copied under MoA). */
TEST_F_TIMEOUT(rst, clone_checkpointed_again, 300)
{
	static const char *const pol[] = { "mow", "moa", "ht" };
	pid_t orig;
	__u64 id = make_image(_metadata, M_AGAIN, &orig);

	for (int p = 0; p < 3; p++) {
		struct cxlfork_delete d = { .size = sizeof(d) };
		char args[64];
		__u64 id2 = 0;
		int fd;

		unlink(again_path);
		snprintf(args, sizeof(args), "--policy %s", pol[p]);
		ASSERT_EQ(0, restore_cmd(id, args)) TH_LOG("generation 1, %s", pol[p]);
		fd = open(again_path, O_RDONLY);
		ASSERT_LE(0, fd);
		ASSERT_EQ(sizeof(id2), read(fd, &id2, sizeof(id2)));
		close(fd);
		ASSERT_NE(0, id2);
		snprintf(args, sizeof(args), "--policy %s", pol[(p + 1) % 3]);
		ASSERT_EQ(0, restore_cmd(id2, args)) TH_LOG("generation 2 of %s, %s", pol[p], pol[(p + 1) % 3]);
		d.id = id2;
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	}
	finish_original(_metadata, orig);
}

TEST_F_TIMEOUT(rst, clone_forks_maps_remaps_and_exits, 120)
{
	pid_t orig;
	__u64 id = make_image(_metadata, M_POSIX, &orig);

	ASSERT_EQ(0, restore_cmd(id, ""));
	finish_original(_metadata, orig);
}

TEST_F_TIMEOUT(rst, policies_same_results_different_shapes, 180)
{
	pid_t orig;
	__u64 id = make_image(_metadata, M_POLICY, &orig);

	ASSERT_EQ(0, restore_cmd(id, "--policy mow"));
	ASSERT_EQ(0, restore_cmd(id, "--policy moa"));
	ASSERT_EQ(0, restore_cmd(id, "--policy ht"));
	finish_original(_metadata, orig);
}

/*
 * Forks a child that runs setup(arg), checkpoints itself as name and sends
 * its image id back. The child's clones exit with in_clone(arg), the
 * original with in_original(arg) (NULL: 0); setup returns 0 or the status
 * the child exits with. Returns the image id once the original exited 0.
 */
static __u64 self_image(struct __test_metadata *_metadata, const char *name, int (*setup)(void *),
			int (*in_clone)(void *), int (*in_original)(void *), void *arg)
{
	int p[2], status;
	__u64 id = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(p));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		int fd, r;

		close(p[0]);
		r = setup(arg);
		if (r)
			_exit(r);
		fd = open(CXLFORK_DEV, O_RDWR);
		snprintf(c.name, sizeof(c.name), "%s", name);
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0)
			_exit(in_clone(arg));
		if (r < 0)
			_exit(92);
		if (write(p[1], &c.image_id, sizeof(c.image_id)) != sizeof(c.image_id))
			_exit(93);
		_exit(in_original ? in_original(arg) : 0);
	}
	close(p[1]);
	ASSERT_EQ(sizeof(id), read(p[0], &id, sizeof(id)));
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);
	return id;
}

/*
 * Pages written before a fork() are still dirty in the image: fork
 * write-protects them, and a kernel built with user shadow stacks (as
 * Debian's and this guest's) then keeps their Dirty bit in a software bit.
 * MoW copies dirty pages to local memory at their leaf's first fault: the
 * clone must find them local, not in the pool. Exit status of the clone:
 * 0, or 70 + what went wrong.
 */
#define DF_PAGES 64

/* Writes DF_PAGES pages, then forks a child that exits at once. */
static int dirty_then_fork(void *arg)
{
	unsigned char **m = arg;
	pid_t q;

	*m = mmap(NULL, DF_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*m == MAP_FAILED)
		return 70;
	madvise(*m, DF_PAGES * PAGE, MADV_NOHUGEPAGE);
	memset(*m, 0x5a, DF_PAGES * PAGE);
	q = fork();
	if (q == 0)
		_exit(0);
	waitpid(q, NULL, 0);
	return 0;
}

/* The clone: read every page, then ask where they came from. */
static int dirty_pages_local(void *arg)
{
	unsigned char *m = *(unsigned char **)arg;
	struct cxlfork_clone_stat st = { .size = sizeof(st) };
	volatile unsigned long sum = 0;
	int fd;

	for (int i = 0; i < DF_PAGES; i++)
		sum += m[i * PAGE];
	if (sum != 0x5aUL * DF_PAGES)
		return 71;
	fd = open(CXLFORK_DEV, O_RDWR);
	if (fd < 0 || ioctl(fd, CXLFORK_IOC_CLONE_STAT, &st))
		return 72;
	printf("# clone: prefetched %llu local %llu pool %llu\n", (unsigned long long)st.prefetched_pages,
	       (unsigned long long)st.local_pages, (unsigned long long)st.pool_pages);
	fflush(stdout);
	return st.prefetched_pages >= DF_PAGES ? 0 : 73;
}

TEST_F_TIMEOUT(rst, dirty_before_fork_stays_dirty_for_mow, 120)
{
	struct cxlfork_delete d = { .size = sizeof(d) };
	unsigned char *m = NULL;
	__u64 id = self_image(_metadata, "dirty-fork", dirty_then_fork, dirty_pages_local, NULL, &m);

	ASSERT_NE(0, id);
	EXPECT_LE(DF_PAGES, inspect_num(id, "dirty_pages")) TH_LOG("the image lost the pages' Dirty bits");
	EXPECT_EQ(0, restore_cmd(id, "--policy mow")) TH_LOG("the MoW clone did not find its dirty pages local (73)");
	d.id = id;
	EXPECT_EQ(0, ioctl(self->fd, CXLFORK_IOC_DELETE, &d));
}

TEST_F_TIMEOUT(rst, fifty_clones_at_once, 600)
{
	pid_t orig;
	__u64 id = make_image(_metadata, M_VERIFY, &orig);

	ASSERT_EQ(0, restore_cmd(id, "--count 50"));
	finish_original(_metadata, orig);
}

/* A process checkpointed by pid while blocked in pause() with a SIGUSR1
 * handler resumes in pause() and runs its handler when signalled. */
TEST_F_TIMEOUT(rst, by_pid_in_pause_resumes_and_handles_signal, 120)
{
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	char cmd[160], out[512] = "";
	int p[2], status;
	pid_t pid, clone_pid = 0;
	FILE *f;

	ASSERT_EQ(0, pipe(p));
	pid = fork();
	if (pid == 0) {
		char ok;

		signal(SIGUSR1, on_usr1);
		if (write(p[1], "", 1) != 1)
			_exit(1);
		while (!got_usr1)
			pause();
		printf("# handled SIGUSR1 in pid %d\n", getpid());
		fflush(stdout);
		(void)ok;
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(0, read(p[0], out, 1) == 1 ? 0 : -1);
	usleep(200 * 1000);
	c.pid = pid;
	c.mem_fd = proc_mem_fd(pid);
	strcpy(c.name, "in-pause");
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c));
	close(c.mem_fd);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %llu:%llu --json --wait --skip-files", (unsigned long long)(c.image_id >> 48),
		 (unsigned long long)(c.image_id & 0xffffffffffffULL));
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(out, sizeof(out), f));
	ASSERT_EQ(1, sscanf(strstr(out, "\"pids\":[") + 8, "%d", &clone_pid)) TH_LOG("%s", out);
	/* Back in pause() after restore (sleeping within 30 s: the clone
	 * may still be running its way back in on a slow debug kernel). */
	{
		char path[64], st[256], state = 0;

		snprintf(path, sizeof(path), "/proc/%d/stat", clone_pid);
		for (int t = 0; t < 300 && state != 'S'; t++) {
			int sfd = open(path, O_RDONLY);
			ssize_t n;

			ASSERT_LE(0, sfd);
			n = read(sfd, st, sizeof(st) - 1);
			close(sfd);
			ASSERT_LT(0, n);
			st[n] = 0;
			state = strrchr(st, ')')[2];
			if (state != 'S')
				usleep(100 * 1000);
		}
		ASSERT_EQ('S', state);
	}
	kill(clone_pid, SIGUSR1);
	out[0] = 0;
	while (fgets(out, sizeof(out), f) && !strstr(out, "handled"))
		;
	ASSERT_NE(NULL, strstr(out, "handled SIGUSR1")) TH_LOG("%s", out);
	status = pclose(f);
	ASSERT_EQ(0, status);
}

/* A restore call that must fail, and the kernel log lines it wrote. */
static int restore_logged(int fd, struct cxlfork_restore *r, char *log, size_t len)
{
	int k = kmsg_open(), ret;

	ret = xioctl(fd, CXLFORK_IOC_RESTORE, r);
	if (k < 0)
		snprintf(log, len, "(no /dev/kmsg)");
	else
		kmsg_read(k, log, len);
	close(k);
	return ret;
}

TEST_F_TIMEOUT(rst, bad_restores_leave_the_caller_intact, 120)
{
	static char log[16384];
	struct cxlfork_restore r = { .size = sizeof(r) };
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	unsigned char *img;
	int status;
	pid_t pid;
	__u64 id = 0;

	/* An image of another program (exec'd: its vdso is not where ours is,
	 * so a restore by this process cannot succeed by accident). */
	ASSERT_EQ(0, system("fork_like > /dev/null"));
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
	for (unsigned int i = 0; i < l.count; i++)
		if (!strcmp(infos[i].name, "fork-like") && infos[i].id > id)
			id = infos[i].id;
	ASSERT_NE(0, id);
	r.id = 999;
	ASSERT_EQ(-ENOENT, xioctl(self->fd, CXLFORK_IOC_RESTORE, &r));
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_RESTORE, NULL));
	/* An unknown policy or flag: refused before the image is even read
	 * (EINVAL, as the vdso refusal below: that one logs why, these do
	 * not). */
	r.id = id;
	r.policy = 7;
	ASSERT_EQ(-EINVAL, restore_logged(self->fd, &r, log, sizeof(log)));
	ASSERT_EQ(NULL, strstr(log, "restore:")) TH_LOG("unknown policy got past the argument checks:\n%s", log);
	r.policy = 0;
	r.flags = 1U << 9;
	ASSERT_EQ(-EINVAL, restore_logged(self->fd, &r, log, sizeof(log)));
	ASSERT_EQ(NULL, strstr(log, "restore:")) TH_LOG("unknown flag got past the argument checks:\n%s", log);
	r.flags = 0;

	/* Another uid may not restore root's image: it does not exist for it. */
	pid = fork();
	if (pid == 0) {
		int fd = open_as_nobody();

		_exit(xioctl(fd, CXLFORK_IOC_RESTORE, &r) == -ENOENT ? 0 : 91);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);

	/* A corrupt VMA table: refused before anything changes. */
	img = map_image(_metadata, self->fd, id, 4 * MIB);
	img[2 * 4096 + 3] ^= 0x10;	/* first VMA's start (not resealed) */
	ASSERT_EQ(-EBADMSG, restore_logged(self->fd, &r, log, sizeof(log)));
	ASSERT_NE(NULL, strstr(log, "metadata checksum mismatch")) TH_LOG("%s", log);
	img[2 * 4096 + 3] ^= 0x10;
	/* Valid again, but our vdso is not where the image's is: refused. */
	ASSERT_EQ(-EINVAL, restore_logged(self->fd, &r, log, sizeof(log)));
	ASSERT_NE(NULL, strstr(log, "must hold the caller's vdso/vvar")) TH_LOG("refused for another reason:\n%s", log);
	/* Still us, still working. */
	{
		struct cxlfork_pool_info info;

		ASSERT_EQ(0, pool_info(self->fd, &info));
	}
}

TEST_F_TIMEOUT(rst, corrupt_leaf_costs_the_clone_a_sigbus_not_the_kernel, 120)
{
	long long leaves_off, n_leaves, k;
	char out[4096];
	unsigned char *img;
	pid_t orig;
	__u64 id = make_image(_metadata, M_VERIFY, &orig);

	finish_original(_metadata, orig);
	leaves_off = inspect_num(id, "leaves_off");
	n_leaves = inspect_num(id, "leaf_tables");
	ASSERT_LT(0, leaves_off);
	ASSERT_LT(0, n_leaves);
	/* The leaf of a block only the sparse mapping uses (not one restore
	 * itself must read, as for shared anonymous memory filled by copy). */
	k = leaf_of(id, last_work.sparse + (16UL << 20));
	ASSERT_LE(0, k);
	img = map_image(_metadata, self->fd, id, 16 * MIB);
	/* Point one entry of that leaf elsewhere (leaves are not covered by
	 * the metadata checksum: each is checked at its first fault). */
	img[leaves_off + k * 4096 + 8 * 5 + 5] ^= 0x40;
	/* The restore succeeds (leaves are checked lazily); the clone dies of
	 * SIGBUS when it touches that range; the kernel logs and goes on. */
	ASSERT_NE(0, restore_out(id, "--policy moa", out, sizeof(out)));
	ASSERT_NE(NULL, strstr(out, "SIGBUS")) TH_LOG("%s", out);
	ASSERT_NE(0, restore_out(id, "--policy mow", out, sizeof(out)));
	ASSERT_NE(NULL, strstr(out, "SIGBUS")) TH_LOG("%s", out);
	img[leaves_off + k * 4096 + 8 * 5 + 5] ^= 0x40;
	ASSERT_EQ(0, restore_cmd(id, ""));
}

/* Descriptors of /dev/cxlfork process pid holds. */
static int device_fds(pid_t pid)
{
	char path[64], link[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = 0;
			n += !strcmp(link, CXLFORK_DEV);
		}
	}
	return n;
}

TEST_F_TIMEOUT(rst, leases_block_delete_and_unload_until_clones_exit, 120)
{
	struct cxlfork_stat st = { .size = sizeof(st) };
	struct cxlfork_delete d = { .size = sizeof(d) };
	char cmd[256], out[512] = "";
	int r;
	pid_t orig, pids[2] = { 0, 0 };
	__u64 id = make_image(_metadata, M_HOLD, &orig);
	FILE *f;

	finish_original(_metadata, orig);
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %llu:%llu --count 2 --json --skip-files", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL));
	f = popen(cmd, "r");
	ASSERT_NE(NULL, fgets(out, sizeof(out), f));
	pclose(f);
	ASSERT_EQ(2, sscanf(strstr(out, "\"pids\":[") + 8, "%d,%d", &pids[0], &pids[1])) TH_LOG("%s", out);
	usleep(500 * 1000);
	st.id = id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(1, st.info.leases);	/* this host holds a lease */
	ASSERT_EQ(2, st.info.live_clones);
	ASSERT_EQ(2, st.info.restores);
	d.id = id;
	ASSERT_EQ(-EBUSY, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	/* The module stays while clones live, with no descriptor of the
	 * device open anywhere: the clones closed theirs, we close ours. */
	for (int i = 0; i < 2; i++) {
		/* A clone closes them as soon as it runs (not yet, on a slow
		 * debug kernel): wait up to 60 s. */
		int n = device_fds(pids[i]);

		for (int t = 0; n && t < 600; t++) {
			usleep(100 * 1000);
			n = device_fds(pids[i]);
		}
		ASSERT_EQ(0, n) TH_LOG("clone %d holds %s open", pids[i], CXLFORK_DEV);
	}
	close(self->fd);
	r = unload_module("cxlfork");
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_TRUE(r == -EWOULDBLOCK || r == -EBUSY)
		TH_LOG("unload while clones live: %s", r ? strerror(-r) : "succeeded");
	ASSERT_TRUE(module_loaded("cxlfork"));
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(-EBUSY, detach(self->fd));

	kill(pids[0], SIGTERM);
	kill(pids[1], SIGTERM);
	for (int i = 0; i < 600; i++) {	/* 30 s */
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
		if (st.info.leases == 0)
			break;
		usleep(50 * 1000);
	}
	ASSERT_EQ(0, st.info.leases);
	ASSERT_EQ(0, st.info.live_clones);
	ASSERT_EQ(2, st.info.restores);
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));

	/* With the clones gone (their contexts' last references are dropped
	 * shortly after they exit) it unloads; then reload and re-attach for
	 * the tests after this one. */
	close(self->fd);
	for (int i = 0; i < 600; i++) {	/* 30 s */
		r = unload_module("cxlfork");
		if (r != -EWOULDBLOCK && r != -EBUSY)
			break;
		usleep(50 * 1000);
	}
	ASSERT_EQ(0, r) TH_LOG("unload once the clones exited: %s", strerror(-r));
	ASSERT_FALSE(module_loaded("cxlfork"));
	snprintf(cmd, sizeof(cmd), "insmod /cxlfork/cxlfork.ko && chmod 0666 %s && cxlfork-ctl pool attach --dax %s --host-id 0 >/dev/null",
		 CXLFORK_DEV, dax_dev());
	ASSERT_EQ(0, system(cmd));
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

/*
 * A process with tens of thousands of mappings (a JIT, a large heap allocator
 * with guard pages) checkpoints and restores: the VMA table (~180 bytes a
 * mapping) and the restore's per-VMA plan are several MiB, beyond what
 * kmalloc gives (4 MiB): they are vmalloc-backed. One-page VMAs alternate
 * between read-write and read-only; every 200th page holds a value.
 */
#define MANY_VMAS 40000

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int many_vmas_clone(unsigned char *m)
{
	if (count_maps() < MANY_VMAS)
		return 81;
	for (int i = 0; i < MANY_VMAS; i += 200)
		if (m[(size_t)i * PAGE] != (unsigned char)(i / 200 + 1))
			return 82;
	for (int i = 1; i < MANY_VMAS; i += 2)
		if (m[(size_t)i * PAGE])
			return 83;
	/* The writable ones still are, and writes are the clone's own. */
	for (int i = 0; i < MANY_VMAS; i += 2)
		m[(size_t)i * PAGE + 1] = 0x77;
	return 0;
}

/* MANY_VMAS pages, every other one made writable (a VMA each). */
static int many_vmas_setup(void *arg)
{
	unsigned char **m = arg;

	*m = mmap(NULL, (size_t)MANY_VMAS * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*m == MAP_FAILED)
		return 90;
	for (int i = 0; i < MANY_VMAS; i += 2)
		if (mprotect(*m + (size_t)i * PAGE, PAGE, PROT_READ | PROT_WRITE))
			return 91;
	for (int i = 0; i < MANY_VMAS; i += 200)
		(*m)[(size_t)i * PAGE] = i / 200 + 1;
	return 0;
}

static int many_vmas_check(void *arg)
{
	return many_vmas_clone(*(unsigned char **)arg);
}

TEST_F_TIMEOUT(rst, forty_thousand_vmas, 900)
{
	struct cxlfork_delete d = { .size = sizeof(d) };
	unsigned char *m = NULL;
	__u64 id = self_image(_metadata, "many-vmas", many_vmas_setup, many_vmas_check, many_vmas_check, &m);

	ASSERT_NE(0, id);
	ASSERT_EQ(0, restore_cmd(id, "--policy mow"));
	d.id = id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
}

/* CRC-32C (Castagnoli), as the on-pool format seals its structures. */
static __u32 crc32c(const void *data, size_t len)
{
	const unsigned char *p = data;
	__u32 c = ~0U;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

/*
 * A host that died while its clones held a lease must not block DELETE
 * forever: its lease lines count only under its current attach generation,
 * so taking over its slot (the operator's "that host is gone") lapses them.
 * Host 1 is simulated as a host that died attached (its slot saved while
 * attached and written back after detaching, as pool_test does) with a
 * sealed lease line on our image.
 */
TEST_F_TIMEOUT(rst, dead_hosts_lease_lapses_when_its_slot_is_taken_over, 120)
{
	struct cxlfork_stat st = { .size = sizeof(st) };
	struct cxlfork_delete d = { .size = sizeof(d) };
	struct cxlfork_pool_info info;
	struct { __u64 image_id, attach_gen, count, reserved[4]; __u32 checksum, pad; } line = { 0 };
	unsigned long long pbase, psize;
	unsigned char saved[4096], *head, *img;
	pid_t orig;
	__u64 id = make_image(_metadata, M_VERIFY, &orig), gen1;

	finish_original(_metadata, orig);
	ASSERT_EQ(64, sizeof(line));
	ASSERT_EQ(0, dax_range(dax_dev(), &pbase, &psize));
	head = map_pool_head(_metadata);
	img = map_image(_metadata, self->fd, id, 4 * MIB);

	/* Host 1 attaches and "dies" attached. */
	ASSERT_EQ(0, detach(self->fd));
	ASSERT_EQ(0, attach(self->fd, pbase, psize, 1, 0));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	gen1 = info.hosts[1].generation;
	memcpy(saved, head + SLOT_OFF(1), sizeof(saved));
	ASSERT_EQ(0, detach(self->fd));
	memcpy(head + SLOT_OFF(1), saved, sizeof(saved));
	ASSERT_EQ(0, attach(self->fd, pbase, psize, 0, 0));
	/* ... holding a lease on the image: a sealed line in its row. */
	line.image_id = id;
	line.attach_gen = gen1;
	line.count = 1;
	line.checksum = crc32c(&line, offsetof(typeof(line), checksum));
	memcpy(img + 4096 + 64 * 1, &line, sizeof(line));

	st.id = d.id = id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(1, st.info.leases);
	ASSERT_EQ(-EBUSY, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	/* The same line under another generation holds nothing. */
	line.attach_gen = gen1 + 1;
	line.checksum = crc32c(&line, offsetof(typeof(line), checksum));
	memcpy(img + 4096 + 64 * 1, &line, sizeof(line));
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(0, st.info.leases);
	line.attach_gen = gen1;
	line.checksum = crc32c(&line, offsetof(typeof(line), checksum));
	memcpy(img + 4096 + 64 * 1, &line, sizeof(line));
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(1, st.info.leases);

	/* Host 1's slot is held: attaching as it needs TAKEOVER, which starts
	 * a new generation; its old lease lapses and DELETE goes through. */
	ASSERT_EQ(0, detach(self->fd));
	ASSERT_EQ(-EBUSY, attach(self->fd, pbase, psize, 1, 0));
	ASSERT_EQ(0, attach(self->fd, pbase, psize, 1, CXLFORK_ATTACH_TAKEOVER));
	ASSERT_EQ(0, pool_info(self->fd, &info));
	ASSERT_EQ(gen1 + 1, info.hosts[1].generation);
	ASSERT_EQ(0, detach(self->fd));
	ASSERT_EQ(0, attach(self->fd, pbase, psize, 0, 0));
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(0, st.info.leases);
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	munmap(head, 2 * MIB);
}

/* A shared file mapping is mapped shared from the reopened file again: the
 * clone sees the file's bytes and its writes reach the file. */
TEST_F_TIMEOUT(rst, shared_file_mapping_is_shared_again, 120)
{
	const char *path = "/tmp/cxlfork-shared-file";
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	unsigned char page[PAGE], out[4096];
	int fd, status;
	pid_t pid;
	__u64 id = 0;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	memset(page, 'A', PAGE);
	ASSERT_EQ(PAGE, write(fd, page, PAGE));
	ASSERT_EQ(PAGE, write(fd, page, PAGE));
	close(fd);
	pid = fork();
	if (pid == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		int dfd = open(CXLFORK_DEV, O_RDWR), ffd = open(path, O_RDWR), r;
		unsigned char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);

		close(ffd);
		strcpy(c.name, "shared-file");
		r = ioctl(dfd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r == 0)
			_exit(0);
		if (r < 0 || page_has((unsigned long)m, 'A') || page_has((unsigned long)m + PAGE, 'A'))
			_exit(70);
		memset(m, 'B', PAGE);
		_exit(msync(m, 2 * PAGE, MS_SYNC) ? 71 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
	for (unsigned int i = 0; i < l.count; i++)
		if (!strcmp(infos[i].name, "shared-file"))
			id = infos[i].id;
	ASSERT_NE(0, id);
	ASSERT_EQ(0, restore_out(id, "", (char *)out, sizeof(out))) TH_LOG("%s", out);
	fd = open(path, O_RDONLY);
	ASSERT_EQ(PAGE, read(fd, page, PAGE));
	ASSERT_EQ(0, page_has((unsigned long)page, 'B'));
	ASSERT_EQ(PAGE, read(fd, page, PAGE));
	ASSERT_EQ(0, page_has((unsigned long)page, 'A'));
	close(fd);
}

/* The README's examples: C and Rust, the fork-like API end to end. */
TEST_F_TIMEOUT(rst, fork_like_examples_c_and_rust, 120)
{
	static const char *const progs[][2] = { { "fork_like", "fork-like" }, { "fork_like_rs", "fork-like-rs" } };
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	char out[4096];

	for (int p = 0; p < 2; p++) {
		__u64 id = 0;

		ASSERT_EQ(0, system(progs[p][0]));
		l.count = 64;	/* in: room; out: entries written */
		ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
		for (unsigned int i = 0; i < l.count; i++)
			if (!strcmp(infos[i].name, progs[p][1]) && infos[i].id > id)
				id = infos[i].id;
		ASSERT_NE(0, id);
		ASSERT_EQ(0, restore_out(id, "--count 2", out, sizeof(out)));
		ASSERT_NE(NULL, strstr(out, "clone 1: pid")) TH_LOG("%s", out);
		ASSERT_NE(NULL, strstr(out, "clone 2: pid")) TH_LOG("%s", out);
		ASSERT_NE(NULL, strstr(out, "state sum 93822844764160")) TH_LOG("%s", out);
	}
}

/*
 * Local copies are charged to the clone's memory cgroup: a clone that reads
 * MEMCG_MIB of checkpointed memory under MoA (every page copied local at its
 * first access) raises its cgroup's memory.peak by at least that much;
 * under HT, with the pages cold (Accessed bits cleared before the
 * checkpoint: mapped from the pool, never written), by far less: pool pages
 * are not the host's memory.
 */
#define MEMCG_MIB 24
#define CGROOT "/sys/fs/cgroup"

static __u64 memcg_image(struct __test_metadata *_metadata, pid_t *orig)
{
	int p[2];
	__u64 id = 0;

	ASSERT_EQ(0, pipe(p));
	*orig = fork();
	ASSERT_LE(0, *orig);
	if (*orig == 0) {
		size_t len = MEMCG_MIB << 20;
		volatile unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		unsigned long sum = 0;
		int fd = open(CXLFORK_DEV, O_RDWR), r;

		if (m == MAP_FAILED || fd < 0)
			_exit(90);
		for (size_t i = 0; i < len; i += PAGE)
			memset((void *)(m + i), (int)(i / PAGE) | 1, PAGE);
		/* Cold: Accessed bits cleared (and the TLB flushed, see setup()). */
		r = open("/proc/self/clear_refs", O_WRONLY);
		if (r < 0 || write(r, "1", 1) != 1)
			_exit(93);
		close(r);
		mprotect((void *)m, len, PROT_READ);
		mprotect((void *)m, len, PROT_READ | PROT_WRITE);
		strcpy(c.name, "memcg");
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0) {	/* a clone: read every page, write none */
			for (size_t i = 0; i < len; i += PAGE)
				sum += m[i] + m[i + PAGE - 1];
			_exit(sum ? 0 : 91);
		}
		id = r ? 0 : c.image_id;
		if (write(p[1], &id, sizeof(id)) != sizeof(id))
			_exit(92);
		while (!got_usr1)
			pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(sizeof(id), read(p[0], &id, sizeof(id)));
	close(p[0]);
	ASSERT_NE(0, id);
	return id;
}

static long long read_ll(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	return n > 0 ? atoll(buf) : -1;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

/* memory.peak of a fresh cgroup in which one clone of id ran under policy. */
static long long clone_peak(__u64 id, const char *policy)
{
	char cg[128], path[192], cmd[160];
	long long peak;
	pid_t pid;
	int status;

	snprintf(cg, sizeof(cg), CGROOT "/cxlfork-memcg-%s", policy);
	rmdir(cg);
	if (mkdir(cg, 0755))
		return -1;
	snprintf(cmd, sizeof(cmd), "%llu:%llu", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL));
	pid = fork();
	if (pid == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		if (write_str(path, "0"))
			_exit(120);
		execlp("cxlfork-ctl", "cxlfork-ctl", "restore", cmd, "--wait", "--skip-files", "--policy", policy,
		       (char *)NULL);
		_exit(121);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -2;
	snprintf(path, sizeof(path), "%s/memory.peak", cg);
	peak = read_ll(path);
	rmdir(cg);
	return peak;
}

TEST_F_TIMEOUT(rst, local_copies_are_charged_to_the_clones_memcg, 240)
{
	long long moa, ht;
	pid_t orig;
	__u64 id;

	if (access(CGROOT "/cgroup.controllers", F_OK)) {
		mkdir(CGROOT, 0755);
		ASSERT_EQ(0, mount("cgroup2", CGROOT, "cgroup2", 0, NULL)) TH_LOG("mount cgroup2: %s", strerror(errno));
	}
	ASSERT_EQ(0, write_str(CGROOT "/cgroup.subtree_control", "+memory"));
	id = memcg_image(_metadata, &orig);
	moa = clone_peak(id, "moa");
	ht = clone_peak(id, "ht");
	TH_LOG("memory.peak of a clone that read %d MiB: MoA %lld KiB, HT (cold pages) %lld KiB", MEMCG_MIB, moa >> 10,
	       ht >> 10);
	ASSERT_LE((long long)MEMCG_MIB << 20, moa);
	ASSERT_LT(0, ht);
	ASSERT_GT((long long)MEMCG_MIB << 19, ht);
	kill(orig, SIGUSR1);
	ASSERT_EQ(orig, waitpid(orig, NULL, 0));
}

TEST_HARNESS_MAIN
