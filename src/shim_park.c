// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim: holding every other thread of the current process still
 * for a checkpoint (the thread-group half of "a checkpoint reads a
 * process in its own context", shim_task.c).
 *
 * The thread that checkpoints (the caller in a self-checkpoint, the
 * target's main thread in its checkpoint task_work) is the coordinator.
 * Each other thread is sent a TWA_SIGNAL task_work, which it runs at its
 * next return towards user space: a computing thread at its next
 * interrupt, a thread blocked in an interruptible call at once (the call
 * is then restarted, or returns EINTR where a signal would make it). In
 * its work the thread records its own registers (in restarted form), FPU
 * state and per-thread state, exactly as a single-threaded target does
 * (cxlfork_capture_self), says so, and waits in the kernel until the
 * coordinator releases the group: no thread runs user code while memory is
 * copied. Threads created meanwhile (a clone() already under way) are
 * found by scanning again once every known thread is parked; parked
 * threads cannot create more, so this ends.
 *
 * Lock order: park_registry_lock, then sighand->siglock (scans), then
 * park->lock. Nothing sleeps under siglock or park->lock.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/task_work.h>
#include <linux/wait.h>

#include "shim.h"

/* How long threads may take to stop, and how many times the group may
 * grow while they do. */
#define PARK_TIMEOUT	(30 * HZ)
#define PARK_ROUNDS	16

enum { SLOT_QUEUED, SLOT_PARKED, SLOT_GONE, SLOT_FAILED };
enum { PARK_GATHERING, PARK_RELEASED };

/*
 * One other thread. Invariants: task holds a reference; cb is queued on
 * task (or was run) and holds one reference on park; state leaves
 * SLOT_QUEUED once, under park->lock; s, fpu, fpu_len and xf are written
 * by the thread before it sets SLOT_PARKED and read by the coordinator
 * after.
 */
struct park_slot {
	struct callback_head cb;
	struct cxlfork_park *park;
	struct task_struct *task;
	pid_t tid;
	int state;
	int err;
	struct cxlfork_task_state s;
	void *fpu;
	u32 fpu_len;
	u64 xf;
};

/*
 * The threads of one process held for one checkpoint.
 * Invariants: ref counts the coordinator and every queued work; pin keeps
 * this module loaded until the last work ran (its last fput is deferred);
 * while registered (node in park_registry), no other park or restore
 * group exists for sig; slots[0..n) are owned (freed with the park).
 */
struct cxlfork_park {
	refcount_t ref;
	spinlock_t lock;	/* state, every slot's state */
	wait_queue_head_t gather;	/* the coordinator waits for the last park */
	wait_queue_head_t release;	/* parked threads wait for the release */
	int state;
	struct signal_struct *sig;
	struct list_head node;
	struct file *pin;
	u32 n, cap;
	u32 queued;		/* slots in SLOT_QUEUED (read unlocked in waits) */
	struct park_slot **slots;
};

static DEFINE_MUTEX(park_registry_lock);
static LIST_HEAD(park_registry);

static void park_put(struct cxlfork_park *p)
{
	u32 i;

	if (!refcount_dec_and_test(&p->ref))
		return;
	for (i = 0; i < p->n; i++) {
		put_task_struct(p->slots[i]->task);
		kvfree(p->slots[i]->fpu);
		kfree(p->slots[i]);
	}
	kvfree(p->slots);
	fput(p->pin);
	kfree(p);
}

static void settle(struct park_slot *slot, int state, int err)
{
	struct cxlfork_park *p = slot->park;
	bool last;

	spin_lock(&p->lock);
	slot->state = state;
	slot->err = err;
	WRITE_ONCE(p->queued, p->queued - 1);
	last = !p->queued;
	spin_unlock(&p->lock);
	if (last)
		wake_up(&p->gather);
}

static bool released(struct cxlfork_park *p)
{
	return READ_ONCE(p->state) == PARK_RELEASED;
}

/* Run by each other thread, in its own context. */
static void park_fn(struct callback_head *cb)
{
	struct park_slot *slot = container_of(cb, struct park_slot, cb);
	struct cxlfork_park *p = slot->park;
	int err;

	if (released(p)) {
		/* Late: the checkpoint is over (or failed) already. */
	} else if ((current->flags & PF_EXITING) || !current->mm) {
		/* Run from exit_task_work(): it made its last user-memory
		 * write (clear_child_tid, robust list) before. */
		settle(slot, SLOT_GONE, 0);
	} else {
		err = cxlfork_capture_self(&slot->s, &slot->fpu, &slot->fpu_len, &slot->xf);
		settle(slot, err ? SLOT_FAILED : SLOT_PARKED, err);
		/* Killable: a SIGKILL takes the whole group, coordinator too. */
		if (!err)
			wait_event_state(p->release, released(p), CXLFORK_WAIT_STATE);
	}
	park_put(p);
}

static bool known(struct cxlfork_park *p, struct task_struct *t)
{
	u32 i;

	/* Linear: scans after the first find few new threads, and the first
	 * finds none known. */
	for (i = 0; i < p->n; i++)
		if (p->slots[i]->task == t)
			return true;
	return false;
}

/*
 * Take every thread of current's process but current into snap[] (with a
 * reference each), checking on the way what cannot be parked. Returns the
 * count, or -ENOSPC if snap[] (cap entries) is too small.
 */
static int snapshot(struct task_struct **snap, u32 cap)
{
	struct task_struct *t;
	int n = 0, err = 0;

	spin_lock_irq(&current->sighand->siglock);
	if ((current->signal->flags & SIGNAL_GROUP_EXIT) || current->signal->group_exec_task) {
		err = -ESRCH;		/* exiting, or in execve */
		goto out;
	}
	if (current->group_leader != current &&
	    (current->group_leader->exit_state || (current->group_leader->flags & PF_EXITING))) {
		pr_info("cxlfork: checkpoint: the process's main thread has exited\n");
		err = -EOPNOTSUPP;
		goto out;
	}
	for_each_thread(current, t) {
		if (t == current)
			continue;
		/* Traced (a tracer could hold it still, or run its task
		 * works from ptrace_notify), or stopped (it would run its work
		 * only once continued): its state is not its own to record. */
		if (t->ptrace || task_is_stopped_or_traced(t)) {
			err = -EBUSY;
			goto out;
		}
		if (t->flags & (PF_IO_WORKER | PF_USER_WORKER)) {
			pr_info("cxlfork: checkpoint: thread %d is a kernel-made worker (io_uring?)\n",
				task_pid_vnr(t));
			err = -EOPNOTSUPP;
			goto out;
		}
		if (n == cap) {
			err = -ENOSPC;
			goto out;
		}
		get_task_struct(t);
		snap[n++] = t;
	}
out:
	spin_unlock_irq(&current->sighand->siglock);
	if (err) {
		while (n)
			put_task_struct(snap[--n]);
		return err;
	}
	return n;
}

/* Give every thread not yet known a slot and its work; *added: how many. */
static int scan(struct cxlfork_park *p, u32 *added)
{
	struct task_struct **snap = NULL;
	u32 cap = get_nr_threads(current) + 8, i;
	int n, err = 0;

	*added = 0;
	for (;;) {
		snap = kvmalloc_array(cap, sizeof(*snap), GFP_KERNEL);
		if (!snap)
			return -ENOMEM;
		n = snapshot(snap, cap);
		if (n != -ENOSPC)
			break;
		kvfree(snap);
		cap *= 2;
		if (cap > 2 * CXLFORK_MAX_THREADS)
			return -E2BIG;
	}
	if (n < 0) {
		kvfree(snap);
		return n;
	}
	for (i = 0; i < n; i++) {
		struct task_struct *t = snap[i];
		struct park_slot *slot;

		if (err || known(p, t)) {
			put_task_struct(t);
			continue;
		}
		if (p->n + 2 > CXLFORK_MAX_THREADS) {	/* with current */
			err = -E2BIG;
			put_task_struct(t);
			continue;
		}
		if (p->n == p->cap) {
			u32 ncap = max(16U, p->cap * 2);
			struct park_slot **ns = kvmalloc_array(ncap, sizeof(*ns), GFP_KERNEL);

			if (!ns) {
				err = -ENOMEM;
				put_task_struct(t);
				continue;
			}
			if (p->n)
				memcpy(ns, p->slots, p->n * sizeof(*ns));
			kvfree(p->slots);
			p->slots = ns;
			p->cap = ncap;
		}
		slot = kzalloc(sizeof(*slot), GFP_KERNEL);
		if (!slot) {
			err = -ENOMEM;
			put_task_struct(t);
			continue;
		}
		slot->park = p;
		slot->task = t;		/* the snapshot's reference */
		slot->tid = task_pid_vnr(t);
		slot->state = SLOT_QUEUED;
		init_task_work(&slot->cb, park_fn);
		spin_lock(&p->lock);
		p->slots[p->n++] = slot;
		WRITE_ONCE(p->queued, p->queued + 1);
		spin_unlock(&p->lock);
		refcount_inc(&p->ref);
		if (task_work_add(t, &slot->cb, TWA_SIGNAL)) {
			/* Past exit_task_work(): gone. */
			refcount_dec(&p->ref);
			settle(slot, SLOT_GONE, 0);
		}
		(*added)++;
	}
	kvfree(snap);
	return err;
}

static bool all_settled(struct cxlfork_park *p)
{
	return READ_ONCE(p->queued) == 0;
}

static int cmp_slot(const void *a, const void *b)
{
	const struct park_slot *x = *(struct park_slot *const *)a, *y = *(struct park_slot *const *)b;

	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* The registry: one park per process at a time. */
static int registry_add(struct cxlfork_park *p)
{
	struct cxlfork_park *q;

	mutex_lock(&park_registry_lock);
	list_for_each_entry(q, &park_registry, node) {
		if (q->sig == p->sig) {
			mutex_unlock(&park_registry_lock);
			return -EBUSY;
		}
	}
	list_add(&p->node, &park_registry);
	mutex_unlock(&park_registry_lock);
	return 0;
}

static void registry_del(struct cxlfork_park *p)
{
	mutex_lock(&park_registry_lock);
	list_del(&p->node);
	mutex_unlock(&park_registry_lock);
}

/*
 * Hold every other thread of current's process in the kernel, each having
 * recorded its state (cxlfork_park_thread). A single-threaded process
 * gets an empty park. Errors: EBUSY (a thread is traced; another
 * checkpoint of this process is under way), EOPNOTSUPP (a kernel-made
 * worker thread; the main thread exited), ESRCH (the process is exiting),
 * ETIMEDOUT (a thread did not stop in 30 s), EAGAIN (threads kept being
 * created), EINTR (current was killed), or what a thread's capture
 * returned. On error every thread is let go.
 */
int cxlfork_park_others(struct file *pin, struct cxlfork_park **out)
{
	struct cxlfork_park *p;
	unsigned long deadline = jiffies + PARK_TIMEOUT;
	u32 round, added, i;
	int err;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	refcount_set(&p->ref, 1);
	spin_lock_init(&p->lock);
	init_waitqueue_head(&p->gather);
	init_waitqueue_head(&p->release);
	p->state = PARK_GATHERING;
	p->sig = current->signal;
	p->pin = get_file(pin);
	err = registry_add(p);
	if (err) {
		park_put(p);
		return err;
	}
	for (round = 0; round < PARK_ROUNDS; round++) {
		long left;

		err = scan(p, &added);
		if (err || !added)
			break;
		left = (long)(deadline - jiffies);
		if (left <= 0)
			left = 1;
		left = wait_event_killable_timeout(p->gather, all_settled(p), left);
		if (left == 0)
			err = -ETIMEDOUT;
		else if (left < 0)
			err = -EINTR;
		if (err)
			break;
	}
	if (!err && round == PARK_ROUNDS)
		err = -EAGAIN;
	/* The lock orders what each thread wrote before settling. */
	spin_lock(&p->lock);
	for (i = 0; !err && i < p->n; i++)
		if (p->slots[i]->state == SLOT_FAILED)
			err = p->slots[i]->err;
	spin_unlock(&p->lock);
	if (err) {
		if (err == -ETIMEDOUT)
			pr_info("cxlfork: checkpoint: a thread did not stop within %d s\n", PARK_TIMEOUT / HZ);
		cxlfork_park_release(p, false);
		return err;
	}
	/* By tid: the image's order. */
	sort(p->slots, p->n, sizeof(*p->slots), cmp_slot, NULL);
	*out = p;
	return 0;
}

/* Parked threads (those that exited meanwhile are not counted). */
u32 cxlfork_park_count(const struct cxlfork_park *p)
{
	u32 i, n = 0;

	for (i = 0; i < p->n; i++)
		n += p->slots[i]->state == SLOT_PARKED;
	return n;
}

/* Parked thread i (by increasing tid): its state and FPU buffer (-E2BIG
 * with *len set if cap is too small). */
int cxlfork_park_thread(const struct cxlfork_park *p, u32 i, struct cxlfork_task_state *s,
			void *fpu, u32 cap, u32 *len, u64 *xf)
{
	u32 k;

	for (k = 0; k < p->n; k++) {
		const struct park_slot *slot = p->slots[k];

		if (slot->state != SLOT_PARKED || i--)
			continue;
		*len = slot->fpu_len;
		if (slot->fpu_len > cap)
			return -E2BIG;
		memcpy(s, &slot->s, sizeof(*s));
		memcpy(fpu, slot->fpu, slot->fpu_len);
		*len = slot->fpu_len;
		*xf = slot->xf;
		return 0;
	}
	return -EINVAL;
}

/*
 * Let every thread go (works not yet run skip themselves) and drop the
 * coordinator's reference. With stop, each parked thread is sent SIGSTOP
 * first, so that it takes it (joining the group stop) on its way out of
 * its work instead of running user code until the stop reaches it. A
 * SIGKILL sent to the process before is taken by every thread.
 */
void cxlfork_park_release(struct cxlfork_park *p, bool stop)
{
	u32 i;

	for (i = 0; stop && i < p->n; i++)
		if (p->slots[i]->state == SLOT_PARKED)
			send_sig(SIGSTOP, p->slots[i]->task, 1);
	registry_del(p);
	spin_lock(&p->lock);
	WRITE_ONCE(p->state, PARK_RELEASED);
	spin_unlock(&p->lock);
	wake_up_all(&p->release);
	park_put(p);
}
