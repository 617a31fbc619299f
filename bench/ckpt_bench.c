// SPDX-License-Identifier: GPL-2.0
/*
 * Checkpoint throughput vs a plain copy of the same bytes into the same pool,
 * in one guest run. For each footprint: a process with that much touched
 * anonymous memory is checkpointed by pid (time in the ioctl, as the module
 * reports it and as seen from user space); the baseline memcpy()s the same
 * number of bytes from RAM into an unused host partition of the pool through
 * the device-dax mapping. Prints one line per footprint and the ratio.
 * Pool memory is MMIO-emulated under TCG: absolute figures are emulation-bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/cxlfork.h>

#define MIB (1UL << 20)

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static pid_t spawn(size_t len)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (pid == 0) {
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		for (size_t i = 0; i < len; i += 4096)
			memset(m + i, (int)(i >> 12), 4096);
		if (write(p[1], "", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], &c, 1) != 1)
		exit(1);
	close(p[0]);
	close(p[1]);
	return pid;
}

int main(int argc, char **argv)
{
	const char *dax = getenv("CXLFORK_DAX") ? getenv("CXLFORK_DAX") : "/dev/dax0.0";
	int fd = open("/dev/cxlfork", O_RDWR), dfd = open(dax, O_RDWR);
	struct cxlfork_pool_info info = { .size = sizeof(info) };
	int reps = 3;

	if (fd < 0 || dfd < 0 || ioctl(fd, CXLFORK_IOC_POOL_INFO, &info)) {
		perror("cxlfork/dax");
		return 1;
	}
	/* The last host slot's partition is unused in this single-guest run. */
	off_t scratch = 2 * MIB + (off_t)(info.max_hosts - 1) * info.part_size;

	printf("# checkpoint vs plain copy into the same pool (TCG guest; pool is MMIO-emulated)\n");
	printf("%-10s %14s %14s %14s %12s %12s\n", "footprint", "ckpt_ms", "ckpt_MB/s", "copy_ms", "copy_MB/s", "ckpt/copy");
	for (int a = 1; a < argc; a++) {
		size_t len = strtoul(argv[a], NULL, 0) * MIB;
		double best_ck = 1e30, best_cp = 1e30;
		char *src, *dst;

		if (len > info.part_size / 2) {
			printf("%-10s skipped: larger than half a partition\n", argv[a]);
			continue;
		}
		for (int r = 0; r < reps; r++) {
			pid_t pid = spawn(len);
			struct cxlfork_checkpoint c = { .size = sizeof(c), .pid = pid };
			struct cxlfork_delete d = { .size = sizeof(d) };
			double t0 = now_ms(), t;
			char mem[64];

			snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
			c.mem_fd = open(mem, O_RDONLY);

			if (ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c)) {
				perror("checkpoint");
				return 1;
			}
			t = now_ms() - t0;
			if (t < best_ck)
				best_ck = t;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			d.id = c.image_id;
			ioctl(fd, CXLFORK_IOC_DELETE, &d);
		}
		src = malloc(len);
		for (size_t i = 0; i < len; i += 4096)
			memset(src + i, (int)(i >> 12), 4096);
		dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, scratch);
		if (dst == MAP_FAILED) {
			perror("mmap dax");
			return 1;
		}
		for (int r = 0; r < reps; r++) {
			double t0 = now_ms(), t;

			memcpy(dst, src, len);
			t = now_ms() - t0;
			if (t < best_cp)
				best_cp = t;
		}
		munmap(dst, len);
		free(src);
		printf("%-10s %14.1f %14.1f %14.1f %12.1f %12.2f\n", argv[a], best_ck, len / MIB / (best_ck / 1e3),
		       best_cp, len / MIB / (best_cp / 1e3), best_ck / best_cp);
		fflush(stdout);
	}
	return 0;
}
