// SPDX-License-Identifier: GPL-2.0
/*
 * thp: transparent huge pages and the THP prctl. A 2 MiB-aligned 4 MiB
 * region with MADV_HUGEPAGE, fully written (two huge pages in the original
 * when THP is enabled: "# note" otherwise), and a MADV_NOHUGEPAGE region;
 * then PR_SET_THP_DISABLE. Afterwards: every byte is there, writes work
 * (copy on write of a huge page's part), the regions keep their hg / nh
 * VmFlags (fork keeps VM_HUGEPAGE / VM_NOHUGEPAGE), and PR_GET_THP_DISABLE
 * still says 1 (fork keeps MMF_DISABLE_THP).
 */
#include "ps.h"
#include <sys/prctl.h>

#define HUGE (2 * MIB)
#define LEN (2 * HUGE)

static char *r, *nh;

static void setup(void)
{
	char v[64] = "";
	char *raw = mmap(NULL, LEN + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long kb;

	PS_SETUP(raw != MAP_FAILED);
	r = (char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1));
	/* Keep only the aligned part. */
	if (r > raw)
		munmap(raw, r - raw);
	munmap(r + LEN, raw + HUGE - r);
	PS_SETUP(madvise(r, LEN, MADV_HUGEPAGE) == 0);
	ps_fill(r, LEN, 0x7e9);
	if (ps_smaps((unsigned long)r, "AnonHugePages", v, sizeof(v)) || sscanf(v, "%lu", &kb) != 1 || kb < LEN / 1024)
		ps_say("# note: the region is not THP-backed in the original (AnonHugePages: %s)", v);

	nh = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(nh != MAP_FAILED);
	PS_SETUP(madvise(nh, 4 * PAGE, MADV_NOHUGEPAGE) == 0);
	ps_fill(nh, 4 * PAGE, 0x7ea);
	PS_SETUP(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0);
}

static void verify(void)
{
	char v[128] = "";

	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "PR_GET_THP_DISABLE: %d",
	      prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	CHECK_PAT(r, LEN, 0x7e9);
	CHECK_PAT(nh, 4 * PAGE, 0x7ea);
	CHECK(ps_smaps((unsigned long)r, "VmFlags", v, sizeof(v)) == 0 && strstr(v, " hg") && !strstr(v, " nh"),
	      "huge region VmFlags: %s", v);
	CHECK(ps_smaps((unsigned long)nh, "VmFlags", v, sizeof(v)) == 0 && strstr(v, " nh"), "nohuge region VmFlags: %s",
	      v);
	/* Writes into both huge pages, a page each and a few bytes. */
	ps_fill(r + 5 * PAGE, PAGE, 0x7eb);
	ps_fill(r + HUGE + 300 * PAGE, PAGE, 0x7ec);
	r[LEN - 1] ^= 0x11;
	CHECK_PAT(r + 5 * PAGE, PAGE, 0x7eb);
	CHECK_PAT(r + HUGE + 300 * PAGE, PAGE, 0x7ec);
	CHECK_PAT_AT(r + 6 * PAGE, HUGE + 294 * PAGE, 0x7e9, 6 * PAGE);
	CHECK_PAT_AT(r + HUGE + 301 * PAGE, HUGE - 302 * PAGE, 0x7e9, HUGE + 301 * PAGE);
	r[LEN - 1] ^= 0x11;
	CHECK_PAT_AT(r + LEN - PAGE, PAGE, 0x7e9, LEN - PAGE);
}

static void tamper(void)
{
	prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "thp", NULL, setup, verify, tamper);
}
