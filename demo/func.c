// SPDX-License-Identifier: GPL-2.0
/*
 * A toy serverless function for the demo: its initialisation loads its
 * "model" (a data file, as ML functions load their weights), decodes it
 * into memory and freezes it read-only, then it waits for requests. Each
 * SIGUSR1 is a request: it answers with a checksum of its state.
 *
 * The decoded model is the warm state a checkpoint carries: written once,
 * then only read, so MoW clones map it from the pool (zero copy) instead
 * of each holding a copy.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_MB 8

static unsigned int *table;
static volatile sig_atomic_t requests;

static void on_request(int sig)
{
	(void)sig;
	requests++;
}

/* A request reads its whole state: a few words of every page (the pool is
 * MMIO-emulated under TCG, so every word would make the demo slow). */
static unsigned long checksum(void)
{
	unsigned long s = 0;

	for (size_t i = 0; i < STATE_MB * (1 << 20) / sizeof(*table); i += 256)
		s = s * 31 + table[i];
	return s;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;

	const char *model = "/tmp/func-model.bin";
	size_t n = STATE_MB * (1 << 20) / sizeof(*table);
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = open(model, O_RDONLY);
	if (fd < 0) {	/* first run on this host: write the model file */
		/* With the mtime it was built with, as a container image's layer
		 * delivers it to every host: a restore checks that a privately
		 * mapped file is the one checkpointed (size and mtime). */
		const struct timespec built[2] = { { 0, UTIME_OMIT }, { 1735689600, 0 } };
		unsigned int *buf = malloc(STATE_MB << 20);

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned int)(i * 2654435761u) ^ (unsigned int)(i >> 7);
		fd = open(model, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, STATE_MB << 20) != STATE_MB << 20 || futimens(fd, built))
			return 1;
		free(buf);
	}
	if (argc > 1 && !strcmp(argv[1], "--install"))	/* only put the model file in place */
		return 0;
	/* Load and decode ("dequantise") the model, then freeze it. */
	table = mmap(NULL, STATE_MB << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (table == MAP_FAILED || pread(fd, table, STATE_MB << 20, 0) != STATE_MB << 20)
		return 1;
	close(fd);
	for (size_t i = 0; i < n; i++)
		table[i] = table[i] * 3 + 1;
	if (mprotect(table, STATE_MB << 20, PROT_READ))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("func[%d]: initialised %d MiB of state in %.1f ms, checksum %lx\n", getpid(), STATE_MB,
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, checksum());
	fflush(stdout);
	signal(SIGUSR1, on_request);
	for (;;) {
		pause();
		while (requests) {
			requests--;
			printf("func[%d]: request served, checksum %lx\n", getpid(), checksum());
			fflush(stdout);
		}
	}
}
