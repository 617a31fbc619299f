// SPDX-License-Identifier: GPL-2.0
/*
 * sharedanon: shared memory with no name to reopen. A MAP_SHARED|
 * MAP_ANONYMOUS region (pages 0-5 written, 6-7 never touched), and a memfd
 * of 8 pages: pages 0-3 written with write(2) only (never touched through
 * any mapping of this process), pages 4-5 written through a read-write
 * MAP_SHARED mapping, 6-7 never written; plus a read-only mapping of the
 * same memfd at page 2. The memfd's descriptor is closed before the
 * checkpoint (the mappings keep it alive).
 *
 * What is asserted: a fork child shares these objects with its parent; a
 * clone cannot (it may run on another host), so only what the clone can
 * have is asserted: the content at the checkpoint instant is there (in
 * every page, including those only write(2) ever touched), the mappings
 * are shared ones ('s' in /proc/self/maps), and the clone's writes are
 * visible to itself: through another mapping of the same memfd (one object,
 * as in any process) and to its own fork children (MAP_SHARED). Whether the
 * original sees the clone's writes is not asserted.
 */
#include "ps.h"

#define SA_PAGES 8
#define MFD_PAGES 8

static char *sa, *mrw, *mro;

static void setup(void)
{
	char buf[PAGE];
	int fd;

	sa = mmap(NULL, SA_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(sa != MAP_FAILED);
	ps_fill(sa, 6 * PAGE, 0x5a0000);

	fd = memfd_create("ps-memfd", MFD_CLOEXEC);
	PS_SETUP(fd >= 0);
	PS_SETUP(ftruncate(fd, MFD_PAGES * PAGE) == 0);
	for (int i = 0; i < 4; i++) {
		ps_fill_at(buf, PAGE, 0x3fd000, i * PAGE);
		PS_SETUP(pwrite(fd, buf, PAGE, i * PAGE) == PAGE);
	}
	mrw = mmap(NULL, MFD_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	mro = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 2 * PAGE);
	PS_SETUP(mrw != MAP_FAILED && mro != MAP_FAILED);
	close(fd);
	ps_fill_at(mrw + 4 * PAGE, 2 * PAGE, 0x3fd000, 4 * PAGE);
}

static void verify(void)
{
	struct ps_map m;
	pid_t p;
	int st;

	CHECK_PAT(sa, 6 * PAGE, 0x5a0000);
	/* memfd pages 0-3 were only ever written with write(2). */
	CHECK_PAT_AT(mrw, 3 * PAGE, 0x3fd000, 0);
	CHECK_PAT_AT(mrw + 5 * PAGE, PAGE, 0x3fd000, 5 * PAGE);
	CHECK_ZERO(mrw + 7 * PAGE, PAGE);
	CHECK_PAT_AT(mro, PAGE, 0x3fd000, 2 * PAGE);
	CHECK_PAT_AT(mro + 3 * PAGE, PAGE, 0x3fd000, 5 * PAGE);
	/* The pages a clone writes below: a fork child shares them with its
	 * parent, which may see them written (not asserted). */
	if (ps_clone) {
		CHECK_ZERO(sa + 6 * PAGE, 2 * PAGE);
		CHECK_PAT_AT(mrw + 3 * PAGE, 2 * PAGE, 0x3fd000, 3 * PAGE);
		CHECK_ZERO(mrw + 6 * PAGE, PAGE);
		CHECK_PAT_AT(mro + PAGE, 2 * PAGE, 0x3fd000, 3 * PAGE);
	}
	CHECK(ps_map_at((unsigned long)sa, &m) == 0 && !strcmp(m.perms, "rw-s"), "shared anonymous region: perms %s",
	      m.perms);
	CHECK(ps_map_at((unsigned long)mrw, &m) == 0 && !strcmp(m.perms, "rw-s") && strstr(m.path, "memfd:ps-memfd"),
	      "memfd mapping: perms %s path %s", m.perms, m.path);
	CHECK(ps_map_at((unsigned long)mro, &m) == 0 && !strcmp(m.perms, "r--s"), "read-only memfd mapping: perms %s",
	      m.perms);
	CHECK(ps_probe(mro, 1) == SIGSEGV, "writing the read-only memfd mapping did not fault");

	/* One memfd, two mappings: a write through one shows in the other. */
	ps_fill(mrw + 3 * PAGE, PAGE, 0x3fe003);
	CHECK_PAT(mro + PAGE, PAGE, 0x3fe003);
	ps_fill(mrw + 4 * PAGE, PAGE, 0x3fe004);
	CHECK_PAT(mro + 2 * PAGE, PAGE, 0x3fe004);

	/* Writes into never-touched pages, and our fork children share it. */
	ps_fill(sa + 7 * PAGE, PAGE, 0x5a0107);
	CHECK_PAT(sa + 7 * PAGE, PAGE, 0x5a0107);
	p = fork();
	if (p == 0) {
		ps_fill(sa + 6 * PAGE, PAGE, 0xc41d);
		ps_fill(mrw + 6 * PAGE, PAGE, 0xc41e);
		_exit(0);
	}
	if (CHECK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st), "fork")) {
		CHECK_PAT(sa + 6 * PAGE, PAGE, 0xc41d);
		CHECK_PAT(mrw + 6 * PAGE, PAGE, 0xc41e);
	}
}

static void tamper(void)
{
	sa[2 * PAGE + 9] ^= 0x40;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "sharedanon", NULL, setup, verify, tamper);
}
