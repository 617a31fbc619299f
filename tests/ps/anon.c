// SPDX-License-Identifier: GPL-2.0
/*
 * anon: private anonymous memory. A region with written and never-touched
 * pages (which must read zero), a partly written page, a PROT_NONE guard
 * page with content, a region whose pages alternate r--/rw- (one VMA per
 * page), a region written then made read-only, a sparse MAP_NORESERVE
 * region, and heap (malloc) bytes. Afterwards: same bytes, same
 * protections (faults where the original faults), the same VMA layout in
 * /proc/self/maps, and writes private to the process.
 */
#include "ps.h"

#define A_PAGES 48
#define ALT_PAGES 24
#define SPARSE (64 * MIB)

static char *a, *guard, *alt, *ro, *sparse, *heap, *partial;
static char alt_perms[ALT_PAGES][8];

static void setup(void)
{
	a = mmap(NULL, A_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(a != MAP_FAILED);
	/* Every third page is never touched. */
	for (int i = 0; i < A_PAGES; i++)
		if (i % 3 != 2)
			ps_fill(a + i * PAGE, PAGE, 0xA000 + i);
	/* A page with its first 100 bytes written only. */
	partial = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(partial != MAP_FAILED);
	memset(partial, 0x5c, 100);

	/* 3 pages, the middle one PROT_NONE (with content written before). */
	guard = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(guard != MAP_FAILED);
	ps_fill(guard, 3 * PAGE, 0x6a4d);
	PS_SETUP(mprotect(guard + PAGE, PAGE, PROT_NONE) == 0);

	/* Alternating r--/rw- pages: ALT_PAGES VMAs. */
	/* (between two PROT_NONE pages, so that no neighbour merges with it) */
	alt = mmap(NULL, (ALT_PAGES + 2) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(alt != MAP_FAILED);
	PS_SETUP(mprotect(alt, PAGE, PROT_NONE) == 0);
	alt += PAGE;
	PS_SETUP(mprotect(alt + ALT_PAGES * PAGE, PAGE, PROT_NONE) == 0);
	ps_fill(alt, ALT_PAGES * PAGE, 0xa17);
	for (int i = 1; i < ALT_PAGES; i += 2)
		PS_SETUP(mprotect(alt + i * PAGE, PAGE, PROT_READ) == 0);
	for (int i = 0; i < ALT_PAGES; i++) {
		struct ps_map m;

		PS_SETUP(ps_map_at((unsigned long)alt + i * PAGE, &m) == 0);
		snprintf(alt_perms[i], sizeof(alt_perms[i]), "%s", m.perms);
	}

	/* Written, then read-only. */
	ro = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(ro != MAP_FAILED);
	ps_fill(ro, 4 * PAGE, 0x120);
	PS_SETUP(mprotect(ro, 4 * PAGE, PROT_READ) == 0);

	/* Sparse: three pages written in 64 MiB (no huge pages). */
	sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	PS_SETUP(sparse != MAP_FAILED);
	madvise(sparse, SPARSE, MADV_NOHUGEPAGE);
	ps_fill(sparse, PAGE, 0x5a0);
	ps_fill(sparse + 16 * MIB + 5 * PAGE, PAGE, 0x5a1);
	ps_fill(sparse + SPARSE - PAGE, PAGE, 0x5a2);

	/* Heap (brk) bytes. */
	heap = malloc(40000);
	PS_SETUP(heap != NULL);
	ps_fill(heap, 40000 / 8 * 8, 0x4ea9);
}

static void verify(void)
{
	struct ps_map m;

	for (int i = 0; i < A_PAGES; i++) {
		if (i % 3 != 2)
			CHECK_PAT(a + i * PAGE, PAGE, 0xA000 + i);
		else
			CHECK_ZERO(a + i * PAGE, PAGE);
	}
	for (int i = 0; i < 100; i++)
		if (!CHECK(partial[i] == 0x5c, "partial page byte %d: %#x", i, partial[i] & 0xff))
			break;
	CHECK_ZERO(partial + 104, PAGE - 104);
	CHECK(partial[100] == 0 && partial[101] == 0 && partial[102] == 0 && partial[103] == 0,
	      "partial page bytes 100-103 must be zero");

	/* The guard: faults; its content is still there behind PROT_NONE. */
	CHECK(ps_map_at((unsigned long)guard + PAGE, &m) == 0 && !strcmp(m.perms, "---p") &&
		      m.start == (unsigned long)guard + PAGE && m.end == (unsigned long)guard + 2 * PAGE,
	      "guard page: maps says %lx-%lx %s", m.start, m.end, m.perms);
	CHECK(ps_probe(guard + PAGE + 8, 0) == SIGSEGV, "reading the PROT_NONE guard did not fault");
	CHECK_PAT(guard, PAGE, 0x6a4d);
	CHECK_PAT_AT(guard + 2 * PAGE, PAGE, 0x6a4d, 2 * PAGE);
	if (CHECK_OK(mprotect(guard + PAGE, PAGE, PROT_READ)) == 0) {
		CHECK_PAT_AT(guard + PAGE, PAGE, 0x6a4d, PAGE);
		mprotect(guard + PAGE, PAGE, PROT_NONE);
	}

	/* Alternating protections: one VMA per page, as in the original. */
	for (int i = 0; i < ALT_PAGES; i++) {
		unsigned long p = (unsigned long)alt + i * PAGE;

		if (!CHECK(ps_map_at(p, &m) == 0, "alt page %d not mapped", i))
			continue;
		CHECK(!strcmp(m.perms, alt_perms[i]) && !strcmp(m.perms, i % 2 ? "r--p" : "rw-p"),
		      "alt page %d: perms %s, were %s", i, m.perms, alt_perms[i]);
		CHECK(m.start == p && m.end == p + PAGE, "alt page %d: VMA %lx-%lx, not one page", i, m.start, m.end);
		CHECK(ps_probe((char *)p, 1) == (i % 2 ? SIGSEGV : 0), "alt page %d: write %s", i,
		      i % 2 ? "did not fault" : "faulted");
	}
	CHECK_PAT(alt, ALT_PAGES * PAGE, 0xa17);
	/* Writes stay private and work on the rw- pages. */
	for (int i = 0; i < ALT_PAGES; i += 2)
		memset(alt + i * PAGE + 64, 0xee, 64);
	for (int i = 0; i < ALT_PAGES; i += 2)
		CHECK(alt[i * PAGE + 64] == (char)0xee && alt[i * PAGE + 127] == (char)0xee, "alt page %d: write lost", i);

	/* Read-only region. */
	CHECK_PAT(ro, 4 * PAGE, 0x120);
	CHECK(ps_probe(ro + 3 * PAGE, 1) == SIGSEGV, "writing the read-only region did not fault");
	CHECK(ps_map_at((unsigned long)ro, &m) == 0 && !strcmp(m.perms, "r--p"), "ro region perms %s", m.perms);

	/* Sparse: written pages, untouched pages (same 2 MiB block and others). */
	CHECK_PAT(sparse, PAGE, 0x5a0);
	CHECK_PAT(sparse + 16 * MIB + 5 * PAGE, PAGE, 0x5a1);
	CHECK_PAT(sparse + SPARSE - PAGE, PAGE, 0x5a2);
	CHECK_ZERO(sparse + PAGE, PAGE);
	CHECK_ZERO(sparse + 16 * MIB + 4 * PAGE, PAGE);
	CHECK_ZERO(sparse + 16 * MIB + 6 * PAGE, PAGE);
	CHECK_ZERO(sparse + 8 * MIB, PAGE);
	CHECK_ZERO(sparse + SPARSE - 2 * PAGE, PAGE);
	CHECK(ps_map_at((unsigned long)sparse, &m) == 0 && m.start == (unsigned long)sparse &&
		      m.end == (unsigned long)sparse + SPARSE,
	      "sparse region: VMA %lx-%lx", m.start, m.end);
	/* A never-touched page takes a write. */
	ps_fill(sparse + 32 * MIB, PAGE, 0x5a3);
	CHECK_PAT(sparse + 32 * MIB, PAGE, 0x5a3);

	CHECK_PAT(heap, 40000 / 8 * 8, 0x4ea9);
	/* Written pages take writes (copy on write) and keep them. */
	for (int i = 0; i < A_PAGES; i++)
		ps_fill(a + i * PAGE, PAGE, 0xB000 + i);
	for (int i = 0; i < A_PAGES; i++)
		CHECK_PAT(a + i * PAGE, PAGE, 0xB000 + i);
}

static void tamper(void)
{
	a[5 * PAGE + 100] ^= 1;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "anon", NULL, setup, verify, tamper);
}
