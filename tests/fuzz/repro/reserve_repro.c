// SPDX-License-Identifier: GPL-2.0
/*
 * A pristine image whose restore trips a kernel WARNING: a process holding
 * a PROT_NONE, MAP_NORESERVE reservation (GiB, argument; default 2048) of
 * address space, as sanitizers and runtimes make. The restore allocates a
 * bitmap of one bit per page of each clone VMA (cvma_alloc, kvzalloc);
 * past 64 TiB that is more than INT_MAX bytes and kvmalloc warns
 * (mm/slub.c) before the restore fails with ENOMEM. Prints the image id.
 *
 *   ID=$(reserve_repro 71680); cxlfork-ctl restore $ID --wait
 */
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/cxlfork.h>

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoull(argv[1], NULL, 0) : 2048ULL) << 30;	/* GiB */
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	int fd = open("/dev/cxlfork", O_RDWR);
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long r;

	if (fd < 0 || p == MAP_FAILED) {
		perror("setup");
		return 1;
	}
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (r > 0) {
		printf("clone %ld runs\n", r);
		return 0;
	}
	if (r < 0) {
		perror("checkpoint");
		return 1;
	}
	printf("%llu:%llu\n", (unsigned long long)(c.image_id >> 48), (unsigned long long)(c.image_id & 0xffffffffffffULL));
	return 0;
}
