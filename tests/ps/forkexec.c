// SPDX-License-Identifier: GPL-2.0
/*
 * forkexec: process creation after the checkpoint (in the clone, and in
 * the original). fork(): the child sees the memory (anonymous, heap, a
 * private file mapping), its writes stay its own (copy on write both
 * ways), its getppid() is us; a grandchild likewise; execve of a static
 * program (/bin/busybox true, and echo through a pipe); posix_spawn (a
 * CLONE_VM|CLONE_VFORK child) of it; a thread created and joined.
 */
#include "ps.h"
#include <pthread.h>
#include <spawn.h>

#define A_PAGES 32
static const char *path = PS_FILES "/forkexec.dat";
static const char *busybox = "/bin/busybox";

static char *a, *heap, *file;

static void install(void)
{
	ps_make_file(path, 4, 0xf0e1);
}

static void setup(void)
{
	int fd;

	install();
	a = mmap(NULL, A_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(a != MAP_FAILED);
	ps_fill(a, A_PAGES * PAGE, 0xf0);
	heap = malloc(3 * PAGE);
	PS_SETUP(heap != NULL);
	ps_fill(heap, 3 * PAGE, 0xf1);
	fd = open(path, O_RDONLY);
	PS_SETUP(fd >= 0);
	file = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	PS_SETUP(file != MAP_FAILED);
	close(fd);
	ps_fill(file, PAGE, 0xf2);
}

/* In a child: its own checks, as an exit status (0 = fine). */
static int child_checks(int depth)
{
	if (ps_diff(a, A_PAGES * PAGE, 0xf0) >= 0)
		return 10 + depth;
	if (ps_diff(heap, 3 * PAGE, 0xf1) >= 0)
		return 20 + depth;
	if (ps_diff(file, PAGE, 0xf2) >= 0 || ps_diff_at(file + PAGE, 3 * PAGE, 0xf0e1, PAGE) >= 0)
		return 30 + depth;
	ps_fill(a, A_PAGES * PAGE, 0xc0 + depth);
	ps_fill(heap, 3 * PAGE, 0xc8 + depth);
	ps_fill(file, 4 * PAGE, 0xcf + depth);
	if (ps_diff(a, A_PAGES * PAGE, 0xc0 + depth) >= 0)
		return 40 + depth;
	return 0;
}

static int wait_status(pid_t p)
{
	int st;

	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void *thread_fn(void *arg)
{
	return (void *)(long)(ps_diff(a, A_PAGES * PAGE, 0xf0) < 0 ? 42 + (long)arg : 0);
}

static void verify(void)
{
	pid_t me = getpid(), p;
	int pfd[2], st;
	char buf[64] = "";
	pthread_t th;
	void *ret = NULL;

	CHECK_PAT(a, A_PAGES * PAGE, 0xf0);
	p = fork();
	if (p == 0) {
		int r = child_checks(1);
		pid_t g;

		if (getppid() != me)
			_exit(50);
		if (r)
			_exit(r);
		/* The grandchild sees the child's writes, not ours. */
		g = fork();
		if (g == 0) {
			if (ps_diff(a, A_PAGES * PAGE, 0xc1) >= 0)
				_exit(61);
			ps_fill(a, A_PAGES * PAGE, 0xd0);
			_exit(0);
		}
		r = wait_status(g);
		if (r)
			_exit(r);
		_exit(ps_diff(a, A_PAGES * PAGE, 0xc1) >= 0 ? 62 : 0);
	}
	st = wait_status(p);
	CHECK(st == 0, "fork: the child (or grandchild) failed with %d", st);
	CHECK_PAT(a, A_PAGES * PAGE, 0xf0);
	CHECK_PAT(heap, 3 * PAGE, 0xf1);
	CHECK_PAT(file, PAGE, 0xf2);
	CHECK_PAT_AT(file + PAGE, 3 * PAGE, 0xf0e1, PAGE);

	/* execve. */
	p = fork();
	if (p == 0) {
		execl(busybox, "busybox", "true", (char *)NULL);
		_exit(127);
	}
	st = wait_status(p);
	CHECK(st == 0, "execve(%s true): status %d", busybox, st);
	if (CHECK(pipe(pfd) == 0, "pipe: %s", strerror(errno))) {
		p = fork();
		if (p == 0) {
			dup2(pfd[1], 1);
			execl(busybox, "busybox", "echo", "hello from exec", (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		st = read(pfd[0], buf, sizeof(buf) - 1);
		buf[st > 0 ? st : 0] = 0;
		close(pfd[0]);
		st = wait_status(p);
		CHECK(st == 0 && !strcmp(buf, "hello from exec\n"), "exec'd echo: status %d, said \"%s\"", st, buf);
	}
	/* posix_spawn: a vfork-style child sharing our memory until it execs. */
	{
		char *args[] = { "busybox", "true", NULL };

		st = posix_spawn(&p, busybox, NULL, NULL, args, environ);
		CHECK(st == 0, "posix_spawn: %s", strerror(st));
		if (st == 0) {
			st = wait_status(p);
			CHECK(st == 0, "posix_spawn'd true: status %d", st);
		}
	}
	/* A thread. */
	st = pthread_create(&th, NULL, thread_fn, (void *)1L);
	if (CHECK(st == 0, "pthread_create: %s", strerror(st))) {
		pthread_join(th, &ret);
		CHECK(ret == (void *)43L, "the thread returned %p", ret);
	}
}

static void tamper(void)
{
	/* As if a child could not see our heap. */
	heap[PAGE] ^= 1;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "forkexec", install, setup, verify, tamper);
}
