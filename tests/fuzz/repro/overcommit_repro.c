// SPDX-License-Identifier: GPL-2.0
/*
 * A pristine image whose restore fails after the point of no return: a
 * private writable anonymous mapping (GiB, argument; default 3) larger than
 * the restoring host will commit (the original made it under
 * vm.overcommit_memory=1, or on a host with more memory). The restore
 * checks RLIMIT_AS/RLIMIT_DATA but not the commit charge; vm_mmap then
 * fails in __vm_enough_memory after the point of no return and the
 * restorer is killed. Prints the image id.
 *
 *   echo 1 > /proc/sys/vm/overcommit_memory; ID=$(overcommit_repro 3)
 *   echo 0 > /proc/sys/vm/overcommit_memory; cxlfork-ctl restore $ID --wait
 *   dmesg | grep -E 'point of no return|vm_enough'
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
	size_t len = (argc > 1 ? strtoull(argv[1], NULL, 0) : 3ULL) << 30;
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	int fd = open("/dev/cxlfork", O_RDWR);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long r;

	if (fd < 0 || p == MAP_FAILED) {
		perror("setup");
		return 1;
	}
	p[0] = 1;
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (r > 0) {
		printf("clone %ld runs: p[0] = %d\n", r, p[0]);
		return 0;
	}
	if (r < 0) {
		perror("checkpoint");
		return 1;
	}
	printf("%llu:%llu\n", (unsigned long long)(c.image_id >> 48), (unsigned long long)(c.image_id & 0xffffffffffffULL));
	return 0;
}
