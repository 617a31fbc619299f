// SPDX-License-Identifier: GPL-2.0
/*
 * sharedfile: MAP_SHARED mappings of a file: read-write over the whole
 * 8-page file (pages 0-1 written through it, page 2 written with write(2)
 * after the mmap, the rest the file's bytes), and read-only at page 4.
 * Afterwards the mappings show the file's bytes, including the original's
 * writes, and /proc/self/maps shows them shared, with the path. The clone
 * writes pages 3 and 5 through its read-write mapping: the file (read(2))
 * and its read-only mapping of pages 4-7 see them (it then puts page 5
 * back). The original verifies after the clone is done: on the same host it
 * sees the clone's page 3 through its own shared mapping. A clone on another
 * host maps that host's file (as `sharedfile install` made it: without the
 * original's writes), and the original (PS_REMOTE=1) sees its page 3 as it
 * was.
 */
#include "ps.h"

#define FILE_PAGES 8
#define SEED 0x5f11e000ULL
static const char *path = PS_FILES "/sharedfile.dat";

static char *rw, *ro;

static void install(void)
{
	ps_make_file(path, FILE_PAGES, SEED);
}

static void setup(void)
{
	char buf[PAGE];
	int fd;

	install();
	fd = open(path, O_RDWR);
	PS_SETUP(fd >= 0);
	rw = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ro = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 4 * PAGE);
	PS_SETUP(rw != MAP_FAILED && ro != MAP_FAILED);
	ps_fill(rw, 2 * PAGE, 0x5e0);
	ps_fill(buf, PAGE, 0x5e2);
	PS_SETUP(pwrite(fd, buf, PAGE, 2 * PAGE) == PAGE);
	close(fd);
}

static void verify(void)
{
	struct ps_map m;
	char buf[PAGE];
	int fd;

	if (ps_clone && ps_remote) {
		/* Another host's file: as `sharedfile install` made it there. */
		CHECK_PAT_AT(rw, 3 * PAGE, SEED, 0);
	} else {
		CHECK_PAT(rw, 2 * PAGE, 0x5e0);
		CHECK_PAT(rw + 2 * PAGE, PAGE, 0x5e2);
	}
	if (ps_clone || ps_remote)	/* the clone's write is (or is not) in page 3 */
		CHECK_PAT_AT(rw + 4 * PAGE, 4 * PAGE, SEED, 4 * PAGE);
	CHECK_PAT_AT(ro, 4 * PAGE, SEED, 4 * PAGE);
	CHECK(ps_map_at((unsigned long)rw, &m) == 0 && !strcmp(m.perms, "rw-s") && !strcmp(m.path, path) &&
		      m.start == (unsigned long)rw && m.end == (unsigned long)rw + FILE_PAGES * PAGE,
	      "rw mapping: maps %lx-%lx %s %s", m.start, m.end, m.perms, m.path);
	CHECK(ps_map_at((unsigned long)ro, &m) == 0 && !strcmp(m.perms, "r--s") && !strcmp(m.path, path) &&
		      m.off == 4 * PAGE,
	      "ro mapping: maps %lx-%lx %s %lx %s", m.start, m.end, m.perms, m.off, m.path);
	CHECK(ps_probe(ro, 1) == SIGSEGV, "writing the read-only shared mapping did not fault");

	if (ps_clone) {
		CHECK_PAT_AT(rw + 3 * PAGE, PAGE, SEED, 3 * PAGE);
		/* Write page 3 and page 5: the file and the other mapping see it. */
		ps_fill(rw + 3 * PAGE, PAGE, 0xc10e3);
		ps_fill(rw + 5 * PAGE, PAGE, 0xc10e5);
		CHECK_OK(msync(rw, FILE_PAGES * PAGE, MS_SYNC));
		CHECK_PAT(ro + PAGE, PAGE, 0xc10e5);
		fd = open(path, O_RDONLY);
		if (CHECK(fd >= 0, "open %s: %s", path, strerror(errno))) {
			CHECK(pread(fd, buf, PAGE, 3 * PAGE) == PAGE, "pread");
			CHECK_PAT(buf, PAGE, 0xc10e3);
			close(fd);
		}
		/* Leave page 5 as the original expects it. */
		ps_fill_at(rw + 5 * PAGE, PAGE, SEED, 5 * PAGE);
		msync(rw, FILE_PAGES * PAGE, MS_SYNC);
	} else if (!ps_remote) {
		/* The clone has exited: its write is in the file, seen here. */
		CHECK_PAT(rw + 3 * PAGE, PAGE, 0xc10e3);
		CHECK_PAT_AT(rw + 4 * PAGE, 4 * PAGE, SEED, 4 * PAGE);
	} else {
		CHECK_PAT_AT(rw + 3 * PAGE, PAGE, SEED, 3 * PAGE);
	}
}

static void tamper(void)
{
	/* As if the clone's mapping were private: its writes stay its own. */
	void *p = mmap(rw, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		       open(path, O_RDWR), 0);

	(void)p;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "sharedfile", install, setup, verify, tamper);
}
