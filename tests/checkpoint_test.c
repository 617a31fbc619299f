// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork checkpoint tests (one guest, pool attached, run as root).
 *
 * A workload maps every kind of memory with a known byte pattern: anonymous
 * pages, heap, stack, a private file mapping (some pages read, some written,
 * some untouched), a read-only region, a PROT_NONE region, a sparse 64 MiB
 * mapping. It is checkpointed by itself and by pid; the image is then read
 * back from the pool through cxlfork-ctl (which validates it with the shared
 * validator) and compared with what the workload holds: same VMAs as its
 * /proc/PID/maps, same bytes, Accessed/Dirty bits as it used its pages.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"
#include "workload.h"

/* A child that sets up, checkpoints itself (pid 0) or waits to be
 * checkpointed (self == 0), reports through the pipe, then pauses. */
static pid_t spawn(int self, int *rfd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		unsigned char stack_page[2 * PAGE];
		struct work w = { 0 };
		unsigned char *sp = (unsigned char *)(((unsigned long)stack_page + PAGE - 1) & ~(PAGE - 1));

		close(p[0]);
		setup(&w, sp);
		if (self) {
			int fd = open(CXLFORK_DEV, O_RDWR);
			struct cxlfork_checkpoint c = { .size = sizeof(c) };

			strcpy(c.name, "self");
			w.err = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c) ? errno : 0;
			w.image_id = c.image_id;
		}
		if (write(p[1], &w, sizeof(w)) != sizeof(w))
			_exit(82);
		for (;;)
			pause();
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static int run(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	return pclose(f);
}

static void id_str(__u64 id, char *buf)
{
	sprintf(buf, "%llu:%llu", (unsigned long long)(id >> 48),
		(unsigned long long)(id & ((1ULL << 48) - 1)));
}

static int ckpt(int fd, int pid, unsigned int flags, __u64 *id)
{
	struct cxlfork_checkpoint c = { .size = sizeof(c), .pid = pid, .flags = flags, .mem_fd = -1 };
	char mem[64];
	int r;

	/* The right to checkpoint another process: its /proc/PID/mem, opened
	 * (the ptrace access check) by the caller. */
	snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
	if (pid > 0)
		c.mem_fd = open(mem, O_RDONLY);
	strcpy(c.name, "by-pid");
	r = xioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (c.mem_fd >= 0)
		close(c.mem_fd);
	if (id)
		*id = c.image_id;
	return r;
}

static __u32 image_total(int fd)
{
	struct cxlfork_list l = { .size = sizeof(l), .count = 0 };

	return xioctl(fd, CXLFORK_IOC_LIST, &l) ? (__u32)-1 : l.total;
}

/* The checkpointed bytes of the page at addr, via cxlfork-ctl; 0 if found. */
static int image_page(const char *id, unsigned long addr, unsigned char *page)
{
	char cmd[128];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %s --page %#lx 2>/dev/null", id, addr);
	f = popen(cmd, "r");
	n = fread(page, 1, PAGE, f);
	return pclose(f) == 0 && n == PAGE ? 0 : -1;
}

static int page_is(const unsigned char *p, unsigned char v)
{
	for (unsigned long i = 0; i < PAGE; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* "AD-" flags of the page at addr from `inspect --pages`, or NULL if absent. */
static const char *page_flags(const char *pages, unsigned long addr, char *out)
{
	char key[40];
	const char *at;

	snprintf(key, sizeof(key), "page %#lx ", addr);
	at = strstr(pages, key);
	if (!at)
		return NULL;
	memcpy(out, at + strlen(key), 3);
	out[3] = 0;
	return out;
}

/* Every check of an image against the workload that wrote w. */
static void verify_image(struct __test_metadata *_metadata, pid_t pid, const struct work *w, __u64 image_id)
{
	static char out[65536], pages[1 << 20];
	unsigned char page[PAGE];
	char id[32], cmd[128], line[512], fl[4];
	FILE *f;
	int n_maps = 0;

	id_str(image_id, id);
	/* Same VMAs as /proc/PID/maps, vdso/vvar aside. */
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %s --maps", id);
	ASSERT_EQ(0, run(cmd, out, sizeof(out)));
	snprintf(cmd, sizeof(cmd), "/proc/%d/maps", pid);
	f = fopen(cmd, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		char range[64], perms[8];

		if (strstr(line, "[vdso]") || strstr(line, "[vvar"))
			continue;
		ASSERT_EQ(2, sscanf(line, "%63s %7s", range, perms));
		snprintf(cmd, sizeof(cmd), "%s %s ", range, perms);
		ASSERT_NE(NULL, strstr(out, cmd)) TH_LOG("VMA %s missing from the image:\n%s", cmd, out);
		n_maps++;
	}
	fclose(f);
	{
		int n_img = 0;

		for (char *p = out; (p = strchr(p, '\n')); p++)
			n_img++;
		/* The image also lists vdso, vvar, vvar_vclock. */
		ASSERT_LE(n_maps, n_img);
		ASSERT_GE(n_maps + 3, n_img) TH_LOG("image has extra VMAs:\n%s", out);
	}

	/* Bytes. */
	for (int i = 0; i < ANON_PAGES; i++) {
		ASSERT_EQ(0, image_page(id, w->anon + i * PAGE, page));
		ASSERT_TRUE(page_is(page, pat(R_ANON, i)));
	}
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, image_page(id, w->heap + i * PAGE, page));
		ASSERT_TRUE(page_is(page, pat(R_HEAP, i)));
	}
	ASSERT_EQ(0, image_page(id, w->stack, page));
	ASSERT_TRUE(page_is(page, pat(R_STACK, 0)));
	/* A private file mapping's clean pages are the file's own page-cache
	 * pages: a clone reads them from the file (as a fork child shares
	 * them), the image holds only private copies. */
	for (int i = 0; i < 4; i++) {
		ASSERT_NE(0, image_page(id, w->file + i * PAGE, page)) TH_LOG("clean file page %d is in the image", i);
	}
	for (int i = 4; i < 6; i++) {
		ASSERT_EQ(0, image_page(id, w->file + i * PAGE, page));
		ASSERT_TRUE(page_is(page, pat(R_FILE, 100 + i)));
	}
	ASSERT_EQ(0, image_page(id, w->ro, page));
	ASSERT_TRUE(page_is(page, pat(R_RO, 0)));
	ASSERT_EQ(0, image_page(id, w->none + PAGE, page)) TH_LOG("PROT_NONE page");
	ASSERT_TRUE(page_is(page, pat(R_NONE, 1)));
	ASSERT_EQ(0, image_page(id, w->sparse + (16UL << 20) + 5 * PAGE, page));
	ASSERT_TRUE(page_is(page, pat(R_SPARSE, 0)));
	ASSERT_EQ(0, image_page(id, w->sparse + SPARSE_SIZE - PAGE, page));
	/* Never-touched pages are not in the image (a whole untouched 2 MiB
	 * block: with THP a touched block may be one huge page). */
	ASSERT_NE(0, image_page(id, w->sparse + (8UL << 20), page));
	ASSERT_NE(0, image_page(id, w->file + 20 * PAGE, page));
	/* Pages fault-around mapped are clean: not in the image either. */
	ASSERT_NE(0, image_page(id, w->file + 6 * PAGE, page));

	/* Accessed/Dirty as the workload used its pages. */
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %s --pages", id);
	ASSERT_EQ(0, run(cmd, pages, sizeof(pages)));
	for (int i = 0; i < ANON_PAGES; i++) {
		ASSERT_NE(NULL, page_flags(pages, w->anon + i * PAGE, fl));
		ASSERT_EQ('D', fl[1]);
		ASSERT_EQ(i < ANON_PAGES / 2 ? 'A' : '-', fl[0]) TH_LOG("anon page %d: %s", i, fl);
	}
	for (int i = 4; i < 6; i++) {
		ASSERT_NE(NULL, page_flags(pages, w->file + i * PAGE, fl));
		ASSERT_EQ('A', fl[0]);
		ASSERT_EQ('D', fl[1]) TH_LOG("file page %d: %s", i, fl);
	}
	if (page_flags(pages, w->file + 7 * PAGE, fl))
		ASSERT_EQ('-', fl[1]);
	ASSERT_EQ(NULL, page_flags(pages, w->file + 20 * PAGE, fl));
}

FIXTURE(ckpt) {
	int fd;
};

FIXTURE_SETUP(ckpt)
{
	struct cxlfork_pool_info info;

	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, pool_info(self->fd, &info)) TH_LOG("the runner attaches the pool");
	make_file();
}

FIXTURE_TEARDOWN(ckpt)
{
	close(self->fd);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST_F(ckpt, self_checkpoint_matches_memory)
{
	struct work w;
	int rfd;
	pid_t pid = spawn(1, &rfd);

	ASSERT_LT(0, pid);
	ASSERT_EQ(sizeof(w), read(rfd, &w, sizeof(w)));
	ASSERT_EQ(0, w.err) TH_LOG("self checkpoint: %s", strerror(w.err));
	ASSERT_NE(0, w.image_id);
	verify_image(_metadata, pid, &w, w.image_id);
	reap(pid);
}

/* The state letter of a /proc/.../stat file ('?' if unreadable). */
static char stat_state(const char *path)
{
	char buf[256], *p;
	int fd, n;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

static char proc_state_now(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	return stat_state(path);
}

/* The state a process settles in (a resumed process runs briefly). */
static char proc_state(pid_t pid)
{
	char s = '?';

	for (int i = 0; i < 50; i++) {
		s = proc_state_now(pid);
		if (s == 'S' || s == 'T')
			break;
		usleep(20 * 1000);
	}
	return s;
}

TEST_F(ckpt, by_pid_resume_leave_stopped_kill)
{
	struct work w;
	__u64 id;
	int rfd, status;
	pid_t pid = spawn(0, &rfd);

	ASSERT_LT(0, pid);
	ASSERT_EQ(sizeof(w), read(rfd, &w, sizeof(w)));
	usleep(100 * 1000);	/* let it reach pause() */

	/* Default: stopped while copied, then resumed. */
	ASSERT_EQ(0, ckpt(self->fd, pid, 0, &id));
	verify_image(_metadata, pid, &w, id);
	ASSERT_EQ('S', proc_state(pid));

	/* Stopped in pause(): the registers are in restarted form. */
	{
		static char out[1 << 16];
		char cmd[96], ids[32];

		id_str(id, ids);
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %s --json", ids);
		ASSERT_EQ(0, run(cmd, out, sizeof(out)));
		ASSERT_NE(NULL, strstr(out, "stopped in a system call (re-issued on restore)")) TH_LOG("%s", out);
		ASSERT_NE(NULL, strstr(out, "\"orig_ax\": \"0x22\"")) TH_LOG("pause is syscall 34");
		ASSERT_NE(NULL, strstr(out, "\"ax\": \"0x22\""));
	}

	ASSERT_EQ(0, ckpt(self->fd, pid, CXLFORK_CKPT_LEAVE_STOPPED, &id));
	ASSERT_EQ('T', proc_state(pid));
	kill(pid, SIGCONT);
	ASSERT_EQ('S', proc_state(pid));

	/* Both flags at once make no sense: refused, and neither is done
	 * (the process neither stopped nor killed), no image. (The same
	 * request with either flag alone is valid: above and below.) */
	{
		__u32 n = image_total(self->fd);

		ASSERT_EQ(-EINVAL, ckpt(self->fd, pid, CXLFORK_CKPT_LEAVE_STOPPED | CXLFORK_CKPT_KILL, NULL));
		ASSERT_EQ('S', proc_state(pid));
		ASSERT_EQ(n, image_total(self->fd));
	}

	ASSERT_EQ(0, ckpt(self->fd, pid, CXLFORK_CKPT_KILL, &id));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGKILL, WTERMSIG(status));
}

static void *spin(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static void *spin_tid(void *arg)
{
	*(volatile pid_t *)arg = gettid();
	for (;;)
		pause();
	return arg;
}

/* A process with two threads (the main one pausing); the other's tid. */
static pid_t two_threads(pid_t *tid)
{
	static volatile pid_t *shared;
	pid_t pid;

	if (!shared)
		shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*shared = 0;
	pid = fork();
	if (pid == 0) {
		pthread_t t;

		pthread_create(&t, NULL, spin_tid, (void *)shared);
		for (;;)
			pause();
	}
	while (!*shared)
		usleep(1000);
	*tid = *shared;
	return pid;
}

static int delete_image(int fd, __u64 id)
{
	struct cxlfork_delete d = { .size = sizeof(d), .id = id };

	return xioctl(fd, CXLFORK_IOC_DELETE, &d);
}

/* Threads that count in a shared page, forever. */
static volatile unsigned long *counters;

static void *count_up(void *arg)
{
	long i = (long)arg;

	for (;;)
		counters[i]++;
	return arg;
}

/* The state of thread tid of process pid, as /proc shows it. */
static char thread_state(pid_t pid, pid_t tid)
{
	char path[80];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	return stat_state(path);
}

/*
 * A process of 4 computing threads checkpointed by pid: the image has 4
 * threads; with LEAVE_STOPPED every thread is stopped when the call
 * returns and none counts any more (none ran user code after the copy);
 * SIGCONT lets them all go on; KILL kills them all.
 */
TEST_F(ckpt, threads_by_pid_leave_stopped_kill)
{
	pid_t pid, tids[4];
	unsigned long before[4];
	char cmd[160], out[8192];
	__u64 id;
	FILE *f;
	size_t n;
	int status, found;

	counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, (void *)counters);
	memset((void *)counters, 0, 4096);
	pid = fork();
	if (pid == 0) {
		pthread_t t;

		for (long i = 1; i < 4; i++)
			pthread_create(&t, NULL, count_up, (void *)i);
		count_up((void *)0);
	}
	usleep(300 * 1000);
	ASSERT_EQ(0, ckpt(self->fd, pid, CXLFORK_CKPT_LEAVE_STOPPED, &id));
	/* Every thread stopped, and stays still. */
	snprintf(cmd, sizeof(cmd), "ls /proc/%d/task", pid);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	found = 0;
	while (found < 4 && fscanf(f, "%d", &tids[found]) == 1)
		found++;
	pclose(f);
	ASSERT_EQ(4, found);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ('T', thread_state(pid, tids[i])) TH_LOG("thread %d", tids[i]);
	}
	for (int i = 0; i < 4; i++)
		before[i] = counters[i];
	usleep(200 * 1000);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(before[i], counters[i]) TH_LOG("thread %d counted after the checkpoint", i);
	}
	/* The image has every thread. */
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %llu:%llu", (unsigned long long)(id >> 48),
		 (unsigned long long)(id & 0xffffffffffffULL));
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	n = fread(out, 1, sizeof(out) - 1, f);
	pclose(f);
	out[n] = 0;
	ASSERT_NE(NULL, strstr(out, "  4 threads:")) TH_LOG("%s", out);
	/* Continued, all count again. */
	kill(pid, SIGCONT);
	usleep(200 * 1000);
	for (int i = 0; i < 4; i++) {
		ASSERT_NE(before[i], counters[i]) TH_LOG("thread %d stopped for good", i);
	}
	ASSERT_EQ(0, delete_image(self->fd, id));
	ASSERT_EQ(0, ckpt(self->fd, pid, CXLFORK_CKPT_KILL, &id));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGKILL, WTERMSIG(status));
	ASSERT_EQ(0, delete_image(self->fd, id));
	munmap((void *)counters, 4096);
}

TEST_F(ckpt, bad_targets_leave_nothing)
{
	__u32 before = image_total(self->fd);
	struct cxlfork_checkpoint base = { .size = sizeof(base) }, c;
	struct cxlfork_delete d = { .size = sizeof(d) };
	int status;
	pid_t mt, pid, target;

	ASSERT_NE((__u32)-1, before);
	/* Multi-threaded: a thread's tid is not a process (ESRCH); a traced
	 * thread (EBUSY, as a traced process); a process whose main thread
	 * exited (EOPNOTSUPP): each refused with the process left running,
	 * nothing in the pool. */
	{
		pid_t tid;

		mt = two_threads(&tid);
		ASSERT_EQ(-ESRCH, ckpt(self->fd, tid, 0, NULL)) TH_LOG("tid %d of process %d", tid, mt);
		ASSERT_EQ(0, ptrace(PTRACE_SEIZE, tid, 0, 0));
		ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, tid, 0, 0));
		ASSERT_EQ(tid, waitpid(tid, &status, __WALL));
		ASSERT_EQ(-EBUSY, ckpt(self->fd, mt, 0, NULL));
		ASSERT_EQ(0, ptrace(PTRACE_DETACH, tid, 0, 0));
		ASSERT_EQ('S', proc_state(mt)) TH_LOG("refused target must not be left stopped");
		reap(mt);
	}
	mt = fork();
	if (mt == 0) {
		pthread_t t;

		pthread_create(&t, NULL, spin, NULL);
		pthread_exit(NULL);	/* the main thread: a zombie leader */
	}
	usleep(200 * 1000);
	ASSERT_EQ(-EOPNOTSUPP, ckpt(self->fd, mt, 0, NULL));
	reap(mt);
	/* THIS_THREAD is the caller's own: refused with a pid. */
	target = fork();
	if (target == 0) {
		for (;;)
			pause();
	}
	usleep(100 * 1000);
	ASSERT_EQ(-EINVAL, ckpt(self->fd, target, CXLFORK_CKPT_THIS_THREAD, NULL));
	ASSERT_EQ('S', proc_state(target));
	reap(target);
	ASSERT_EQ(before, image_total(self->fd));

	ASSERT_EQ(-ESRCH, ckpt(self->fd, 999999, 0, NULL));
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, NULL));

	/* A valid request (a waiting process, with its /proc/PID/mem), and
	 * that request with one field changed: each is refused with EINVAL
	 * for that field (the comment says what would happen without the
	 * check), leaves the target running, and makes no image. */
	target = fork();
	ASSERT_LE(0, target);
	if (target == 0) {
		for (;;)
			pause();
	}
	usleep(100 * 1000);
	base.pid = target;
	base.mem_fd = proc_mem_fd(target);
	ASSERT_LE(0, base.mem_fd);
	strcpy(base.name, "bad-target");
	c = base;
	c.pid = -5;		/* (ESRCH) */
	ASSERT_EQ(-EINVAL, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c));
	c = base;
	c.pid = 2;		/* the kernel thread kthreadd, with its own mem */
	c.mem_fd = proc_mem_fd(2);
	ASSERT_EQ(-EINVAL, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c)) TH_LOG("kernel thread kthreadd");
	if (c.mem_fd >= 0)
		close(c.mem_fd);
	c = base;
	c.flags = 1U << 9;	/* (an image) */
	ASSERT_EQ(-EINVAL, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c));
	c = base;
	memset(c.name, 'x', sizeof(c.name));	/* no NUL (an image) */
	ASSERT_EQ(-EINVAL, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c));
	ASSERT_EQ('S', proc_state(target));
	ASSERT_EQ(before, image_total(self->fd));
	c = base;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c)) TH_LOG("the base request");
	ASSERT_EQ(before + 1, image_total(self->fd));
	d.id = c.image_id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	close(base.mem_fd);
	reap(target);

	/* A foreign uid without privilege: nobody may not checkpoint root's process. */
	pid = fork();
	if (pid == 0) {
		int fd = open_as_nobody();

		_exit(ckpt(fd, getppid(), 0, NULL) == -EPERM ? 0 : 91);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);
	ASSERT_EQ(before, image_total(self->fd));
}

TEST_F(ckpt, pool_full_is_enospc)
{
	struct cxlfork_pool_info a, b;
	__u32 before = image_total(self->fd);
	int p[2];
	char c;
	pid_t pid;

	ASSERT_EQ(0, pool_info(self->fd, &a));
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	if (pid == 0) {
		/* More touched memory than this host's whole partition. */
		size_t len = a.part_size + (8UL << 20);
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		for (size_t i = 0; i < len; i += PAGE)
			m[i] = 1;
		if (write(p[1], "", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(p[0], &c, 1));
	usleep(100 * 1000);
	ASSERT_EQ(-ENOSPC, ckpt(self->fd, pid, 0, NULL));
	ASSERT_EQ('S', proc_state(pid));
	reap(pid);
	ASSERT_EQ(before, image_total(self->fd));
	ASSERT_EQ(0, pool_info(self->fd, &b));
	ASSERT_EQ(a.part_free, b.part_free);
}

TEST_F(ckpt, corrupt_header_is_reported_invalid)
{
	struct cxlfork_stat st = { .size = sizeof(st) };
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	static char out[65536];
	struct work w;
	unsigned long long base = 0, size;
	unsigned char *img;
	char id[32], cmd[128];
	int rfd, dfd;
	pid_t pid = spawn(1, &rfd);

	ASSERT_EQ(sizeof(w), read(rfd, &w, sizeof(w)));
	ASSERT_EQ(0, w.err);
	reap(pid);
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
	for (unsigned int i = 0; i < l.count; i++)
		if (infos[i].id == w.image_id)
			base = infos[i].base;
	ASSERT_NE(0, base);
	id_str(w.image_id, id);

	/* Flip one byte of the image's name in the pool, as a bad writer would. */
	ASSERT_EQ(0, dax_range(dax_dev(), &size, &size));
	dfd = open(dax_dev(), O_RDWR);
	ASSERT_LE(0, dfd);
	img = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, base & ~(2 * MIB - 1));
	ASSERT_NE(MAP_FAILED, img);
	img += base & (2 * MIB - 1);
	img[100] ^= 0x20;

	st.id = w.image_id;
	ASSERT_EQ(-EBADMSG, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(0, run("cxlfork-ctl ls", out, sizeof(out)));
	ASSERT_NE(NULL, strstr(out, "INVALID")) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "cxlfork-ctl inspect %s 2>&1", id);
	ASSERT_NE(0, run(cmd, out, sizeof(out)));
	ASSERT_NE(NULL, strstr(out, "INVALID")) TH_LOG("%s", out);

	img[100] ^= 0x20;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(1, st.info.valid);
	close(dfd);
}

TEST_F(ckpt, list_stat_read_delete)
{
	struct cxlfork_stat st = { .size = sizeof(st) };
	struct cxlfork_delete d = { .size = sizeof(d) };
	struct cxlfork_read r = { .size = sizeof(r) };
	struct cxlfork_pool_info before, after;
	unsigned char buf[64];
	struct work w;
	int rfd, status;
	pid_t pid;

	ASSERT_EQ(0, pool_info(self->fd, &before));
	pid = spawn(1, &rfd);
	ASSERT_EQ(sizeof(w), read(rfd, &w, sizeof(w)));
	ASSERT_EQ(0, w.err);
	reap(pid);

	st.id = w.image_id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	ASSERT_EQ(1, st.info.valid);
	ASSERT_STREQ("self", st.info.name);
	ASSERT_STREQ("checkpoint_test", st.info.comm);
	ASSERT_EQ(pid, st.info.pid);
	ASSERT_EQ(0, st.info.leases);
	ASSERT_LT(ANON_PAGES + 3 + 6 + 2 + 2 + 3, st.info.pages);
	ASSERT_EQ(0, pool_info(self->fd, &after));
	ASSERT_EQ(before.part_free - st.info.size, after.part_free);
	ASSERT_EQ(before.images + 1, after.images);

	/* Raw read of the header: starts with the image magic. */
	r.id = w.image_id;
	r.length = sizeof(buf);
	r.buf = (unsigned long)buf;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_READ, &r));
	ASSERT_EQ(0, memcmp(buf, "CXLFIMG", 8));
	/* Up to the extent's end, not past it. */
	r.offset = st.info.size - sizeof(buf);
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_READ, &r));
	r.offset = st.info.size - 8;
	ASSERT_EQ(-EINVAL, xioctl(self->fd, CXLFORK_IOC_READ, &r));
	r.offset = 0;
	r.buf = 8;
	ASSERT_EQ(-EFAULT, xioctl(self->fd, CXLFORK_IOC_READ, &r));

	/* Not the owner: the image does not exist for it (no read, no delete). */
	pid = fork();
	if (pid == 0) {
		int fd = open_as_nobody();

		r.buf = (unsigned long)buf;
		if (xioctl(fd, CXLFORK_IOC_READ, &r) != -ENOENT)
			_exit(91);
		d.id = w.image_id;
		_exit(xioctl(fd, CXLFORK_IOC_DELETE, &d) == -ENOENT ? 0 : 92);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EXITED(0, status);

	d.id = w.image_id;
	ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	ASSERT_EQ(-ENOENT, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	ASSERT_EQ(-ENOENT, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
	d.id = 12345;
	ASSERT_EQ(-ENOENT, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	d.id = 3ULL << 48;	/* another host's id space, no such image */
	ASSERT_EQ(-ENOENT, xioctl(self->fd, CXLFORK_IOC_DELETE, &d));
	ASSERT_EQ(0, pool_info(self->fd, &after));
	ASSERT_EQ(before.part_free, after.part_free);
}

TEST_HARNESS_MAIN
