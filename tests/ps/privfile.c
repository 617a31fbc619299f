// SPDX-License-Identifier: GPL-2.0
/*
 * privfile: private file mappings of one 32-page file, several times with
 * different protections and offsets: read-only whole file (pages 0-7 read,
 * the rest never touched), read-write at page 8 (pages written = private
 * copies, pages read, pages never touched), read-exec at page 4, and
 * read-write at page 0 with a partly written page. The file is closed.
 * Afterwards: written pages keep the private bytes, every other page reads
 * the file; /proc/self/maps shows the file's path, offset and protections
 * for each mapping; a write to a file page stays private (the file is
 * unchanged).
 */
#include "ps.h"

#define FILE_PAGES 32
#define SEED 0xf11e0001ULL
static const char *path = PS_FILES "/privfile.dat";

static char *ro, *rw, *rx, *rw0;

static void install(void)
{
	ps_make_file(path, FILE_PAGES, SEED);
}

static void setup(void)
{
	volatile char sink = 0;
	int fd;

	install();
	fd = open(path, O_RDONLY);
	PS_SETUP(fd >= 0);
	ro = mmap(NULL, FILE_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	rw = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 8 * PAGE);
	rx = mmap(NULL, 4 * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4 * PAGE);
	rw0 = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	PS_SETUP(ro != MAP_FAILED && rw != MAP_FAILED && rx != MAP_FAILED && rw0 != MAP_FAILED);
	close(fd);
	madvise(ro, FILE_PAGES * PAGE, MADV_RANDOM);	/* no fault-around */
	for (int i = 0; i < 8; i++)
		sink += ro[i * PAGE];
	/* rw (file pages 8-23): 8-11 written, 12-15 read, 16-23 untouched. */
	for (int i = 0; i < 4; i++)
		ps_fill(rw + i * PAGE, PAGE, 0x9a00 + i);
	for (int i = 4; i < 8; i++)
		sink += rw[i * PAGE];
	for (int i = 0; i < 4; i++)
		sink += rx[i * PAGE];
	memset(rw0, 0x77, 100);
	(void)sink;
}

static void check_map(char *p, unsigned long len, unsigned long off, const char *perms)
{
	struct ps_map m;

	if (!CHECK(ps_map_at((unsigned long)p, &m) == 0, "%p not mapped", p))
		return;
	CHECK(!strcmp(m.path, path), "%p: maps path \"%s\", not %s", p, m.path, path);
	CHECK(m.start == (unsigned long)p && m.end == (unsigned long)p + len, "%p: VMA %lx-%lx, not %p-%p", p, m.start,
	      m.end, p, p + len);
	CHECK(m.off == off, "%p: maps offset %#lx, not %#lx", p, m.off, off);
	CHECK(!strcmp(m.perms, perms), "%p: perms %s, not %s", p, m.perms, perms);
}

static void verify(void)
{
	char buf[PAGE];
	int fd;

	CHECK_PAT_AT(ro, FILE_PAGES * PAGE, SEED, 0);
	for (int i = 0; i < 4; i++)
		CHECK_PAT(rw + i * PAGE, PAGE, 0x9a00 + i);
	CHECK_PAT_AT(rw + 4 * PAGE, 12 * PAGE, SEED, 12 * PAGE);
	CHECK_PAT_AT(rx, 4 * PAGE, SEED, 4 * PAGE);
	for (int i = 0; i < 100; i++)
		if (!CHECK(rw0[i] == 0x77, "rw0 byte %d: %#x", i, rw0[i] & 0xff))
			break;
	CHECK_PAT_AT(rw0 + 104, 2 * PAGE - 104, SEED, 104);

	check_map(ro, FILE_PAGES * PAGE, 0, "r--p");
	check_map(rw, 16 * PAGE, 8 * PAGE, "rw-p");
	check_map(rx, 4 * PAGE, 4 * PAGE, "r-xp");
	check_map(rw0, 2 * PAGE, 0, "rw-p");
	CHECK(ps_probe(ro + PAGE, 1) == SIGSEGV, "writing the read-only file mapping did not fault");

	/* Writes stay private: to a written, a read and an untouched page. */
	ps_fill(rw + 2 * PAGE, PAGE, 0x9b02);
	ps_fill(rw + 5 * PAGE, PAGE, 0x9b05);
	ps_fill(rw + 15 * PAGE, PAGE, 0x9b0f);
	CHECK_PAT(rw + 2 * PAGE, PAGE, 0x9b02);
	CHECK_PAT(rw + 5 * PAGE, PAGE, 0x9b05);
	CHECK_PAT(rw + 15 * PAGE, PAGE, 0x9b0f);
	fd = open(path, O_RDONLY);
	if (CHECK(fd >= 0, "open %s: %s", path, strerror(errno))) {
		CHECK(pread(fd, buf, PAGE, 13 * PAGE) == PAGE, "pread");
		CHECK_PAT_AT(buf, PAGE, SEED, 13 * PAGE);
		CHECK(pread(fd, buf, PAGE, 23 * PAGE) == PAGE, "pread");
		CHECK_PAT_AT(buf, PAGE, SEED, 23 * PAGE);
		close(fd);
	}
	/* The other mappings of the file did not see those writes. */
	CHECK_PAT_AT(ro + 13 * PAGE, PAGE, SEED, 13 * PAGE);
	CHECK_PAT_AT(ro + 23 * PAGE, PAGE, SEED, 23 * PAGE);
}

static void tamper(void)
{
	/* As if a never-touched file page had been mapped from elsewhere. */
	mprotect(ro, PAGE, PROT_READ | PROT_WRITE);
	ro[3] ^= 1;
	mprotect(ro, PAGE, PROT_READ);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "privfile", install, setup, verify, tamper);
}
