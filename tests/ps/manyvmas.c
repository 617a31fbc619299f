// SPDX-License-Identifier: GPL-2.0
/*
 * manyvmas: a process with hundreds of small mappings, as real runtimes
 * have (shared libraries, arenas, guard pages, JIT regions):
 *
 *  - N_ANON one-page anonymous VMAs side by side, protections cycling
 *    r-- / rw- / r-x / --- (so that none merge), each with its own bytes;
 *  - N_PRIV one-page private mappings of one file at every offset in turn,
 *    protections cycling r-- / rw- / r-x, the rw- ones written (private
 *    copies), the others only read or never touched;
 *  - N_SHARED one-page shared mappings of another file, r-- / rw-.
 *
 * Afterwards: every page holds its bytes (the private copies, the file's
 * bytes elsewhere), every mapping is where it was with its protections,
 * offset and path in /proc/self/maps (one VMA each: nothing merged or
 * split), --- pages fault, r-- pages refuse writes, rw- pages take them.
 */
#include "ps.h"

#define N_ANON 256
#define N_PRIV 96
#define N_SHARED 32
#define PRIV_PAGES 16
#define SHARED_PAGES 8
#define SEED_ANON 0x3a1100000ULL
#define SEED_PRIV 0x3a1200000ULL
#define SEED_SHARED 0x3a1300000ULL
#define SEED_COPY 0x3a1400000ULL

static const char *priv_path = PS_FILES "/manyvmas-priv.dat";
static const char *shared_path = PS_FILES "/manyvmas-shared.dat";

static const int anon_prot[4] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE };
static const char *const anon_perms[4] = { "r--p", "rw-p", "r-xp", "---p" };
static const int priv_prot[3] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC };
static const char *const priv_perms[3] = { "r--p", "rw-p", "r-xp" };

static char *anon;
static char *priv[N_PRIV], *shared[N_SHARED];

/* /proc/self/maps, read once. */
static struct ps_map maps[1024];
static int n_maps;

static void read_maps(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	n_maps = 0;
	if (!CHECK(f != NULL, "open /proc/self/maps: %s", strerror(errno)))
		return;
	while (n_maps < 1024 && fgets(line, sizeof(line), f)) {
		struct ps_map *m = &maps[n_maps];
		int n = 0;

		memset(m, 0, sizeof(*m));
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &m->start, &m->end, m->perms, &m->off, &n) < 4)
			continue;
		if (n > 0)
			snprintf(m->path, sizeof(m->path), "%s", line + n);
		m->path[strcspn(m->path, "\n")] = 0;
		n_maps++;
	}
	fclose(f);
}

/* The one-page VMA at p: perms, file offset and path as expected. */
static void check_vma(const char *what, int i, const char *p, const char *perms, unsigned long off, const char *path)
{
	for (int k = 0; k < n_maps; k++) {
		struct ps_map *m = &maps[k];

		if ((unsigned long)p < m->start || (unsigned long)p >= m->end)
			continue;
		CHECK(m->start == (unsigned long)p && m->end == (unsigned long)p + PAGE,
		      "%s %d: VMA %lx-%lx, not the page %p alone", what, i, m->start, m->end, p);
		CHECK(!strcmp(m->perms, perms), "%s %d: perms %s, not %s", what, i, m->perms, perms);
		if (path) {
			CHECK(m->off == off, "%s %d: offset %#lx, not %#lx", what, i, m->off, off);
			CHECK(!strcmp(m->path, path), "%s %d: path \"%s\", not %s", what, i, m->path, path);
		}
		return;
	}
	CHECK(0, "%s %d: %p not mapped", what, i, p);
}

static void install(void)
{
	ps_make_file(priv_path, PRIV_PAGES, SEED_PRIV);
	ps_make_file(shared_path, SHARED_PAGES, SEED_SHARED);
}

static void setup(void)
{
	volatile char sink = 0;
	int fd;

	install();
	anon = mmap(NULL, N_ANON * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PS_SETUP(anon != MAP_FAILED);
	for (int i = 0; i < N_ANON; i++) {
		ps_fill(anon + i * PAGE, PAGE, SEED_ANON + i);
		PS_SETUP(mprotect(anon + i * PAGE, PAGE, anon_prot[i % 4]) == 0);
	}
	fd = open(priv_path, O_RDONLY);
	PS_SETUP(fd >= 0);
	for (int i = 0; i < N_PRIV; i++) {
		priv[i] = mmap(NULL, PAGE, priv_prot[i % 3], MAP_PRIVATE, fd, (i % PRIV_PAGES) * PAGE);
		PS_SETUP(priv[i] != MAP_FAILED);
		if (i % 3 == 1)
			ps_fill(priv[i], PAGE / 2, SEED_COPY + i);	/* a private copy */
		else if (i % 2)
			sink += priv[i][0];			/* read; else untouched */
	}
	close(fd);
	fd = open(shared_path, O_RDWR);
	PS_SETUP(fd >= 0);
	for (int i = 0; i < N_SHARED; i++) {
		shared[i] = mmap(NULL, PAGE, i % 2 ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
				 (i % SHARED_PAGES) * PAGE);
		PS_SETUP(shared[i] != MAP_FAILED);
		sink += shared[i][0];
	}
	close(fd);
	(void)sink;
}

static void verify(void)
{
	read_maps();
	for (int i = 0; i < N_ANON; i++) {
		char *p = anon + i * PAGE;

		check_vma("anon", i, p, anon_perms[i % 4], 0, NULL);
		if (i % 4 == 3) {
			CHECK(ps_probe(p, 0) == SIGSEGV, "anon %d: reading the PROT_NONE page did not fault", i);
			CHECK_OK(mprotect(p, PAGE, PROT_READ));
		}
		CHECK_PAT(p, PAGE, SEED_ANON + i);
		if (i % 4 == 0)
			CHECK(ps_probe(p, 1) == SIGSEGV, "anon %d: writing the read-only page did not fault", i);
		if (i % 4 == 3)
			CHECK_OK(mprotect(p, PAGE, PROT_NONE));
	}
	for (int i = 0; i < N_PRIV; i++) {
		unsigned long off = (i % PRIV_PAGES) * PAGE;

		check_vma("private file mapping", i, priv[i], priv_perms[i % 3], off, priv_path);
		if (i % 3 == 1) {
			CHECK_PAT(priv[i], PAGE / 2, SEED_COPY + i);
			CHECK_PAT_AT(priv[i] + PAGE / 2, PAGE / 2, SEED_PRIV, off + PAGE / 2);
		} else {
			CHECK_PAT_AT(priv[i], PAGE, SEED_PRIV, off);
		}
	}
	for (int i = 0; i < N_SHARED; i++) {
		unsigned long off = (i % SHARED_PAGES) * PAGE;

		check_vma("shared file mapping", i, shared[i], i % 2 ? "rw-s" : "r--s", off, shared_path);
		CHECK_PAT_AT(shared[i], PAGE, SEED_SHARED, off);
	}
	/* Writable pages take writes (read back: the same bytes). */
	for (int i = 1; i < N_ANON; i += 4)
		CHECK(ps_probe(anon + i * PAGE + 8, 1) == 0, "anon %d: the rw- page refused a write", i);
	for (int i = 1; i < N_PRIV; i += 3)
		CHECK(ps_probe(priv[i] + 8, 1) == 0, "private file mapping %d: refused a write", i);
}

static void tamper(void)
{
	anon[5 * PAGE + 100] ^= 1;
}

int main(int argc, char **argv)
{
	return ps_run(argc, argv, "manyvmas", install, setup, verify, tamper);
}
