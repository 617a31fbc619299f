// SPDX-License-Identifier: GPL-2.0
/*
 * mmops: memory operations on memory that existed at the checkpoint, done
 * afterwards (in the clone, and in the original too): mremap growing in
 * place (the new pages read zero for anonymous memory, the file's bytes for
 * a private file mapping), mremap moving a region (its bytes follow it, the
 * old range is gone) and shrinking it, munmap of a part, mprotect both
 * ways (and a split merged again before any page was touched), MADV_DONTNEED on anonymous memory (reads ZERO afterwards, as in any
 * process) and on a private file mapping (reads the file again, private
 * copies dropped), brk shrinking and growing (pages beyond the break are
 * gone, regrown ones read zero) and the heap labelled [heap].
 */
#include "ps.h"

#define FILE_PAGES 16
#define FSEED 0x3003f11eULL
static const char *path = PS_FILES "/mmops.dat";

static char *grow, *move, *dn, *prot, *remerge, *unm, *fgrow, *fdn, *target, *brk0;

static void install(void)
{
	ps_make_file(path, FILE_PAGES, FSEED);
}

/* A region of `pages` pages followed by a hole of `hole` pages. */
static char *with_hole(unsigned long pages, unsigned long hole, int fd)
{
	char *p = mmap(NULL, (pages + hole) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | (fd < 0 ? MAP_ANONYMOUS : 0),
		       fd, 0);

	PS_SETUP(p != MAP_FAILED);
	PS_SETUP(munmap(p + pages * PAGE, hole * PAGE) == 0);
	return p;
}

static void setup(void)
{
	volatile char sink = 0;
	int fd;

	install();
	fd = open(path, O_RDONLY);
	PS_SETUP(fd >= 0);
	move = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(move != MAP_FAILED);
	ps_fill(move, 16 * PAGE, 0x30e);
	/* Somewhere to move it to: reserved, PROT_NONE. */
	target = mmap(NULL, 64 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(target != MAP_FAILED);
	dn = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(dn != MAP_FAILED);
	ps_fill(dn, 8 * PAGE, 0xd0);
	prot = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(prot != MAP_FAILED);
	ps_fill(prot, 8 * PAGE, 0x960);
	remerge = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(remerge != MAP_FAILED);
	ps_fill(remerge, 8 * PAGE, 0x970);
	unm = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(unm != MAP_FAILED);
	ps_fill(unm, 8 * PAGE, 0x0a0);
	/* Private file mapping: pages 0-3 written, 4-7 read, then DONTNEED'd. */
	fdn = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	PS_SETUP(fdn != MAP_FAILED);
	ps_fill(fdn, 4 * PAGE, 0xfd0);
	for (int i = 4; i < 8; i++)
		sink += fdn[i * PAGE];
	/* Regions to grow in place (holes after them), made last. */
	grow = with_hole(16, 32, -1);
	ps_fill(grow, 16 * PAGE, 0x6e0);
	fgrow = with_hole(8, 8, fd);
	ps_fill(fgrow, 2 * PAGE, 0xf6e);
	for (int i = 2; i < 8; i++)
		sink += fgrow[i * PAGE];
	close(fd);
	/* The heap: 16 pages past the break, written. */
	brk0 = sbrk(0);
	PS_SETUP(sbrk(16 * PAGE) != (void *)-1);
	ps_fill(brk0, 16 * PAGE, 0xb4c);
	(void)sink;
}

static void verify(void)
{
	struct ps_map m;
	char *p;

	/* Grow in place: anonymous. */
	p = mremap(grow, 16 * PAGE, 32 * PAGE, 0);
	if (CHECK(p == grow, "mremap grow in place: %p (%s)", p, p == MAP_FAILED ? strerror(errno) : "moved")) {
		CHECK_PAT(grow, 16 * PAGE, 0x6e0);
		CHECK_ZERO(grow + 16 * PAGE, 16 * PAGE);
		ps_fill(grow + 16 * PAGE, 16 * PAGE, 0x6e1);
		CHECK_PAT(grow + 16 * PAGE, 16 * PAGE, 0x6e1);
		CHECK(ps_map_at((unsigned long)grow, &m) == 0 && m.end >= (unsigned long)grow + 32 * PAGE,
		      "grown region: VMA %lx-%lx", m.start, m.end);
	}
	/* Grow in place: private file mapping (new pages read the file). */
	p = mremap(fgrow, 8 * PAGE, 16 * PAGE, 0);
	if (CHECK(p == fgrow, "mremap file grow in place: %p (%s)", p, p == MAP_FAILED ? strerror(errno) : "moved")) {
		CHECK_PAT(fgrow, 2 * PAGE, 0xf6e);
		CHECK_PAT_AT(fgrow + 2 * PAGE, 14 * PAGE, FSEED, 2 * PAGE);
	}
	/* Move (fixed) into the reserved range, then grow and shrink it. */
	p = mremap(move, 16 * PAGE, 16 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + 8 * PAGE);
	if (CHECK(p == target + 8 * PAGE, "mremap move: %p (%s)", p, p == MAP_FAILED ? strerror(errno) : "elsewhere")) {
		CHECK_PAT(p, 16 * PAGE, 0x30e);
		CHECK(ps_probe(move, 0) == SIGSEGV, "the old range of a moved region is still mapped");
		ps_fill(p + 3 * PAGE, PAGE, 0x30f);
		CHECK_PAT(p + 3 * PAGE, PAGE, 0x30f);
		/* MADV_DONTNEED on a moved region: zero. */
		CHECK_OK(madvise(p + 4 * PAGE, 2 * PAGE, MADV_DONTNEED));
		CHECK_ZERO(p + 4 * PAGE, 2 * PAGE);
		CHECK_PAT_AT(p + 6 * PAGE, 10 * PAGE, 0x30e, 6 * PAGE);
		p = mremap(p, 16 * PAGE, 4 * PAGE, 0);
		if (CHECK(p == target + 8 * PAGE, "mremap shrink: %p", p)) {
			CHECK(ps_probe(p + 5 * PAGE, 0) == SIGSEGV, "a shrunk region's tail is still mapped");
			CHECK_PAT(p, 3 * PAGE, 0x30e);
		}
	}
	/* MADV_DONTNEED: anonymous pages read zero afterwards. */
	CHECK_PAT(dn, 8 * PAGE, 0xd0);
	CHECK_OK(madvise(dn + 2 * PAGE, 4 * PAGE, MADV_DONTNEED));
	CHECK_PAT(dn, 2 * PAGE, 0xd0);
	CHECK_ZERO(dn + 2 * PAGE, 4 * PAGE);
	CHECK_PAT_AT(dn + 6 * PAGE, 2 * PAGE, 0xd0, 6 * PAGE);
	ps_fill(dn + 3 * PAGE, PAGE, 0xd1);
	CHECK_PAT(dn + 3 * PAGE, PAGE, 0xd1);
	/* MADV_DONTNEED on a private file mapping: the file's bytes again. */
	CHECK_PAT(fdn, 4 * PAGE, 0xfd0);
	CHECK_PAT_AT(fdn + 4 * PAGE, 4 * PAGE, FSEED, 4 * PAGE);
	CHECK_OK(madvise(fdn, 8 * PAGE, MADV_DONTNEED));
	CHECK_PAT_AT(fdn, 8 * PAGE, FSEED, 0);
	/* mprotect: read-only faults on write, back to read-write works. */
	CHECK_OK(mprotect(prot + 2 * PAGE, 2 * PAGE, PROT_READ));
	CHECK(ps_probe(prot + 3 * PAGE, 1) == SIGSEGV, "write to a page made read-only did not fault");
	CHECK(ps_probe(prot + 4 * PAGE, 1) == 0, "write next to it faulted");
	CHECK_OK(mprotect(prot + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE));
	ps_fill(prot + 2 * PAGE, 2 * PAGE, 0x961);
	CHECK_PAT(prot + 2 * PAGE, 2 * PAGE, 0x961);
	CHECK_PAT(prot, 2 * PAGE, 0x960);
	CHECK_PAT_AT(prot + 4 * PAGE, 4 * PAGE, 0x960, 4 * PAGE);
	/* Split and merged again before any page was read: every page still
	 * holds its bytes. */
	CHECK_OK(mprotect(remerge + 2 * PAGE, 2 * PAGE, PROT_READ));
	CHECK_OK(mprotect(remerge + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE));
	CHECK_PAT(remerge, 8 * PAGE, 0x970);
	/* munmap a part. */
	CHECK_OK(munmap(unm + 2 * PAGE, 2 * PAGE));
	CHECK(ps_probe(unm + 2 * PAGE, 0) == SIGSEGV && ps_probe(unm + 3 * PAGE, 0) == SIGSEGV,
	      "unmapped pages still mapped");
	CHECK_PAT(unm, 2 * PAGE, 0x0a0);
	CHECK_PAT_AT(unm + 4 * PAGE, 4 * PAGE, 0x0a0, 4 * PAGE);
	/* brk: [heap], shrink, regrow (zero). */
	CHECK(ps_map_at((unsigned long)brk0, &m) == 0 && !strcmp(m.path, "[heap]"), "heap at %p labelled \"%s\"", brk0,
	      m.path);
	CHECK(sbrk(0) == brk0 + 16 * PAGE, "break %p, not %p", sbrk(0), brk0 + 16 * PAGE);
	CHECK_PAT(brk0, 16 * PAGE, 0xb4c);
	if (CHECK(sbrk(-8 * (long)PAGE) != (void *)-1, "sbrk shrink: %s", strerror(errno))) {
		CHECK(ps_probe(brk0 + 9 * PAGE, 0) == SIGSEGV, "page past the shrunk break still mapped");
		CHECK(sbrk(8 * PAGE) != (void *)-1, "sbrk grow: %s", strerror(errno));
		CHECK_PAT(brk0, 8 * PAGE, 0xb4c);
		CHECK_ZERO(brk0 + 8 * PAGE, 8 * PAGE);
	}
	p = sbrk(32 * PAGE);
	if (CHECK(p != (void *)-1, "sbrk grow: %s", strerror(errno))) {
		ps_fill(p, 32 * PAGE, 0xb4d);
		CHECK_PAT(p, 32 * PAGE, 0xb4d);
	}
}

static void tamper(void)
{
	/* As if the restore had put something in the hole after a region. */
	mmap(grow + 20 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "mmops", install, setup, verify, tamper);
}
