// SPDX-License-Identifier: GPL-2.0
/*
 * pkru: memory protection keys (SKIP without PKU/OSPKE or free keys).
 * Before the checkpoint: key A allocated write-disabled and attached to a
 * region with pkey_mprotect, key B allocated access-disabled (pkey_set)
 * and attached to another. A fork child keeps PKRU (a register: part of the
 * XSAVE state), the keys' allocation (per mm) and each VMA's key.
 * Afterwards: rdpkru is the original's value; /proc/self/smaps shows each
 * region's ProtectionKey; the regions' bytes are readable where the key
 * allows (reading B faults with SEGV_PKUERR, writing A faults with
 * SEGV_PKUERR); the keys are still allocated (pkey_mprotect with them
 * works, and pkey_alloc returns neither).
 */
#include "ps.h"

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

static int ka, kb;
static char *ra, *rb;
static uint32_t pkru0;

static uint32_t rdpkru(void)
{
	uint32_t eax, edx;

	__asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

/* The probes leave their handler with siglongjmp, not sigreturn: PKRU
 * stays as the kernel set it for the handler. Put ours back. */
static void wrpkru(uint32_t v)
{
	__asm__ volatile(".byte 0x0f, 0x01, 0xef" : : "a"(v), "c"(0), "d"(0) : "memory");
}

static void setup(void)
{
	unsigned int r[4];
	char v[32] = "";

	ps_cpuid(7, 0, r);
	if (!(r[2] & (1u << 3)) || !(r[2] & (1u << 4)))
		ps_skip("no PKU, or not enabled by the OS (OSPKE)");
	ka = pkey_alloc(0, PKEY_DISABLE_WRITE);
	kb = pkey_alloc(0, 0);
	if (ka < 0 || kb < 0)
		ps_skip("pkey_alloc failed");
	ra = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rb = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(ra != MAP_FAILED && rb != MAP_FAILED);
	ps_fill(ra, 4 * PAGE, 0xa11);
	ps_fill(rb, 4 * PAGE, 0xb22);
	PS_SETUP(pkey_mprotect(ra, 4 * PAGE, PROT_READ | PROT_WRITE, ka) == 0);
	PS_SETUP(pkey_mprotect(rb, 4 * PAGE, PROT_READ | PROT_WRITE, kb) == 0);
	PS_SETUP(pkey_set(kb, PKEY_DISABLE_ACCESS) == 0);
	pkru0 = rdpkru();
	PS_SETUP(ps_smaps((unsigned long)ra, "ProtectionKey", v, sizeof(v)) == 0 && atoi(v) == ka);
	ps_say("# keys %d (write-disabled) and %d (access-disabled), PKRU %#x", ka, kb, pkru0);
}

static void verify(void)
{
	char v[32] = "";
	char *rc;
	int k;

	CHECK(rdpkru() == pkru0, "PKRU %#x, was %#x", rdpkru(), pkru0);
	CHECK(ps_smaps((unsigned long)ra, "ProtectionKey", v, sizeof(v)) == 0 && atoi(v) == ka,
	      "region A's ProtectionKey \"%s\", was %d", v, ka);
	CHECK(ps_smaps((unsigned long)rb, "ProtectionKey", v, sizeof(v)) == 0 && atoi(v) == kb,
	      "region B's ProtectionKey \"%s\", was %d", v, kb);
	CHECK_PAT(ra, 4 * PAGE, 0xa11);
	k = rdpkru();
	CHECK(ps_probe(ra + PAGE, 1) == SIGSEGV && ps_probe_code == SEGV_PKUERR,
	      "writing A (key %d, write-disabled): signal %d code %d, not SIGSEGV/SEGV_PKUERR", ka, ps_probe_sig,
	      ps_probe_code);
	wrpkru(k);
	CHECK(ps_probe(rb + PAGE, 0) == SIGSEGV && ps_probe_code == SEGV_PKUERR,
	      "reading B (key %d, access-disabled): signal %d code %d, not SIGSEGV/SEGV_PKUERR", kb, ps_probe_sig,
	      ps_probe_code);
	wrpkru(k);
	/* Both keys are allocated in this mm. */
	rc = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(pkey_mprotect(rc, PAGE, PROT_READ, ka) == 0, "pkey_mprotect with key %d: %s", ka, strerror(errno));
	CHECK(pkey_mprotect(rc, PAGE, PROT_READ, kb) == 0, "pkey_mprotect with key %d: %s", kb, strerror(errno));
	k = pkey_alloc(0, 0);
	CHECK(k != ka && k != kb, "pkey_alloc returned %d: keys %d and %d are not allocated", k, ka, kb);
	/* Access allowed again: B's bytes are there. */
	if (CHECK(pkey_set(kb, 0) == 0, "pkey_set: %s", strerror(errno)))
		CHECK_PAT(rb, 4 * PAGE, 0xb22);
}

static void tamper(void)
{
	pkey_set(ka, 0);
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "pkru", NULL, setup, verify, tamper);
}
