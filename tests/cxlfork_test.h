/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the cxlfork kselftests. */
#ifndef CXLFORK_TEST_H
#define CXLFORK_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/cxlfork.h>

/*
 * The harness's 30 s per test is too short for the debug kernel (KASAN,
 * lockdep and kmemleak under TCG: formatting a 2 GiB pool alone takes 4 s
 * there). A hang still ends: after this, or at qemu/run's guest timeout.
 */
#ifdef TEST_TIMEOUT_DEFAULT
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300
#endif

#define CXLFORK_DEV "/dev/cxlfork"
#define MIB (1ULL << 20)

/* Physical range of the device-dax node, from sysfs; 0 on success. */
static inline int dax_range(const char *dev, unsigned long long *base, unsigned long long *size)
{
	const char *name = strrchr(dev, '/');
	char path[256];
	FILE *f;
	int ok;

	name = name ? name + 1 : dev;
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/resource", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%llx", base) == 1;
	fclose(f);
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/size", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = ok && fscanf(f, "%llu", size) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static inline const char *dax_dev(void)
{
	const char *d = getenv("CXLFORK_DAX");

	return d ? d : "/dev/dax0.0";
}

/* In a forked child: become nobody, then open the device (exit 90 if not). */
/* The pool's host slot N (the superblock is page 0). */
#define SLOT_OFF(id) (4096ULL * (1 + (id)))

/* Map the pool's first pages through device-dax (FS_DAX), as another host might. */
static inline unsigned char *map_pool_head(struct __test_metadata *_metadata)
{
	int dfd = open(dax_dev(), O_RDWR);
	void *p;

	ASSERT_LE(0, dfd) TH_LOG("open %s: %s", dax_dev(), strerror(errno));
	p = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap %s: %s", dax_dev(), strerror(errno));
	close(dfd);
	return p;
}

static inline int open_as_nobody(void)
{
	int fd;

	if (setgid(65534) || setuid(65534))
		_exit(90);
	fd = open(CXLFORK_DEV, O_RDWR);
	if (fd < 0)
		_exit(90);
	return fd;
}

/* The proof a caller may checkpoint process pid: its /proc/PID/mem,
 * opened (the kernel's ptrace access check) by the caller. -1 if not. */
static inline int proc_mem_fd(int pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	return open(path, O_RDONLY);
}

/* ioctl returning 0 or -errno. */
static inline int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int attach(int fd, unsigned long long base, unsigned long long size,
			 unsigned int host, unsigned int flags)
{
	struct cxlfork_pool_attach a = {
		.size = sizeof(a), .flags = flags, .phys_base = base,
		.phys_size = size, .host_id = host,
	};

	return xioctl(fd, CXLFORK_IOC_POOL_ATTACH, &a);
}

static inline int pool_info(int fd, struct cxlfork_pool_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return xioctl(fd, CXLFORK_IOC_POOL_INFO, info);
}

static inline int detach(int fd)
{
	return ioctl(fd, CXLFORK_IOC_POOL_DETACH) ? -errno : 0;
}

/*
 * A wait status that must be a normal exit with `code` (WEXITSTATUS alone
 * reads 0 for a child killed by SIGKILL, whose status is 9).
 */
#define ASSERT_EXITED(code, status) do {					\
	ASSERT_TRUE(WIFEXITED(status))						\
		TH_LOG("child did not exit: status %#x (signal %d)", (status),	\
		       WIFSIGNALED(status) ? WTERMSIG(status) : 0);		\
	ASSERT_EQ((code), WEXITSTATUS(status));					\
} while (0)

/* Unloads module name (delete_module(2), as rmmod does): 0 or -errno. */
static inline int unload_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

/* Whether module name is loaded (in any state). */
static inline int module_loaded(const char *name)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

/* The kernel log from now on: a /dev/kmsg reader at the log's end. */
static inline int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* The messages logged since kmsg_open (or the last call), one per line,
 * into buf; returns buf ("" if none). */
static inline char *kmsg_read(int fd, char *buf, size_t len)
{
	char rec[2048];
	size_t at = 0;

	buf[0] = 0;
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg, *end;

		if (n < 0 && errno == EPIPE)	/* records overwritten: go on */
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		end = strchr(msg, '\n');
		if (end)
			*end = 0;
		at += snprintf(buf + at, at < len ? len - at : 0, "%s\n", msg);
		if (at >= len)
			break;
	}
	return buf;
}

#endif
