/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The workload of the checkpoint and restore tests: every kind of mapping,
 * each with a known byte pattern, and the Accessed/Dirty history the tests
 * check (see setup()).
 */
#ifndef CXLFORK_WORKLOAD_H
#define CXLFORK_WORKLOAD_H

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/types.h>

#define PAGE 4096UL
#define ANON_PAGES 16
#define FILE_PAGES 24
#define SPARSE_SIZE (64UL << 20)

/* Where the workload put things (sent to the parent through a pipe). */
struct work {
	unsigned long anon, heap, stack, file, ro, none, sparse;
	__u64 image_id;
	int err;
};

static unsigned char pat(int region, unsigned long page)
{
	return (unsigned char)(region * 37 + page * 13 + 1);
}

static void fill(unsigned long addr, int region, unsigned long pages)
{
	for (unsigned long i = 0; i < pages; i++)
		memset((void *)(addr + i * PAGE), pat(region, i), PAGE);
}

enum { R_ANON = 1, R_HEAP, R_STACK, R_FILE, R_RO, R_NONE, R_SPARSE };

static const char *file_path = "/tmp/cxlfork-ckpt-file";

static void make_file(void)
{
	int fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char buf[PAGE];

	for (int i = 0; i < FILE_PAGES; i++) {
		memset(buf, pat(R_FILE, i), PAGE);
		if (write(fd, buf, PAGE) != PAGE)
			_exit(80);
	}
	close(fd);
}

/* Sets up every mapping kind. Must run in the process to checkpoint. */
static void setup(struct work *w, unsigned char *stack_page)
{
	volatile unsigned char sink = 0;
	int fd;

	w->anon = (unsigned long)mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(w->anon, R_ANON, ANON_PAGES);
	/* Clear the Accessed bits, then read pages 0-7 only. */
	fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1)
		_exit(81);
	close(fd);
	/* clear_refs does not flush the TLB (neither would hardware re-set A
	 * on a TLB hit): a protection round trip flushes this range. */
	mprotect((void *)w->anon, ANON_PAGES * PAGE, PROT_READ);
	mprotect((void *)w->anon, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE);
	for (int i = 0; i < ANON_PAGES / 2; i++)
		sink += *(volatile unsigned char *)(w->anon + i * PAGE);

	w->heap = (unsigned long)sbrk(4 * PAGE);
	w->heap = (w->heap + PAGE - 1) & ~(PAGE - 1);
	sbrk(PAGE);
	fill(w->heap, R_HEAP, 3);

	w->stack = (unsigned long)stack_page;
	memset(stack_page, pat(R_STACK, 0), PAGE);

	fd = open(file_path, O_RDONLY);
	w->file = (unsigned long)mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	for (int i = 0; i < 4; i++)		/* read 0-3 */
		sink += *(volatile unsigned char *)(w->file + i * PAGE);
	for (int i = 4; i < 6; i++)		/* write 4-5 (private copies) */
		memset((void *)(w->file + i * PAGE), pat(R_FILE, 100 + i), PAGE);
						/* 6.. untouched (6-15 may be
						 * mapped by fault-around) */

	w->ro = (unsigned long)mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(w->ro, R_RO, 2);
	mprotect((void *)w->ro, 2 * PAGE, PROT_READ);

	w->none = (unsigned long)mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(w->none, R_NONE, 2);
	mprotect((void *)w->none, 2 * PAGE, PROT_NONE);

	w->sparse = (unsigned long)mmap(NULL, SPARSE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	madvise((void *)w->sparse, SPARSE_SIZE, MADV_NOHUGEPAGE);
	fill(w->sparse, R_SPARSE, 1);
	fill(w->sparse + (16UL << 20) + 5 * PAGE, R_SPARSE, 1);
	fill(w->sparse + SPARSE_SIZE - PAGE, R_SPARSE, 1);
	(void)sink;
}


/* Checks the pattern of page `page` of `region` at addr; 0 if it holds. */
static inline int page_has(unsigned long addr, unsigned char v)
{
	const unsigned char *p = (const unsigned char *)addr;

	for (unsigned long i = 0; i < PAGE; i++)
		if (p[i] != v)
			return -1;
	return 0;
}

#endif
