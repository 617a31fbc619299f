// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim, task side: finding, permission-checking, stopping and
 * reading a checkpoint target (registers, FPU, signals, mm fields, VMAs,
 * page tables, open files). Only plain functions over plain buffers cross to
 * Rust; each documents its locking. Declared for Rust in ffi.rs.
 */
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
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
#include <linux/string.h>
#include <linux/utsname.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/msr.h>
#include <asm/ptrace.h>
#include <asm/syscall.h>
#include <asm/unistd.h>

#include "shim.h"

/*
 * A checkpoint target: a pinned task and its mm.
 * Invariants: task and mm hold references; mm == task's mm at lookup.
 */
struct cxlfork_target {
	struct task_struct *task;
	struct mm_struct *mm;
	bool self;
	bool stopped_by_us;
};

/* task_exec_state_get_dumpable() is not exported; this is its body. */
static enum task_dumpable task_dumpable(struct task_struct *task)
{
	struct task_exec_state *exec_state;

	guard(rcu)();
	exec_state = rcu_dereference(task->exec_state);
	return READ_ONCE(exec_state->dumpable);
}

/* PTRACE_MODE_READ_REALCREDS, minus LSM hooks (not callable from a module):
 * same real ids as the target's real, effective and saved ids, and a
 * dumpable task; or CAP_SYS_ADMIN. */
static bool may_checkpoint(struct task_struct *task)
{
	const struct cred *cred = current_cred(), *tcred;
	bool same;

	rcu_read_lock();
	tcred = __task_cred(task);
	same = uid_eq(cred->uid, tcred->euid) && uid_eq(cred->uid, tcred->suid) &&
	       uid_eq(cred->uid, tcred->uid) && gid_eq(cred->gid, tcred->egid) &&
	       gid_eq(cred->gid, tcred->sgid) && gid_eq(cred->gid, tcred->gid);
	rcu_read_unlock();
	if (same && task_dumpable(task) == TASK_DUMPABLE_OWNER)
		return true;
	return capable(CAP_SYS_ADMIN);
}

int cxlfork_target_get(int pid, struct cxlfork_target **out)
{
	struct cxlfork_target *t;
	struct task_struct *task;
	int err;

	if (pid < 0)
		return -EINVAL;
	if (pid == 0 || pid == task_tgid_vnr(current)) {
		task = current;
		get_task_struct(task);
	} else {
		rcu_read_lock();
		task = pid_task(find_vpid(pid), PIDTYPE_PID);
		if (task)
			get_task_struct(task);
		rcu_read_unlock();
		if (!task)
			return -ESRCH;
	}
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t) {
		put_task_struct(task);
		return -ENOMEM;
	}
	t->task = task;
	t->self = task == current;
	t->mm = get_task_mm(task);
	err = -EINVAL;			/* kernel thread, or exiting */
	if (!t->mm || (task->flags & PF_KTHREAD))
		goto fail;
	err = -EPERM;
	if (!t->self && !may_checkpoint(task))
		goto fail;
	err = -EOPNOTSUPP;		/* multi-threaded: not supported yet */
	if (get_nr_threads(task) != 1 || task != task->group_leader)
		goto fail;
	*out = t;
	return 0;
fail:
	cxlfork_target_put(t);
	return err;
}

void cxlfork_target_put(struct cxlfork_target *t)
{
	if (t->mm)
		mmput(t->mm);
	put_task_struct(t->task);
	kfree(t);
}

bool cxlfork_target_is_self(const struct cxlfork_target *t)
{
	return t->self;
}

/*
 * Stop the target (SIGSTOP) and wait until it is off the CPU, so that its
 * pt_regs and FPU buffer in memory are its user state. No-op for self.
 */
int cxlfork_target_stop(struct cxlfork_target *t)
{
	struct task_struct *task = t->task;
	int i;

	if (t->self)
		return 0;
	if (!task_is_stopped(task)) {
		send_sig(SIGSTOP, task, 1);
		t->stopped_by_us = true;
	}
	for (i = 0; ; i++) {
		if (task->exit_state || (READ_ONCE(task->flags) & PF_EXITING))
			return -ESRCH;
		if (task_is_stopped(task) && !READ_ONCE(task->on_cpu) &&
		    (READ_ONCE(task->__state) & __TASK_STOPPED))
			return 0;
		if (fatal_signal_pending(current) || signal_pending(current))
			return -EINTR;
		if (i < 100)
			usleep_range(100, 200);
		else
			msleep(5);
	}
}

/* After the checkpoint: 0 resume (if we stopped it), 1 leave stopped, 2 kill. */
void cxlfork_target_finish(struct cxlfork_target *t, int how)
{
	if (t->self)
		return;
	if (how == 2)
		send_sig(SIGKILL, t->task, 1);
	else if (how == 0 && t->stopped_by_us)
		send_sig(SIGCONT, t->task, 1);
}

/*
 * Registers in struct pt_regs order (21 words), then fs base, gs base and
 * the origin (CXLFORK_REGS_*): 24 words.
 */
int cxlfork_target_regs(struct cxlfork_target *t, u64 *out)
{
	struct task_struct *task = t->task;
	struct pt_regs *regs = task_pt_regs(task);
	u64 origin = CXLFORK_REGS_STOPPED;
	unsigned long fsbase, gsbase;

	BUILD_BUG_ON(sizeof(struct pt_regs) != 21 * sizeof(u64));
	memcpy(out, regs, sizeof(*regs));
	if (t->self) {
		origin = CXLFORK_REGS_SELF;
		rdmsrq(MSR_FS_BASE, fsbase);
		/* In the kernel (after swapgs) the user's GS base is the inactive one. */
		rdmsrq(MSR_KERNEL_GS_BASE, gsbase);
	} else {
		fsbase = task->thread.fsbase;
		gsbase = task->thread.gsbase;
		/* Stopped inside a system call? Record what the kernel's own
		 * signal-restart logic would do on resume (signal.c). */
		if ((long)regs->orig_ax >= 0) {
			struct pt_regs *o = (struct pt_regs *)out;

			switch ((long)regs->ax) {
			case -ERESTARTNOHAND:
			case -ERESTARTSYS:
			case -ERESTARTNOINTR:
				o->ax = o->orig_ax;
				o->ip -= 2;
				origin = CXLFORK_REGS_RESTART;
				break;
			case -ERESTART_RESTARTBLOCK:
				/* The restart block stays with this task: the
				 * clone sees the call interrupted. */
				o->ax = -EINTR;
				origin = CXLFORK_REGS_INTERRUPTED;
				break;
			}
		}
	}
	out[21] = fsbase;
	out[22] = gsbase;
	out[23] = origin;
	return 0;
}

/*
 * Copy the task's FPU/extended state (the kernel's xsave buffer) into buf.
 * For self, kernel_fpu_begin() first saves the live user registers into it.
 */
int cxlfork_target_fpu(struct cxlfork_target *t, void *buf, u32 buflen, u32 *len, u64 *xfeatures)
{
	struct fpstate *fps;

	if (t->self)
		kernel_fpu_begin();
	fps = x86_task_fpu(t->task)->fpstate;
	if (fps->size > buflen) {
		if (t->self)
			kernel_fpu_end();
		return -E2BIG;
	}
	memcpy(buf, &fps->regs, fps->size);
	*len = fps->size;
	*xfeatures = fps->xfeatures;
	if (t->self)
		kernel_fpu_end();
	return 0;
}

/*
 * Signal state in SigImage layout: 64 x {handler, flags, restorer, mask},
 * blocked, ss_sp, ss_size, ss_flags, 16 x {cur, max}, personality, 0.
 */
void cxlfork_target_sig(struct cxlfork_target *t, u64 *out)
{
	struct task_struct *task = t->task;
	int i;

	spin_lock_irq(&task->sighand->siglock);
	for (i = 0; i < CXLFORK_NSIG; i++) {
		struct sigaction *sa = &task->sighand->action[i].sa;

		out[4 * i + 0] = (u64)sa->sa_handler;
		out[4 * i + 1] = sa->sa_flags;
		out[4 * i + 2] = (u64)sa->sa_restorer;
		out[4 * i + 3] = sa->sa_mask.sig[0];
	}
	out[256] = task->blocked.sig[0];
	spin_unlock_irq(&task->sighand->siglock);
	out[257] = task->sas_ss_sp;
	out[258] = task->sas_ss_size;
	out[259] = task->sas_ss_flags;
	task_lock(task->group_leader);
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		out[260 + 2 * i] = task->signal->rlim[i].rlim_cur;
		out[261 + 2 * i] = task->signal->rlim[i].rlim_max;
	}
	task_unlock(task->group_leader);
	out[292] = task->personality;
	out[293] = 0;
}

/* mm fields in MmImage layout: 11 words, then auxv (auxv_words). */
void cxlfork_target_mm(struct cxlfork_target *t, u64 *out, u32 auxv_words)
{
	struct mm_struct *mm = t->mm;
	u32 i;

	out[0] = mm->start_code;
	out[1] = mm->end_code;
	out[2] = mm->start_data;
	out[3] = mm->end_data;
	out[4] = mm->start_brk;
	out[5] = mm->brk;
	out[6] = mm->start_stack;
	out[7] = mm->arg_start;
	out[8] = mm->arg_end;
	out[9] = mm->env_start;
	out[10] = mm->env_end;
	for (i = 0; i < auxv_words; i++)
		out[11 + i] = i < ARRAY_SIZE(mm->saved_auxv) ? mm->saved_auxv[i] : 0;
}

void cxlfork_target_ids(struct cxlfork_target *t, u32 *uid, u32 *gid, u32 *pid, char *comm)
{
	const struct cred *c;

	rcu_read_lock();
	c = __task_cred(t->task);
	*uid = from_kuid_munged(current_user_ns(), c->euid);
	*gid = from_kgid_munged(current_user_ns(), c->egid);
	rcu_read_unlock();
	*pid = task_tgid_vnr(t->task);
	strscpy_pad(comm, t->task->comm, TASK_COMM_LEN);
}

void cxlfork_kernel_release(char *buf, size_t len)
{
	strscpy(buf, utsname()->release, len);
}

int cxlfork_mm_read_lock(struct cxlfork_target *t)
{
	return mmap_read_lock_killable(t->mm);
}

void cxlfork_mm_read_unlock(struct cxlfork_target *t)
{
	mmap_read_unlock(t->mm);
}

/*
 * The first VMA ending above addr: fills out = {start, end, vm_flags, pgoff,
 * kind} and its path or special name into path (NUL-terminated).
 * Returns 0, 1 if there is none, or -EOPNOTSUPP for a mapping cxlfork cannot
 * checkpoint (hugetlb, PFN/IO maps, shared mappings of unlinked non-shmem
 * files), -ENAMETOOLONG. Call with the mmap lock held.
 */
int cxlfork_vma_next(struct cxlfork_target *t, u64 addr, u64 *out, char *path, size_t pathlen)
{
	struct mm_struct *mm = t->mm;
	struct vm_area_struct *vma = find_vma(mm, addr);
	const char *name;
	u64 kind;

	path[0] = 0;
	if (!vma)
		return 1;
	out[0] = vma->vm_start;
	out[1] = vma->vm_end;
	out[2] = vma->vm_flags;
	out[3] = vma->vm_pgoff;
	name = cxlfork_special_name(vma);
	if (name) {
		if (!strcmp(name, "[vdso]"))
			kind = CXLFORK_VMA_VDSO;
		else if (!strcmp(name, "[vvar]"))
			kind = CXLFORK_VMA_VVAR;
		else if (!strcmp(name, "[vvar_vclock]"))
			kind = CXLFORK_VMA_VVAR_VCLOCK;
		else
			kind = CXLFORK_VMA_SPECIAL;
		strscpy(path, name, pathlen);
	} else if (vma->vm_flags & (VM_HUGETLB | VM_PFNMAP | VM_IO | VM_MIXEDMAP)) {
		return -EOPNOTSUPP;
	} else if (vma->vm_file) {
		char *p = d_path(&vma->vm_file->f_path, path, pathlen);

		if (IS_ERR(p))
			return PTR_ERR(p);
		memmove(path, p, strlen(p) + 1);
		if (vma->vm_flags & VM_SHARED) {
			/* Unlinked shmem (MAP_SHARED|MAP_ANONYMOUS, memfd, deleted
			 * tmpfs files) cannot be reopened: copy its pages. */
			if (file_inode(vma->vm_file)->i_nlink == 0) {
				if (!shmem_file(vma->vm_file))
					return -EOPNOTSUPP;
				kind = CXLFORK_VMA_SHARED_ANON;
			} else {
				kind = CXLFORK_VMA_FILE_SHARED;
			}
		} else {
			kind = CXLFORK_VMA_FILE_PRIVATE;
		}
	} else if (vma->vm_flags & VM_SHARED) {
		return -EOPNOTSUPP;
	} else if (vma->vm_start <= mm->brk && vma->vm_end >= mm->start_brk &&
		   vma->vm_start >= mm->start_brk) {
		kind = CXLFORK_VMA_HEAP;
	} else if (vma->vm_start <= mm->start_stack && vma->vm_end >= mm->start_stack) {
		kind = CXLFORK_VMA_STACK;
	} else {
		kind = CXLFORK_VMA_ANON;
	}
	out[4] = kind;
	return 0;
}

/*
 * Read the leaf page table mapping the 2 MiB block at addr (aligned) into
 * ptes[512], as the hardware sees it. A huge PMD is expanded into the 512
 * entries it stands for. Returns 1 if filled, 0 if there is no table (all
 * entries none), -EAGAIN for a swap or migration entry (retry later),
 * -EOPNOTSUPP for a huge PUD. Call with the mmap lock held; the target is
 * stopped, and page tables are freed by RCU, so a lockless read is stable.
 */
int cxlfork_read_leaf(struct cxlfork_target *t, u64 addr, u64 *ptes)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud, pudv;
	pmd_t *pmd, pmdv;
	pte_t *pte;
	int i, ret = 1;

	pgd = pgd_offset(t->mm, addr);
	if (pgd_none(READ_ONCE(*pgd)))
		return 0;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(READ_ONCE(*p4d)))
		return 0;
	pud = pud_offset(p4d, addr);
	pudv = READ_ONCE(*pud);
	if (pud_none(pudv))
		return 0;
	if (pud_leaf(pudv))
		return -EOPNOTSUPP;
	pmd = pmd_offset(pud, addr);
	pmdv = pmdp_get_lockless(pmd);
	if (pmd_none(pmdv))
		return 0;
	if (!pmd_present(pmdv))
		return -EAGAIN;
	if (pmd_leaf(pmdv)) {
		u64 v = pmd_val(pmdv);
		u64 flags = v & ~(PTE_PFN_MASK | _PAGE_PSE | _PAGE_PAT_LARGE);
		u64 pfn = pmd_pfn(pmdv);

		if (v & _PAGE_PAT_LARGE)
			flags |= _PAGE_PAT;
		for (i = 0; i < PTRS_PER_PTE; i++)
			ptes[i] = ((pfn + i) << PAGE_SHIFT) | flags;
		return 1;
	}
	rcu_read_lock();
	pte = (pte_t *)pmd_page_vaddr(pmdv);
	for (i = 0; i < PTRS_PER_PTE; i++) {
		pte_t e = READ_ONCE(pte[i]);

		if (!pte_none(e) && !pte_present(e))
			ret = -EAGAIN;
		ptes[i] = pte_val(e);
	}
	rcu_read_unlock();
	return ret;
}

bool cxlfork_pte_is_zero_page(u64 pte)
{
	return is_zero_pfn(pte_pfn(__pte(pte)));
}

/*
 * Copy the n pages mapped at addr (all mapped, n <= 64) to dst (n pages of
 * pool memory), flushed. Pins them with get_user_pages_remote, which needs
 * the mmap lock held. FOLL_FORCE reads PROT_NONE/unreadable private pages.
 */
int cxlfork_copy_pages(struct cxlfork_target *t, u64 addr, u32 n, void *dst)
{
	struct page *pages[64];
	long got;
	u32 i;

	if (n > ARRAY_SIZE(pages))
		return -EINVAL;
	got = get_user_pages_remote(t->mm, addr, n, FOLL_FORCE, pages, NULL);
	if (got < 0)
		return got;
	for (i = 0; i < got; i++) {
		void *src = kmap_local_page(pages[i]);

		memcpy_flushcache(dst + (size_t)i * PAGE_SIZE, src, PAGE_SIZE);
		kunmap_local(src);
		put_page(pages[i]);
	}
	wmb();
	return got == n ? 0 : -EFAULT;
}

/*
 * The first open fd >= fd: out = {fd, kind, f_flags, cloexec, pos, i_mode}
 * (6 words) and its path. Returns 0, or 1 if there is none.
 */
int cxlfork_file_next(struct cxlfork_target *t, u32 fd, u64 *out, char *path, size_t pathlen)
{
	struct task_struct *task = t->task;
	struct files_struct *files;
	struct file *file = NULL;
	struct fdtable *fdt;
	bool cloexec = false;
	umode_t mode;
	char *p;

	task_lock(task);
	files = task->files;
	if (files) {
		spin_lock(&files->file_lock);
		fdt = files_fdtable(files);
		for (; fd < fdt->max_fds; fd++) {
			file = rcu_dereference_protected(fdt->fd[fd], lockdep_is_held(&files->file_lock));
			if (file) {
				get_file(file);
				cloexec = close_on_exec(fd, files);
				break;
			}
		}
		spin_unlock(&files->file_lock);
	}
	task_unlock(task);
	if (!file)
		return 1;
	mode = file_inode(file)->i_mode;
	out[0] = fd;
	out[1] = S_ISREG(mode) ? CXLFORK_FILE_REG : S_ISDIR(mode) ? CXLFORK_FILE_DIR :
		 S_ISCHR(mode) ? CXLFORK_FILE_CHR : S_ISBLK(mode) ? CXLFORK_FILE_BLK :
		 S_ISFIFO(mode) ? CXLFORK_FILE_FIFO : S_ISSOCK(mode) ? CXLFORK_FILE_SOCK :
		 CXLFORK_FILE_OTHER;
	out[2] = file->f_flags;
	out[3] = cloexec;
	out[4] = file->f_pos;
	out[5] = mode;
	p = d_path(&file->f_path, path, pathlen);
	if (IS_ERR(p))
		strscpy(path, "?", pathlen);
	else
		memmove(path, p, strlen(p) + 1);
	fput(file);
	return 0;
}

void *cxlfork_target_clone_ctx(struct cxlfork_target *t)
{
	return cxlfork_clone_ctx_of(t->mm);
}
