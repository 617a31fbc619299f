// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim: the few static inlines and headers-only facilities the Rust
 * bindings lack, each behind a plain function. Declared for Rust in ffi.rs.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/shmem_fs.h>
#include <linux/mm.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/utsname.h>
#include <linux/uuid.h>
#include <linux/random.h>
#include <asm/cacheflush.h>

#include "shim.h"

struct range_cover {
	u64 start, end;
	bool covered;
};

static int cover_cb(struct resource *res, void *arg)
{
	struct range_cover *c = arg;

	/* The walk hands out copies clipped to [start, end]. */
	if (res->start == c->start && res->end == c->end) {
		c->covered = true;
		return 1;
	}
	return 0;
}

/*
 * Classify [phys, phys + size):
 *  -EINVAL if it touches System RAM, or lies in a CXL window without being
 *          wholly inside one claimed (busy) resource there, i.e. a committed
 *          region bound to a driver such as device-dax, or is outside any
 *          iomem resource;
 *  1 if it is such a claimed range inside a CXL window;
 *  0 if it lies wholly inside other (non-RAM) device memory, e.g. a PCI BAR
 *    used as a RAM-speed stand-in for benchmarks.
 */
int cxlfork_check_range(u64 phys, u64 size)
{
	struct range_cover c = { .start = phys, .end = phys + size - 1 };

	if (region_intersects(phys, size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) != REGION_DISJOINT)
		return -EINVAL;
	if (region_intersects(phys, size, IORESOURCE_MEM, IORES_DESC_CXL) != REGION_DISJOINT) {
		if (region_intersects(phys, size, IORESOURCE_MEM, IORES_DESC_CXL) != REGION_INTERSECTS)
			return -EINVAL;
		walk_iomem_res_desc(IORES_DESC_NONE, IORESOURCE_MEM | IORESOURCE_BUSY,
				    c.start, c.end, &c, cover_cb);
		return c.covered ? 1 : -EINVAL;
	}
	if (region_intersects(phys, size, IORESOURCE_MEM, IORES_DESC_NONE) == REGION_INTERSECTS)
		return 0;
	return -EINVAL;
}

/*
 * If [phys, phys + size) is memory of one ZONE_DEVICE page map whose pages
 * the kernel refcounts like any page (device-dax: MEMORY_DEVICE_GENERIC),
 * pin that map, so its device cannot go away while the pool is attached,
 * and return it; NULL otherwise.
 */
void *cxlfork_pool_pin_pages(u64 phys, u64 size)
{
	unsigned long first = PHYS_PFN(phys), last = PHYS_PFN(phys + size - 1);
	struct dev_pagemap *pgmap, *end;

	if (!pfn_valid(first) || !pfn_valid(last))
		return NULL;
	pgmap = get_dev_pagemap(first);
	if (!pgmap)
		return NULL;
	end = get_dev_pagemap(last);
	if (end != pgmap || pgmap->type != MEMORY_DEVICE_GENERIC ||
	    !is_zone_device_page(pfn_to_page(first))) {
		put_dev_pagemap(end);
		put_dev_pagemap(pgmap);
		return NULL;
	}
	put_dev_pagemap(end);
	return pgmap;
}

void cxlfork_pool_unpin_pages(void *pgmap)
{
	put_dev_pagemap(pgmap);
}

void *cxlfork_memremap_wb(u64 phys, u64 size)
{
	return memremap(phys, size, MEMREMAP_WB);
}

void cxlfork_memunmap(void *addr)
{
	memunmap(addr);
}

/*
 * Read pool memory another host may have written: drop stale lines first.
 * Eight bytes a load where both ends and the length allow it: memcpy() is
 * rep movsb on CPUs with FSRM, fast on hardware, but a CPU model that runs
 * device memory as MMIO (QEMU's CXL window) then takes one device access
 * per byte (a restore read its 36 KiB of metadata in 8.8 ms there).
 */
void cxlfork_pool_read(void *dst, const void *src, size_t len)
{
	clflush_cache_range((void *)src, len);
	if (IS_ALIGNED((unsigned long)dst | (unsigned long)src | len, sizeof(u64))) {
		const u64 *s = src;
		u64 *d = dst;
		size_t i;

		for (i = 0; i < len / sizeof(u64); i++)
			d[i] = READ_ONCE(s[i]);
		return;
	}
	memcpy(dst, src, len);
}

/* Write pool memory so that it reaches the device, then order it. */
void cxlfork_pool_write(void *dst, const void *src, size_t len)
{
	memcpy_flushcache(dst, src, len);
	wmb();
}

/* Drop this host's cached lines of pool memory (before mapping it into a
 * clone: a line cached from an earlier image in the same extent must never
 * reach user space). */
void cxlfork_pool_invalidate(const void *addr, size_t len)
{
	clflush_cache_range((void *)addr, len);
}

void cxlfork_pool_fence(void)
{
	mb();
}

void cxlfork_pool_zero(void *dst, size_t len)
{
	memset(dst, 0, len);
	clflush_cache_range(dst, len);
	wmb();
}

bool cxlfork_capable_sys_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

u64 cxlfork_realtime_ns(void)
{
	return ktime_get_real_ns();
}

u64 cxlfork_random_u64(void)
{
	return get_random_u64();
}

void cxlfork_random_uuid(u8 out[16])
{
	generate_random_uuid(out);
}

void cxlfork_nodename(char *buf, size_t len)
{
	strscpy(buf, utsname()->nodename, len);
}

/* The caller's effective uid as the kernel knows it (initial namespace):
 * images are owned and compared by these. */
u32 cxlfork_current_euid(void)
{
	return from_kuid(&init_user_ns, current_euid());
}

/* An image owner's gid as the caller's user namespace shows it. */
u32 cxlfork_gid_for_caller(u32 gid)
{
	return from_kgid_munged(current_user_ns(), make_kgid(&init_user_ns, gid));
}

/* An image owner's uid as the caller's user namespace shows it. */
u32 cxlfork_uid_for_caller(u32 uid)
{
	return from_kuid_munged(current_user_ns(), make_kuid(&init_user_ns, uid));
}

struct file *cxlfork_file_get(struct file *file)
{
	return get_file(file);
}

/* Identity of a file's inode while a reference is held (a lookup key). */
u64 cxlfork_file_key(struct file *file)
{
	return (u64)(unsigned long)file_inode(file);
}

/* Shared memory with no name to reopen: an unlinked shmem file (the file
 * of MAP_SHARED|MAP_ANONYMOUS, a memfd, a deleted tmpfs file). */
bool cxlfork_file_is_shared_anon(struct file *file)
{
	return shmem_file(file) && file_inode(file)->i_nlink == 0;
}

/* vfs_llseek (SEEK_DATA/SEEK_HOLE to walk a file's data ranges). */
s64 cxlfork_file_seek(struct file *file, u64 off, int whence)
{
	return vfs_llseek(file, off, whence);
}

/* Read up to 4 KiB of file at pos into buf (zero-filled past its end). */
int cxlfork_file_read_page(struct file *file, u64 pos, void *buf)
{
	loff_t off = pos;
	ssize_t n = kernel_read(file, buf, PAGE_SIZE, &off);

	if (n < 0)
		return n;
	memset(buf + n, 0, PAGE_SIZE - n);
	return 0;
}

/* A file's size and modification time (ns): what a restore checks to know
 * the file is the one the checkpoint saw. */
void cxlfork_file_identity(struct file *file, u64 *size, u64 *mtime_ns)
{
	struct inode *inode = file_inode(file);
	struct timespec64 mt = inode_get_mtime(inode);

	*size = i_size_read(inode);
	*mtime_ns = (u64)timespec64_to_ns(&mt);
}

u64 cxlfork_monotonic_ns(void)
{
	return ktime_get_ns();
}
