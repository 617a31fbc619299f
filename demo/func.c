// SPDX-License-Identifier: GPL-2.0
/*
 * A toy serverless function for the demo: a slow initialisation builds its
 * state (a lookup table), then it waits for requests. Each SIGUSR1 is a
 * request: it answers with a checksum of its state.
 */
#include <signal.h>
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

static unsigned long checksum(void)
{
	unsigned long s = 0;

	for (size_t i = 0; i < STATE_MB * (1 << 20) / sizeof(*table); i++)
		s = s * 31 + table[i];
	return s;
}

int main(void)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	table = malloc(STATE_MB << 20);
	for (size_t i = 0; i < STATE_MB * (1 << 20) / sizeof(*table); i++)
		table[i] = (unsigned int)(i * 2654435761u) ^ (unsigned int)(i >> 7);
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
