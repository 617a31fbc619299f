// SPDX-License-Identifier: GPL-2.0
/*
 * events: eventfd, epoll and pipe descriptors, as an event loop holds them
 * (libuv's, Go's netpoller). The original makes:
 *   - efd: an eventfd (EFD_NONBLOCK, close-on-exec) counting 5, dup'd at efd2;
 *   - sem: an EFD_SEMAPHORE eventfd counting 3 (blocking);
 *   - p: a pipe (both ends O_NONBLOCK, capacity 128 KiB) holding "hello pipe";
 *   - q: an empty blocking pipe;
 *   - ep: an epoll (close-on-exec) watching efd (EPOLLIN, data 0x1111), p's
 *     read end (EPOLLIN|EPOLLET, 0x2222), q's write end (EPOLLOUT, 0x3333),
 *     sem (EPOLLIN|EPOLLONESHOT, 0x4444);
 *   - ep2: an epoll watching ep (EPOLLIN, 0x5555).
 * Afterwards, in the original and in a clone (whose objects are its own
 * copies, where a fork child shares its parent's: each process puts back
 * what it consumes, so the fork reference passes too):
 *   - every descriptor at its number, with its flags and close-on-exec;
 *   - ep2 reports ep ready; ep reports exactly its four registrations, with
 *     their data and events (the one-shot re-armed after);
 *   - efd counts 5 and efd2 is the same object (a write to one is read from
 *     the other); sem gives 1 three times, then nothing;
 *   - p holds "hello pipe" (FIONREAD 10, then EAGAIN), its capacity 128 KiB;
 *     q is empty and carries a byte from its write end to its read end.
 */
#include "ps.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define MSG "hello pipe"
#define CAP (128 << 10)

static int efd, efd2, sem, p[2], q[2], ep, ep2;

static void add(int e, int fd, unsigned int events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	PS_SETUP(epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev) == 0);
}

static void setup(void)
{
	uint64_t v;

	PS_SETUP((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0);
	v = 5;
	PS_SETUP(write(efd, &v, 8) == 8);
	PS_SETUP((sem = eventfd(3, EFD_SEMAPHORE)) >= 0);
	PS_SETUP(pipe2(p, O_NONBLOCK) == 0);
	PS_SETUP(fcntl(p[0], F_SETPIPE_SZ, CAP) == CAP);
	PS_SETUP(write(p[1], MSG, strlen(MSG)) == (ssize_t)strlen(MSG));
	PS_SETUP(pipe(q) == 0);
	PS_SETUP((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	add(ep, efd, EPOLLIN, 0x1111);
	add(ep, p[0], EPOLLIN | EPOLLET, 0x2222);
	add(ep, q[1], EPOLLOUT, 0x3333);
	add(ep, sem, EPOLLIN | EPOLLONESHOT, 0x4444);
	PS_SETUP((ep2 = epoll_create1(0)) >= 0);
	add(ep2, ep, EPOLLIN, 0x5555);
	/* The dup last: the highest number. */
	PS_SETUP((efd2 = dup(efd)) >= 0);
}

/* fd's status flags and close-on-exec are as expected. */
static void check_fd(const char *name, int fd, int fl, int cloexec)
{
	int got = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	CHECK(got >= 0 && (got & (O_ACCMODE | O_NONBLOCK)) == fl && fdfl >= 0 && !!(fdfl & FD_CLOEXEC) == cloexec,
	      "%s (fd %d): flags %#o close-on-exec %d, want %#o and %d (%s)", name, fd, got, fdfl, fl, cloexec,
	      got < 0 ? strerror(errno) : "");
}

/* The eventfd's count, from /proc/self/fdinfo (without reading it). */
static long long efd_count(int fd)
{
	char path[64], buf[512], *s;
	long long n = -1;
	int f, len;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	len = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	s = strstr(buf, "eventfd-count:");
	if (s)
		n = strtoll(s + 14, NULL, 16);
	return n;
}

static void verify(void)
{
	struct epoll_event evs[8], ev;
	uint64_t v, seen = 0;
	char buf[64];
	int n, avail = -1;

	check_fd("efd", efd, O_RDWR | O_NONBLOCK, 1);
	check_fd("efd2", efd2, O_RDWR | O_NONBLOCK, 0);
	check_fd("sem", sem, O_RDWR, 0);
	check_fd("pipe read end", p[0], O_RDONLY | O_NONBLOCK, 0);
	check_fd("pipe write end", p[1], O_WRONLY | O_NONBLOCK, 0);
	check_fd("empty pipe read end", q[0], O_RDONLY, 0);
	check_fd("empty pipe write end", q[1], O_WRONLY, 0);
	check_fd("epoll", ep, O_RDWR, 1);
	check_fd("outer epoll", ep2, O_RDWR, 0);

	/* Nested first: looking at ep consumes its one-shot and edge. */
	n = epoll_wait(ep2, evs, 8, 0);
	CHECK(n == 1 && evs[0].data.u64 == 0x5555 && (evs[0].events & EPOLLIN), "outer epoll: %d events (%s), first data %#llx",
	      n, n < 0 ? strerror(errno) : "", n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL);
	n = epoll_wait(ep, evs, 8, 0);
	for (int i = 0; i < n; i++) {
		unsigned long long d = evs[i].data.u64;
		unsigned int want = d == 0x3333 ? EPOLLOUT : EPOLLIN;

		CHECK(d >= 0x1111 && d <= 0x4444 && d % 0x1111 == 0 && evs[i].events == want,
		      "epoll event %d: data %#llx events %#x", i, d, evs[i].events);
		seen |= 1ULL << (d / 0x1111);
	}
	CHECK(n == 4 && seen == 0x1e, "epoll: %d events (%s), seen mask %#llx: want efd, pipe, empty pipe, semaphore", n,
	      n < 0 ? strerror(errno) : "", (unsigned long long)seen);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x4444 };
	CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, sem, &ev));

	/* The eventfds. */
	CHECK_EQ(efd_count(efd), 5);
	CHECK_EQ(efd_count(sem), 3);
	v = 2;
	CHECK(write(efd2, &v, 8) == 8 && read(efd, &v, 8) == 8 && v == 7, "efd2 then efd: read %llu, want 7 (one object)",
	      (unsigned long long)v);
	v = 5;
	CHECK_OK(write(efd, &v, 8));
	for (int i = 0; i < 3; i++)
		CHECK(read(sem, &v, 8) == 8 && v == 1, "semaphore read %d: %llu (%s)", i, (unsigned long long)v, strerror(errno));
	{
		struct pollfd pf = { .fd = sem, .events = POLLIN };

		CHECK(poll(&pf, 1, 0) == 0, "semaphore still readable after three reads");
	}
	v = 3;
	CHECK_OK(write(sem, &v, 8));

	/* The pipes. */
	CHECK_EQ(fcntl(p[0], F_GETPIPE_SZ), CAP);
	CHECK(ioctl(p[0], FIONREAD, &avail) == 0 && avail == (int)strlen(MSG), "pipe holds %d bytes, want %zu", avail,
	      strlen(MSG));
	memset(buf, 0, sizeof(buf));
	n = read(p[0], buf, sizeof(buf));
	CHECK(n == (int)strlen(MSG) && !memcmp(buf, MSG, n), "pipe read %d bytes: \"%.*s\"", n, n > 0 ? n : 0, buf);
	n = read(p[0], buf, sizeof(buf));
	CHECK(n == -1 && errno == EAGAIN, "pipe read again: %d (%s), want EAGAIN", n, strerror(errno));
	CHECK_OK(write(p[1], MSG, strlen(MSG)));
	avail = -1;
	CHECK(ioctl(q[0], FIONREAD, &avail) == 0 && avail == 0, "empty pipe holds %d bytes", avail);
	CHECK(write(q[1], "x", 1) == 1 && read(q[0], buf, 1) == 1 && buf[0] == 'x', "a byte through the empty pipe");
}

static void tamper(void)
{
	uint64_t v = 1;

	/* As if the counter had not been restored exactly. */
	if (write(efd, &v, 8) != 8)
		_exit(3);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "events", NULL, setup, verify, tamper);
}
