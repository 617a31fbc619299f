/* SPDX-License-Identifier: GPL-2.0 */
/* cxlfork C shim: prototypes of shim.c, mirrored for Rust in ffi.rs. */
#ifndef CXLFORK_SHIM_H
#define CXLFORK_SHIM_H

#include <linux/types.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/wait.h>

int cxlfork_check_range(u64 phys, u64 size);
void *cxlfork_pool_pin_pages(u64 phys, u64 size);
void cxlfork_pool_unpin_pages(void *pgmap);
void *cxlfork_memremap_wb(u64 phys, u64 size);
void cxlfork_memunmap(void *addr);
void cxlfork_pool_read(void *dst, const void *src, size_t len);
void cxlfork_pool_write(void *dst, const void *src, size_t len);
void cxlfork_pool_zero(void *dst, size_t len);
void cxlfork_pool_invalidate(const void *addr, size_t len);
void cxlfork_pool_fence(void);
bool cxlfork_capable_sys_admin(void);
u64 cxlfork_realtime_ns(void);
u64 cxlfork_random_u64(void);
void cxlfork_random_uuid(u8 out[16]);
void cxlfork_nodename(char *buf, size_t len);
u32 cxlfork_current_euid(void);
u32 cxlfork_uid_for_caller(u32 uid);
u32 cxlfork_gid_for_caller(u32 gid);
u64 cxlfork_monotonic_ns(void);

/* The name of a special mapping ([vdso], [vvar]...), NULL for others. */
static inline const char *cxlfork_special_name(struct vm_area_struct *vma)
{
	if (!vma->vm_file && vma->vm_ops && vma->vm_ops->name)
		return vma->vm_ops->name(vma);
	return NULL;
}

/* Task side (shim_task.c). Constants mirror rust/cxlfork-abi/src/image.rs. */
#define CXLFORK_REGS_SELF	1
#define CXLFORK_REGS_STOPPED	2
#define CXLFORK_REGS_RESTART	3
#define CXLFORK_REGS_INTERRUPTED	4
#define CXLFORK_NSIG		64
#define CXLFORK_NRLIMITS	16
#define CXLFORK_VMA_ANON	1
#define CXLFORK_VMA_HEAP	2
#define CXLFORK_VMA_STACK	3
#define CXLFORK_VMA_FILE_PRIVATE 4
#define CXLFORK_VMA_FILE_SHARED	5
#define CXLFORK_VMA_VDSO	6
#define CXLFORK_VMA_VVAR	7
#define CXLFORK_VMA_VVAR_VCLOCK	8
#define CXLFORK_VMA_SPECIAL	9
#define CXLFORK_VMA_SHARED_ANON	10
#define CXLFORK_FILE_REG	1
#define CXLFORK_FILE_DIR	2
#define CXLFORK_FILE_CHR	3
#define CXLFORK_FILE_BLK	4
#define CXLFORK_FILE_FIFO	5
#define CXLFORK_FILE_SOCK	6
#define CXLFORK_FILE_OTHER	7
#define CXLFORK_FILE_EVENTFD	8
#define CXLFORK_FILE_EPOLL	9
#define CXLFORK_FILE_PIPE	10

struct file;
/* Descriptor state (shim_fdstate.c). */
u32 cxlfork_file_kind(struct file *file);
long cxlfork_file_fdinfo(struct file *file, char *buf, size_t len);
long cxlfork_pipe_peek(struct file *file, u64 *capacity, bool *packet, char *buf, size_t len);
bool cxlfork_file_writable(struct file *file);
u64 cxlfork_file_ino(struct file *file);
u32 cxlfork_file_flags(struct file *file);
long cxlfork_file_write(struct file *file, const void *buf, size_t len);
struct file *cxlfork_current_fd_file(u32 fd);
bool cxlfork_current_fd_cloexec(u32 fd);

/*
 * One thread's state as the shim reads it from a target and installs it
 * into current. Mirrored by ffi::TaskState (sizes checked on both sides);
 * Rust turns it into the image's TaskImage.
 */
struct cxlfork_task_state {
	u64 regs[21];		/* struct pt_regs order */
	u64 fs_base, gs_base;
	u64 origin;		/* CXLFORK_REGS_* */
	u64 blocked;
	u64 ss_sp, ss_size;
	u32 ss_flags, pkru;
	u64 rseq;
	u32 rseq_len, rseq_sig, rseq_version, tid;
	u64 robust_list, robust_len;
	u64 clear_child_tid;
	u64 timer_slack_ns;
	char comm[16];
	s32 nice;
	u32 policy, rt_priority, pad;
};

/* Process-wide state (mirrored by ffi::ProcState). */
struct cxlfork_proc_state {
	u64 actions[64][4];	/* handler, flags, restorer, mask */
	u64 rlim[16][2];
	u64 personality;
	u64 mm_flags;		/* CXLFORK_MMF_* (the image's mmf::*) */
	u32 umask, proc_flags;	/* CXLFORK_PROC_* */
	u32 dumpable, coredump_filter;
	u32 pkey_map, exec_only_pkey;
	u64 realtime_ns, monotonic_ns, boottime_ns;
};

/* Image flag values (rust/cxlfork-abi/src/image.rs: vm, mmf, procf). */
#define CXLFORK_VM_READ		0x1ULL
#define CXLFORK_VM_WRITE	0x2ULL
#define CXLFORK_VM_EXEC		0x4ULL
#define CXLFORK_VM_SHARED	0x8ULL
#define CXLFORK_VM_MAYWRITE	0x20ULL
#define CXLFORK_VM_GROWSDOWN	0x100ULL
#define CXLFORK_VM_NORESERVE	(1ULL << 16)
#define CXLFORK_VM_WIPEONFORK	(1ULL << 17)
#define CXLFORK_VM_DONTDUMP	(1ULL << 18)
#define CXLFORK_VM_DROPPABLE	(1ULL << 19)
#define CXLFORK_VM_LOCKED	(1ULL << 20)
#define CXLFORK_VM_HUGEPAGE	(1ULL << 21)
#define CXLFORK_VM_NOHUGEPAGE	(1ULL << 22)
#define CXLFORK_VM_SEALED	(1ULL << 23)
#define CXLFORK_VM_PKEY_SHIFT	24
#define CXLFORK_VM_DONTCOPY	(1ULL << 28)
#define CXLFORK_MMF_THP_DISABLE	(1ULL << 0)
#define CXLFORK_MMF_THP_DISABLE_EXCEPT_ADVISED (1ULL << 1)
#define CXLFORK_MMF_KSM_MERGE_ANY (1ULL << 2)
#define CXLFORK_MMF_MDWE	(1ULL << 3)
#define CXLFORK_MMF_MDWE_NO_INHERIT (1ULL << 4)
#define CXLFORK_PROC_NO_NEW_PRIVS (1U << 0)

/* Most threads a process may have to be checkpointed (image MAX_TASKS). */
#define CXLFORK_MAX_THREADS	4096

/*
 * How a thread waits in the kernel for another (parked for a checkpoint,
 * or waiting to become a restored thread): only a fatal signal ends the
 * wait; the freezer can freeze it (suspend, cgroup freeze); it is idle,
 * not load.
 */
#define CXLFORK_WAIT_STATE	(TASK_KILLABLE | TASK_FREEZABLE | TASK_NOLOAD)
#define cxlfork_wait_timeout(wq, cond, timeout)						\
({											\
	long __ret = (timeout);								\
	might_sleep();									\
	if (!___wait_cond_timeout(cond))						\
		__ret = ___wait_event(wq, ___wait_cond_timeout(cond), CXLFORK_WAIT_STATE, 0, \
				      timeout, __ret = schedule_timeout(__ret));	\
	__ret;										\
})

struct cxlfork_target;
struct cxlfork_park;
#define CXLFORK_TARGET_CHECKPOINT	0
#define CXLFORK_TARGET_STAT		1
int cxlfork_target_get(int pid, int mem_fd, int purpose, struct cxlfork_target **out);
void cxlfork_target_put(struct cxlfork_target *t);
bool cxlfork_target_is_self(const struct cxlfork_target *t);
int cxlfork_target_run(struct cxlfork_target *t, void *arg, int after, struct file *pin);
int cxlfork_target_task(struct cxlfork_target *t, struct cxlfork_task_state *out);
int cxlfork_target_fpu(struct cxlfork_target *t, void *buf, u32 buflen, u32 *len, u64 *xfeatures);
int cxlfork_capture_self(struct cxlfork_task_state *s, void **fpu, u32 *len, u64 *xfeatures);
int cxlfork_target_park(struct cxlfork_target *t, struct file *pin);
u32 cxlfork_target_park_count(const struct cxlfork_target *t);
int cxlfork_target_park_thread(const struct cxlfork_target *t, u32 i, struct cxlfork_task_state *s,
			       void *fpu, u32 cap, u32 *len, u64 *xfeatures);

/* Thread parking (shim_park.c). */
int cxlfork_park_others(struct file *pin, struct cxlfork_park **out);
u32 cxlfork_park_count(const struct cxlfork_park *p);
int cxlfork_park_thread(const struct cxlfork_park *p, u32 i, struct cxlfork_task_state *s,
			void *fpu, u32 cap, u32 *len, u64 *xf);
void cxlfork_park_release(struct cxlfork_park *p, bool stop);
int cxlfork_target_proc(struct cxlfork_target *t, struct cxlfork_proc_state *out);
int cxlfork_target_path(struct cxlfork_target *t, int which, char *buf, size_t len);
void cxlfork_target_mm(struct cxlfork_target *t, u64 *out, u32 auxv_words);
void cxlfork_target_ids(struct cxlfork_target *t, u32 *uid, u32 *gid, u32 *pid, char *comm);
void cxlfork_kernel_release(char *buf, size_t len);
int cxlfork_mm_read_lock(struct cxlfork_target *t);
void cxlfork_mm_read_unlock(struct cxlfork_target *t);
int cxlfork_vma_next(struct cxlfork_target *t, u64 addr, bool fork_only, u64 *out, char *path, size_t pathlen);
int cxlfork_read_leaf(struct cxlfork_target *t, u64 addr, u64 *ptes);
bool cxlfork_pte_is_zero_page(u64 pte);
#define CXLFORK_COPY_SKIP_ZERO	1
#define CXLFORK_COPY_SKIP_FILE	2
int cxlfork_copy_pages(struct cxlfork_target *t, u64 addr, u32 n, void *dst, u32 mode, u64 *copied);
void cxlfork_file_identity(struct file *file, u64 *size, u64 *mtime_ns);
int cxlfork_file_next(struct cxlfork_target *t, u32 fd, u64 *out, char *path, size_t pathlen, struct file **filep);
struct file *cxlfork_vma_file(struct cxlfork_target *t, u64 addr);
struct file *cxlfork_file_get(struct file *file);
u64 cxlfork_file_key(struct file *file);
bool cxlfork_file_is_shared_anon(struct file *file);
s64 cxlfork_file_seek(struct file *file, u64 off, int whence);
int cxlfork_file_read_page(struct file *file, u64 pos, void *buf);

/* Restore side (shim_restore.c). */
struct vm_area_struct;
struct file;
struct cxlfork_cvma;
/* clone.rs's answer for a page that is not (or no longer) the image's. */
#define CXLFORK_FAULT_FALLBACK 0x80000000u
struct file *cxlfork_module_pin_file(void);
struct cxlfork_cvma *cxlfork_cvma_alloc(const u64 *ias, u32 n);
void cxlfork_cvma_free(struct cxlfork_cvma *cv);
u64 cxlfork_cvma_addr(const struct cxlfork_cvma *cv, const struct vm_area_struct *vma, u64 ia);
bool cxlfork_cvma_installed(const struct cxlfork_cvma *cv, u64 ia);
void cxlfork_cvma_set_installed(struct cxlfork_cvma *cv, u64 ia);
u32 cxlfork_vma_prot(const struct vm_area_struct *vma);
int cxlfork_make_clone_vma(u64 addr, u64 len, void *ctx, struct cxlfork_cvma *cv, u32 img,
			   u64 img_start, u64 img_pgoff, bool wipe);
void *cxlfork_clone_ctx_of(struct mm_struct *mm);
void *cxlfork_target_clone_ctx(struct cxlfork_target *t);
vm_fault_t cxlfork_vma_insert_pfn(struct vm_area_struct *vma, u64 addr, u64 pfn);
vm_fault_t cxlfork_vma_insert_copy(struct vm_area_struct *vma, u64 addr, const void *src);
bool cxlfork_pkeys_usable(void);
u64 cxlfork_totalram_pages(void);
u32 cxlfork_current_threads(void);
bool cxlfork_current_shares_state(void);
int cxlfork_check_special(u64 start, u64 end, const char *name);
int cxlfork_check_caller(u64 total_pages, u64 data_pages, u32 n_maps);
int cxlfork_probe_map(struct file *file, u64 addr, u64 len, u64 prot, u64 flags, u64 off);
int cxlfork_unmap_all_but_special(void);
long cxlfork_vm_mmap(struct file *file, u64 addr, u64 len, u64 prot, u64 flags, u64 off);
void cxlfork_vma_set_flags(u64 addr, u64 len, u64 image_flags);
struct file *cxlfork_shmem_create(const char *name, u64 size);
int cxlfork_file_write_page(struct file *file, u64 pos, const void *src);
void cxlfork_set_mm(const u64 *w, u32 auxv_words, const struct cxlfork_proc_state *p);
int cxlfork_task_check(const struct cxlfork_task_state *s);
void *cxlfork_task_prepare(const struct cxlfork_task_state *s, struct file *pin);
void cxlfork_task_discard(void *prepared);
void cxlfork_task_write_tid(void *prepared, pid_t tid);
void cxlfork_forget_user_addresses(void);
void cxlfork_task_set(void *prepared);
int cxlfork_fpu_check(const void *buf, u32 len, u64 xfeatures);
void cxlfork_fpu_set(const void *buf, u32 len);
int cxlfork_proc_check(const struct cxlfork_proc_state *p);
void cxlfork_proc_set(const struct cxlfork_proc_state *p);
struct file *cxlfork_file_open(const char *path, u32 flags, u64 pos, bool seek);
void cxlfork_file_put(struct file *f);
int cxlfork_fd_prepare(u32 max_fd);
void cxlfork_close_fds_from(u32 first, const u32 *keep, u32 n_keep);
int cxlfork_install_fds(struct file *const *files, const u32 *fds, const bool *cloexec, u32 n, u32 first);
void cxlfork_kill_current(void);
void cxlfork_clone_vmas_settle(void);
int cxlfork_exe_prepare(struct file *exe);
void cxlfork_exe_discard(struct file *exe);
void cxlfork_exe_install(struct file *exe);

/* The threads of a restore (shim_rgroup.c). */
struct cxlfork_rgroup;
int cxlfork_rgroup_follow(u64 id, long *ax);
int cxlfork_rgroup_lead(u64 id, u32 n, struct cxlfork_rgroup **out);
int cxlfork_rgroup_stage(struct cxlfork_rgroup *g, u32 k, void *prepared, const void *fpu, u32 fpu_len,
			 long ax, u64 personality, bool nnp);
int cxlfork_rgroup_commit(struct cxlfork_rgroup *g);
void cxlfork_rgroup_go(struct cxlfork_rgroup *g, u64 leader_ctid, bool failed);
void cxlfork_rgroup_abort(struct cxlfork_rgroup *g, int err);

#endif
