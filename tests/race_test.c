// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork races (one guest, pool attached, run as root), each looped:
 *   - the target killed and reaped while it is checkpointed;
 *   - restore against delete of the same image, the delete followed at
 *     once by a new checkpoint that reuses the extent: a clone must only
 *     ever see its own image's bytes (a lease blocks the delete), or its
 *     restore must fail with ENOENT; and the same across two hosts
 *     (restore_against_delete_across_hosts, run by itself in two guests:
 *     race_test -t restore_against_delete_across_hosts);
 *   - two checkpoints at once;
 *   - a process whose threads are created and exit all the time,
 *     checkpointed by pid and restored over and over (each checkpoint
 *     takes every thread alive when it stops, or says EAGAIN; never a
 *     hang), with a thread of its own checkpointing it at the same time
 *     (one of the two is refused with EBUSY), and killed mid-way;
 *   - detach and module unload while clones live and no descriptor of
 *     /dev/cxlfork is open: refused until the clones are gone.
 * The pool must be consistent after each (no checkpoint left active, no
 * space left reserved).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "cxlfork_test.h"

#define main cxlfork_restore_main
#include "../tools/cxlfork-restore.c"
#undef main

#define PAGE 4096UL
#define WORK_PAGES 512	/* 2 MiB: a checkpoint takes a while under TCG */

static unsigned int rnd(unsigned int n)
{
	static unsigned int s = 12345;

	s = s * 1103515245 + 12345;
	return (s >> 8) % n;
}

static char *id_str(__u64 id, char *buf)
{
	sprintf(buf, "%llu:%llu", (unsigned long long)(id >> 48), (unsigned long long)(id & 0xffffffffffffULL));
	return buf;
}

/* A process with WORK_PAGES pages of pattern pat, waiting to be
 * checkpointed by pid (or, self, checkpointing itself and reporting the
 * image id through fd). A clone of it checks its pages for ms
 * milliseconds: exits CLONE_OK(pat) if they always held pat, 1 if not (a
 * clone of another image exits with that image's code). */
#define CLONE_OK(pat) (100 + (pat) % 100)
static pid_t worker(unsigned char pat, int self, int fd_out, int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		unsigned char *m = mmap(NULL, WORK_PAGES * PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		pid_t me = getpid();
		long r;
		int fd;

		memset(m, pat, WORK_PAGES * PAGE);
		if (!self) {
			for (;;)
				pause();
		}
		fd = open(CXLFORK_DEV, O_RDWR);
		/* Pattern 0 is the two-host test's acknowledgement. */
		if (pat)
			snprintf(c.name, sizeof(c.name), "race-%u", pat);
		else
			strcpy(c.name, "race-ack");
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0) {	/* a clone: its image's bytes, and only those */
			struct timespec t0, t;

			close(fd);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			do {
				for (unsigned long i = 0; i < WORK_PAGES * PAGE; i += 512)
					if (((volatile unsigned char *)m)[i] != pat)
						_exit(1);
				clock_gettime(CLOCK_MONOTONIC, &t);
			} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
			_exit(CLONE_OK(pat));
		}
		if (write(fd_out, &c.image_id, sizeof(c.image_id)) != sizeof(c.image_id) || getpid() != me)
			_exit(3);
		for (;;)
			pause();
	}
	return pid;
}

static __u64 self_image(unsigned char pat, int ms, pid_t *orig)
{
	__u64 id = 0;
	int p[2];

	if (pipe(p))
		return 0;
	*orig = worker(pat, 1, p[1], ms);
	close(p[1]);
	if (read(p[0], &id, sizeof(id)) != sizeof(id))
		id = 0;
	close(p[0]);
	return id;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Restore image id in a new process (the stub, compiled in). */
static pid_t restorer(__u64 id)
{
	static char buf[4096];
	char cmd[128], ids[40], *argv[32];
	int argc = 0;
	pid_t pid;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "cxlfork-ctl restore %s --dry-run --skip-files", id_str(id, ids));
	f = popen(cmd, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			pclose(f);
		return -1;
	}
	pclose(f);
	for (char *t = strtok(buf, " \n"); t && argc < 31; t = strtok(NULL, " \n"))
		argv[argc++] = t;
	argv[argc] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(cxlfork_restore_main(argc, argv));
	return pid;
}

/* No checkpoint active, and host 0's partition usage is exactly the sum of
 * its listed images: nothing left reserved. */
static void pool_consistent(struct __test_metadata *_metadata, int fd)
{
	struct cxlfork_image_info infos[256];
	struct cxlfork_list l = { .size = sizeof(l), .count = 256, .images = (unsigned long)infos };
	struct cxlfork_pool_info info;
	unsigned long long used = 0;

	ASSERT_EQ(0, pool_info(fd, &info));
	ASSERT_EQ(0, info.ckpt_active);
	ASSERT_EQ(0, xioctl(fd, CXLFORK_IOC_LIST, &l));
	for (unsigned int i = 0; i < l.count; i++) {
		ASSERT_EQ(1, infos[i].valid) TH_LOG("image %u invalid", i);
		if (infos[i].owner_host == info.host_id)
			used += infos[i].size;
	}
	ASSERT_EQ(used, info.hosts[info.host_id].part_used);
}

static int delete_image(int fd, __u64 id)
{
	struct cxlfork_delete d = { .size = sizeof(d), .id = id };

	return xioctl(fd, CXLFORK_IOC_DELETE, &d);
}

FIXTURE(race) {
	int fd;
};

FIXTURE_SETUP(race)
{
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(race)
{
	close(self->fd);
}

TEST_F_TIMEOUT(race, target_killed_while_checkpointed, 600)
{
	int ok = 0, gone = 0;

	for (int i = 0; i < 20; i++) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		pid_t t = worker(0x40 + i, 0, -1, 0), killer;
		int r;

		usleep(50 * 1000);
		killer = fork();
		if (killer == 0) {
			usleep(rnd(300) * 1000);
			kill(t, SIGKILL);
			_exit(0);
		}
		c.pid = t;
		c.mem_fd = proc_mem_fd(t);
		strcpy(c.name, "killed");
		r = xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c);
		close(c.mem_fd);
		waitpid(killer, NULL, 0);
		waitpid(t, NULL, 0);	/* reaped */
		if (r == 0) {
			ok++;
			ASSERT_EQ(0, delete_image(self->fd, c.image_id));
		} else {
			ASSERT_TRUE(r == -ESRCH || r == -EINTR || r == -EPERM) TH_LOG("checkpoint: %s", strerror(-r));
			gone++;
		}
		pool_consistent(_metadata, self->fd);
	}
	printf("# %d checkpoints completed, %d lost their target\n", ok, gone);
}

TEST_F_TIMEOUT(race, restore_against_delete_and_reuse, 900)
{
	int clones = 0, refused = 0;
	pid_t orig;
	__u64 id = self_image(1, 400, &orig);

	ASSERT_NE(0, id);
	for (int i = 1; i <= 20; i++) {
		pid_t r, next_orig;
		__u64 next;
		int st, del;

		r = restorer(id);
		ASSERT_LT(0, r);
		/* From at once (the restore has barely started) to after its
		 * lease is taken. */
		usleep(rnd(4) * rnd(4) * 1000);
		/* Delete (EBUSY while a clone holds a lease), then reuse the
		 * extent at once with other bytes. */
		for (int tries = 0; (del = delete_image(self->fd, id)) == -EBUSY && tries < 200; tries++)
			usleep(20 * 1000);
		ASSERT_EQ(0, del);
		reap(orig);
		next = self_image((unsigned char)(i + 1), 400, &next_orig);
		ASSERT_NE(0, next);
		ASSERT_EQ(r, waitpid(r, &st, 0));
		/* The clone saw only its own image, or the restore found the
		 * image gone (ENOENT); a SIGBUS or other bytes would be a
		 * clone mapping a freed or reused extent. */
		ASSERT_TRUE(WIFEXITED(st)) TH_LOG("round %d: restorer killed by signal %d", i, WTERMSIG(st));
		ASSERT_TRUE(WEXITSTATUS(st) == CLONE_OK(i) || WEXITSTATUS(st) == ENOENT)
			TH_LOG("round %d: exit %d", i, WEXITSTATUS(st));
		if (WEXITSTATUS(st) == CLONE_OK(i))
			clones++;
		else
			refused++;
		id = next;
		orig = next_orig;
		pool_consistent(_metadata, self->fd);
	}
	reap(orig);
	ASSERT_EQ(0, delete_image(self->fd, id));
	printf("# %d clones ran on their own image, %d restores found it deleted\n", clones, refused);
}

/* Host 0's newest image named "race-N" with N > after; N, or 0 if none. */
static unsigned int newest_race_image(int fd, unsigned int after, __u64 *id)
{
	struct cxlfork_image_info infos[64];
	struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
	unsigned int best = 0, n;

	if (xioctl(fd, CXLFORK_IOC_LIST, &l))
		return 0;
	for (unsigned int k = 0; k < l.count; k++)
		if (infos[k].owner_host == 0 && sscanf(infos[k].name, "race-%u", &n) == 1 && n > after && n > best) {
			best = n;
			*id = infos[k].id;
		}
	return best;
}

#define XROUNDS 12
#define XDONE 250	/* host 0's last image: the rounds are over */

/*
 * Restore against delete across hosts (qemu/run --hosts 2; skipped on one):
 * host 0 publishes image race-N, deletes it after a random delay (even
 * rounds) or once host 1 holds a lease on it (odd rounds; EBUSY while host
 * 1's clone holds a lease in it) and reuses its extent at once
 * for race-N+1; host 1 restores each race-N it sees. A clone must see only
 * its own image's bytes (through this host's cache, which held the
 * extent's previous image), or its restore must find the image gone.
 */
TEST_F_TIMEOUT(race, restore_against_delete_across_hosts, 900)
{
	const char *hosts = getenv("CXLFORK_HOSTS"), *me = getenv("CXLFORK_HOST_ID");
	int clones = 0, refused = 0;
	__u64 id = 0;

	if (!hosts || atoi(hosts) != 2)
		SKIP(return, "needs two hosts (qemu/run --hosts 2)");
	if (atoi(me) == 0) {
		pid_t orig, done_orig;
		__u64 done;

		for (int i = 1; i <= XROUNDS; i++) {
			int del;

			id = self_image((unsigned char)i, 300, &orig);
			ASSERT_NE(0, id);
			if (i % 2) {
				/* Odd rounds: delete once host 1 holds a lease (a
				 * debug kernel restores slower than any fixed delay). */
				struct cxlfork_stat st = { .size = sizeof(st), .id = id };

				for (int t = 0; t < 600; t++) {
					ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
					if (st.info.leases)
						break;
					usleep(100 * 1000);
				}
			} else {
				usleep((200 + rnd(1500)) * 1000);
			}
			for (int tries = 0; (del = delete_image(self->fd, id)) == -EBUSY && tries < 1500; tries++)
				usleep(20 * 1000);
			ASSERT_EQ(0, del) TH_LOG("round %d: delete: %s", i, strerror(-del));
			reap(orig);
			pool_consistent(_metadata, self->fd);
		}
		done = self_image(XDONE, 0, &done_orig);
		ASSERT_NE(0, done);
		/* Host 1 answers with an image of its own when it is through. */
		for (int i = 0; i < 6000; i++) {
			struct cxlfork_image_info infos[64];
			struct cxlfork_list l = { .size = sizeof(l), .count = 64, .images = (unsigned long)infos };
			int seen = 0;

			ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_LIST, &l));
			for (unsigned int k = 0; k < l.count; k++)
				seen |= infos[k].owner_host == 1 && !strcmp(infos[k].name, "race-ack");
			if (seen)
				break;
			usleep(50 * 1000);
		}
		reap(done_orig);
		ASSERT_EQ(0, delete_image(self->fd, done));
		pool_consistent(_metadata, self->fd);
		return;
	}
	for (unsigned int last = 0, n; last != XDONE;) {
		pid_t r;
		int st;

		for (int i = 0; i < 6000 && !(n = newest_race_image(self->fd, last, &id)); i++)
			usleep(10 * 1000);
		ASSERT_NE(0, n) TH_LOG("no image from host 0 after race-%u", last);
		last = n;
		if (n == XDONE)
			break;
		r = restorer(id);
		if (r < 0) {	/* gone before cxlfork-ctl could read it */
			refused++;
			continue;
		}
		ASSERT_EQ(r, waitpid(r, &st, 0));
		ASSERT_TRUE(WIFEXITED(st)) TH_LOG("race-%u: restorer killed by signal %d", n, WTERMSIG(st));
		ASSERT_TRUE(WEXITSTATUS(st) == CLONE_OK(n) || WEXITSTATUS(st) == ENOENT)
			TH_LOG("race-%u: exit %d", n, WEXITSTATUS(st));
		if (WEXITSTATUS(st) == ENOENT)
			refused++;
		else
			clones++;
	}
	{
		pid_t ack_orig;
		int p[2];

		/* The acknowledgement: any image named race-ack. */
		ASSERT_EQ(0, pipe(p));
		ack_orig = worker(0, 1, p[1], 0);
		close(p[1]);
		ASSERT_EQ(sizeof(id), read(p[0], &id, sizeof(id)));
		close(p[0]);
		reap(ack_orig);
	}
	printf("# host 1: %d clones ran on their own image, %d restores found it deleted\n", clones, refused);
	ASSERT_LT(0, clones);
}

struct ckpt_arg {
	int fd;
	pid_t pid;
	__u64 id;
	int r;
};

/* A process creating and joining short-lived threads as fast as it can
 * (up to 8 alive at once), with one long-lived thread that checkpoints the
 * process itself every so often; it counts its rounds in *rounds. */
static volatile int storm_stop;

static void *storm_short(void *arg)
{
	return arg;
}

static void *storm_self_ckpt(void *arg)
{
	int fd = open(CXLFORK_DEV, O_RDWR);

	while (!storm_stop) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		long r;

		strcpy(c.name, "storm-self");
		r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
		if (r > 0)
			_exit(0);	/* a clone (none is restored from these) */
		if (r == 0) {
			struct cxlfork_delete d = { .size = sizeof(d), .id = c.image_id };

			ioctl(fd, CXLFORK_IOC_DELETE, &d);
		} else if (errno != EBUSY && errno != EAGAIN) {
			_exit(70);
		}
		usleep(20 * 1000);
	}
	return arg;
}

static pid_t storm(volatile unsigned long *rounds)
{
	pid_t pid = fork();

	if (pid == 0) {
		pthread_t t[8], s;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pthread_create(&s, NULL, storm_self_ckpt, NULL);
		for (;;) {
			for (int i = 0; i < 8; i++)
				pthread_create(&t[i], NULL, storm_short, NULL);
			for (int i = 0; i < 8; i++)
				pthread_join(t[i], NULL);
			(*rounds)++;
		}
	}
	return pid;
}

TEST_F_TIMEOUT(race, thread_storm, 600)
{
	volatile unsigned long *rounds = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int ok = 0, again = 0, busy = 0, restored = 0;
	pid_t t;

	ASSERT_NE(MAP_FAILED, (void *)rounds);
	t = storm(rounds);
	ASSERT_LT(0, t);
	usleep(200 * 1000);
	for (int i = 0; i < 20; i++) {
		struct cxlfork_checkpoint c = { .size = sizeof(c) };
		unsigned long r0 = *rounds;
		int r, st;

		c.pid = t;
		c.mem_fd = proc_mem_fd(t);
		strcpy(c.name, "storm");
		r = xioctl(self->fd, CXLFORK_IOC_CHECKPOINT, &c);
		close(c.mem_fd);
		if (r == -EAGAIN) {
			again++;
		} else if (r == -EBUSY) {
			busy++;		/* its own thread's checkpoint was under way */
		} else {
			ASSERT_EQ(0, r) TH_LOG("checkpoint %d: %s", i, strerror(-r));
			ok++;
			/* Every few, a clone: it must come back and go on. */
			if (i % 5 == 0) {
				pid_t c1 = restorer(c.image_id);

				ASSERT_LT(0, c1);
				usleep(300 * 1000);
				ASSERT_EQ(0, waitpid(c1, &st, WNOHANG)) TH_LOG("the clone of a thread storm died: %#x", st);
				reap(c1);
				restored++;
			}
			ASSERT_EQ(0, delete_image(self->fd, c.image_id));
		}
		/* The original goes on creating threads after each. */
		for (int k = 0; k < 300 && *rounds == r0; k++)
			usleep(10 * 1000);
		ASSERT_NE(r0, *rounds) TH_LOG("the storm stopped after checkpoint %d", i);
		ASSERT_EQ(0, waitpid(t, NULL, WNOHANG));
	}
	/* Killed while its own thread checkpoints it: no hang, nothing left. */
	usleep(rnd(50) * 1000);
	reap(t);
	usleep(200 * 1000);
	pool_consistent(_metadata, self->fd);
	printf("# %d checkpoints of a thread storm, %d EAGAIN, %d EBUSY; %d clones ran\n", ok, again, busy, restored);
	ASSERT_LT(0, ok);
	munmap((void *)rounds, PAGE);
}

static void *ckpt_thread(void *p)
{
	struct ckpt_arg *a = p;
	struct cxlfork_checkpoint c = { .size = sizeof(c), .pid = a->pid };

	c.mem_fd = proc_mem_fd(a->pid);
	strcpy(c.name, "concurrent");
	a->r = xioctl(a->fd, CXLFORK_IOC_CHECKPOINT, &c);
	a->id = c.image_id;
	close(c.mem_fd);
	return NULL;
}

TEST_F_TIMEOUT(race, two_checkpoints_at_once, 600)
{
	for (int i = 0; i < 5; i++) {
		struct ckpt_arg a[2];
		pthread_t th[2];

		for (int k = 0; k < 2; k++) {
			a[k].fd = self->fd;
			a[k].pid = worker(0x70 + k, 0, -1, 0);
		}
		usleep(50 * 1000);
		for (int k = 0; k < 2; k++)
			ASSERT_EQ(0, pthread_create(&th[k], NULL, ckpt_thread, &a[k]));
		for (int k = 0; k < 2; k++) {
			struct cxlfork_stat st = { .size = sizeof(st) };

			pthread_join(th[k], NULL);
			ASSERT_EQ(0, a[k].r);
			st.id = a[k].id;
			ASSERT_EQ(0, xioctl(self->fd, CXLFORK_IOC_STAT, &st));
			ASSERT_EQ(1, st.info.valid);
			ASSERT_EQ(0, delete_image(self->fd, a[k].id));
			reap(a[k].pid);
		}
		ASSERT_NE(a[0].id, a[1].id);
		pool_consistent(_metadata, self->fd);
	}
}

/* Last: it unloads and reloads the module. */
TEST_F_TIMEOUT(race, detach_and_unload_while_clones_live, 600)
{
	for (int i = 0; i < 3; i++) {
		pid_t orig, clone;
		__u64 id = self_image(0x90 + i, 3000, &orig);
		int st;

		ASSERT_NE(0, id);
		clone = restorer(id);
		ASSERT_LT(0, clone);
		usleep(500 * 1000);
		/* No descriptor of the device is open now (the clone closed
		 * its own): the clone alone keeps the module and the pool. */
		close(self->fd);
		ASSERT_NE(0, system("cxlfork-ctl pool detach 2>/dev/null"));
		ASSERT_NE(0, system("rmmod cxlfork 2>/dev/null"));
		ASSERT_EQ(clone, waitpid(clone, &st, 0));
		ASSERT_TRUE(WIFEXITED(st));
		ASSERT_EQ(CLONE_OK(0x90 + i), WEXITSTATUS(st));
		reap(orig);
		self->fd = open(CXLFORK_DEV, O_RDWR);
		ASSERT_LE(0, self->fd);
		ASSERT_EQ(0, delete_image(self->fd, id));
	}
	close(self->fd);
	ASSERT_EQ(0, system("cxlfork-ctl pool detach"));
	ASSERT_EQ(0, system("rmmod cxlfork"));
	ASSERT_EQ(0, system("insmod /cxlfork/cxlfork.ko && chmod 0666 /dev/cxlfork && "
			    "cxlfork-ctl pool attach --dax $CXLFORK_DAX --host-id 0 >/dev/null"));
	self->fd = open(CXLFORK_DEV, O_RDWR);
	ASSERT_LE(0, self->fd);
}

TEST_HARNESS_MAIN
