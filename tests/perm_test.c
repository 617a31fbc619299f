// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork permission matrix (one guest, pool attached, run as root): every
 * ioctl as each identity,
 *
 *   root     uid 0, CAP_SYS_ADMIN and CAP_SYS_PTRACE;
 *   owner    uid 1000, whose images the tests make;
 *   other    uid 1001;
 *   userns   uid 1000 that made its own user namespace (uid_map "0 1000 1"):
 *            uid 0 with every capability inside, nothing outside;
 *
 * and checkpoint-by-pid under each Yama ptrace_scope (0 classic, 1
 * restricted to descendants, 2 admin only, 3 no attach; 3 cannot be undone,
 * so it runs last). The rules asserted:
 *
 *   POOL_ATTACH, POOL_DETACH  CAP_SYS_ADMIN in the initial user namespace,
 *                             else EPERM (a userns root gets EPERM);
 *   POOL_INFO                 anyone who can open the device;
 *   CHECKPOINT, pid 0         anyone; the image's owner is the caller's
 *                             kernel uid (initial namespace);
 *   CHECKPOINT by pid         a descriptor of /proc/PID/mem the caller opened
 *                             (its open ran the ptrace access check: Yama and
 *                             LSMs), in mem_fd; none, one of another process
 *                             or another /proc file: EPERM (root too);
 *   LIST                      a user sees only its own images (total too),
 *                             root all;
 *   STAT, READ, DELETE, RESTORE  of an image the caller does not own: ENOENT
 *                             (it does not exist for it); root: allowed;
 *   CLONE_STAT                itself, the same euid, or CAP_SYS_ADMIN, else
 *                             EPERM; a process that is no clone: ENOENT; no
 *                             process: ESRCH.
 *
 * Each case runs in a forked child that became the identity; its exit
 * status is the errno of the call (0: success; RESTORED: it became a clone
 * of the image, which exited so).
 */
#define _GNU_SOURCE
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"

#define OWNER_UID 1000
#define OTHER_UID 1001
/* A clone of a test image exits with this: the restore went through. */
#define RESTORED 77
/* A clone of a waiting image exits with this plus the errno of its own
 * CLONE_STAT (pid 0) once it gets SIGTERM. */
#define WAITED 60
/* Exit statuses of a child that could not become its identity. */
#define E_SETID 240
#define E_UNSHARE 241
#define E_UIDMAP 242
#define E_NOTROOT 243
#define E_OPEN 244
#define E_CLONE 245
#define YAMA "/proc/sys/kernel/yama/ptrace_scope"

enum ident { ROOT, OWNER, OTHER, USERNS, N_IDENT };

static const char *const ident_name[N_IDENT] = {
	"root", "owner (uid 1000)", "other (uid 1001)", "userns root (uid 1000 outside)",
};

/* Kernel uid (initial namespace) of each identity's images. */
static const unsigned int ident_kuid[N_IDENT] = { 0, OWNER_UID, OTHER_UID, OWNER_UID };

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

/* In a forked child: become id (exit E_* if it cannot). */
static void become(enum ident id)
{
	unsigned int uid = id == OTHER ? OTHER_UID : OWNER_UID;

	if (id == ROOT)
		return;
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		_exit(E_SETID);
	/* A change of uid made the process undumpable: a user's own
	 * processes are dumpable (ptrace-able by that user). */
	prctl(PR_SET_DUMPABLE, 1);
	if (id == USERNS) {
		if (unshare(CLONE_NEWUSER))
			_exit(E_UNSHARE);
		if (write_file("/proc/self/uid_map", "0 1000 1"))
			_exit(E_UIDMAP);
		write_file("/proc/self/setgroups", "deny");
		write_file("/proc/self/gid_map", "0 1000 1");
		if (getuid() != 0)
			_exit(E_NOTROOT);
	}
}

static int dev_open(void)
{
	int fd = open(CXLFORK_DEV, O_RDWR);

	if (fd < 0)
		_exit(E_OPEN);
	return fd;
}

static int err_of(long r)
{
	return r < 0 ? errno : 0;
}

static const char *result_name(int code)
{
	switch (code) {
	case 0: return "success";
	case RESTORED: return "became a clone";
	case E_SETID: return "setuid failed";
	case E_UNSHARE: return "unshare(CLONE_NEWUSER) failed";
	case E_UIDMAP: return "writing uid_map failed";
	case E_NOTROOT: return "not uid 0 in its namespace";
	case E_OPEN: return "cannot open " CXLFORK_DEV;
	case E_CLONE: return "a checkpoint returned as a clone";
	default: return code < 200 ? strerror(code) : "?";
	}
}

typedef int (*op_fn)(const void *arg);

/* Runs fn(arg) as id in a forked child: its wait status. */
static int run_as(enum ident id, op_fn fn, const void *arg)
{
	pid_t p;
	int st;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p == 0) {
		become(id);
		_exit(fn(arg) & 0xff);
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return st;
}

/* Starts fn(arg) as id in a forked child, without waiting: its pid. */
static pid_t spawn_as(enum ident id, op_fn fn, const void *arg)
{
	pid_t p;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p == 0) {
		become(id);
		_exit(fn(arg) & 0xff);
	}
	return p;
}

/* fn(arg) as id must end with want (an errno, 0, RESTORED). */
#define EXPECT_AS(id, want, fn, arg) do {						\
	int _st = run_as(id, fn, arg);							\
	EXPECT_TRUE(_st != -1 && WIFEXITED(_st))					\
		TH_LOG("%s as %s: status %#x (killed by signal %d)", #fn, ident_name[id], _st, \
		       _st != -1 && WIFSIGNALED(_st) ? WTERMSIG(_st) : 0);		\
	if (_st != -1 && WIFEXITED(_st))						\
		EXPECT_EQ((want), WEXITSTATUS(_st))					\
			TH_LOG("%s(%s) as %s: %s, expected %s", #fn, #arg, ident_name[id], \
			       result_name(WEXITSTATUS(_st)), result_name(want));	\
} while (0)

/* -------------------------------------------------------------------- */
/* Processes and images of each identity.                               */

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

/* Closes every descriptor but stdio and keep (a clone reopens the rest). */
static void close_from_3(int keep, int keep2)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fd != keep && fd != keep2)
			close(fd);
}

/*
 * An image of a process of id that checkpointed itself. A clone of it
 * exits RESTORED; of a waiting one, it asks CLONE_STAT about itself, waits
 * for SIGTERM and exits WAITED + that errno. 0 if it could not be made.
 */
static __u64 make_image(enum ident id, int waiting)
{
	__u64 img = 0;
	int p[2], st;
	pid_t pid;

	if (pipe(p))
		return 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		int fd;
		long r;

		become(id);
		fd = dev_open();
		close(p[0]);
		close_from_3(fd, p[1]);
		signal(SIGTERM, on_term);
		snprintf(c.name, sizeof(c.name), "perm-%d%s", id, waiting ? "-wait" : "");
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0) {
			struct cxlfork_clone_stat cs = { .size = sizeof(cs), .pid = 0 };
			int e;

			if (!waiting)
				_exit(RESTORED);
			e = err_of(ioctl(fd, CXLFORK_IOC_CLONE_STAT, &cs));
			for (int i = 0; i < 1200 && !got_term; i++)
				usleep(100000);
			_exit(WAITED + e);
		}
		if (r == 0 && write(p[1], &c.image_id, sizeof(c.image_id)) == sizeof(c.image_id))
			_exit(0);
		_exit(1);
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &img, sizeof(img)) != sizeof(img))
		img = 0;
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	return img;
}

static int op_pause(const void *arg)
{
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
	return 0;
}

/* A process of id that waits (a checkpoint target). */
static pid_t sleeper(enum ident id)
{
	pid_t p = spawn_as(id, op_pause, NULL);

	usleep(100000);
	return p;
}

static void reap(pid_t *p)
{
	if (*p > 0) {
		kill(*p, SIGKILL);
		waitpid(*p, NULL, 0);
	}
	*p = 0;
}

static int root_fd(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = open(CXLFORK_DEV, O_RDWR);
	return fd;
}

static int delete_image(__u64 id)
{
	struct cxlfork_delete d = { .size = sizeof(d), .id = id };

	return err_of(ioctl(root_fd(), CXLFORK_IOC_DELETE, &d));
}

/* Root's view of an image: 0 and its info, or the errno. */
static int stat_image(__u64 id, struct cxlfork_image_info *info)
{
	struct cxlfork_stat s = { .size = sizeof(s), .id = id };
	int e = err_of(ioctl(root_fd(), CXLFORK_IOC_STAT, &s));

	if (!e && info)
		*info = s.info;
	return e;
}

/* Until pid, restoring an image, is a clone in pause (or usleep). */
static int wait_for_clone(pid_t pid)
{
	for (int i = 0; i < 600; i++) {
		struct cxlfork_clone_stat cs = { .size = sizeof(cs), .pid = pid };
		char path[64], buf[64] = "";
		int fd, n;

		if (ioctl(root_fd(), CXLFORK_IOC_CLONE_STAT, &cs) == 0) {
			/* In nanosleep (usleep): the restore is done. */
			snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
			fd = open(path, O_RDONLY);
			n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (n > 0 && !strncmp(buf, "230 ", 4))	/* clock_nanosleep */
				return 0;
			if (n > 0 && !strncmp(buf, "35 ", 3))	/* nanosleep */
				return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(100000);
	}
	return -1;
}

/* -------------------------------------------------------------------- */
/* The operations, each one ioctl (the errno is the exit status).       */

static int op_attach(const void *arg)
{
	unsigned long long base = 0, size = 0;
	struct cxlfork_pool_attach a = { .size = sizeof(a) };

	(void)arg;
	dax_range(dax_dev(), &base, &size);
	a.phys_base = base;
	a.phys_size = size;
	return err_of(ioctl(dev_open(), CXLFORK_IOC_POOL_ATTACH, &a));
}

static int op_detach(const void *arg)
{
	(void)arg;
	return err_of(ioctl(dev_open(), CXLFORK_IOC_POOL_DETACH));
}

static int op_info(const void *arg)
{
	struct cxlfork_pool_info info = { .size = sizeof(info) };

	(void)arg;
	return err_of(ioctl(dev_open(), CXLFORK_IOC_POOL_INFO, &info));
}

/* Shared with the children: what a checkpoint made, what an open gave. */
struct shared {
	__u64 image_id;
	int open_errno;
};
static struct shared *shm;

static int op_checkpoint_self(const void *arg)
{
	struct cxlfork_checkpoint c = { .size = sizeof(c), .pid = 0 };
	int fd = dev_open();
	long r;

	(void)arg;
	snprintf(c.name, sizeof(c.name), "perm-self");
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (r > 0)
		_exit(E_CLONE);
	shm->image_id = r == 0 ? c.image_id : 0;
	return err_of(r);
}

/* The descriptor a checkpoint by pid hands over. */
enum mem { MEM_OWN, MEM_NONE, MEM_SELF, MEM_MAPS };

struct ckpt_arg {
	pid_t pid;		/* 0: a child of the caller's own, made here */
	enum mem mem;
};

static int op_checkpoint_pid(const void *arg)
{
	const struct ckpt_arg *a = arg;
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	char path[64];
	pid_t child = 0;
	int fd = dev_open(), e;
	long r;

	c.pid = a->pid;
	if (!c.pid) {
		child = sleeper(ROOT);	/* a child of this identity */
		c.pid = child;
	}
	switch (a->mem) {
	case MEM_OWN:
		snprintf(path, sizeof(path), "/proc/%d/mem", c.pid);
		break;
	case MEM_SELF:
		snprintf(path, sizeof(path), "/proc/self/mem");
		break;
	case MEM_MAPS:
		snprintf(path, sizeof(path), "/proc/%d/maps", c.pid);
		break;
	default:
		path[0] = 0;
	}
	c.mem_fd = path[0] ? open(path, O_RDONLY) : -1;
	shm->open_errno = c.mem_fd < 0 && path[0] ? errno : 0;
	snprintf(c.name, sizeof(c.name), "perm-pid");
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	e = err_of(r);
	if (r == 0) {
		struct cxlfork_delete d = { .size = sizeof(d), .id = c.image_id };

		ioctl(fd, CXLFORK_IOC_DELETE, &d);
	}
	reap(&child);
	return e;
}

/* Which of the fixture's images LIST shows: bit 0 root's, 1 owner's,
 * 2 other's; bit 3 if total is not the number shown; 100 + errno. */
struct list_arg {
	__u64 ids[3];
};

static int op_list(const void *arg)
{
	const struct list_arg *a = arg;
	static struct cxlfork_image_info inf[512];
	struct cxlfork_list l = { .size = sizeof(l), .count = 512, .images = (__u64)(unsigned long)inf };
	int mask = 0;

	if (ioctl(dev_open(), CXLFORK_IOC_LIST, &l))
		return 100 + errno;
	for (unsigned int i = 0; i < l.count; i++)
		for (int k = 0; k < 3; k++)
			if (inf[i].id == a->ids[k])
				mask |= 1 << k;
	if (l.total != l.count)
		mask |= 8;
	return mask;
}

static int op_stat(const void *arg)
{
	struct cxlfork_stat s = { .size = sizeof(s), .id = *(const __u64 *)arg };

	return err_of(ioctl(dev_open(), CXLFORK_IOC_STAT, &s));
}

static int op_read(const void *arg)
{
	static char buf[4096];
	struct cxlfork_read r = { .size = sizeof(r), .id = *(const __u64 *)arg, .length = sizeof(buf),
				  .buf = (__u64)(unsigned long)buf };
	int e = err_of(ioctl(dev_open(), CXLFORK_IOC_READ, &r));

	return e ? e : memcmp(buf, "CXLFIMG", 8) ? 99 : 0;
}

static int op_delete(const void *arg)
{
	struct cxlfork_delete d = { .size = sizeof(d), .id = *(const __u64 *)arg };

	return err_of(ioctl(dev_open(), CXLFORK_IOC_DELETE, &d));
}

/* Becomes a clone (and exits RESTORED) or returns the errno. */
static int op_restore(const void *arg)
{
	struct cxlfork_restore r = { .size = sizeof(r), .id = *(const __u64 *)arg,
				     .flags = CXLFORK_RESTORE_SKIP_FILES };
	int fd = dev_open(), null = open("/dev/null", O_RDWR);

	dup2(null, 1);
	return err_of(ioctl(fd, CXLFORK_IOC_RESTORE, &r));
}

static int op_clone_stat(const void *arg)
{
	struct cxlfork_clone_stat cs = { .size = sizeof(cs), .pid = *(const pid_t *)arg };

	return err_of(ioctl(dev_open(), CXLFORK_IOC_CLONE_STAT, &cs));
}

/* -------------------------------------------------------------------- */
/* The matrix: each test once per identity.                              */

FIXTURE(perm) {
	__u64 img[3];		/* root's, owner's, other's */
	pid_t pids[4];
};

FIXTURE_VARIANT(perm) {
	enum ident id;
};

FIXTURE_VARIANT_ADD(perm, root) { .id = ROOT };
FIXTURE_VARIANT_ADD(perm, owner) { .id = OWNER };
FIXTURE_VARIANT_ADD(perm, other) { .id = OTHER };
FIXTURE_VARIANT_ADD(perm, userns) { .id = USERNS };

/* Whose image each of img[] is. */
static const enum ident img_owner[3] = { ROOT, OWNER, OTHER };

/* May id see (stat, read, delete, restore) an image of owner? */
static int sees(enum ident id, enum ident owner)
{
	return id == ROOT || ident_kuid[id] == ident_kuid[owner];
}

FIXTURE_SETUP(perm)
{
	struct cxlfork_pool_info info;

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shm);
	ASSERT_LE(0, root_fd()) TH_LOG("open %s: %s", CXLFORK_DEV, strerror(errno));
	ASSERT_EQ(0, pool_info(root_fd(), &info)) TH_LOG("no pool attached");
	if (!access(YAMA, F_OK))
		write_file(YAMA, "0");
	for (int k = 0; k < 3; k++) {
		self->img[k] = make_image(img_owner[k], 0);
		ASSERT_NE(0, self->img[k]) TH_LOG("cannot make an image as %s", ident_name[img_owner[k]]);
	}
	memset(self->pids, 0, sizeof(self->pids));
}

FIXTURE_TEARDOWN(perm)
{
	for (int i = 0; i < 4; i++)
		reap(&self->pids[i]);
	for (int k = 0; k < 3; k++)
		if (self->img[k])
			delete_image(self->img[k]);
}

TEST_F(perm, pool_attach)
{
	/* Root passes the capability check and finds the pool attached. */
	EXPECT_AS(variant->id, variant->id == ROOT ? EBUSY : EPERM, op_attach, NULL);
}

TEST_F(perm, pool_info)
{
	EXPECT_AS(variant->id, 0, op_info, NULL);
}

TEST_F(perm, checkpoint_self)
{
	struct cxlfork_image_info info;

	shm->image_id = 0;
	EXPECT_AS(variant->id, 0, op_checkpoint_self, NULL);
	ASSERT_NE(0, shm->image_id);
	/* Owned by the caller's kernel uid, whatever namespace it is in. */
	ASSERT_EQ(0, stat_image(shm->image_id, &info));
	EXPECT_EQ(ident_kuid[variant->id], info.uid);
	EXPECT_EQ(0, delete_image(shm->image_id));
}

/* A process of the owner's that is no relative of the caller's. */
TEST_F(perm, checkpoint_pid_of_owner_with_own_mem_fd)
{
	struct ckpt_arg a = { .mem = MEM_OWN };
	/* The ptrace check: the same uids and a dumpable target in the
	 * caller's user namespace, or CAP_SYS_PTRACE over the target's. A
	 * userns root has the owner's uid but not the owner's namespace
	 * (commoncap), so it cannot open the owner's mem either. */
	int want = variant->id == OTHER || variant->id == USERNS ? EPERM : 0;

	self->pids[0] = a.pid = sleeper(OWNER);
	EXPECT_AS(variant->id, want, op_checkpoint_pid, &a);
	if (want)
		EXPECT_NE(0, shm->open_errno) TH_LOG("%s opened the owner's /proc/PID/mem", ident_name[variant->id]);
}

/* A child of the caller's own (in its user namespace, for a userns root). */
TEST_F(perm, checkpoint_pid_of_own_child_with_own_mem_fd)
{
	struct ckpt_arg a = { .pid = 0, .mem = MEM_OWN };

	EXPECT_AS(variant->id, 0, op_checkpoint_pid, &a);
}

TEST_F(perm, checkpoint_pid_of_root_process)
{
	struct ckpt_arg a = { .mem = MEM_OWN };

	self->pids[0] = a.pid = sleeper(ROOT);
	EXPECT_AS(variant->id, variant->id == ROOT ? 0 : EPERM, op_checkpoint_pid, &a);
}

TEST_F(perm, checkpoint_pid_without_mem_fd)
{
	struct ckpt_arg a = { .mem = MEM_NONE };

	self->pids[0] = a.pid = sleeper(variant->id == USERNS ? OWNER : variant->id);
	EXPECT_AS(variant->id, EPERM, op_checkpoint_pid, &a);
}

TEST_F(perm, checkpoint_pid_with_mem_fd_of_another_process)
{
	struct ckpt_arg a = { .mem = MEM_SELF };

	self->pids[0] = a.pid = sleeper(variant->id == USERNS ? OWNER : variant->id);
	EXPECT_AS(variant->id, EPERM, op_checkpoint_pid, &a);
}

TEST_F(perm, checkpoint_pid_with_a_proc_file_that_is_not_mem)
{
	struct ckpt_arg a = { .mem = MEM_MAPS };

	self->pids[0] = a.pid = sleeper(variant->id == USERNS ? OWNER : variant->id);
	EXPECT_AS(variant->id, EPERM, op_checkpoint_pid, &a);
}

TEST_F(perm, list)
{
	static const int want[N_IDENT] = { 7, 2, 4, 2 };
	struct list_arg a;

	memcpy(a.ids, self->img, sizeof(a.ids));
	/* Bit k: img[k] listed; bit 3: total counts more than it shows. */
	EXPECT_AS(variant->id, want[variant->id], op_list, &a);
}

TEST_F(perm, stat)
{
	for (int k = 0; k < 3; k++)
		EXPECT_AS(variant->id, sees(variant->id, img_owner[k]) ? 0 : ENOENT, op_stat, &self->img[k]);
}

TEST_F(perm, read)
{
	for (int k = 0; k < 3; k++)
		EXPECT_AS(variant->id, sees(variant->id, img_owner[k]) ? 0 : ENOENT, op_read, &self->img[k]);
}

TEST_F(perm, delete)
{
	for (int k = 0; k < 3; k++) {
		int seen = sees(variant->id, img_owner[k]);

		EXPECT_AS(variant->id, seen ? 0 : ENOENT, op_delete, &self->img[k]);
		/* Still there for root exactly when it was invisible. */
		EXPECT_EQ(seen ? ENOENT : 0, stat_image(self->img[k], NULL));
		if (seen)
			self->img[k] = 0;
	}
}

TEST_F_TIMEOUT(perm, restore, 120)
{
	for (int k = 0; k < 3; k++)
		EXPECT_AS(variant->id, sees(variant->id, img_owner[k]) ? RESTORED : ENOENT, op_restore, &self->img[k]);
}

/* A live clone of the owner's (restored by the owner): root, the same
 * euid (the owner, its userns root) and the clone itself may read its
 * statistics; another user may not. */
TEST_F_TIMEOUT(perm, clone_stat_of_a_clone, 120)
{
	__u64 wait_img = make_image(OWNER, 1);
	pid_t clone;
	int st;

	ASSERT_NE(0, wait_img);
	clone = self->pids[0] = spawn_as(OWNER, op_restore, &wait_img);
	ASSERT_EQ(0, wait_for_clone(clone)) TH_LOG("the owner's restore did not give a waiting clone");
	EXPECT_AS(variant->id, variant->id == OTHER ? EPERM : 0, op_clone_stat, &clone);
	/* The clone asked about itself (pid 0) and exits WAITED + errno. */
	kill(clone, SIGTERM);
	ASSERT_EQ(clone, waitpid(clone, &st, 0));
	self->pids[0] = 0;
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("the clone died of signal %d", WTERMSIG(st));
	EXPECT_EQ(WAITED, WEXITSTATUS(st)) TH_LOG("the clone's CLONE_STAT of itself: %s",
						   strerror(WEXITSTATUS(st) - WAITED));
	delete_image(wait_img);
}

TEST_F(perm, clone_stat_of_a_process_that_is_no_clone)
{
	pid_t self_pid = 0, owners;

	/* Itself. */
	EXPECT_AS(variant->id, ENOENT, op_clone_stat, &self_pid);
	/* The owner's: permission first (another user: EPERM). */
	owners = self->pids[0] = sleeper(OWNER);
	EXPECT_AS(variant->id, variant->id == OTHER ? EPERM : ENOENT, op_clone_stat, &owners);
}

TEST_F(perm, clone_stat_of_no_process)
{
	pid_t none = INT_MAX;

	EXPECT_AS(variant->id, ESRCH, op_clone_stat, &none);
}

TEST_F(perm, pool_detach)
{
	unsigned long long base, size;
	struct cxlfork_pool_info info;

	EXPECT_AS(variant->id, variant->id == ROOT ? 0 : EPERM, op_detach, NULL);
	/* Attached again as the guest init did; the images are still there. */
	if (pool_info(root_fd(), &info) == -ENODEV) {
		ASSERT_EQ(0, dax_range(dax_dev(), &base, &size));
		ASSERT_EQ(0, attach(root_fd(), base, size, 0, 0));
	}
	ASSERT_EQ(0, pool_info(root_fd(), &info));
	for (int k = 0; k < 3; k++)
		EXPECT_EQ(0, stat_image(self->img[k], NULL));
}

TEST_F(perm, delete_of_another_hosts_image)
{
	const char *hosts = getenv("CXLFORK_HOSTS");

	if (!hosts || atoi(hosts) < 2)
		SKIP(return, "one host: EXDEV needs an image of another host");
}

/* -------------------------------------------------------------------- */
/* Checkpoint by pid under each Yama ptrace_scope.                       */

FIXTURE(yama) {
	pid_t target;	/* the owner's, no relative of the checkpointer */
};

FIXTURE_SETUP(yama)
{
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shm);
	if (access(YAMA, F_OK))
		SKIP(return, "no Yama (" YAMA ")");
	self->target = sleeper(OWNER);
	ASSERT_LT(0, self->target);
}

FIXTURE_TEARDOWN(yama)
{
	reap(&self->target);
	write_file(YAMA, "0");
}

static void set_scope(struct __test_metadata *_metadata, const char *scope)
{
	char buf[8] = "";
	int fd;

	ASSERT_EQ(0, write_file(YAMA, scope));
	fd = open(YAMA, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	ASSERT_EQ(scope[0], buf[0]);
}

TEST_F(yama, scope_0_classic)
{
	struct ckpt_arg child = { .pid = 0, .mem = MEM_OWN }, other = { .pid = self->target, .mem = MEM_OWN };

	set_scope(_metadata, "0");
	EXPECT_AS(OWNER, 0, op_checkpoint_pid, &child);
	EXPECT_AS(OWNER, 0, op_checkpoint_pid, &other);
	EXPECT_AS(OTHER, EPERM, op_checkpoint_pid, &other);
	EXPECT_AS(ROOT, 0, op_checkpoint_pid, &other);
}

TEST_F(yama, scope_1_restricted_to_descendants)
{
	struct ckpt_arg child = { .pid = 0, .mem = MEM_OWN }, other = { .pid = self->target, .mem = MEM_OWN };

	set_scope(_metadata, "1");
	/* A parent checkpoints its child; not a process of the same uid
	 * that is no descendant; CAP_SYS_PTRACE any. */
	EXPECT_AS(OWNER, 0, op_checkpoint_pid, &child);
	EXPECT_AS(OWNER, EPERM, op_checkpoint_pid, &other);
	EXPECT_AS(ROOT, 0, op_checkpoint_pid, &other);
}

TEST_F(yama, scope_2_admin_only)
{
	struct ckpt_arg child = { .pid = 0, .mem = MEM_OWN }, other = { .pid = self->target, .mem = MEM_OWN };

	set_scope(_metadata, "2");
	EXPECT_AS(OWNER, EPERM, op_checkpoint_pid, &child);
	EXPECT_AS(OWNER, EPERM, op_checkpoint_pid, &other);
	EXPECT_AS(ROOT, 0, op_checkpoint_pid, &other);
}

/* Last: scope 3 cannot be lowered again until reboot. */
TEST_F(yama, scope_3_no_attach)
{
	struct ckpt_arg child = { .pid = 0, .mem = MEM_OWN }, other = { .pid = self->target, .mem = MEM_OWN };

	set_scope(_metadata, "3");
	EXPECT_AS(OWNER, EPERM, op_checkpoint_pid, &child);
	EXPECT_AS(ROOT, EPERM, op_checkpoint_pid, &other);
}

TEST_HARNESS_MAIN
