// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim, restore side: the clone VMAs' vm_operations (faults are
 * handled in Rust, clone.rs), and the pieces of "becoming the clone" that
 * touch kernel structures: checks before the point of no return, unmapping
 * the old address space, mm fields, registers (through a task_work that
 * runs after the syscall stored its return value), fs/gs base, FPU, PKRU,
 * rseq, signals, rlimits, file descriptors. All functions act on current.
 * Declared for Rust in ffi.rs.
 *
 * A clone VMA stands for one VMA of the image ("its image VMA"). The pool
 * is a device-dax range, whose ZONE_DEVICE pages the kernel refcounts like
 * any page: they are mapped as normal pages, and the VMA stays a plain
 * private mapping with our vm_ops: it grows by mremap, merges, and is
 * copied by fork like any. VM_MAYBE_GUARD ("the page tables hold state the
 * VMA does not describe": here, which image pages were installed) makes
 * fork copy its page tables. Its
 * vm_private_data is a struct cxlfork_cvma, one per VMA: a split, a
 * mremap copy or a fork gives the new VMA its own copy (vm_ops->open).
 * Each records, per page of its image VMA, whether the page was already
 * installed from the image in this VMA's lineage: a later fault on such a
 * page means the kernel zapped it (MADV_DONTNEED, a wiped fork child...),
 * so it reads what any process reads there (zero for anonymous memory, the
 * file for a file mapping), never the image again.
 */
#include <linux/anon_inodes.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/futex.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmap_lock.h>
#include <linux/pgtable.h>
#include <linux/ptrace.h>
#include <linux/resource.h>
#include <linux/rseq.h>
#include <linux/sched/prio.h>
#include <uapi/linux/sched/types.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/exec_state.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/shmem_fs.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>
#include <asm/cacheflush.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xstate.h>
#include <asm/msr.h>
#include <linux/pkeys.h>
#include <asm/pkru.h>
#include <asm/processor.h>
#include <asm/ptrace.h>
#include <asm/segment.h>

#include "shim.h"

/* Implemented in Rust (clone.rs): a clone context is reference counted;
 * every clone VMA holds one reference. */
vm_fault_t cxlfork_rust_clone_fault(void *ctx, struct cxlfork_cvma *cv, struct vm_area_struct *vma,
				    u64 addr, u64 ia);
void cxlfork_rust_ctx_get(void *ctx);
int cxlfork_rust_clone_access(void *ctx, u64 ia, void *buf, int len);
void cxlfork_rust_ctx_put(void *ctx);
void cxlfork_rust_clone_fallback(void *ctx, bool file, bool count_fault);

#define CVMA_WIPED	1	/* a wiped fork child's VMA: nothing from the image */
/* Anonymous clone VMAs' page offsets: user page + (image VMA + 1) << this.
 * User pages are below 2^35, image VMAs at most 2^16: offsets of different
 * image VMAs never meet, and the image address ((offset << PAGE_SHIFT) +
 * delta, with delta = -(tag << PAGE_SHIFT)) never overflows. */
#define CVMA_TAG_SHIFT	35

/* Which pages of one 2 MiB range of image addresses were installed. */
struct cvma_leaf {
	u64 ia;					/* PMD-aligned image address */
	unsigned long bits[BITS_TO_LONGS(PTRS_PER_PTE)];
};

/*
 * Invariants: ctx holds one context reference; [img_start, img_end) is
 * the image VMA; leaves[] are the image's leaf ranges (the only image
 * addresses with pages) that meet this VMA, sorted by address, distinct:
 * the state is bounded by the image's pages, not by the VMA's size (a
 * sparse 100 TiB reservation costs nothing). Image address of user address
 * a in the VMA: ((vm_pgoff + (a - vm_start) / PAGE_SIZE) * PAGE_SIZE +
 * delta) mod 2^64.
 */
struct cxlfork_cvma {
	void *ctx;
	const struct vm_operations_struct *file_ops;	/* a file mapping's own */
	struct mm_struct *mm;		/* the mm the VMA is in (not referenced) */
	u64 delta;
	u64 img_start, img_end;
	u32 img;
	u32 flags;
	u32 n_leaves;
	struct cvma_leaf leaves[];
};

static u64 cvma_ia(const struct cxlfork_cvma *cv, const struct vm_area_struct *vma, u64 addr)
{
	return ((vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT)) << PAGE_SHIFT) + cv->delta;
}

/* The bits of image page ia and its index in them; NULL if the image has
 * no page in its 2 MiB range (binary search of the sorted leaves). */
static unsigned long *cvma_bits(const struct cxlfork_cvma *cv, u64 ia, u64 *bit)
{
	u64 base = ia & PMD_MASK;
	u32 lo = 0, hi = cv->n_leaves;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (cv->leaves[mid].ia < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == cv->n_leaves || cv->leaves[lo].ia != base)
		return NULL;
	*bit = (ia - base) >> PAGE_SHIFT;
	return (unsigned long *)cv->leaves[lo].bits;
}

static struct cxlfork_cvma *cvma_alloc(u32 n_leaves, gfp_t gfp)
{
	struct cxlfork_cvma *cv = kvzalloc(struct_size_t(struct cxlfork_cvma, leaves, n_leaves), gfp);

	if (cv)
		cv->n_leaves = n_leaves;
	return cv;
}

/* State for a clone VMA whose image range meets the n leaf ranges at
 * image addresses ias (sorted, distinct, PMD-aligned); NULL if out of
 * memory (before the point of no return: no warning for a huge request). */
struct cxlfork_cvma *cxlfork_cvma_alloc(const u64 *ias, u32 n)
{
	struct cxlfork_cvma *cv = cvma_alloc(n, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	u32 i;

	if (cv)
		for (i = 0; i < n; i++)
			cv->leaves[i].ia = ias[i];
	return cv;
}

void cxlfork_cvma_free(struct cxlfork_cvma *cv)
{
	kvfree(cv);
}

/* User address of image address ia in vma (0 if it is not there). */
u64 cxlfork_cvma_addr(const struct cxlfork_cvma *cv, const struct vm_area_struct *vma, u64 ia)
{
	u64 pg, a;

	if (ia < cv->img_start || ia >= cv->img_end)
		return 0;
	pg = ((ia - cv->delta) >> PAGE_SHIFT) - vma->vm_pgoff;
	a = vma->vm_start + (pg << PAGE_SHIFT);
	if (pg >= vma_pages(vma) || cvma_ia(cv, vma, a) != ia)
		return 0;
	return a;
}

/* Whether image page ia was installed in this VMA's lineage. */
bool cxlfork_cvma_installed(const struct cxlfork_cvma *cv, u64 ia)
{
	u64 bit;

	unsigned long *bits;

	if (cv->flags & CVMA_WIPED)
		return true;
	bits = cvma_bits(cv, ia, &bit);
	return !bits || test_bit(bit, bits);
}

void cxlfork_cvma_set_installed(struct cxlfork_cvma *cv, u64 ia)
{
	unsigned long *bits;
	u64 bit;

	bits = cvma_bits(cv, ia, &bit);
	if (bits)
		set_bit(bit, bits);
}

/* PROT_READ/WRITE/EXEC of a VMA now. */
u32 cxlfork_vma_prot(const struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_READ ? PROT_READ : 0) | (vma->vm_flags & VM_WRITE ? PROT_WRITE : 0) |
	       (vma->vm_flags & VM_EXEC ? PROT_EXEC : 0);
}

/* Map page read-only at addr of vma (a normal, refcounted mapping; the
 * zero page is mapped special, as anonymous memory maps it). */
static vm_fault_t insert_page(struct vm_area_struct *vma, u64 addr, struct page *page)
{
	struct vm_fault f = { .vma = vma, .address = addr };

	return vmf_insert_page_mkwrite(&f, page, false);
}

static vm_fault_t clone_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct cxlfork_cvma *cv = vma->vm_private_data;
	u64 addr = vmf->address & PAGE_MASK;
	u64 ia = cvma_ia(cv, vma, addr);
	vm_fault_t r = CXLFORK_FAULT_FALLBACK;
	bool counted = false;

	if (!cxlfork_cvma_installed(cv, ia) && ia >= cv->img_start && ia < cv->img_end) {
		r = cxlfork_rust_clone_fault(cv->ctx, cv, vma, addr, ia);
		counted = true;
	}
	if (r != CXLFORK_FAULT_FALLBACK)
		return r;
	/* Not (or no longer) the image's: what any process reads here. */
	cxlfork_rust_clone_fallback(cv->ctx, cv->file_ops != NULL, !counted);
	if (cv->file_ops)
		return cv->file_ops->fault(vmf);
	return insert_page(vma, addr, ZERO_PAGE(addr));
}

/*
 * A VMA was duplicated: split (same mm), moved by mremap (same mm) or
 * copied by fork (another mm). The copy gets its own copy of the cvma.
 * vm_ops->open cannot fail: the allocation may not either (it is
 * small: 72 bytes per 2 MiB of the image VMA that holds pages).
 */
static void clone_open(struct vm_area_struct *vma)
{
	const struct cxlfork_cvma *src = vma->vm_private_data;
	struct cxlfork_cvma *cv = cvma_alloc(src->n_leaves, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);

	/*
	 * All of the source's leaves, not only those meeting the new range:
	 * the pieces of a split may merge again (mprotect back), and the
	 * surviving piece must then still know every image page of the whole.
	 */
	memcpy(cv, src, struct_size(src, leaves, src->n_leaves));
	if (vma->vm_mm != src->mm) {
		/* fork: the child's copy of a wipe-on-fork VMA reads zero. */
		cv->mm = vma->vm_mm;
		if (vma->vm_flags & VM_WIPEONFORK)
			cv->flags |= CVMA_WIPED;
	}
	cxlfork_rust_ctx_get(cv->ctx);
	vma->vm_private_data = cv;
	if (cv->file_ops && cv->file_ops->open)
		cv->file_ops->open(vma);
}

static void clone_close(struct vm_area_struct *vma)
{
	struct cxlfork_cvma *cv = vma->vm_private_data;

	if (cv->file_ops && cv->file_ops->close)
		cv->file_ops->close(vma);
	cxlfork_rust_ctx_put(cv->ctx);
	kvfree(cv);
}

/*
 * Reads of pages still mapped from the pool by /proc/PID/mem, ptrace, or
 * /proc/PID/cmdline: GUP cannot take a special PTE, so access_remote_vm()
 * falls back here. Writes never come here (GUP breaks copy-on-write first).
 */
static int clone_access(struct vm_area_struct *vma, unsigned long addr, void *buf, int len, int write)
{
	struct cxlfork_cvma *cv = vma->vm_private_data;
	u64 ia = cvma_ia(cv, vma, addr & PAGE_MASK) + (addr & ~PAGE_MASK);

	if (write || (cv->flags & CVMA_WIPED) || ia < cv->img_start || ia >= cv->img_end)
		return -EINVAL;
	return cxlfork_rust_clone_access(cv->ctx, ia, buf, len);
}

static const struct vm_operations_struct clone_vm_ops = {
	.open = clone_open,
	.close = clone_close,
	.fault = clone_fault,
	.access = clone_access,
};

static const struct file_operations pin_fops = {
	.owner = THIS_MODULE,
};

/*
 * A file whose only job is to pin this module while a clone context lives
 * (its last fput, deferred, drops the module reference outside our code).
 */
struct file *cxlfork_module_pin_file(void)
{
	return anon_inode_getfile("[cxlfork-clone]", &pin_fops, NULL, O_RDONLY);
}

/*
 * Turn the fresh mapping [addr, addr + len) of current (anonymous private,
 * or a private mapping of file) into a clone VMA for image VMA img at
 * image address img_start (file page offset img_pgoff). cv (from
 * cxlfork_cvma_alloc, sized for the image VMA) and one context reference
 * are taken over on success.
 */
int cxlfork_make_clone_vma(u64 addr, u64 len, void *ctx, struct cxlfork_cvma *cv, u32 img,
			   u64 img_start, u64 img_pgoff, bool wipe)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int ret = -EINVAL;

	mmap_write_lock(mm);
	vma = find_vma(mm, addr);
	if (!vma || vma->vm_start != addr || vma->vm_end != addr + len || vma->anon_vma ||
	    (vma->vm_flags & VM_SHARED))
		goto out;
	if (vma->vm_file) {
		if (!vma->vm_ops || !vma->vm_ops->fault || vma->vm_ops->huge_fault ||
		    vma->vm_pgoff != img_pgoff)
			goto out;
		cv->file_ops = vma->vm_ops;
		cv->delta = img_start - (img_pgoff << PAGE_SHIFT);
	} else {
		if (vma->vm_ops || vma->vm_pgoff != addr >> PAGE_SHIFT)
			goto out;
		/*
		 * A page offset tagged with the image VMA: no VMA made another
		 * way, and no clone VMA of another image VMA, continues it, so
		 * the kernel never merges this VMA into a neighbour (which
		 * would take over image pages not installed yet: they would
		 * read zero); pieces of it merge again. THP alignment is kept
		 * (the tag is a multiple of HPAGE_PMD_NR pages). The VMA is
		 * new and has no anon_vma: nothing indexes its offset yet.
		 */
		vma_start_write(vma);
		vma->vm_pgoff += (u64)(img + 1) << CVMA_TAG_SHIFT;
		cv->delta = -(((u64)(img + 1) << CVMA_TAG_SHIFT) << PAGE_SHIFT);
	}
	cv->ctx = ctx;
	cv->mm = mm;
	cv->img = img;
	cv->img_start = img_start;
	cv->img_end = img_start + len;
	if (wipe)
		vm_flags_set(vma, VM_WIPEONFORK);
	/* VM_MIXEDMAP until the restore ends: a special VMA never merges, so
	 * the next fresh mapping cannot merge into this one (see
	 * cxlfork_clone_vmas_settle). */
	vm_flags_set(vma, VM_MIXEDMAP);
	vma->vm_private_data = cv;
	vma->vm_ops = &clone_vm_ops;
	ret = 0;
out:
	mmap_write_unlock(mm);
	return ret;
}

/*
 * The restore made every clone VMA: they become ordinary mappings (no
 * VM_MIXEDMAP: they grow, merge and fork like any; VM_MAYBE_GUARD, "the
 * page tables hold state the VMA does not describe" - which image pages
 * were installed - keeps fork copying their page tables). No PTE was
 * installed yet, so no PTE changes meaning.
 */
void cxlfork_clone_vmas_settle(void)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	VMA_ITERATOR(vmi, mm, 0);

	mmap_write_lock(mm);
	for_each_vma(vmi, vma) {
		if (vma->vm_ops != &clone_vm_ops)
			continue;
		vm_flags_clear(vma, VM_MIXEDMAP);
		vm_flags_set(vma, VM_MAYBE_GUARD);
	}
	mmap_write_unlock(mm);
}

/* A new reference to the clone context mm maps, or NULL if it is no clone. */
void *cxlfork_clone_ctx_of(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	void *ctx = NULL;
	u64 addr = 0;

	if (mmap_read_lock_killable(mm))
		return NULL;
	while ((vma = find_vma(mm, addr))) {
		if (vma->vm_ops == &clone_vm_ops) {
			ctx = ((struct cxlfork_cvma *)vma->vm_private_data)->ctx;
			cxlfork_rust_ctx_get(ctx);
			break;
		}
		addr = vma->vm_end;
	}
	mmap_read_unlock(mm);
	return ctx;
}

/* Map pool page pfn (a refcounted ZONE_DEVICE page) read-only at addr. */
vm_fault_t cxlfork_vma_insert_pfn(struct vm_area_struct *vma, u64 addr, u64 pfn)
{
	return insert_page(vma, addr, pfn_to_page(pfn));
}

/*
 * Map a local copy of 4 KiB of pool memory at src read-only at addr (a
 * write then takes the kernel's copy-on-write). The page is charged to the
 * faulting task's memory cgroup.
 */
vm_fault_t cxlfork_vma_insert_copy(struct vm_area_struct *vma, u64 addr, const void *src)
{
	struct page *page = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT);
	vm_fault_t ret;
	void *dst;

	if (!page)
		return VM_FAULT_OOM;
	dst = kmap_local_page(page);
	clflush_cache_range((void *)src, PAGE_SIZE);
	/* The page copy primitive (rep movsq, or a register loop), not
	 * memcpy(): with FSRM that is rep movsb, which an emulated CPU runs a
	 * byte at a time (1/7 of copy_page's rate under TCG). */
	copy_page(dst, (void *)src);
	kunmap_local(dst);
	ret = insert_page(vma, addr, page);
	put_page(page);
	return ret;
}

u64 cxlfork_totalram_pages(void)
{
	return totalram_pages();
}

/* Whether this kernel and CPU give user space protection keys. */
bool cxlfork_pkeys_usable(void)
{
	return IS_ENABLED(CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS) && arch_pkeys_enabled();
}

/* Current's thread count; 0 if it is not its process's main thread. */
u32 cxlfork_current_threads(void)
{
	return current == current->group_leader ? get_nr_threads(current) : 0;
}

/*
 * Whether current shares its mm, file table, fs or signal handlers with a
 * task outside its process (CLONE_VM/FILES/FS/SIGHAND without
 * CLONE_THREAD), or its threads do not all share its file table and fs:
 * replacing them would change that other task too, or leave a thread of
 * the clone with the restorer's. Each of its threads holds one reference
 * on each.
 */
bool cxlfork_current_shares_state(void)
{
	u32 threads = get_nr_threads(current);
	struct task_struct *t;
	bool shared;

	/* mm_users alone also counts transient readers (/proc, GUP). */
	shared = (mm_flags_test(MMF_MULTIPROCESS, current->mm) && atomic_read(&current->mm->mm_users) > threads) ||
		 atomic_read(&current->files->count) > threads ||
		 refcount_read(&current->sighand->count) > threads;
	task_lock(current);
	shared = shared || (current->fs && current->fs->users > threads);
	task_unlock(current);
	rcu_read_lock();
	for_each_thread(current, t)
		shared = shared || READ_ONCE(t->files) != current->files || READ_ONCE(t->fs) != current->fs;
	rcu_read_unlock();
	return shared;
}

/* Does current have the special mapping `name` exactly at [start, end)? */
int cxlfork_check_special(u64 start, u64 end, const char *name)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	const char *n;
	int ret = -EINVAL;

	mmap_read_lock(mm);
	vma = find_vma(mm, start);
	if (vma && vma->vm_start == start && vma->vm_end == end) {
		n = cxlfork_special_name(vma);
		if (n && !strcmp(n, name))
			ret = 0;
	}
	mmap_read_unlock(mm);
	return ret;
}

/* vm.max_map_count (not visible to modules but through its sysctl file). */
static int max_map_count(void)
{
	struct file *f = filp_open("/proc/sys/vm/max_map_count", O_RDONLY, 0);
	char buf[24] = {};
	loff_t pos = 0;
	int v = DEFAULT_MAX_MAP_COUNT;

	if (IS_ERR(f))
		return v;
	if (kernel_read(f, buf, sizeof(buf) - 1, &pos) > 0 && kstrtoint(strim(buf), 10, &v))
		v = DEFAULT_MAX_MAP_COUNT;
	fput(f);
	return v;
}

/*
 * Before the point of no return: can every mapping of current but the
 * special ones be unmapped (none sealed)? And will the image's mappings
 * fit current's limits (address space and data rlimits, map count)?
 */
int cxlfork_check_caller(u64 total_pages, u64 data_pages, u32 n_maps)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	u64 addr = 0;
	int ret = 0;

	mmap_read_lock(mm);
	while ((vma = find_vma(mm, addr))) {
		if (!cxlfork_special_name(vma) && VM_SEALED != VM_NONE && (vma->vm_flags & VM_SEALED)) {
			pr_info("cxlfork: restore: the caller has a sealed mapping at %#lx\n", vma->vm_start);
			ret = -EPERM;
			break;
		}
		addr = vma->vm_end;
	}
	mmap_read_unlock(mm);
	if (ret)
		return ret;
	if (total_pages > rlimit(RLIMIT_AS) >> PAGE_SHIFT || data_pages > rlimit(RLIMIT_DATA) >> PAGE_SHIFT) {
		pr_info("cxlfork: restore: the image's %llu pages exceed the caller's RLIMIT_AS/RLIMIT_DATA\n",
			total_pages);
		return -ENOMEM;
	}
	if (n_maps >= max_map_count()) {
		pr_info("cxlfork: restore: the image's %u mappings exceed vm.max_map_count\n", n_maps);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Before the point of no return: would mapping file (or anonymous memory
 * if NULL) with these protections be allowed (LSMs, noexec mounts, file
 * modes, mmap_min_addr, commit accounting)? Maps it at addr if it is free
 * (MAP_FIXED_NOREPLACE), anywhere if addr is 0 or taken by the caller, and
 * unmaps it at once.
 */
int cxlfork_probe_map(struct file *file, u64 addr, u64 len, u64 prot, u64 flags, u64 off)
{
	unsigned long r;

	if (addr)
		flags |= MAP_FIXED_NOREPLACE;
	r = vm_mmap(file, addr, len, prot, flags, off);
	if ((long)r == -EEXIST) {
		/* The caller has a mapping there (one the restore replaces),
		 * so the address is allowed: check the rest anywhere. */
		r = vm_mmap(file, 0, len, prot, flags & ~MAP_FIXED_NOREPLACE, off);
	}
	if (IS_ERR_VALUE(r))
		return (long)r;
	vm_munmap(r, len);
	return 0;
}

/* Unmap every mapping of current except the special ones (vdso, vvar). */
int cxlfork_unmap_all_but_special(void)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	u64 start, end, addr = 0;
	int err;

	for (;;) {
		mmap_read_lock(mm);
		vma = find_vma(mm, addr);
		while (vma && cxlfork_special_name(vma))
			vma = find_vma(mm, vma->vm_end);
		if (!vma) {
			mmap_read_unlock(mm);
			return 0;
		}
		start = vma->vm_start;
		end = vma->vm_end;
		mmap_read_unlock(mm);
		err = vm_munmap(start, end - start);
		if (err)
			return err;
		addr = end;
	}
}

long cxlfork_vm_mmap(struct file *file, u64 addr, u64 len, u64 prot, u64 flags, u64 off)
{
	return vm_mmap(file, addr, len, prot, flags, off);
}

/* Set image VMA flags a fork child keeps that mmap cannot give (on the
 * mapping at exactly [addr, addr + len)). */
void cxlfork_vma_set_flags(u64 addr, u64 len, u64 image_flags)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	vm_flags_t set = 0;
	u32 pkey;

	if (image_flags & CXLFORK_VM_DONTDUMP)
		set |= VM_DONTDUMP;
	if (image_flags & CXLFORK_VM_WIPEONFORK)
		set |= VM_WIPEONFORK;
	if (image_flags & CXLFORK_VM_HUGEPAGE)
		set |= VM_HUGEPAGE;
	if (image_flags & CXLFORK_VM_NOHUGEPAGE)
		set |= VM_NOHUGEPAGE;
	if (VM_SEALED != VM_NONE && (image_flags & CXLFORK_VM_SEALED))
		set |= VM_SEALED;
	if (image_flags & CXLFORK_VM_DONTCOPY)
		set |= VM_DONTCOPY;
	pkey = (image_flags >> CXLFORK_VM_PKEY_SHIFT) & 0xf;
	if (!set && !pkey)
		return;
	mmap_write_lock(mm);
	vma = find_vma(mm, addr);
	if (vma && vma->vm_start == addr && vma->vm_end == addr + len) {
		if (vma->vm_file || (vma->vm_flags & VM_SHARED))
			set &= ~VM_WIPEONFORK;	/* madvise refuses it there too */
		vm_flags_set(vma, set);
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
		if (pkey) {
			/* What pkey_mprotect does; no PTE exists yet. */
			vm_flags_clear(vma, VM_PKEY_BIT0 | VM_PKEY_BIT1 | VM_PKEY_BIT2 | VM_PKEY_BIT3);
			vm_flags_set(vma, (vm_flags_t)pkey << VM_PKEY_SHIFT);
			vma->vm_page_prot = __pgprot((pgprot_val(vma->vm_page_prot) & ~_PAGE_PKEY_MASK) |
						     (pgprot_val(vm_get_page_prot(vma->vm_flags)) & _PAGE_PKEY_MASK));
		}
#endif
	}
	mmap_write_unlock(mm);
}

/*
 * A shmem file of size bytes holding a shared anonymous mapping's content
 * (MAP_SHARED|MAP_ANONYMOUS, memfd, deleted tmpfs file): made and filled
 * before the point of no return, mapped after it.
 */
struct file *cxlfork_shmem_create(const char *name, u64 size)
{
	return shmem_file_setup(name, size, mk_vma_flags(VMA_NORESERVE_BIT));
}

/* Write 4 KiB of pool memory at src to file at pos (invalidate, then read). */
int cxlfork_file_write_page(struct file *file, u64 pos, const void *src)
{
	loff_t off = pos;
	ssize_t n;

	clflush_cache_range((void *)src, PAGE_SIZE);
	n = kernel_write(file, src, PAGE_SIZE, &off);
	if (n < 0)
		return n;
	return n == PAGE_SIZE ? 0 : -EIO;
}

/* mm fields in MmImage layout (11 words, then auxv), and the image's mm
 * flags a fork child keeps (after checks by cxlfork_proc_check). */
void cxlfork_set_mm(const u64 *w, u32 auxv_words, const struct cxlfork_proc_state *p)
{
	struct mm_struct *mm = current->mm;
	u32 i;

	mmap_write_lock(mm);
	mm->start_code = w[0];
	mm->end_code = w[1];
	mm->start_data = w[2];
	mm->end_data = w[3];
	mm->start_brk = w[4];
	mm->brk = w[5];
	mm->start_stack = w[6];
	mm->arg_start = w[7];
	mm->arg_end = w[8];
	mm->env_start = w[9];
	mm->env_end = w[10];
	for (i = 0; i < ARRAY_SIZE(mm->saved_auxv); i++)
		mm->saved_auxv[i] = i < auxv_words ? w[11 + i] : 0;
	if (p->mm_flags & CXLFORK_MMF_THP_DISABLE)
		mm_flags_set(MMF_DISABLE_THP_COMPLETELY, mm);
	if (p->mm_flags & CXLFORK_MMF_THP_DISABLE_EXCEPT_ADVISED)
		mm_flags_set(MMF_DISABLE_THP_EXCEPT_ADVISED, mm);
	/* A fork child keeps MDWE unless it was set with PR_MDWE_NO_INHERIT. */
	if ((p->mm_flags & CXLFORK_MMF_MDWE) && !(p->mm_flags & CXLFORK_MMF_MDWE_NO_INHERIT))
		mm_flags_set(MMF_HAS_MDWE, mm);
	__mm_flags_set_mask_bits_word(mm, MMF_DUMP_FILTER_MASK,
				      ((unsigned long)p->coredump_filter << MMF_DUMP_FILTER_SHIFT) & MMF_DUMP_FILTER_MASK);
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
	mm->context.pkey_allocation_map = p->pkey_map;
	mm->context.execute_only_pkey = (s16)(s32)p->exec_only_pkey;
#endif
	mmap_write_unlock(mm);
}

#define USER_FLAGS (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | \
		    X86_EFLAGS_SF | X86_EFLAGS_TF | X86_EFLAGS_DF | X86_EFLAGS_OF | \
		    X86_EFLAGS_RF | X86_EFLAGS_AC | X86_EFLAGS_ID)

/* An rseq area as sys_rseq would register it (rseq_length_valid()). */
static bool rseq_area_valid(const struct cxlfork_task_state *s)
{
#ifdef CONFIG_RSEQ
	if (s->rseq >= TASK_SIZE_MAX || s->rseq_len < 32 || s->rseq_len > PAGE_SIZE ||
	    s->rseq_version < 1 || s->rseq_version > 2)
		return false;
	if (s->rseq_len == 32)
		return IS_ALIGNED(s->rseq, 32);
	return IS_ALIGNED(s->rseq, rseq_alloc_align()) && s->rseq_len >= offsetof(struct rseq, end);
#else
	return false;
#endif
}

/*
 * Per-thread state an image may install into current: user segments,
 * canonical ip/sp/bases, an rseq area as sys_rseq would accept it, a robust
 * list head of the only size the kernel knows, a valid altstack.
 */
int cxlfork_task_check(const struct cxlfork_task_state *s)
{
	const struct pt_regs *p = (const struct pt_regs *)s->regs;

	if (p->cs != __USER_CS || p->ss != __USER_DS)
		return -EINVAL;
	if (p->ip >= TASK_SIZE_MAX || p->sp >= TASK_SIZE_MAX)
		return -EINVAL;
	if (s->fs_base >= TASK_SIZE_MAX || s->gs_base >= TASK_SIZE_MAX)
		return -EINVAL;
	if (s->rseq && !rseq_area_valid(s))
		return -EINVAL;
	if (s->robust_list && (s->robust_list >= TASK_SIZE_MAX || s->robust_len != sizeof(struct robust_list_head)))
		return -EINVAL;
	if (s->clear_child_tid >= TASK_SIZE_MAX)
		return -EINVAL;
	if (s->ss_flags & ~(SS_DISABLE | SS_AUTODISARM))
		return -EINVAL;
	/* What sched_setattr() would allow current: a higher priority (a
	 * lower nice, a real-time policy) needs RLIMIT_NICE or CAP_SYS_NICE. */
	if (s->nice < MIN_NICE || s->nice > MAX_NICE || s->rt_priority > MAX_RT_PRIO - 1)
		return -EINVAL;
	if (s->nice < task_nice(current) && !can_nice(current, s->nice))
		return -EPERM;
	if ((s->policy == SCHED_FIFO || s->policy == SCHED_RR) && !capable(CAP_SYS_NICE))
		return -EPERM;
	if (!(s->ss_flags & SS_DISABLE) && (s->ss_size < MINSIGSTKSZ || s->ss_sp >= TASK_SIZE_MAX))
		return -EINVAL;
	return 0;
}

/*
 * The last of a restore, run on the clone's way back to user space, after
 * the syscall has stored its own return value in ax (which carries only an
 * int through the ioctl path): the image's full registers, then what needs
 * the clone's memory in place (its tid written where CLONE_CHILD_SETTID
 * would), then PKRU (last: it may forbid the kernel's own user accesses).
 * TWA_SIGNAL: it runs before any signal frame is built from these registers.
 */
struct restore_work {
	struct callback_head cb;
	struct cxlfork_task_state s;
	struct file *pin;		/* keeps this code loaded until the work ran */
};

static void restore_work_fn(struct callback_head *cb)
{
	struct restore_work *w = container_of(cb, struct restore_work, cb);
	struct pt_regs *regs = current_pt_regs();
	pid_t tid = task_pid_vnr(current);

	/*
	 * Only ax: the ioctl's return value (32 bits) overwrote it since
	 * cxlfork_task_set installed them all. Whatever else changed the
	 * registers on the way out did so on purpose: an rseq abort moved
	 * ip out of a critical section (rseq debug), and stays.
	 */
	regs->ax = ((const struct pt_regs *)w->s.regs)->ax;
	regs->orig_ax = -1;
	if (!(current->flags & PF_EXITING) && w->s.clear_child_tid)
		put_user(tid, (int __user *)w->s.clear_child_tid);	/* as CLONE_CHILD_SETTID: errors ignored */
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
	if (cpu_feature_enabled(X86_FEATURE_OSPKE)) {
		preempt_disable();
		current->thread.pkru = w->s.pkru;
		write_pkru(w->s.pkru);
		preempt_enable();
	}
#endif
	fput(w->pin);	/* deferred: runs after this function returned */
	kfree(w);
}

/* Before the point of no return: everything cxlfork_task_set needs. */
void *cxlfork_task_prepare(const struct cxlfork_task_state *s, struct file *pin)
{
	struct restore_work *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	memcpy(&w->s, s, sizeof(*s));
	init_task_work(&w->cb, restore_work_fn);
	w->pin = get_file(pin);
	return w;
}

/* Write a prepared thread's new tid where
 * its image has clear_child_tid (glibc's struct pthread tid), as
 * CLONE_CHILD_SETTID would; errors ignored, as there. */
void cxlfork_task_write_tid(void *prepared, pid_t tid)
{
	struct restore_work *w = prepared;

	if (w && w->s.clear_child_tid)
		put_user(tid, (int __user *)w->s.clear_child_tid);
}

void cxlfork_task_discard(void *prepared)
{
	struct restore_work *w = prepared;

	fput(w->pin);
	kfree(w);
}

/*
 * Install the image thread's state into current: registers now (so that
 * nothing between here and user space sees the caller's; the task_work
 * then gives ax its full 64 bits), fs/gs base, signal mask,
 * altstack, rseq (the caller's own registration goes: its area is gone),
 * robust list, child tid address, timer slack, name. Consumes prepared.
 */
void cxlfork_task_set(void *prepared)
{
	struct restore_work *w = prepared;
	const struct cxlfork_task_state *s = &w->s;
	struct pt_regs *regs = current_pt_regs();
	unsigned long flags = regs->flags;
	sigset_t blocked;

	memcpy(regs, s->regs, sizeof(*regs));
	regs->flags = (flags & ~USER_FLAGS) | (((const struct pt_regs *)s->regs)->flags & USER_FLAGS);
	regs->flags |= X86_EFLAGS_IF;
	regs->cs = __USER_CS;
	regs->ss = __USER_DS;
	regs->orig_ax = -1;

	preempt_disable();
	loadsegment(fs, 0);
	current->thread.fsindex = 0;
	current->thread.fsbase = s->fs_base;
	wrmsrq(MSR_FS_BASE, s->fs_base);
	current->thread.gsindex = 0;
	current->thread.gsbase = s->gs_base;
	wrmsrq(MSR_KERNEL_GS_BASE, s->gs_base);
	preempt_enable();

	blocked.sig[0] = s->blocked & ~(sigmask(SIGKILL) | sigmask(SIGSTOP));
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	if (s->ss_flags & SS_DISABLE) {
		current->sas_ss_sp = 0;
		current->sas_ss_size = 0;
		current->sas_ss_flags = SS_DISABLE;
	} else {
		current->sas_ss_sp = s->ss_sp;
		current->sas_ss_size = s->ss_size;
		current->sas_ss_flags = s->ss_flags;
	}
#ifdef CONFIG_RSEQ
	rseq_reset(current);
	if (s->rseq) {
		struct rseq __user *area = (struct rseq __user *)s->rseq;

		/*
		 * As sys_rseq registers it (rseq_register()): the area's ids
		 * as the kernel's cache now has them (uninitialised), and
		 * the ABI version its length gives on this kernel. The
		 * clone's copy of the area holds the original's ids, and an
		 * ABI v2 registration (a length above 32: glibc 2.40 and
		 * later) has the way out check them against the cache
		 * before it writes the real ones: a mismatch is fatal
		 * (SIGSEGV). The area is in the clone's memory, mapped by
		 * now: a failed write (a pathological image) leaves the way
		 * out to find the fault, as it would for the original.
		 * rseq_cs stays: with user_irq the way out checks it against
		 * the restored ip, as it would have for the original (a
		 * thread stopped by an interrupt in a critical section
		 * aborts it; one stopped in a system call is outside any).
		 */
		(void)(put_user(RSEQ_CPU_ID_UNINITIALIZED, &area->cpu_id_start) ||
		       put_user(RSEQ_CPU_ID_UNINITIALIZED, &area->cpu_id) || put_user(0U, &area->node_id) ||
		       put_user(0U, &area->mm_cid));
		current->rseq.usrptr = area;
		current->rseq.len = s->rseq_len;
		current->rseq.sig = s->rseq_sig;
		current->rseq.event.has_rseq = IS_ENABLED(CONFIG_GENERIC_IRQ_ENTRY) && s->rseq_len > 32 ? 2 : 1;
		current->rseq.event.user_irq = true;
		rseq_force_update();
	}
#endif
#ifdef CONFIG_FUTEX
	current->futex.robust_list = (struct robust_list_head __user *)s->robust_list;
#ifdef CONFIG_COMPAT
	current->futex.compat_robust_list = NULL;
#endif
#endif
	current->clear_child_tid = (int __user *)s->clear_child_tid;
	current->set_child_tid = NULL;
	current->timer_slack_ns = s->timer_slack_ns;
	task_lock(current);
	strscpy_pad(current->comm, s->comm, TASK_COMM_LEN);
	task_unlock(current);
	if (s->policy != current->policy || s->rt_priority != current->rt_priority) {
		struct sched_attr attr = {
			.size = sizeof(attr),
			.sched_policy = s->policy,
			.sched_priority = s->rt_priority,
			.sched_nice = s->nice,
		};

		sched_setattr_nocheck(current, &attr);	/* checked by cxlfork_task_check */
	}
	set_user_nice(current, s->nice);

	/* Cannot fail: current is not exiting (it is in this syscall). */
	if (task_work_add(current, &w->cb, TWA_SIGNAL))
		cxlfork_task_discard(w);
}

/* The image's xsave buffer must be one XRSTOR(S) accepts on this CPU for
 * this task: same size and features, header and MXCSR reserved bits clear,
 * user components only (supervisor state, e.g. CET or PASID, is never
 * taken from an image: it comes back in its init state). */
int cxlfork_fpu_check(const void *buf, u32 len, u64 xfeatures)
{
	struct fpstate *fps = x86_task_fpu(current)->fpstate;
	const struct fxregs_state *fx = buf;
	u32 mask = fps->regs.fxsave.mxcsr_mask;

	if (len != fps->size || xfeatures != fps->xfeatures || len < sizeof(struct fxregs_state))
		return -EINVAL;
	if (!mask)
		mask = 0xffbf;
	if (fx->mxcsr & ~mask)
		return -EINVAL;
	if (len >= sizeof(struct fxregs_state) + sizeof(struct xstate_header)) {
		const struct xstate_header *h = buf + sizeof(struct fxregs_state);
		const struct xstate_header *mine = (void *)&fps->regs + sizeof(struct fxregs_state);
		int i;

		if (h->xfeatures & ~fps->user_xfeatures)
			return -EINVAL;
		if (h->xfeatures & XFEATURE_MASK_SUPERVISOR_ALL)
			return -EINVAL;
		if (h->xcomp_bv != mine->xcomp_bv)
			return -EINVAL;
		for (i = 0; i < ARRAY_SIZE(h->reserved); i++)
			if (h->reserved[i])
				return -EINVAL;
	}
	return 0;
}

/* Replace current's saved user FPU state; it is loaded on return to user.
 * PKRU is not taken from the buffer (the kernel keeps it in thread.pkru). */
void cxlfork_fpu_set(const void *buf, u32 len)
{
	kernel_fpu_begin();	/* saves the live user state, marks it to reload */
	memcpy(&x86_task_fpu(current)->fpstate->regs, buf, len);
	kernel_fpu_end();
}

/* Signal actions a sigaction() call could install, limits setrlimit()
 * would allow (raising a hard limit needs CAP_SYS_RESOURCE; RLIMIT_NOFILE
 * is bounded by nr_open, not visible here: it is never raised). */
int cxlfork_proc_check(const struct cxlfork_proc_state *p)
{
	int i;

	if (p->actions[SIGKILL - 1][0] || p->actions[SIGSTOP - 1][0])
		return -EINVAL;
	for (i = 0; i < CXLFORK_NSIG; i++)
		if (p->actions[i][0] > 1 && p->actions[i][0] >= TASK_SIZE_MAX)
			return -EINVAL;
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		u64 cur = p->rlim[i][0], max = p->rlim[i][1];

		if (cur > max)
			return -EINVAL;
		if (max > READ_ONCE(current->signal->rlim[i].rlim_max) &&
		    (i == RLIMIT_NOFILE || !capable(CAP_SYS_RESOURCE)))
			return -EPERM;
	}
	if (p->umask & ~0777)
		return -EINVAL;
	return 0;
}

/* Install the process-wide state (checked by cxlfork_proc_check). */
void cxlfork_proc_set(const struct cxlfork_proc_state *p)
{
	struct k_sigaction *ka = current->sighand->action;
	int i;

	spin_lock_irq(&current->sighand->siglock);
	for (i = 0; i < CXLFORK_NSIG; i++) {
		ka[i].sa.sa_handler = (__sighandler_t)p->actions[i][0];
		ka[i].sa.sa_flags = p->actions[i][1] & UAPI_SA_FLAGS;
		ka[i].sa.sa_restorer = (__sigrestore_t)p->actions[i][2];
		ka[i].sa.sa_mask.sig[0] = p->actions[i][3] & ~(sigmask(SIGKILL) | sigmask(SIGSTOP));
	}
	spin_unlock_irq(&current->sighand->siglock);
	task_lock(current->group_leader);
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		current->signal->rlim[i].rlim_cur = p->rlim[i][0];
		current->signal->rlim[i].rlim_max = p->rlim[i][1];
	}
	task_unlock(current->group_leader);
	current->personality = p->personality;
	task_lock(current);
	if (current->fs)
		current->fs->umask = p->umask;
	task_unlock(current);
	if (p->proc_flags & CXLFORK_PROC_NO_NEW_PRIVS)
		task_set_no_new_privs(current);
	/* A non-default dumpability (off, or root-only) is kept: the clone's
	 * memory is the original's. Current is single-threaded (checked), so
	 * its exec_state is its own (what task_exec_state_set_dumpable does). */
	if (p->dumpable != TASK_DUMPABLE_OWNER) {
		struct task_exec_state *es = rcu_dereference_protected(current->exec_state, true);

		WRITE_ONCE(es->dumpable, p->dumpable);
	}
}

/*
 * The executable /proc/PID/exe names (a fork child keeps its parent's):
 * denied writes from now on, as an executable is (ETXTBSY if it is open
 * for writing), before the point of no return.
 */
int cxlfork_exe_prepare(struct file *exe)
{
	return exe_file_deny_write_access(exe) ? -ETXTBSY : 0;
}

void cxlfork_exe_discard(struct file *exe)
{
	exe_file_allow_write_access(exe);
}

/* After the point of no return: exe becomes current's mm->exe_file (what
 * replace_mm_exe_file does, the old one being unmapped by now). Takes
 * over the write denial and its own reference. */
void cxlfork_exe_install(struct file *exe)
{
	struct mm_struct *mm = current->mm;
	struct file *old;

	get_file(exe);
	mmap_write_lock(mm);
	old = rcu_dereference_raw(mm->exe_file);
	rcu_assign_pointer(mm->exe_file, exe);
	mmap_write_unlock(mm);
	if (old) {
		exe_file_allow_write_access(old);
		fput(old);
	}
}

struct file *cxlfork_file_open(const char *path, u32 flags, u64 pos, bool seek)
{
	struct file *f = filp_open(path, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY), 0);
	loff_t r;

	if (IS_ERR(f) || !seek)
		return f;
	r = vfs_llseek(f, pos, SEEK_SET);
	if (r < 0) {
		fput(f);
		return ERR_PTR(r);
	}
	return f;
}

void cxlfork_file_put(struct file *f)
{
	fput(f);
}

/*
 * Before the point of no return: make current's descriptor table large
 * enough for fd max_fd (so installing it later allocates nothing) under
 * current's RLIMIT_NOFILE (the descriptors are installed before the
 * image's limits). Current's own descriptors are left as they are.
 */
int cxlfork_fd_prepare(u32 max_fd)
{
	int *held, n_held = 0, n, i, ret = 0;

	if ((u64)max_fd >= rlimit(RLIMIT_NOFILE))
		return -EMFILE;
	held = kvmalloc_array(max_fd + 1, sizeof(*held), GFP_KERNEL);
	if (!held)
		return -ENOMEM;
	/* Reserving the lowest free numbers up to max_fd grows the table. */
	for (;;) {
		n = get_unused_fd_flags(0);
		if (n < 0) {
			ret = n;
			break;
		}
		held[n_held++] = n;
		if ((u32)n >= max_fd || n_held > max_fd)
			break;
	}
	for (i = 0; i < n_held; i++)
		put_unused_fd(held[i]);
	kvfree(held);
	return ret;
}

/* Close current's descriptors from `first` up but the n_keep numbers of
 * keep (increasing). */
void cxlfork_close_fds_from(u32 first, const u32 *keep, u32 n_keep)
{
	u32 fd, max, k = 0;

	spin_lock(&current->files->file_lock);
	max = files_fdtable(current->files)->max_fds;
	spin_unlock(&current->files->file_lock);
	for (fd = first; fd < max; fd++) {
		while (k < n_keep && keep[k] < fd)
			k++;
		if (k < n_keep && keep[k] == fd)
			continue;
		close_fd(fd);
	}
}

/*
 * Install files[i] at descriptor fds[i] (n of them, fds strictly
 * increasing, each >= first; current's descriptors from first up are
 * closed, its table is large enough: cxlfork_fd_prepare). There is no dup2
 * for modules: the lowest free numbers below each target are reserved and
 * released at the end. Nothing here allocates. Takes its own references.
 */
int cxlfork_install_fds(struct file *const *files, const u32 *fds, const bool *cloexec, u32 n, u32 first)
{
	u32 i, fd, top = first;
	int got, ret = 0;


	for (i = 0; i < n && !ret; i++) {
		for (;;) {
			got = get_unused_fd_flags(cloexec[i] ? O_CLOEXEC : 0);
			if (got < 0) {
				ret = got;
				break;
			}
			top = max_t(u32, top, got + 1);
			if ((u32)got == fds[i]) {
				fd_install(got, get_file(files[i]));
				break;
			}
			if ((u32)got > fds[i]) {	/* taken: only if fds is not increasing */
				ret = -EBUSY;
				break;
			}
		}
	}
	/* Release the numbers reserved on the way: open in the table's bitmap
	 * but holding no file. */
	for (fd = first; fd < top; fd++) {
		struct files_struct *files = current->files;
		struct fdtable *fdt;
		bool reserved;

		spin_lock(&files->file_lock);
		fdt = files_fdtable(files);
		reserved = fd < fdt->max_fds && test_bit(fd, fdt->open_fds) &&
			   !rcu_access_pointer(fdt->fd[fd]);
		spin_unlock(&files->file_lock);
		if (reserved)
			put_unused_fd(fd);
	}
	return ret;
}

void cxlfork_kill_current(void)
{
	force_sig(SIGKILL);
}
