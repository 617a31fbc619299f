/* SPDX-License-Identifier: GPL-2.0 */
/* cxlfork C shim: prototypes of shim.c, mirrored for Rust in ffi.rs. */
#ifndef CXLFORK_SHIM_H
#define CXLFORK_SHIM_H

#include <linux/types.h>
#include <linux/mm.h>

int cxlfork_check_range(u64 phys, u64 size);
void *cxlfork_memremap_wb(u64 phys, u64 size);
void cxlfork_memunmap(void *addr);
void cxlfork_pool_read(void *dst, const void *src, size_t len);
void cxlfork_pool_write(void *dst, const void *src, size_t len);
void cxlfork_pool_zero(void *dst, size_t len);
bool cxlfork_capable_sys_admin(void);
u64 cxlfork_realtime_ns(void);
u64 cxlfork_random_u64(void);
void cxlfork_random_uuid(u8 out[16]);
void cxlfork_nodename(char *buf, size_t len);
u32 cxlfork_current_euid(void);
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

struct cxlfork_target;
int cxlfork_target_get(int pid, struct cxlfork_target **out);
void cxlfork_target_put(struct cxlfork_target *t);
bool cxlfork_target_is_self(const struct cxlfork_target *t);
int cxlfork_target_stop(struct cxlfork_target *t);
void cxlfork_target_finish(struct cxlfork_target *t, int how);
int cxlfork_target_regs(struct cxlfork_target *t, u64 *out);
int cxlfork_target_fpu(struct cxlfork_target *t, void *buf, u32 buflen, u32 *len, u64 *xfeatures);
void cxlfork_target_sig(struct cxlfork_target *t, u64 *out);
void cxlfork_target_mm(struct cxlfork_target *t, u64 *out, u32 auxv_words);
void cxlfork_target_ids(struct cxlfork_target *t, u32 *uid, u32 *gid, u32 *pid, char *comm);
void cxlfork_kernel_release(char *buf, size_t len);
int cxlfork_mm_read_lock(struct cxlfork_target *t);
void cxlfork_mm_read_unlock(struct cxlfork_target *t);
int cxlfork_vma_next(struct cxlfork_target *t, u64 addr, u64 *out, char *path, size_t pathlen);
int cxlfork_read_leaf(struct cxlfork_target *t, u64 addr, u64 *ptes);
bool cxlfork_pte_is_zero_page(u64 pte);
int cxlfork_copy_pages(struct cxlfork_target *t, u64 addr, u32 n, void *dst);
int cxlfork_file_next(struct cxlfork_target *t, u32 fd, u64 *out, char *path, size_t pathlen);

/* Restore side (shim_restore.c). */
struct vm_area_struct;
struct file;
struct file *cxlfork_module_pin_file(void);
int cxlfork_make_clone_vma(u64 addr, u64 len, void *ctx);
void *cxlfork_clone_ctx_of(struct mm_struct *mm);
void *cxlfork_target_clone_ctx(struct cxlfork_target *t);
u64 cxlfork_vma_pgoff(struct vm_area_struct *vma);
u64 cxlfork_vma_start(struct vm_area_struct *vma);
u64 cxlfork_vma_end(struct vm_area_struct *vma);
vm_fault_t cxlfork_vma_insert_pfn(struct vm_area_struct *vma, u64 addr, u64 pfn);
vm_fault_t cxlfork_vma_insert_zero(struct vm_area_struct *vma, u64 addr);
vm_fault_t cxlfork_vma_insert_copy(struct vm_area_struct *vma, u64 addr, const void *src);
vm_fault_t cxlfork_vma_insert_file(struct vm_area_struct *vma, u64 addr, struct file *file, u64 pos);
bool cxlfork_current_single_threaded(void);
int cxlfork_check_special(u64 start, u64 end, const char *name);
int cxlfork_unmap_all_but_special(void);
long cxlfork_vm_mmap(struct file *file, u64 addr, u64 len, u64 prot, u64 flags, u64 off);
int cxlfork_prefault_write(u64 addr, u32 n);
int cxlfork_copy_to_user_page(u64 addr, const void *src);
void cxlfork_set_mm(const u64 *w, u32 auxv_words);
int cxlfork_check_regs(const u64 *r);
void cxlfork_set_regs(const u64 *r, u64 ax);
int cxlfork_fpu_check(const void *buf, u32 len, u64 xfeatures);
void cxlfork_fpu_set(const void *buf, u32 len);
int cxlfork_sig_check(const u64 *s);
void cxlfork_sig_set(const u64 *s);
void cxlfork_set_comm(const char *comm);
struct file *cxlfork_file_open(const char *path, u32 flags, u64 pos, bool seek);
void cxlfork_file_put(struct file *f);
void cxlfork_close_fds_from(u32 first);
int cxlfork_install_fd(struct file *file, u32 fd, bool cloexec);
void cxlfork_kill_current(void);

#endif
