// SPDX-License-Identifier: GPL-2.0
/*
 * stack: the main stack and a MAP_GROWSDOWN region grow after the
 * checkpoint. The main stack holds a 64 KiB pattern in main()'s frame;
 * afterwards it is intact, the stack VMA is labelled [stack], and a deep
 * recursion (2.5 MiB, each 4 KiB frame written and checked) grows the stack
 * VMA downwards. A MAP_GROWSDOWN region, already grown by two pages before
 * the checkpoint, keeps its content and grows by 64 more pages (reading
 * zero) when touched below its start.
 */
#include "ps.h"

#define DEPTH 640		/* frames of 4 KiB: 2.5 MiB */
#define GD_PAGES 4
#define GD_RESERVE (4 * MIB)

static char *gd;		/* the growsdown region's start (after growing by 2) */
static unsigned long gd_end;

static unsigned long recurse(int depth, uint64_t seed)
{
	volatile uint64_t frame[510];
	unsigned long bad = 0;

	for (int i = 0; i < 510; i++)
		frame[i] = seed ^ ((uint64_t)depth << 32) ^ i;
	if (depth > 0)
		bad += recurse(depth - 1, seed);
	for (int i = 0; i < 510; i++)
		bad += frame[i] != (seed ^ ((uint64_t)depth << 32) ^ i);
	return bad;
}

static void setup(void)
{
	char *r = mmap(NULL, GD_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	PS_SETUP(r != MAP_FAILED);
	PS_SETUP(munmap(r, GD_RESERVE) == 0);
	gd_end = (unsigned long)r + GD_RESERVE;
	gd = mmap((void *)(gd_end - GD_PAGES * PAGE), GD_PAGES * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
	PS_SETUP(gd != MAP_FAILED);
	/* Grow it by two pages now. */
	gd -= 2 * PAGE;
	ps_fill(gd, (GD_PAGES + 2) * PAGE, 0x96d);
}

static void verify(void)
{
	struct ps_map m;
	char v[64];
	unsigned long low;
	int x;

	/* The growsdown region. */
	if (CHECK(ps_map_at((unsigned long)gd, &m) == 0, "growsdown region not mapped at %p", gd)) {
		CHECK(m.start == (unsigned long)gd && m.end == gd_end, "growsdown VMA %lx-%lx, not %p-%lx", m.start, m.end,
		      gd, gd_end);
		CHECK(ps_smaps((unsigned long)gd, "VmFlags", v, sizeof(v)) == 0 && strstr(v, "gd"),
		      "growsdown VMA flags: %s", v);
	}
	CHECK_PAT(gd, (GD_PAGES + 2) * PAGE, 0x96d);
	if (CHECK(ps_probe(gd - 64 * PAGE, 1) == 0, "touching 64 pages below the growsdown region faulted") &&
	    CHECK(ps_map_at((unsigned long)gd, &m) == 0 && m.start == (unsigned long)gd - 64 * PAGE && m.end == gd_end,
		  "growsdown VMA after growing: %lx-%lx", m.start, m.end)) {
		CHECK_ZERO(gd - 64 * PAGE, 64 * PAGE);
		ps_fill(gd - 64 * PAGE, 64 * PAGE, 0x96e);
		CHECK_PAT(gd - 64 * PAGE, 64 * PAGE, 0x96e);
	}

	/* The main stack. */
	if (CHECK(ps_map_at((unsigned long)&x, &m) == 0, "the stack is not mapped")) {
		CHECK(!strcmp(m.path, "[stack]"), "the stack VMA is labelled \"%s\"", m.path);
		CHECK(ps_smaps((unsigned long)&x, "VmFlags", v, sizeof(v)) == 0 && strstr(v, "gd"), "stack VMA flags: %s",
		      v);
	}
	low = m.start;
	CHECK(recurse(DEPTH, 0x5ac4) == 0, "stack frames corrupted during a deep recursion");
	CHECK(ps_map_at((unsigned long)&x, &m) == 0 && m.start <= low - 2 * MIB, "the stack did not grow: %lx, was %lx",
	      m.start, low);
}

static void tamper(void)
{
	/* As if something had been mapped where the region grows. */
	mmap(gd - 40 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

int main(int argc, char **argv)
{
	volatile uint64_t local[8192];	/* 64 KiB in main()'s frame */

	ps_init(argc, argv, "stack");
	if (ps_mode == PS_INSTALL)
		return 0;
	ps_tamper_fn = tamper;
	ps_fill((void *)local, sizeof(local), 0x10ca1);
	setup();
	ps_sync();
	CHECK_PAT((void *)local, sizeof(local), 0x10ca1);
	verify();
	return ps_finish();
}
