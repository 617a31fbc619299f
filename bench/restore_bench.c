// SPDX-License-Identifier: GPL-2.0
/*
 * Restore latency per tiering policy vs fork() of the same process, and the
 * local memory of a clone vs its parent's footprint, in one guest run.
 *
 *   restore_bench MB...       (driver: one line per footprint and policy)
 *   restore_bench work MB     (the function: run by the driver)
 *
 * The function is read-mostly, as a warm FaaS instance is: its state (MB of
 * "model") is a private mapping of a data file it reads at initialisation,
 * plus 1 MiB of heap it writes. It measures fork() of itself, then
 * checkpoints itself; each clone (restored by cxlfork-ctl restore) serves one
 * request (reads all its state, writes its heap) and reports its restore
 * time (inside CXLFORK_IOC_RESTORE) and its Rss from /proc/self/smaps_rollup.
 * Pool memory is MMIO-emulated under TCG: absolute times are emulation-bound.
 */
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
#define HEAP (1UL << 20)

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static long rss_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static unsigned long serve(const unsigned char *state, size_t len, unsigned char *heap)
{
	unsigned long s = 0;

	for (size_t i = 0; i < len; i += 4096)
		s += state[i];
	memset(heap, (int)s, HEAP);
	return s;
}

static int work(size_t mb)
{
	size_t len = mb * MIB;
	char path[64];
	unsigned char *state, *heap = malloc(HEAP);
	struct cxlfork_checkpoint c = { .size = sizeof(c) };
	double t0, fork_us = 1e30;
	int fd, r;

	snprintf(path, sizeof(path), "/tmp/bench-model-%zu", mb);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (size_t i = 0; i < len; i += MIB) {
		static unsigned char buf[MIB];

		memset(buf, (int)(i / MIB), MIB);
		if (write(fd, buf, MIB) != (ssize_t)MIB)
			return 1;
	}
	state = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	serve(state, len, heap);
	/* fork() of this very process, best of 3. */
	for (int i = 0; i < 3; i++) {
		pid_t p;

		t0 = now_us();
		p = fork();
		if (p == 0)
			_exit(0);
		if (now_us() - t0 < fork_us)
			fork_us = now_us() - t0;
		waitpid(p, NULL, 0);
	}
	fd = open("/dev/cxlfork", O_RDWR);
	strcpy(c.name, "restore-bench");
	fflush(stdout);
	r = ioctl(fd, CXLFORK_IOC_CHECKPOINT, &c);
	if (r < 0) {
		perror("checkpoint");
		return 1;
	}
	if (r == 0) {
		printf("%llu %.1f %ld\n", (unsigned long long)c.image_id, fork_us, rss_kb());
		return 0;
	}
	/* A clone: one request, then report. */
	{
		struct cxlfork_clone_stat st = { .size = sizeof(st) };
		int cfd = open("/dev/cxlfork", O_RDWR);

		serve(state, len, heap);
		if (cfd < 0 || ioctl(cfd, CXLFORK_IOC_CLONE_STAT, &st))
			return 1;
		printf("%.2f %ld %llu %llu\n", st.restore_ns / 1e3, rss_kb(), (unsigned long long)st.local_pages,
		       (unsigned long long)st.pool_pages);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const char *policies[] = { "mow", "moa", "ht" };
	char cmd[512], line[256];

	if (argc == 3 && !strcmp(argv[1], "work"))
		return work(strtoul(argv[2], NULL, 0));
	printf("# restore latency per policy vs fork() of the same process; clone local memory vs the parent's\n");
	printf("# (TCG guest; pool reads are MMIO-emulated: times are emulation-bound, compare within a run)\n");
	printf("%-9s %-6s %12s %12s %10s %14s %14s %10s\n", "footprint", "policy", "restore_us", "fork_us",
	       "restore/fork", "clone_rss_kB", "parent_rss_kB", "clone/parent");
	for (int a = 1; a < argc; a++) {
		unsigned long long id;
		double fork_us;
		long parent_kb;
		FILE *f;

		snprintf(cmd, sizeof(cmd), "%s work %s", argv[0], argv[a]);
		f = popen(cmd, "r");
		if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "%llu %lf %ld", &id, &fork_us, &parent_kb) != 3) {
			fprintf(stderr, "restore_bench: the function failed at %s MiB\n", argv[a]);
			return 1;
		}
		pclose(f);
		for (int p = 0; p < 3; p++) {
			double rus = 0;
			long ckb = 0;
			unsigned long long local = 0, pool = 0;

			snprintf(cmd, sizeof(cmd),
				 "cxlfork-ctl restore %llu:%llu --policy %s --skip-files --wait --output /tmp/rb >/dev/null 2>&1 && cat /tmp/rb/clone-1.out",
				 id >> 48, id & 0xffffffffffffULL, policies[p]);
			f = popen(cmd, "r");
			if (!f || !fgets(line, sizeof(line), f) ||
			    sscanf(line, "%lf %ld %llu %llu", &rus, &ckb, &local, &pool) != 4) {
				fprintf(stderr, "restore_bench: restore failed (%s MiB, %s)\n", argv[a], policies[p]);
				return 1;
			}
			pclose(f);
			printf("%-9s %-6s %12.0f %12.0f %10.2f %14ld %14ld %10.3f\n", argv[a], policies[p], rus, fork_us,
			       rus / fork_us, ckb, parent_kb, (double)ckb / parent_kb);
			fflush(stdout);
		}
		snprintf(cmd, sizeof(cmd), "cxlfork-ctl rm %llu:%llu >/dev/null", id >> 48, id & 0xffffffffffffULL);
		if (system(cmd))
			return 1;
	}
	return 0;
}
