// SPDX-License-Identifier: GPL-2.0
/*
 * Why a checkpoint of THP-backed memory runs slower than a plain copy under
 * TCG: the same page-by-page memcpy() into the pool, from a 2 MiB-aligned
 * source, with the destination at the same offset within 2 MiB (as the
 * checkpoint's copy of a huge page lands: source and destination pages
 * advance in lockstep) and one page further. Also the copy primitives'
 * rates (glibc memcpy of it all, rep movsb, rep movsq, 8-byte movnti).
 *
 *   copy_probe [MiB]      (default 64; CXLFORK_DAX names the pool's dax node)
 *
 * Writes into the pool's second host partition (make bench attaches two
 * slots and host 1 is unused).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/cxlfork.h>

#define MIB (1UL << 20)
#define PMD (2UL << 20)

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void by_page(char *dst, const char *src, size_t len)
{
	for (size_t o = 0; o < len; o += 4096)
		memcpy(dst + o, src + o, 4096);
}

static void rep_movsb(char *dst, const char *src, size_t len)
{
	asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
}

static void rep_movsq(char *dst, const char *src, size_t len)
{
	size_t n = len / 8;

	asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void movnti(char *dst, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i += 8)
		__builtin_ia32_movnti64((long long *)(dst + i), *(const long long *)(src + i));
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 64) * MIB;
	const char *dax = getenv("CXLFORK_DAX") ? getenv("CXLFORK_DAX") : "/dev/dax0.0";
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	int fd = open("/dev/cxlfork", O_RDWR), dfd = open(dax, O_RDWR);
	char *raw, *src, *dst;

	if (fd < 0 || dfd < 0 || ioctl(fd, CXLFORK_IOC_POOL_INFO, &info) || info.max_hosts < 2 ||
	    len + PMD > info.part_size) {
		fprintf(stderr, "copy_probe: needs an attached pool with a free second partition of %zu MiB\n",
			(len + PMD) / MIB);
		return 1;
	}
	dst = mmap(NULL, len + PMD, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, (off_t)(2 * MIB + info.part_size));
	raw = mmap(NULL, len + 2 * PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED || raw == MAP_FAILED) {
		perror("copy_probe: mmap");
		return 1;
	}
	src = (char *)(((unsigned long)raw + PMD - 1) & ~(PMD - 1));
	madvise(src, len, MADV_HUGEPAGE);
	memset(src, 0x5a, len);
	printf("# copy_probe: %zu MiB into the pool (%s backend), best of 2 each\n", len / MIB,
	       getenv("CXLFORK_POOL_BACKEND") ? getenv("CXLFORK_POOL_BACKEND") : "cxl");
	for (int k = 0; k < 6; k++) {
		static const char *what[] = {
			"memcpy per page, destination in lockstep with the source (same offset in 2 MiB)",
			"memcpy per page, destination one page further",
			"memcpy of it all (glibc's large-copy path)",
			"rep movsb",
			"rep movsq",
			"movnti, 8 bytes at a time (the kernel's memcpy_flushcache)",
		};
		double best = 1e30;

		for (int r = 0; r < 2; r++) {
			double t = now_ms();

			switch (k) {
			case 0: by_page(dst, src, len); break;
			case 1: by_page(dst + 4096, src, len); break;
			case 2: memcpy(dst + 4096, src, len); break;
			case 3: rep_movsb(dst + 4096, src, len); break;
			case 4: rep_movsq(dst + 4096, src, len); break;
			default: movnti(dst + 4096, src, len); break;
			}
			t = now_ms() - t;
			if (t < best)
				best = t;
		}
		printf("%8.1f ms %7.0f MB/s  %s\n", best, len / 1e6 / (best / 1e3), what[k]);
	}
	return 0;
}
