// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim, restore side: the clone VMAs' vm_operations (faults are
 * handled in Rust, clone.rs), and the pieces of "becoming the
 * clone" that touch kernel structures: unmapping the old address space,
 * mm fields, registers, fs/gs base, FPU, signals, rlimits, file descriptors.
 * All functions act on current. Declared for Rust in ffi.rs.
 */
#include <linux/anon_inodes.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmap_lock.h>
#include <linux/pgtable.h>
#include <linux/ptrace.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cacheflush.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/msr.h>
#include <asm/processor.h>
#include <asm/ptrace.h>
#include <asm/segment.h>

#include "shim.h"

/* Implemented in Rust (clone.rs): a clone context is reference counted;
 * every clone VMA holds one reference in vm_private_data. */
vm_fault_t cxlfork_rust_clone_fault(void *ctx, struct vm_area_struct *vma, u64 addr, u32 flags);
void cxlfork_rust_ctx_get(void *ctx);
int cxlfork_rust_clone_access(void *ctx, struct vm_area_struct *vma, u64 addr, void *buf, int len);
void cxlfork_rust_ctx_put(void *ctx);

static vm_fault_t clone_fault(struct vm_fault *vmf)
{
	return cxlfork_rust_clone_fault(vmf->vma->vm_private_data, vmf->vma,
					vmf->address & PAGE_MASK, vmf->flags);
}

/* A VMA was duplicated (fork) or split: the copy holds its own reference. */
static void clone_open(struct vm_area_struct *vma)
{
	cxlfork_rust_ctx_get(vma->vm_private_data);
}

static void clone_close(struct vm_area_struct *vma)
{
	cxlfork_rust_ctx_put(vma->vm_private_data);
}

/*
 * Reads of pages still mapped from the pool by /proc/PID/mem, ptrace, or
 * /proc/PID/cmdline: GUP cannot take a special PTE, so access_remote_vm()
 * falls back here. Writes never come here (GUP breaks copy-on-write first).
 */
static int clone_access(struct vm_area_struct *vma, unsigned long addr, void *buf, int len, int write)
{
	if (write)
		return -EINVAL;
	return cxlfork_rust_clone_access(vma->vm_private_data, vma, addr, buf, len);
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
 * Turn the fresh anonymous private mapping [addr, addr + len) of current into
 * a clone VMA of ctx (which gives it one reference): faults then go to the
 * clone's handler. Its vm_pgoff (addr >> PAGE_SHIFT, kept across mremap)
 * names the image address of each page.
 */
int cxlfork_make_clone_vma(u64 addr, u64 len, void *ctx)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int ret = -EINVAL;

	mmap_write_lock(mm);
	vma = find_vma(mm, addr);
	if (vma && vma->vm_start == addr && vma->vm_end == addr + len && !vma->vm_file &&
	    !vma->vm_ops && !vma->anon_vma && vma->vm_pgoff == addr >> PAGE_SHIFT) {
		vm_flags_set(vma, VM_MIXEDMAP);
		vma->vm_private_data = ctx;
		vma->vm_ops = &clone_vm_ops;
		ret = 0;
	}
	mmap_write_unlock(mm);
	return ret;
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
			ctx = vma->vm_private_data;
			cxlfork_rust_ctx_get(ctx);
			break;
		}
		addr = vma->vm_end;
	}
	mmap_read_unlock(mm);
	return ctx;
}

u64 cxlfork_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

u64 cxlfork_vma_start(struct vm_area_struct *vma)
{
	return vma->vm_start;
}

u64 cxlfork_vma_end(struct vm_area_struct *vma)
{
	return vma->vm_end;
}

vm_fault_t cxlfork_vma_insert_pfn(struct vm_area_struct *vma, u64 addr, u64 pfn)
{
	return vmf_insert_mixed(vma, addr, pfn);
}

vm_fault_t cxlfork_vma_insert_zero(struct vm_area_struct *vma, u64 addr)
{
	return vmf_insert_mixed(vma, addr, zero_pfn(addr));
}

/* Map a local page read-only at addr (it takes its own reference). */
static vm_fault_t insert_local(struct vm_area_struct *vma, u64 addr, struct page *page)
{
	int err = vm_insert_page(vma, addr, page);

	put_page(page);
	if (err == -ENOMEM)
		return VM_FAULT_OOM;
	if (err && err != -EBUSY)
		return VM_FAULT_SIGBUS;
	return VM_FAULT_NOPAGE;
}

/* Map a local copy of 4 KiB of pool memory at src (read with the pool's
 * invalidate-then-read rule). */
vm_fault_t cxlfork_vma_insert_copy(struct vm_area_struct *vma, u64 addr, const void *src)
{
	struct page *page = alloc_page(GFP_HIGHUSER);
	void *dst;

	if (!page)
		return VM_FAULT_OOM;
	dst = kmap_local_page(page);
	clflush_cache_range((void *)src, PAGE_SIZE);
	memcpy(dst, src, PAGE_SIZE);
	kunmap_local(dst);
	return insert_local(vma, addr, page);
}

/* Map a local page holding the file's bytes at pos (a private file page
 * the image does not hold). SIGBUS past the end, as a file mapping. */
vm_fault_t cxlfork_vma_insert_file(struct vm_area_struct *vma, u64 addr, struct file *file, u64 pos)
{
	struct page *page;
	loff_t off = pos;
	ssize_t n;
	void *dst;

	if (pos >= i_size_read(file_inode(file)))
		return VM_FAULT_SIGBUS;
	page = alloc_page(GFP_HIGHUSER | __GFP_ZERO);
	if (!page)
		return VM_FAULT_OOM;
	dst = kmap_local_page(page);
	n = kernel_read(file, dst, PAGE_SIZE, &off);
	kunmap_local(dst);
	if (n < 0) {
		put_page(page);
		return VM_FAULT_SIGBUS;
	}
	return insert_local(vma, addr, page);
}

bool cxlfork_current_single_threaded(void)
{
	return get_nr_threads(current) == 1 && current == current->group_leader;
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

/* Break copy-on-write of n pages at addr now (MoW prefetch): a write GUP
 * takes the clone's own fault path, then the kernel's CoW. */
int cxlfork_prefault_write(u64 addr, u32 n)
{
	struct page *pages[64];
	long got;
	u32 i;

	if (n > ARRAY_SIZE(pages))
		return -EINVAL;
	mmap_read_lock(current->mm);
	got = get_user_pages(addr, n, FOLL_WRITE | FOLL_FORCE, pages);
	mmap_read_unlock(current->mm);
	if (got < 0)
		return got;
	for (i = 0; i < got; i++)
		put_page(pages[i]);
	return got == n ? 0 : -EFAULT;
}

int cxlfork_copy_to_user_page(u64 addr, const void *src)
{
	clflush_cache_range((void *)src, PAGE_SIZE);
	return copy_to_user((void __user *)addr, src, PAGE_SIZE) ? -EFAULT : 0;
}

/* mm fields in MmImage layout (11 words, then auxv). */
void cxlfork_set_mm(const u64 *w, u32 auxv_words)
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
	mmap_write_unlock(mm);
}

#define USER_FLAGS (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | \
		    X86_EFLAGS_SF | X86_EFLAGS_TF | X86_EFLAGS_DF | X86_EFLAGS_OF | \
		    X86_EFLAGS_RF | X86_EFLAGS_AC)

/* Registers in RegsImage layout: user segments, canonical ip/sp/bases. */
int cxlfork_check_regs(const u64 *r)
{
	const struct pt_regs *p = (const struct pt_regs *)r;

	if (p->cs != __USER_CS || p->ss != __USER_DS)
		return -EINVAL;
	if (p->ip >= TASK_SIZE_MAX || p->sp >= TASK_SIZE_MAX)
		return -EINVAL;
	if (r[21] >= TASK_SIZE_MAX || r[22] >= TASK_SIZE_MAX)	/* fs, gs base */
		return -EINVAL;
	return 0;
}

/* Install the image's registers into current's pt_regs (returned to user
 * space by the syscall exit path, through IRET since they changed), with
 * ax as given, and its fs/gs bases. */
void cxlfork_set_regs(const u64 *r, u64 ax)
{
	struct pt_regs *regs = current_pt_regs();
	unsigned long flags = regs->flags;

	memcpy(regs, r, sizeof(*regs));
	regs->flags = (flags & ~USER_FLAGS) | (((const struct pt_regs *)r)->flags & USER_FLAGS);
	regs->flags |= X86_EFLAGS_IF;
	regs->cs = __USER_CS;
	regs->ss = __USER_DS;
	regs->ax = ax;
	regs->orig_ax = -1;

	preempt_disable();
	loadsegment(fs, 0);
	current->thread.fsindex = 0;
	current->thread.fsbase = r[21];
	wrmsrq(MSR_FS_BASE, r[21]);
	current->thread.gsindex = 0;
	current->thread.gsbase = r[22];
	wrmsrq(MSR_KERNEL_GS_BASE, r[22]);
	preempt_enable();
}

/* The image's xsave buffer must be one XRSTOR(S) accepts on this CPU for
 * this task: same size and features, header and MXCSR reserved bits clear. */
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

		if (h->xfeatures & ~fps->xfeatures)
			return -EINVAL;
		if (h->xcomp_bv != mine->xcomp_bv)
			return -EINVAL;
		for (i = 0; i < ARRAY_SIZE(h->reserved); i++)
			if (h->reserved[i])
				return -EINVAL;
	}
	return 0;
}

/* Replace current's saved user FPU state; it is loaded on return to user. */
void cxlfork_fpu_set(const void *buf, u32 len)
{
	kernel_fpu_begin();	/* saves the live user state, marks it to reload */
	memcpy(&x86_task_fpu(current)->fpstate->regs, buf, len);
	kernel_fpu_end();
}

/* Signal state in SigImage layout (see cxlfork_target_sig). */
int cxlfork_sig_check(const u64 *s)
{
	int i;

	if (s[4 * (SIGKILL - 1)] || s[4 * (SIGSTOP - 1)])
		return -EINVAL;
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		u64 cur = s[260 + 2 * i], max = s[261 + 2 * i];

		if (cur > max)
			return -EINVAL;
		/* Raising a hard limit needs CAP_SYS_RESOURCE; RLIMIT_NOFILE is
		 * never raised (its ceiling, nr_open, is not visible here). */
		if (max > READ_ONCE(current->signal->rlim[i].rlim_max) &&
		    (i == RLIMIT_NOFILE || !capable(CAP_SYS_RESOURCE)))
			return -EPERM;
	}
	return 0;
}

void cxlfork_sig_set(const u64 *s)
{
	struct k_sigaction *ka = current->sighand->action;
	sigset_t blocked;
	int i;

	spin_lock_irq(&current->sighand->siglock);
	for (i = 0; i < CXLFORK_NSIG; i++) {
		ka[i].sa.sa_handler = (__sighandler_t)s[4 * i];
		ka[i].sa.sa_flags = s[4 * i + 1];
		ka[i].sa.sa_restorer = (__sigrestore_t)s[4 * i + 2];
		ka[i].sa.sa_mask.sig[0] = s[4 * i + 3] & ~(sigmask(SIGKILL) | sigmask(SIGSTOP));
	}
	spin_unlock_irq(&current->sighand->siglock);
	blocked.sig[0] = s[256] & ~(sigmask(SIGKILL) | sigmask(SIGSTOP));
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	current->sas_ss_sp = s[257];
	current->sas_ss_size = s[258];
	current->sas_ss_flags = s[259];
	task_lock(current->group_leader);
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		current->signal->rlim[i].rlim_cur = s[260 + 2 * i];
		current->signal->rlim[i].rlim_max = s[261 + 2 * i];
	}
	task_unlock(current->group_leader);
	current->personality = s[292];
}

void cxlfork_set_comm(const char *comm)
{
	task_lock(current);
	strscpy_pad(current->comm, comm, TASK_COMM_LEN);
	task_unlock(current);
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

/* Close current's descriptors from `first` up. */
void cxlfork_close_fds_from(u32 first)
{
	u32 fd, max;

	spin_lock(&current->files->file_lock);
	max = files_fdtable(current->files)->max_fds;
	spin_unlock(&current->files->file_lock);
	for (fd = first; fd < max; fd++)
		close_fd(fd);
}

/* Install file at descriptor number fd (free), by reserving the lower free
 * numbers first (there is no exported dup2 for modules). Takes a file ref. */
int cxlfork_install_fd(struct file *file, u32 fd, bool cloexec)
{
	int *held, n_held = 0, n, i, ret = -EBUSY;

	held = kmalloc_array(fd + 1, sizeof(*held), GFP_KERNEL);
	if (!held)
		return -ENOMEM;
	for (;;) {
		n = get_unused_fd_flags(cloexec ? O_CLOEXEC : 0);
		if (n < 0) {
			ret = n;
			break;
		}
		if ((u32)n == fd) {
			fd_install(n, get_file(file));
			ret = 0;
			break;
		}
		if ((u32)n > fd) {	/* fd is taken */
			put_unused_fd(n);
			break;
		}
		held[n_held++] = n;
	}
	for (i = 0; i < n_held; i++)
		put_unused_fd(held[i]);
	kfree(held);
	return ret;
}

void cxlfork_kill_current(void)
{
	force_sig(SIGKILL);
}
