// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork's fork-like API from C: initialise, checkpoint yourself, and tell
 * the original from its clones by the return value, as with fork().
 *
 *   fork_like [HOLD_S]   # prints "original", publishes the image, exits
 *   cxlfork-ctl restore ID --count 3 --wait   # each clone prints "clone N"
 *
 * With HOLD_S, each clone stays alive that many seconds before exiting.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/cxlfork.h>

int main(int argc, char **argv)
{
	int hold = argc > 1 ? atoi(argv[1]) : 0;
	struct cxlfork_checkpoint c = { .size = sizeof(c), .pid = 0 };
	static long table[1 << 16];	/* the "warm" state */
	long sum = 0;
	int fd, r;

	for (long i = 0; i < 1 << 16; i++)
		table[i] = i * i;
	fd = open("/dev/cxlfork", O_RDWR);
	if (fd < 0) {
		perror("/dev/cxlfork");
		return 1;
	}
	strcpy(c.name, "fork-like");
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (r < 0) {
		perror("checkpoint");
		return 1;
	}
	for (long i = 0; i < 1 << 16; i++)
		sum += table[i];
	if (r == 0) {
		printf("original: image %llu:%llu published, state sum %ld\n",
		       (unsigned long long)(c.image_id >> 48),
		       (unsigned long long)(c.image_id & 0xffffffffffffULL), sum);
		return 0;
	}
	/* A clone: the fd to /dev/cxlfork is not restored, open it again if needed. */
	printf("clone %d: pid %d, state sum %ld\n", r, getpid(), sum);
	fflush(stdout);
	sleep(hold);
	return 0;
}
