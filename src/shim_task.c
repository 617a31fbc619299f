// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim, task side: finding and permission-checking a checkpoint
 * target, and reading it (registers, FPU, signals, mm fields, VMAs, page
 * tables, open files). Only plain functions over plain buffers cross to
 * Rust; each documents its locking. Declared for Rust in ffi.rs.
 *
 * Another process is never read from outside: it is made to checkpoint
 * itself (cxlfork_target_run), in a task_work it runs at its next return
 * towards user space, in its own context. There its registers, signal
 * handlers, files and mm are its own and stay still (it runs kernel code,
 * no SIGCONT can let it go on), and it cannot be reaped while it reads
 * them. The caller waits for it.
 */
#include <linux/cred.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/fdtable.h>
#include <linux/fs_struct.h>
#include <linux/futex.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/magic.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
#include <linux/pkeys.h>
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
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/task_work.h>
#include <linux/utsname.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/pkru.h>
#include <asm/prctl.h>
#include <asm/msr.h>
#include <asm/ptrace.h>
#include <asm/syscall.h>
#include <asm/unistd.h>

#include "shim.h"

/*
 * A checkpoint target: a pinned task and its mm.
 * Invariants: task and mm hold references; mm == task's mm at lookup;
 * park, once set (only for current), holds the other threads of current's
 * process until the target is put or its checkpoint job ends.
 */
struct cxlfork_target {
	struct task_struct *task;
	struct mm_struct *mm;
	bool self;		/* task == current */
	bool in_work;		/* current, in its checkpoint task_work */
	struct cxlfork_park *park;
};

/* task_exec_state_get_dumpable() is not exported; this is its body. */
static enum task_dumpable task_dumpable(struct task_struct *task)
{
	struct task_exec_state *exec_state;

	guard(rcu)();
	exec_state = rcu_dereference(task->exec_state);
	return READ_ONCE(exec_state->dumpable);
}

/*
 * The right to checkpoint another process is the right to ptrace-attach
 * to it, with every LSM (Yama included) asked: the module cannot call
 * ptrace_may_access(), but opening /proc/PID/mem runs exactly that check
 * (PTRACE_MODE_ATTACH_FSCREDS). The caller hands that descriptor over:
 * a procfs "mem" file, readable, whose private data is the target's mm.
 */
static int check_mem_fd(struct task_struct *task, struct mm_struct *mm, int fd)
{
	CLASS(fd, f)(fd);
	struct file *file = fd_file(f);
	struct dentry *d;

	if (fd_empty(f))
		return -EPERM;
	d = file->f_path.dentry;
	if (d->d_sb->s_magic != PROC_SUPER_MAGIC || strcmp(d->d_name.name, "mem") ||
	    !(file->f_mode & FMODE_READ) || file->private_data != mm)
		return -EPERM;
	return 0;
}

/* May current read another process's clone statistics: the same user, or
 * CAP_SYS_ADMIN. */
static bool may_stat(struct task_struct *task)
{
	bool same;

	rcu_read_lock();
	same = uid_eq(current_euid(), __task_cred(task)->euid);
	rcu_read_unlock();
	return same || capable(CAP_SYS_ADMIN);
}

/*
 * Pin process pid (0: current) for purpose CXLFORK_TARGET_CHECKPOINT (by
 * pid: mem_fd must be the caller's /proc/PID/mem; pid names a process, not
 * one of its other threads) or CXLFORK_TARGET_STAT (the same user, or
 * CAP_SYS_ADMIN).
 */
int cxlfork_target_get(int pid, int mem_fd, int purpose, struct cxlfork_target **out)
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
		task = pid_task(find_vpid(pid), purpose == CXLFORK_TARGET_STAT ? PIDTYPE_PID : PIDTYPE_TGID);
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
	/* Its checkpoint job runs in its main thread, which must be alive
	 * (a process whose main thread called pthread_exit has none). */
	err = -EOPNOTSUPP;
	if (purpose == CXLFORK_TARGET_CHECKPOINT && !t->self && (task->exit_state || (task->flags & PF_EXITING)) &&
	    get_nr_threads(task) > 1) {
		pr_info("cxlfork: checkpoint: the process's main thread has exited\n");
		goto fail;
	}
	t->mm = get_task_mm(task);
	err = -EINVAL;			/* kernel thread, or exiting */
	if (!t->mm || (task->flags & PF_KTHREAD))
		goto fail;
	if (purpose == CXLFORK_TARGET_STAT) {
		err = -EPERM;
		if (!t->self && !may_stat(task))
			goto fail;
	} else {
		if (!t->self) {
			err = check_mem_fd(task, t->mm, mem_fd);
			if (err)
				goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	cxlfork_target_put(t);
	return err;
}

void cxlfork_target_put(struct cxlfork_target *t)
{
	if (t->park)
		cxlfork_park_release(t->park, false);
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
 * Checkpointing another process: a job it runs in its own context.
 * Invariants: ref counts the caller and the queued work; pin keeps this
 * module loaded until the work has run (its last fput is deferred); arg
 * (the caller's) is used only in state RUNNING, which the caller waits
 * out. A queued task_work cannot be cancelled by a module: a caller that
 * gives up marks the job ABANDONED, and the work (which always runs, at
 * the target's next return to user space or at its exit) then skips it.
 */
enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

struct cxlfork_job {
	struct callback_head cb;
	struct completion done;
	refcount_t ref;
	spinlock_t lock;	/* state */
	int state;
	struct file *pin;
	void *arg;		/* the Rust side's job (cxlfork_rust_ckpt_job) */
	int after;		/* 0 resume, 1 leave stopped, 2 kill */
	bool was_stopped;	/* stopped before: stopped again after */
	int result;
};

/* Implemented in Rust (checkpoint.rs): checkpoint current, in its work. */
int cxlfork_rust_ckpt_job(void *arg, struct cxlfork_target *self);

static void job_put(struct cxlfork_job *job)
{
	if (refcount_dec_and_test(&job->ref)) {
		fput(job->pin);
		kfree(job);
	}
}

static void job_fn(struct callback_head *cb)
{
	struct cxlfork_job *job = container_of(cb, struct cxlfork_job, cb);
	struct cxlfork_target self = { .task = current, .self = true, .in_work = true };
	bool abandoned, stop;

	spin_lock(&job->lock);
	abandoned = job->state == JOB_ABANDONED;
	if (!abandoned)
		job->state = JOB_RUNNING;
	spin_unlock(&job->lock);
	if (abandoned) {
		job->result = -EINTR;
	} else if ((current->flags & PF_EXITING) || !current->mm || fatal_signal_pending(current)) {
		/* Run from exit_task_work(), the mm is gone: it exited. */
		job->result = -ESRCH;
	} else {
		self.mm = current->mm;
		job->result = cxlfork_rust_ckpt_job(job->arg, &self);
		/* Killed midway (GUP stops short on a fatal signal): whatever
		 * failed, the cause is the target's death. */
		if (job->result && fatal_signal_pending(current))
			job->result = -ESRCH;
	}
	/* Sent to the process while its other threads are still held: each
	 * takes it (a stop, or the exit) on its way out. */
	if (job->after == 2 && !job->result) {
		send_sig(SIGKILL, current, 1);
		stop = false;
	} else {
		stop = (job->after == 1 && !abandoned) || job->was_stopped;
		if (stop)
			send_sig(SIGSTOP, current, 1);	/* taken on its way out of here */
	}
	if (self.park)
		cxlfork_park_release(self.park, stop);
	spin_lock(&job->lock);
	if (!abandoned)
		job->state = JOB_DONE;
	spin_unlock(&job->lock);
	complete(&job->done);
	job_put(job);
}

/*
 * Make the target checkpoint itself (cxlfork_rust_ckpt_job(arg) in its own
 * context) and wait for it; then resume it, leave it stopped or kill it
 * (after: 0, 1, 2). A target stopped by SIGSTOP is continued to run the
 * job and stopped again after (its parent sees it continue and stop); a
 * traced one is refused (EBUSY). Returns the job's result, -ESRCH if the
 * target exits first, -EINTR if the caller is killed (or -ETIMEDOUT after
 * a minute) before the target took the job.
 */
int cxlfork_target_run(struct cxlfork_target *t, void *arg, int after, struct file *pin)
{
	struct task_struct *task = t->task;
	struct cxlfork_job *job;
	long left;
	int err, i;

	if (t->self)
		return -EINVAL;
	if (task_is_traced(task))
		return -EBUSY;
	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job)
		return -ENOMEM;
	init_completion(&job->done);
	refcount_set(&job->ref, 2);
	spin_lock_init(&job->lock);
	job->state = JOB_QUEUED;
	job->pin = get_file(pin);
	job->arg = arg;
	job->after = after;
	job->was_stopped = task_is_stopped(task);
	init_task_work(&job->cb, job_fn);
	err = task_work_add(task, &job->cb, TWA_SIGNAL);
	if (err) {
		fput(job->pin);
		kfree(job);
		return -ESRCH;
	}
	if (job->was_stopped)
		send_sig(SIGCONT, task, 1);
	left = wait_for_completion_killable_timeout(&job->done, 60 * HZ);
	if (left <= 0) {
		bool abandon;

		spin_lock(&job->lock);
		abandon = job->state == JOB_QUEUED;
		if (abandon)
			job->state = JOB_ABANDONED;
		spin_unlock(&job->lock);
		if (abandon) {
			/* Not started: it will skip the job (and drop its ref). */
			job_put(job);
			return left ? -EINTR : -ETIMEDOUT;
		}
		/* Running: it uses arg until it is done, which takes as long
		 * as the copy (not counted as a hung task: TASK_IDLE). */
		wait_for_completion_state(&job->done, TASK_IDLE);
	}
	err = job->result;
	/* Return once a stopped target is stopped again, as callers expect. */
	for (i = 0; i < 200 && !err && (after == 1 || job->was_stopped) && !task_is_stopped(task) &&
		    !(READ_ONCE(task->flags) & PF_EXITING); i++)
		msleep(5);
	job_put(job);
	return err;
}

/* The restartable-syscall state of a task stopped in a system call, in the
 * form the kernel's own signal-restart logic (arch/x86/kernel/signal.c)
 * would give it on resume. */
static u64 restart_form(struct pt_regs *o)
{
	if ((long)o->orig_ax < 0)
		return CXLFORK_REGS_STOPPED;
	switch ((long)o->ax) {
	case -ERESTARTNOHAND:
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
		o->ax = o->orig_ax;
		o->ip -= 2;
		return CXLFORK_REGS_RESTART;
	case -ERESTART_RESTARTBLOCK:
		/* The restart block (its function is this kernel's) cannot
		 * follow the clone: the clone re-issues the original call
		 * with its original arguments (a sleep or wait may then last
		 * longer than asked, which these calls allow). A call already
		 * restarted once has lost its arguments: -EINTR, as a signal
		 * that interrupts it would give. */
		if (o->orig_ax != __NR_restart_syscall) {
			o->ax = o->orig_ax;
			o->ip -= 2;
			return CXLFORK_REGS_RESTART;
		}
		o->ax = -EINTR;
		return CXLFORK_REGS_INTERRUPTED;
	}
	return CXLFORK_REGS_STOPPED;
}

/*
 * The target's per-thread state. For self, the registers are those of the
 * CHECKPOINT ioctl (a restore makes it return the clone number); for a
 * stopped target, those it stopped with, in restarted form.
 */
int cxlfork_target_task(struct cxlfork_target *t, struct cxlfork_task_state *out)
{
	struct task_struct *task = t->task;
	struct pt_regs *regs = task_pt_regs(task);
	unsigned long fsbase, gsbase;

	BUILD_BUG_ON(sizeof(struct pt_regs) != sizeof(out->regs));
	BUILD_BUG_ON(sizeof(struct cxlfork_task_state) != 39 * 8);	/* ffi::TaskState */
	BUILD_BUG_ON(sizeof(struct cxlfork_proc_state) != 296 * 8);	/* ffi::ProcState */
	memset(out, 0, sizeof(*out));
	memcpy(out->regs, regs, sizeof(*regs));
	if (t->self && !t->in_work) {
		out->origin = CXLFORK_REGS_SELF;
		rdmsrq(MSR_FS_BASE, fsbase);
		/* In the kernel (after swapgs) the user's GS base is the inactive one. */
		rdmsrq(MSR_KERNEL_GS_BASE, gsbase);
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
		out->pkru = cpu_feature_enabled(X86_FEATURE_OSPKE) ? read_pkru() : 0;
#endif
	} else {
		/* In its task_work: the registers it entered the kernel with. */
		rdmsrq(MSR_FS_BASE, fsbase);
		rdmsrq(MSR_KERNEL_GS_BASE, gsbase);
		out->origin = restart_form((struct pt_regs *)out->regs);
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
		out->pkru = cpu_feature_enabled(X86_FEATURE_OSPKE) ? read_pkru() : 0;
#endif
	}
	out->fs_base = fsbase;
	out->gs_base = gsbase;

	/* Stopped in sigsuspend/ppoll/pselect/epoll_pwait: blocked is the
	 * call's temporary mask; the task's own is saved until the call ends.
	 * The clone re-issues the call, which sets the temporary mask again. */
	spin_lock_irq(&task->sighand->siglock);
	out->blocked = (t->in_work && test_tsk_restore_sigmask(task)) ? task->saved_sigmask.sig[0] : task->blocked.sig[0];
	spin_unlock_irq(&task->sighand->siglock);
	out->ss_sp = task->sas_ss_sp;
	out->ss_size = task->sas_ss_size;
	/* Never SS_ONSTACK: that is derived from sp, not stored. */
	out->ss_flags = task->sas_ss_flags & SS_AUTODISARM;
	if (!task->sas_ss_size)
		out->ss_flags |= SS_DISABLE;
#ifdef CONFIG_RSEQ
	out->rseq = (u64)task->rseq.usrptr;
	out->rseq_len = task->rseq.len;
	out->rseq_sig = task->rseq.sig;
	out->rseq_version = task->rseq.event.has_rseq;
#endif
#ifdef CONFIG_FUTEX
	out->robust_list = (u64)task->futex.robust_list;
	out->robust_len = task->futex.robust_list ? sizeof(struct robust_list_head) : 0;
#endif
	out->clear_child_tid = (u64)task->clear_child_tid;
	out->timer_slack_ns = task->timer_slack_ns;
	out->tid = task_pid_vnr(task);
	strscpy_pad(out->comm, task->comm, sizeof(out->comm));
	out->nice = task_nice(task);
	out->policy = task->policy;
	out->rt_priority = task->rt_priority;
	if (task->sched_reset_on_fork) {	/* what a fork child gets */
		if (out->policy != SCHED_NORMAL && out->policy != SCHED_BATCH && out->policy != SCHED_IDLE)
			out->policy = SCHED_NORMAL;
		out->rt_priority = 0;
		if (out->nice < 0)
			out->nice = 0;
	}
	if (out->policy != SCHED_NORMAL && out->policy != SCHED_BATCH && out->policy != SCHED_IDLE &&
	    out->policy != SCHED_FIFO && out->policy != SCHED_RR) {
		pr_info("cxlfork: checkpoint: scheduling policy %u (deadline?) cannot be given to a clone\n", out->policy);
		return -EOPNOTSUPP;
	}
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

static bool current_uses_io_uring(void)
{
#ifdef CONFIG_IO_URING
	return current->io_uring;
#else
	return false;
#endif
}

/*
 * Current's per-thread state and FPU buffer (allocated: *fpu, the caller
 * kvfrees it), read in its own checkpoint task_work (shim_park.c), as a
 * target's main thread is in its job.
 */
int cxlfork_capture_self(struct cxlfork_task_state *s, void **fpu, u32 *len, u64 *xfeatures)
{
	struct cxlfork_target self = { .task = current, .mm = current->mm, .self = true, .in_work = true };
	struct fpstate *fps = x86_task_fpu(current)->fpstate;
	u32 size = fps->size;
	int err;

	/* Its work run from inside a call that runs task works itself
	 * (io_uring's wait, a KVM vCPU): not at the user/kernel boundary,
	 * its registers would not be where it could resume. */
	if (fps->is_guest || current_uses_io_uring()) {
		pr_info("cxlfork: checkpoint: thread %d uses io_uring or runs a KVM vCPU\n", task_pid_vnr(current));
		return -EOPNOTSUPP;
	}
	err = cxlfork_target_task(&self, s);
	if (err)
		return err;
	*fpu = kvmalloc(size, GFP_KERNEL);
	if (!*fpu)
		return -ENOMEM;
	return cxlfork_target_fpu(&self, *fpu, size, len, xfeatures);
}

/*
 * Hold the other threads of the target's process (current) still until
 * the target is put or its job ends; each records its state first
 * (cxlfork_target_park_thread). See cxlfork_park_others for the errors.
 */
int cxlfork_target_park(struct cxlfork_target *t, struct file *pin)
{
	if (!t->self || t->task != current || t->park)
		return -EINVAL;
	return cxlfork_park_others(pin, &t->park);
}

u32 cxlfork_target_park_count(const struct cxlfork_target *t)
{
	return t->park ? cxlfork_park_count(t->park) : 0;
}

int cxlfork_target_park_thread(const struct cxlfork_target *t, u32 i, struct cxlfork_task_state *s,
			       void *fpu, u32 cap, u32 *len, u64 *xfeatures)
{
	if (!t->park)
		return -EINVAL;
	return cxlfork_park_thread(t->park, i, s, fpu, cap, len, xfeatures);
}

/* Image mm flags (CXLFORK_MMF_*) of an mm. */
static u64 image_mm_flags(struct mm_struct *mm)
{
	u64 f = 0;

	if (mm_flags_test(MMF_DISABLE_THP_COMPLETELY, mm))
		f |= CXLFORK_MMF_THP_DISABLE;
	if (mm_flags_test(MMF_DISABLE_THP_EXCEPT_ADVISED, mm))
		f |= CXLFORK_MMF_THP_DISABLE_EXCEPT_ADVISED;
	if (mm_flags_test(MMF_VM_MERGE_ANY, mm))
		f |= CXLFORK_MMF_KSM_MERGE_ANY;
	if (mm_flags_test(MMF_HAS_MDWE, mm))
		f |= CXLFORK_MMF_MDWE;
	if (mm_flags_test(MMF_HAS_MDWE_NO_INHERIT, mm))
		f |= CXLFORK_MMF_MDWE_NO_INHERIT;
	return f;
}

/*
 * Process-wide state: signal actions, limits, personality, umask, mm
 * flags, protection keys, and the clocks at this instant. -EOPNOTSUPP for
 * state a restore cannot give a clone (an LDT, KSM merge-any, an enabled
 * user shadow stack).
 */
int cxlfork_target_proc(struct cxlfork_target *t, struct cxlfork_proc_state *out)
{
	struct task_struct *task = t->task;
	struct mm_struct *mm = t->mm;
	int i;

	memset(out, 0, sizeof(*out));
	spin_lock_irq(&task->sighand->siglock);
	for (i = 0; i < CXLFORK_NSIG; i++) {
		struct sigaction *sa = &task->sighand->action[i].sa;

		out->actions[i][0] = (u64)sa->sa_handler;
		out->actions[i][1] = sa->sa_flags;
		out->actions[i][2] = (u64)sa->sa_restorer;
		out->actions[i][3] = sa->sa_mask.sig[0];
	}
	spin_unlock_irq(&task->sighand->siglock);
	task_lock(task->group_leader);
	for (i = 0; i < CXLFORK_NRLIMITS && i < RLIM_NLIMITS; i++) {
		out->rlim[i][0] = task->signal->rlim[i].rlim_cur;
		out->rlim[i][1] = task->signal->rlim[i].rlim_max;
	}
	task_unlock(task->group_leader);
	out->personality = task->personality;
	task_lock(task);
	out->umask = task->fs ? task->fs->umask : 0022;
	task_unlock(task);
	if (task_no_new_privs(task))
		out->proc_flags |= CXLFORK_PROC_NO_NEW_PRIVS;
	out->dumpable = task_dumpable(task);
	out->coredump_filter = (__mm_flags_get_word(mm) & MMF_DUMP_FILTER_MASK) >> MMF_DUMP_FILTER_SHIFT;
	out->mm_flags = image_mm_flags(mm);
	/* Without OSPKE the mm's key fields were never set up (zero). */
	out->pkey_map = 1;
	out->exec_only_pkey = U32_MAX;
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
	if (cpu_feature_enabled(X86_FEATURE_OSPKE)) {
		out->pkey_map = mm->context.pkey_allocation_map;
		out->exec_only_pkey = (u32)(s32)mm->context.execute_only_pkey;
	}
#endif
	out->realtime_ns = ktime_get_real_ns();
	out->monotonic_ns = ktime_get_ns();
	out->boottime_ns = ktime_get_boottime_ns();

	if (out->mm_flags & CXLFORK_MMF_KSM_MERGE_ANY) {
		pr_info("cxlfork: checkpoint: PR_SET_MEMORY_MERGE (KSM) cannot be given to a clone\n");
		return -EOPNOTSUPP;
	}
#ifdef CONFIG_MODIFY_LDT_SYSCALL
	if (READ_ONCE(mm->context.ldt)) {
		pr_info("cxlfork: checkpoint: a process with an LDT (modify_ldt) is not supported\n");
		return -EOPNOTSUPP;
	}
#endif
#ifdef CONFIG_X86_USER_SHADOW_STACK
	if (task->thread.features & ARCH_SHSTK_SHSTK) {
		pr_info("cxlfork: checkpoint: a process with a user shadow stack is not supported\n");
		return -EOPNOTSUPP;
	}
#endif
	return 0;
}

/* The path of the target's current directory (which 0) or executable (1). */
int cxlfork_target_path(struct cxlfork_target *t, int which, char *buf, size_t len)
{
	struct path path;
	struct file *exe;
	char *p;

	buf[0] = 0;
	if (which == 0) {
		task_lock(t->task);
		if (!t->task->fs) {
			task_unlock(t->task);
			return 0;
		}
		get_fs_pwd(t->task->fs, &path);
		task_unlock(t->task);
	} else {
		rcu_read_lock();
		exe = get_file_rcu(&t->mm->exe_file);
		rcu_read_unlock();
		if (!exe)
			return 0;
		path = exe->f_path;
		path_get(&path);
		fput(exe);
	}
	p = d_path(&path, buf, len);
	path_put(&path);
	if (IS_ERR(p)) {
		buf[0] = 0;
		return PTR_ERR(p) == -ENAMETOOLONG ? -ENAMETOOLONG : 0;
	}
	memmove(buf, p, strlen(p) + 1);
	return 0;
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
	/* The kernel's own ids (initial user namespace): an image's owner is
	 * the same user whatever namespace looks at it. */
	*uid = from_kuid(&init_user_ns, c->euid);
	*gid = from_kgid(&init_user_ns, c->egid);
	rcu_read_unlock();
	*pid = task_tgid_vnr(t->task);
	strscpy_pad(comm, t->task->group_leader->comm, TASK_COMM_LEN);
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

/* The image's VMA flags (CXLFORK_VM_*) for a VMA. */
static u64 image_vm_flags(struct vm_area_struct *vma)
{
	static const struct { vm_flags_t kernel; u64 image; } map[] = {
		{ VM_READ, CXLFORK_VM_READ }, { VM_WRITE, CXLFORK_VM_WRITE },
		{ VM_EXEC, CXLFORK_VM_EXEC }, { VM_SHARED, CXLFORK_VM_SHARED },
		{ VM_MAYWRITE, CXLFORK_VM_MAYWRITE }, { VM_GROWSDOWN, CXLFORK_VM_GROWSDOWN },
		{ VM_NORESERVE, CXLFORK_VM_NORESERVE }, { VM_WIPEONFORK, CXLFORK_VM_WIPEONFORK },
		{ VM_DONTDUMP, CXLFORK_VM_DONTDUMP }, { VM_LOCKED, CXLFORK_VM_LOCKED },
		{ VM_HUGEPAGE, CXLFORK_VM_HUGEPAGE }, { VM_NOHUGEPAGE, CXLFORK_VM_NOHUGEPAGE },
		{ VM_DONTCOPY, CXLFORK_VM_DONTCOPY },
	};
	u64 out = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		if (vma->vm_flags & map[i].kernel)
			out |= map[i].image;
	if (VM_DROPPABLE != VM_NONE && (vma->vm_flags & VM_DROPPABLE))
		out |= CXLFORK_VM_DROPPABLE;
	if (VM_SEALED != VM_NONE && (vma->vm_flags & VM_SEALED))
		out |= CXLFORK_VM_SEALED;
#ifdef CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS
	out |= (u64)vma_pkey(vma) << CXLFORK_VM_PKEY_SHIFT;
#endif
	return out;
}

/*
 * A MADV_DONTFORK mapping a clone of the whole process keeps: memory
 * (anonymous, shmem, a regular file). Drivers mark their own mappings
 * VM_DONTCOPY too (perf and tracing ring buffers, bpf arenas, accelerator
 * queues): a clone could not be given those, and a fork child does not
 * get them either, so they are left out as fork leaves them out.
 */
static bool dontcopy_kept(struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_PFNMAP | VM_MIXEDMAP | VM_IO))
		return false;
	return !vma->vm_file || shmem_file(vma->vm_file) || S_ISREG(file_inode(vma->vm_file)->i_mode);
}

/*
 * The first VMA ending above addr that the clone gets (with fork_only,
 * those a fork child would have: VM_DONTCOPY ones, MADV_DONTFORK, are
 * skipped as fork skips them): fills out = {start, end, image
 * flags, pgoff, kind, file size, file mtime (ns)} and its path or special
 * name into path
 * (NUL-terminated). Returns 0, 1 if there is none, or -EOPNOTSUPP for a
 * mapping cxlfork cannot checkpoint (hugetlb, PFN/IO maps, shadow stacks,
 * shared mappings of unlinked non-shmem files, private mappings of deleted
 * files), -ENAMETOOLONG. Call with the mmap lock held.
 */
int cxlfork_vma_next(struct cxlfork_target *t, u64 addr, bool fork_only, u64 *out, char *path, size_t pathlen)
{
	struct mm_struct *mm = t->mm;
	struct vm_area_struct *vma = find_vma(mm, addr);
	const char *name;
	u64 kind;

	path[0] = 0;
	while (vma && (vma->vm_flags & VM_DONTCOPY) && !cxlfork_special_name(vma) && (fork_only || !dontcopy_kept(vma)))
		vma = find_vma(mm, vma->vm_end);
	if (!vma)
		return 1;
	out[0] = vma->vm_start;
	out[1] = vma->vm_end;
	out[2] = image_vm_flags(vma);
	out[3] = vma->vm_pgoff;
	out[5] = out[6] = 0;
	if (vma->vm_file)
		cxlfork_file_identity(vma->vm_file, &out[5], &out[6]);
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
		pr_info("cxlfork: checkpoint: %#lx-%#lx is a hugetlb, PFN or I/O mapping\n",
			vma->vm_start, vma->vm_end);
		return -EOPNOTSUPP;
	} else if (VM_SHADOW_STACK != VM_NONE && (vma->vm_flags & VM_SHADOW_STACK)) {
		pr_info("cxlfork: checkpoint: %#lx-%#lx is a shadow stack\n", vma->vm_start, vma->vm_end);
		return -EOPNOTSUPP;
	} else if (vma->vm_file) {
		struct inode *inode = file_inode(vma->vm_file);
		char *p = d_path(&vma->vm_file->f_path, path, pathlen);

		if (IS_ERR(p))
			return PTR_ERR(p);
		memmove(path, p, strlen(p) + 1);
		if (vma->vm_flags & VM_SHARED) {
			/* Unlinked shmem (MAP_SHARED|MAP_ANONYMOUS, memfd, deleted
			 * tmpfs files) cannot be reopened: copy its pages. */
			if (inode->i_nlink == 0) {
				if (!shmem_file(vma->vm_file)) {
					pr_info("cxlfork: checkpoint: %#lx-%#lx is a shared mapping of a deleted file (%s)\n",
						vma->vm_start, vma->vm_end, path);
					return -EOPNOTSUPP;
				}
				kind = CXLFORK_VMA_SHARED_ANON;
			} else {
				kind = CXLFORK_VMA_FILE_SHARED;
			}
		} else if (inode->i_nlink == 0 || d_unlinked(vma->vm_file->f_path.dentry)) {
			/* Its pages the image lacks could not be read back at restore. */
			pr_info("cxlfork: checkpoint: %#lx-%#lx is a private mapping of a deleted file (%s)\n",
				vma->vm_start, vma->vm_end, path);
			return -EOPNOTSUPP;
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
 * ptes[512], as the hardware sees it, but for one bit: a kernel built with
 * user shadow stacks (Debian's) keeps the Dirty bit of a write-protected
 * entry in a software bit (_PAGE_SAVED_DIRTY: fork() and mprotect() move it
 * there, so that Write=0,Dirty=1 never reads as a shadow-stack page); it is
 * folded back into Dirty, the image's one dirty bit. A huge PMD is expanded
 * into the 512 entries it stands for. Returns 1 if filled, 0 if there is no table (all
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
		u64 flags = v & ~(PTE_PFN_MASK | _PAGE_PSE | _PAGE_PAT_LARGE | _PAGE_SAVED_DIRTY);
		u64 pfn = pmd_pfn(pmdv);

		if (v & _PAGE_PAT_LARGE)
			flags |= _PAGE_PAT;
		if (pmd_dirty(pmdv))
			flags |= _PAGE_DIRTY;
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
		ptes[i] = pte_val(e) & ~_PAGE_SAVED_DIRTY;
		if (pte_present(e) && pte_dirty(e))
			ptes[i] |= _PAGE_DIRTY;
	}
	rcu_read_unlock();
	return ret;
}

bool cxlfork_pte_is_zero_page(u64 pte)
{
	return is_zero_pfn(pte_pfn(__pte(pte)));
}

/*
 * Copy the n pages mapped at addr (all mapped, n <= 64) to dst, packed: the
 * i-th page copied goes to dst + i pages (all in one VMA). Left out:
 * all-zero pages with CXLFORK_COPY_SKIP_ZERO (anonymous memory reads zero
 * where the image has nothing), the mapped file's own page-cache pages with
 * CXLFORK_COPY_SKIP_FILE (a private file mapping reads the file there). Bit j of *copied says page j
 * was copied. Flushed to the device. Pins them with get_user_pages_remote,
 * which needs the mmap lock held. FOLL_FORCE reads PROT_NONE/unreadable
 * private pages.
 */
int cxlfork_copy_pages(struct cxlfork_target *t, u64 addr, u32 n, void *dst, u32 mode, u64 *copied)
{
	struct page *pages[64];
	long got;
	u32 i, d = 0;

	struct address_space *file_mapping = NULL;
	struct vm_area_struct *vma;

	*copied = 0;
	if (n > ARRAY_SIZE(pages))
		return -EINVAL;
	/* The file's own page-cache pages (not a private copy, nor a page a
	 * clone maps from the pool or copied locally: those are its own). */
	vma = find_vma(t->mm, addr);
	if (vma && vma->vm_start <= addr && vma->vm_file)
		file_mapping = vma->vm_file->f_mapping;
	got = get_user_pages_remote(t->mm, addr, n, FOLL_FORCE, pages, NULL);
	if (got < 0)
		return got;
	for (i = 0; i < got; i++) {
		void *src = kmap_local_page(pages[i]);

		bool skip = ((mode & CXLFORK_COPY_SKIP_ZERO) && !memchr_inv(src, 0, PAGE_SIZE)) ||
			    ((mode & CXLFORK_COPY_SKIP_FILE) && file_mapping &&
			     folio_mapping(page_folio(pages[i])) == file_mapping);

		if (!skip) {
			memcpy_flushcache(dst + (size_t)d * PAGE_SIZE, src, PAGE_SIZE);
			*copied |= 1ULL << i;
			d++;
		}
		kunmap_local(src);
		put_page(pages[i]);
	}
	wmb();
	return got == n ? 0 : -EFAULT;
}

/*
 * The first open fd >= fd: out = {fd, kind, f_flags, cloexec, pos, i_mode}
 * (6 words), its path, and a reference to its file in *filep. Returns 0,
 * or 1 if there is none.
 */
int cxlfork_file_next(struct cxlfork_target *t, u32 fd, u64 *out, char *path, size_t pathlen, struct file **filep)
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
	out[1] = cxlfork_file_kind(file);
	out[2] = file->f_flags;
	out[3] = cloexec;
	out[4] = file->f_pos;
	out[5] = mode;
	p = d_path(&file->f_path, path, pathlen);
	if (IS_ERR(p))
		strscpy(path, "?", pathlen);
	else
		memmove(path, p, strlen(p) + 1);
	*filep = file;
	return 0;
}

/* A reference to the file mapped by the VMA at addr (mmap lock held). */
struct file *cxlfork_vma_file(struct cxlfork_target *t, u64 addr)
{
	struct vm_area_struct *vma = find_vma(t->mm, addr);

	if (!vma || vma->vm_start > addr || !vma->vm_file)
		return ERR_PTR(-ENOENT);
	return get_file(vma->vm_file);
}

void *cxlfork_target_clone_ctx(struct cxlfork_target *t)
{
	return cxlfork_clone_ctx_of(t->mm);
}
