// SPDX-License-Identifier: GPL-2.0
/*
 * auxv: what execve gave the process, which fork keeps: the auxiliary
 * vector (getauxval of AT_PAGESZ, AT_HWCAP, AT_HWCAP2, AT_CLKTCK, AT_PHDR,
 * AT_PHNUM, AT_ENTRY, AT_UID.., AT_SECURE, AT_MINSIGSTKSZ, AT_RSEQ_*, the 16
 * AT_RANDOM bytes, the AT_EXECFN and AT_PLATFORM strings, and
 * /proc/self/auxv byte for byte, which the kernel keeps in the mm),
 * /proc/self/cmdline and /proc/self/environ (read by the kernel from the
 * mm's argument and environment ranges), argv and environ in memory
 * (getenv works), the mm's code/data/brk/stack/arg/env addresses in
 * /proc/self/stat, and /proc/self/exe. The program re-executes itself
 * first with arguments and an environment variable of its own.
 */
#include "ps.h"
#include <sys/auxv.h>

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#define AT_RSEQ_ALIGN 28
#endif
#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

static const unsigned long keys[] = { AT_PAGESZ, AT_HWCAP, AT_HWCAP2, AT_CLKTCK, AT_PHDR, AT_PHNUM, AT_PHENT,
				      AT_ENTRY, AT_BASE, AT_FLAGS, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE,
				      AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN,
				      AT_RANDOM, AT_EXECFN, AT_PLATFORM };
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
static unsigned long val0[NKEYS];
static unsigned char random0[16];
static char execfn0[256], platform0[64], exe0[256];
static char auxv0[1024], cmdline0[1024], environ0[8192];
static long auxv_len, cmdline_len, environ_len;
static unsigned long stat0[64];
static int g_argc;
static char **g_argv, **environ0_ptr;
static char *argv_copy[8];

/* Fields 26-28 and 45-51 of /proc/self/stat (code, stack, data, brk, args, env). */
static const int stat_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
#define NSTAT (sizeof(stat_fields) / sizeof(stat_fields[0]))

static void read_stat(unsigned long *out)
{
	static char buf[2048];
	char *p, *tok, *save;
	int field = 3;

	memset(out, 0, 64 * sizeof(*out));
	if (ps_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return;
	for (tok = strtok_r(p + 2, " ", &save); tok && field < 64; tok = strtok_r(NULL, " ", &save), field++)
		out[field] = strtoul(tok, NULL, 10);
}

static void setup(void)
{
	ssize_t n;

	for (unsigned int i = 0; i < NKEYS; i++)
		val0[i] = getauxval(keys[i]);
	PS_SETUP(getauxval(AT_RANDOM) != 0 && getauxval(AT_EXECFN) != 0);
	memcpy(random0, (void *)getauxval(AT_RANDOM), 16);
	snprintf(execfn0, sizeof(execfn0), "%s", (char *)getauxval(AT_EXECFN));
	if (getauxval(AT_PLATFORM))
		snprintf(platform0, sizeof(platform0), "%s", (char *)getauxval(AT_PLATFORM));
	auxv_len = ps_read_file("/proc/self/auxv", auxv0, sizeof(auxv0));
	cmdline_len = ps_read_file("/proc/self/cmdline", cmdline0, sizeof(cmdline0));
	environ_len = ps_read_file("/proc/self/environ", environ0, sizeof(environ0));
	PS_SETUP(auxv_len > 0 && cmdline_len > 0 && environ_len > 0);
	read_stat(stat0);
	n = readlink("/proc/self/exe", exe0, sizeof(exe0) - 1);
	PS_SETUP(n > 0);
	exe0[n] = 0;
	environ0_ptr = environ;
	for (int i = 0; i < g_argc && i < 8; i++)
		argv_copy[i] = strdup(g_argv[i]);
}

static void verify(void)
{
	static char buf[8192];
	unsigned long st[64];
	long n;
	char exe[256];

	for (unsigned int i = 0; i < NKEYS; i++)
		CHECK(getauxval(keys[i]) == val0[i], "getauxval(%lu) %#lx, was %#lx", keys[i], getauxval(keys[i]),
		      val0[i]);
	CHECK(!memcmp((void *)getauxval(AT_RANDOM), random0, 16), "the AT_RANDOM bytes changed");
	CHECK(!strcmp((char *)getauxval(AT_EXECFN), execfn0), "AT_EXECFN \"%s\", was \"%s\"",
	      (char *)getauxval(AT_EXECFN), execfn0);
	if (platform0[0])
		CHECK(!strcmp((char *)getauxval(AT_PLATFORM), platform0), "AT_PLATFORM \"%s\", was \"%s\"",
		      (char *)getauxval(AT_PLATFORM), platform0);
	n = ps_read_file("/proc/self/auxv", buf, sizeof(buf));
	CHECK(n == auxv_len && !memcmp(buf, auxv0, n), "/proc/self/auxv differs (%ld bytes, were %ld)", n, auxv_len);
	n = ps_read_file("/proc/self/cmdline", buf, sizeof(buf));
	CHECK(n == cmdline_len && !memcmp(buf, cmdline0, n), "/proc/self/cmdline \"%.*s\" (%ld bytes), was \"%s\"",
	      (int)(n > 0 ? n : 0), buf, n, cmdline0);
	n = ps_read_file("/proc/self/environ", buf, sizeof(buf));
	CHECK(n == environ_len && !memcmp(buf, environ0, n), "/proc/self/environ differs (%ld bytes, were %ld): %.60s",
	      n, environ_len, buf);
	read_stat(st);
	for (unsigned int i = 0; i < NSTAT; i++)
		CHECK(st[stat_fields[i]] == stat0[stat_fields[i]], "/proc/self/stat field %d: %#lx, was %#lx",
		      stat_fields[i], st[stat_fields[i]], stat0[stat_fields[i]]);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	CHECK(!strcmp(exe, exe0), "/proc/self/exe -> \"%s\", was \"%s\"", exe, exe0);
	/* argv and environ in memory. */
	for (int i = 0; i < g_argc && i < 8; i++)
		CHECK(!strcmp(g_argv[i], argv_copy[i]), "argv[%d] \"%s\", was \"%s\"", i, g_argv[i], argv_copy[i]);
	CHECK(environ == environ0_ptr, "environ moved");
	CHECK(getenv("PS_AUXV_ENV") && !strcmp(getenv("PS_AUXV_ENV"), "a=b c"), "getenv(PS_AUXV_ENV) \"%s\"",
	      getenv("PS_AUXV_ENV") ? getenv("PS_AUXV_ENV") : "(null)");
}

static void tamper(void)
{
	/* As if the argument area were not restored (cmdline reads it). */
	g_argv[2][0] ^= 1;
}

int main(int argc, char **argv)
{
	/* First run: re-execute with our own arguments and variable. */
	if (argc == 2 && strcmp(argv[1], "install")) {
		char *args[] = { argv[0], argv[1], "arg two", "ps-auxv-\xce\xb1\xce\xb2", NULL };
		char *envs[64];
		int n = 0;

		for (char **e = environ; *e && n < 60; e++)
			envs[n++] = *e;
		envs[n++] = "PS_AUXV_ENV=a=b c";
		envs[n] = NULL;
		execve("/proc/self/exe", args, envs);
		perror("execve");
		return 1;
	}
	g_argc = argc;
	g_argv = argv;
	return ps_run(argc, argv, "auxv", NULL, setup, verify, tamper);
}
