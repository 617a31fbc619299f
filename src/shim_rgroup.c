// SPDX-License-Identifier: GPL-2.0
/*
 * cxlfork C shim: the threads of a multi-threaded restore.
 *
 * An image of N threads is restored by a process of N threads: its main
 * thread calls RESTORE (the leader: it becomes the image's main thread),
 * each other thread RESTORE_THREAD (a follower: it waits here, then
 * becomes one of the image's other threads). The leader waits for every
 * follower to join, checks and prepares everything for all of them
 * (staging each follower's state), and only then crosses the point of no
 * return for the whole group (commit). After it replaced the address
 * space and its own state, it writes every thread's new tid where the
 * image's libc keeps it (as CLONE_CHILD_SETTID would) and lets the
 * followers go: each installs its staged state into itself and returns
 * to user space with the image thread's registers. Before the commit, an
 * error in the leader sends every follower back with that errno, no
 * thread changed.
 *
 * Lock order: rgroup_lock, then sighand->siglock. Nothing sleeps under
 * either; waits are on the group's wait queue.
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rseq.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>

#include "shim.h"

/* How long the leader waits for every follower to join, and a follower
 * for a leader to come. */
#define JOIN_TIMEOUT	(10 * HZ)
#define LEADER_TIMEOUT	(60 * HZ)

enum { RG_JOINING, RG_COMMITTED, RG_ABORTED };
enum { F_WAITING, F_LEFT, F_GO };

/*
 * A follower. Invariants: task (current of its RESTORE_THREAD call) holds
 * a reference; prepared and fpu, once staged, are owned here until the
 * follower takes them (F_GO) or the group is freed.
 */
struct rg_follower {
	struct task_struct *task;
	pid_t tid;
	u64 id;
	int state;
	void *prepared;		/* cxlfork_task_prepare()'s, or NULL */
	void *fpu;
	u32 fpu_len;
	u64 personality;
	bool nnp;
	long ax;
};

/*
 * One restore of one process. Invariants: every field is under
 * rgroup_lock; ref counts the registry, the leader and each follower in
 * its call; while registered, it is the only group of sig; once
 * RG_COMMITTED the followers no longer leave (each waits for F_GO).
 */
struct cxlfork_rgroup {
	refcount_t ref;
	struct signal_struct *sig;
	struct list_head node;
	bool registered, leader;
	int state, err;
	u32 n, cap;
	u32 nwait;		/* followers in F_WAITING (read unlocked in waits) */
	struct rg_follower **f;
	wait_queue_head_t joins;	/* the leader waits for the followers */
	wait_queue_head_t wq;		/* followers wait for the leader */
};

static DEFINE_MUTEX(rgroup_lock);
static LIST_HEAD(rgroups);

static void rg_put(struct cxlfork_rgroup *g)
{
	u32 i;

	if (!refcount_dec_and_test(&g->ref))
		return;
	for (i = 0; i < g->n; i++) {
		struct rg_follower *f = g->f[i];

		if (f->prepared)
			cxlfork_task_discard(f->prepared);
		kvfree(f->fpu);
		put_task_struct(f->task);
		kfree(f);
	}
	kvfree(g->f);
	kfree(g);
}

/* current's group, made if there is none. Under rgroup_lock. */
static struct cxlfork_rgroup *rg_get_locked(void)
{
	struct cxlfork_rgroup *g;

	list_for_each_entry(g, &rgroups, node) {
		if (g->sig == current->signal) {
			refcount_inc(&g->ref);
			return g;
		}
	}
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return NULL;
	refcount_set(&g->ref, 2);	/* the registry's and the caller's */
	g->sig = current->signal;
	g->state = RG_JOINING;
	init_waitqueue_head(&g->joins);
	init_waitqueue_head(&g->wq);
	list_add(&g->node, &rgroups);
	g->registered = true;
	return g;
}

/* Under rgroup_lock: the registry no longer names g. */
static void rg_unregister_locked(struct cxlfork_rgroup *g)
{
	if (!g->registered)
		return;
	list_del(&g->node);
	g->registered = false;
	refcount_dec(&g->ref);	/* never the last: the caller holds one */
}

static u32 waiting(struct cxlfork_rgroup *g)
{
	return READ_ONCE(g->nwait);
}

/* The user addresses the kernel writes at a thread's exit (its tid, the
 * robust futex list, the rseq area): a thread dying in a process whose
 * address space was replaced must not write the old ones into the new. */
void cxlfork_forget_user_addresses(void)
{
	current->clear_child_tid = NULL;
#ifdef CONFIG_FUTEX
	current->futex.robust_list = NULL;
#ifdef CONFIG_COMPAT
	current->futex.compat_robust_list = NULL;
#endif
#endif
#ifdef CONFIG_RSEQ
	rseq_reset(current);
#endif
}

/*
 * CXLFORK_IOC_RESTORE_THREAD: wait to become one of the other threads of
 * image id. Returns 0 with *ax the value the call returns in the image
 * thread (the state is installed), or an errno: the leader's, if it failed
 * before the commit; -EINTR if killed first (or if the leader failed after
 * it: the process is being killed); -ETIMEDOUT if no leader came in 60 s;
 * -EBUSY for the main thread or a thread already waiting.
 */
int cxlfork_rgroup_follow(u64 id, long *ax)
{
	struct cxlfork_rgroup *g;
	struct rg_follower *f;
	long left;
	u32 i;
	int err;

	if (current == current->group_leader)
		return -EBUSY;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_lock(&rgroup_lock);
	g = rg_get_locked();
	err = -ENOMEM;
	if (!g)
		goto unlock_free;
	err = -EBUSY;
	if (g->state != RG_JOINING)
		goto put_free;
	for (i = 0; i < g->n; i++)
		if (g->f[i]->task == current)
			goto put_free;
	if (g->n == g->cap) {
		u32 ncap = max(8U, 2 * g->cap);
		struct rg_follower **nf;

		err = -E2BIG;
		if (g->cap >= CXLFORK_MAX_THREADS)
			goto put_free;
		err = -ENOMEM;
		nf = kvmalloc_array(ncap, sizeof(*nf), GFP_KERNEL);
		if (!nf)
			goto put_free;
		if (g->n)
			memcpy(nf, g->f, g->n * sizeof(*nf));
		kvfree(g->f);
		g->f = nf;
		g->cap = ncap;
	}
	get_task_struct(current);
	f->task = current;
	f->tid = task_pid_vnr(current);
	f->id = id;
	f->state = F_WAITING;
	g->f[g->n++] = f;
	WRITE_ONCE(g->nwait, g->nwait + 1);
	mutex_unlock(&rgroup_lock);
	wake_up(&g->joins);

	/* For a leader (60 s at most), then until it commits or aborts; only
	 * a fatal signal ends either wait before. */
	left = cxlfork_wait_timeout(g->wq, READ_ONCE(g->state) != RG_JOINING || READ_ONCE(g->leader),
				    LEADER_TIMEOUT);
	if (left > 0)
		wait_event_state(g->wq, READ_ONCE(g->state) != RG_JOINING, CXLFORK_WAIT_STATE);
	mutex_lock(&rgroup_lock);
	if (g->state == RG_JOINING) {
		/* Killed (the whole process is), or no leader came: leave. */
		WRITE_ONCE(f->state, F_LEFT);
		WRITE_ONCE(g->nwait, g->nwait - 1);
		if (!g->leader && !waiting(g))
			rg_unregister_locked(g);
		mutex_unlock(&rgroup_lock);
		wake_up(&g->joins);
		rg_put(g);
		return left == 0 ? -ETIMEDOUT : -EINTR;
	}
	if (g->state == RG_ABORTED) {
		err = g->err;
		mutex_unlock(&rgroup_lock);
		rg_put(g);
		return err;
	}
	mutex_unlock(&rgroup_lock);
	/* Committed: the leader is replacing the process; wait for it,
	 * whatever signal comes (it always lets the followers go). */
	wait_event_idle(g->wq, smp_load_acquire(&f->state) == F_GO);
	/* The leader is done with f: it is this thread's alone now. */
	if (!f->prepared) {
		/* The leader failed: the process is being killed, in an
		 * address space that is no longer the restorer's. */
		cxlfork_forget_user_addresses();
		rg_put(g);
		return -EINTR;
	}
	cxlfork_fpu_set(f->fpu, f->fpu_len);
	current->personality = f->personality;
	if (f->nnp)
		task_set_no_new_privs(current);
	cxlfork_task_set(f->prepared);
	f->prepared = NULL;
	*ax = f->ax;
	rg_put(g);
	return 0;

put_free:
	if (!g->n && !g->leader)
		rg_unregister_locked(g);	/* made just now, for nothing */
	mutex_unlock(&rgroup_lock);
	rg_put(g);
	kfree(f);
	return err;
unlock_free:
	mutex_unlock(&rgroup_lock);
	kfree(f);
	return err;
}

static int cmp_follower(const void *a, const void *b)
{
	const struct rg_follower *x = *(struct rg_follower *const *)a, *y = *(struct rg_follower *const *)b;

	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/*
 * The leader (current, the main thread): wait (up to 10 s, killable) for
 * the process's other threads, exactly n of them, to wait in
 * RESTORE_THREAD for image id. Errors: EBUSY (not the main thread, another
 * leader, more threads than n + 1), ETIMEDOUT, EINTR, EINVAL (a follower
 * named another image), EINVAL (a follower's FPU state has another layout
 * than current's). On error the followers are sent back with it.
 */
int cxlfork_rgroup_lead(u64 id, u32 n, struct cxlfork_rgroup **out)
{
	struct cxlfork_rgroup *g;
	struct fpstate *mine = x86_task_fpu(current)->fpstate;
	long left;
	u32 i;
	int err = 0;

	if (current != current->group_leader)
		return -EBUSY;
	mutex_lock(&rgroup_lock);
	g = rg_get_locked();
	if (!g) {
		mutex_unlock(&rgroup_lock);
		return -ENOMEM;
	}
	if (g->leader || g->state != RG_JOINING) {
		mutex_unlock(&rgroup_lock);
		rg_put(g);
		return -EBUSY;
	}
	WRITE_ONCE(g->leader, true);
	mutex_unlock(&rgroup_lock);
	wake_up_all(&g->wq);

	left = wait_event_killable_timeout(g->joins, waiting(g) >= n, JOIN_TIMEOUT);
	if (left == 0)
		err = -ETIMEDOUT;
	else if (left < 0)
		err = -EINTR;
	mutex_lock(&rgroup_lock);
	if (!err && (waiting(g) != n || g->n != n || get_nr_threads(current) != n + 1))
		err = -EBUSY;		/* other threads than the followers */
	for (i = 0; !err && i < g->n; i++) {
		struct fpstate *fps = x86_task_fpu(g->f[i]->task)->fpstate;

		if (g->f[i]->id != id)
			err = -EINVAL;
		else if (fps->size != mine->size || fps->xfeatures != mine->xfeatures ||
			 fps->user_xfeatures != mine->user_xfeatures)
			err = -EINVAL;
	}
	if (!err)
		sort(g->f, g->n, sizeof(*g->f), cmp_follower, NULL);
	mutex_unlock(&rgroup_lock);
	if (err) {
		if (err == -ETIMEDOUT)
			pr_info("cxlfork: restore: %u thread(s) expected in RESTORE_THREAD, %u came in %d s\n",
				n, waiting(g), JOIN_TIMEOUT / HZ);
		cxlfork_rgroup_abort(g, err);
		return err;
	}
	*out = g;
	return 0;
}

/*
 * Before the point of no return: give follower k (by increasing tid) its
 * image thread's state: prepared (cxlfork_task_prepare's, consumed), a
 * copy of its FPU buffer, the value its call returns, its personality and
 * no_new_privs. -ENOMEM leaves prepared consumed all the same.
 */
int cxlfork_rgroup_stage(struct cxlfork_rgroup *g, u32 k, void *prepared, const void *fpu, u32 fpu_len,
			 long ax, u64 personality, bool nnp)
{
	struct rg_follower *f;
	void *copy = kvmalloc(fpu_len, GFP_KERNEL);
	int err = 0;

	mutex_lock(&rgroup_lock);
	if (k >= g->n || !copy) {
		err = k >= g->n ? -EINVAL : -ENOMEM;
		mutex_unlock(&rgroup_lock);
		cxlfork_task_discard(prepared);
		kvfree(copy);
		return err;
	}
	f = g->f[k];
	if (f->prepared)
		cxlfork_task_discard(f->prepared);
	kvfree(f->fpu);
	memcpy(copy, fpu, fpu_len);
	f->prepared = prepared;
	f->fpu = copy;
	f->fpu_len = fpu_len;
	f->ax = ax;
	f->personality = personality;
	f->nnp = nnp;
	mutex_unlock(&rgroup_lock);
	return 0;
}

/*
 * The point of no return of the whole group: fails (-EINTR: a follower
 * was killed; -EBUSY: the thread count moved, or a thread came to share
 * its files, fs or memory with another process while the group gathered;
 * -EINVAL: a follower not staged) before changing anything, and the
 * caller then aborts.
 */
int cxlfork_rgroup_commit(struct cxlfork_rgroup *g)
{
	u32 i;
	int err = 0;

	mutex_lock(&rgroup_lock);
	for (i = 0; !err && i < g->n; i++) {
		if (g->f[i]->state != F_WAITING)
			err = -EINTR;
		else if (!g->f[i]->prepared)
			err = -EINVAL;
	}
	if (!err && (get_nr_threads(current) != g->n + 1 || cxlfork_current_shares_state()))
		err = -EBUSY;
	if (!err) {
		WRITE_ONCE(g->state, RG_COMMITTED);
		rg_unregister_locked(g);
	}
	mutex_unlock(&rgroup_lock);
	return err;
}

/*
 * After the point of no return, in the restored address space: write each
 * thread's tid where the image has its clear_child_tid (leader_ctid for
 * current), so that no thread runs with a stale tid in its libc, then let
 * the followers go and drop the leader's reference. With failed set (the
 * leader could not become the clone and is killing the process), the
 * followers go with nothing to install.
 */
void cxlfork_rgroup_go(struct cxlfork_rgroup *g, u64 leader_ctid, bool failed)
{
	u32 i;

	/* Committed: the followers only wait, nothing else changes g->f. The
	 * writes may fault (the clone's pages): not under rgroup_lock. */
	if (!failed) {
		if (leader_ctid)
			put_user(task_pid_vnr(current), (int __user *)leader_ctid);	/* errors ignored, as CLONE_CHILD_SETTID's */
		for (i = 0; i < g->n; i++)
			cxlfork_task_write_tid(g->f[i]->prepared, g->f[i]->tid);
	}
	mutex_lock(&rgroup_lock);
	for (i = 0; i < g->n; i++) {
		if (failed && g->f[i]->prepared) {
			cxlfork_task_discard(g->f[i]->prepared);
			g->f[i]->prepared = NULL;
		}
		smp_store_release(&g->f[i]->state, F_GO);
	}
	mutex_unlock(&rgroup_lock);
	wake_up_all(&g->wq);
	rg_put(g);
}

/* Before the point of no return: send every follower back with err, and
 * drop the leader's reference. */
void cxlfork_rgroup_abort(struct cxlfork_rgroup *g, int err)
{
	mutex_lock(&rgroup_lock);
	if (g->state == RG_JOINING) {
		g->err = err;
		WRITE_ONCE(g->state, RG_ABORTED);
	}
	rg_unregister_locked(g);
	mutex_unlock(&rgroup_lock);
	wake_up_all(&g->wq);
	rg_put(g);
}
