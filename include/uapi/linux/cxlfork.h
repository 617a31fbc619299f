/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cxlfork: remote fork over a shared CXL memory pool.
 *
 * User-space ABI of /dev/cxlfork. Every argument struct starts with a __u32
 * `size` field that the caller sets to sizeof(struct) as it knows it. The
 * kernel accepts any size >= the first published version of the struct:
 *   - input: bytes past what the kernel knows must be zero (else E2BIG);
 *     fields the caller does not know are taken as zero;
 *   - output: the kernel writes min(size, its own sizeof) bytes.
 * Commands are dispatched on type and number only (not on the size bits of
 * the ioctl number), so a struct can grow without a new command.
 *
 * The Rust mirror of this file is rust/cxlfork-abi/src/uapi.rs; a host test
 * checks that both agree on every size and offset.
 */
#ifndef _UAPI_LINUX_CXLFORK_H
#define _UAPI_LINUX_CXLFORK_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define CXLFORK_ABI_VERSION	1
#define CXLFORK_IOC_MAGIC	0xC7

/* Upper bound on the host slots a pool can be formatted with. */
#define CXLFORK_MAX_HOSTS	16
/* Host slots a pool gets when formatted with max_hosts = 0. */
#define CXLFORK_DEFAULT_HOSTS	8
#define CXLFORK_NODENAME_LEN	64

/* struct cxlfork_pool_attach.flags */
/* Write a new superblock (destroys every image in the pool). */
#define CXLFORK_ATTACH_FORMAT	(1U << 0)
/* Claim the host slot even if it is marked attached (after a crash). */
#define CXLFORK_ATTACH_TAKEOVER	(1U << 1)
#define CXLFORK_ATTACH_FLAGS	(CXLFORK_ATTACH_FORMAT | CXLFORK_ATTACH_TAKEOVER)

/*
 * CXLFORK_IOC_POOL_ATTACH (CAP_SYS_ADMIN): attach this host to the pool at
 * [phys_base, phys_base + phys_size), a device-dax range of a CXL region.
 * Both must be 2 MiB aligned. Errors: EPERM, EINVAL (range, flags, host_id),
 * EBUSY (already attached, or slot held by another live attach), EBADMSG
 * (no valid superblock and no FORMAT flag, or it describes another size),
 * ENOMEM, EFAULT, E2BIG.
 */
struct cxlfork_pool_attach {
	__u32 size;		/* in: sizeof(struct cxlfork_pool_attach) */
	__u32 flags;		/* in: CXLFORK_ATTACH_* */
	__u64 phys_base;	/* in: physical address of the pool */
	__u64 phys_size;	/* in: its length in bytes */
	__u32 host_id;		/* in: this host's slot, < max_hosts */
	__u32 max_hosts;	/* in, FORMAT only: slots (0: default) */
};

/* struct cxlfork_host_info.state */
#define CXLFORK_SLOT_FREE	0	/* never claimed since format */
#define CXLFORK_SLOT_ATTACHED	1
#define CXLFORK_SLOT_DETACHED	2
#define CXLFORK_SLOT_INVALID	3	/* reported only: slot fails validation */

/* One host slot as published by its owner in the pool. */
struct cxlfork_host_info {
	__u32 state;		/* CXLFORK_SLOT_* */
	__u32 host_id;
	__u64 generation;	/* attaches of this slot since format */
	__u64 attach_time_ns;	/* CLOCK_REALTIME of the last attach */
	__u64 part_used;	/* bytes allocated in its partition */
	char nodename[CXLFORK_NODENAME_LEN];	/* NUL-terminated */
};

/*
 * CXLFORK_IOC_POOL_INFO: the attached pool. Errors: ENODEV (no pool),
 * EFAULT, EINVAL (size).
 */
struct cxlfork_pool_info {
	__u32 size;		/* in: sizeof(struct cxlfork_pool_info) */
	__u32 abi_version;	/* out: CXLFORK_ABI_VERSION */
	__u8  uuid[16];		/* out: the pool's uuid, set at format */
	__u64 phys_base;	/* out */
	__u64 pool_size;	/* out: bytes */
	__u64 free_bytes;	/* out: unallocated bytes, all partitions */
	__u64 part_size;	/* out: bytes of each host's partition */
	__u64 part_free;	/* out: unallocated bytes in this host's */
	__u32 host_id;		/* out: this host's slot */
	__u32 max_hosts;	/* out: slots in this pool */
	__u32 format_version;	/* out: on-pool format version */
	__u32 hosts_in_use;	/* out: slots currently attached */
	struct cxlfork_host_info hosts[CXLFORK_MAX_HOSTS]; /* out: [0, max_hosts) */
	__u32 images;		/* out: published images, all hosts */
	__u32 ckpt_active;	/* out: checkpoints in progress on this host */
	__u64 ckpt_pages_done;	/* out: their pages copied so far */
	__u64 ckpt_pages_total;	/* out: their pages to copy */
};

#define CXLFORK_NAME_LEN	64

/* struct cxlfork_checkpoint.flags: what happens to a target (pid > 0) after. */
#define CXLFORK_CKPT_LEAVE_STOPPED	(1U << 0)	/* default: resume it */
#define CXLFORK_CKPT_KILL		(1U << 1)
/* pid 0 only: record the calling thread alone, as fork(2) copies only the
 * thread that calls it (the others are still held still while memory is
 * copied). No pthread_atfork handler runs: see the README's fork semantics. */
#define CXLFORK_CKPT_THIS_THREAD	(1U << 2)
#define CXLFORK_CKPT_FLAGS	(CXLFORK_CKPT_LEAVE_STOPPED | CXLFORK_CKPT_KILL | CXLFORK_CKPT_THIS_THREAD)

/*
 * CXLFORK_IOC_CHECKPOINT: checkpoint process `pid` (0: the caller itself,
 * like fork(): the call returns 0 once the image is published, and a
 * positive clone number in each restored clone) into this host's partition.
 * Every thread is recorded (registers, FPU, signal mask, altstack, rseq,
 * robust list, child tid address, name, scheduling), the process-wide state
 * once; every thread is held still in the kernel while memory is copied.
 * Another process needs mem_fd (see below). Its threads stop at their next
 * return towards user space (a blocking call is interrupted and restarted)
 * while it is copied, then it is resumed, left stopped or killed per
 * flags. Shared memory that cannot be reopened by name
 * (MAP_SHARED|MAP_ANONYMOUS, memfd, unlinked tmpfs files) is copied like
 * private memory. Errors: ENODEV (no pool), ESRCH, EPERM, EINVAL (flags,
 * kernel thread), EBUSY (a thread is traced, or another checkpoint of the
 * same process is under way), EOPNOTSUPP (io_uring or other kernel-made
 * user workers; an exited main thread; hugetlb or PFN mappings; shared
 * unlinked non-tmpfs files), ETIMEDOUT (a thread did not stop within
 * 30 s), ENOSPC (partition or directory full), EAGAIN (pages under
 * swap/migration; threads kept being created), EINTR, EFAULT, E2BIG.
 * Nothing is left in the pool on error.
 */
struct cxlfork_checkpoint {
	__u32 size;		/* in: sizeof(struct cxlfork_checkpoint) */
	__u32 flags;		/* in: CXLFORK_CKPT_* */
	__s32 pid;		/* in: target, 0 for the caller */
	__s32 mem_fd;		/* in, with a pid: a descriptor of /proc/PID/mem opened
				 * by the caller (its open ran the ptrace access check:
				 * Yama, LSMs); ignored for the caller itself */
	char name[CXLFORK_NAME_LEN];	/* in: label, NUL-terminated (may be empty) */
	__u64 image_id;		/* out */
	__u64 image_size;	/* out: bytes of pool used */
	__u64 pages;		/* out: data pages copied */
	__u64 duration_ns;	/* out */
};

/* One image, as listed or stat'ed. */
struct cxlfork_image_info {
	__u64 id;
	__u64 base;		/* pool offset */
	__u64 size;		/* bytes */
	__u64 created_ns;	/* CLOCK_REALTIME of publication */
	__u32 owner_host;
	__u32 uid;
	__u32 gid;
	__u32 pid;		/* pid at checkpoint */
	__u32 valid;		/* 0: the header fails validation; only id, base,
				   size, created_ns, owner_host, uid, gid are set */
	__u32 leases;		/* hosts holding a lease on it */
	__u32 n_vmas;
	__u32 n_files;
	__u64 pages;		/* data pages */
	__u64 anon_pages;
	__u64 file_pages;
	__u64 accessed_pages;
	__u64 dirty_pages;
	__u64 duration_ns;	/* checkpoint time */
	__u32 restores;		/* restores of it on this host since attach */
	__u32 live_clones;	/* clones of it alive on this host */
	char name[CXLFORK_NAME_LEN];
	char comm[16];
};

/*
 * CXLFORK_IOC_LIST: the pool's published images, all hosts' directories.
 * Errors: ENODEV, EFAULT, EINVAL.
 */
struct cxlfork_list {
	__u32 size;		/* in: sizeof(struct cxlfork_list) */
	__u32 count;		/* in: room in images[]; out: entries written */
	__u32 total;		/* out: images in the pool */
	__u32 __reserved;
	__u64 images;		/* in: pointer to struct cxlfork_image_info[count] */
};

/* CXLFORK_IOC_STAT: one image. Errors: ENODEV, ENOENT, EBADMSG (invalid). */
struct cxlfork_stat {
	__u32 size;		/* in: sizeof(struct cxlfork_stat) */
	__u32 __reserved;
	__u64 id;		/* in */
	struct cxlfork_image_info info;	/* out */
};

/*
 * CXLFORK_IOC_READ: copy bytes [offset, offset + length) of an image's
 * extent (raw, for inspection tools). Owner uid or CAP_SYS_ADMIN.
 * Errors: ENODEV, ENOENT, EPERM, EINVAL (range), EFAULT.
 */
struct cxlfork_read {
	__u32 size;		/* in: sizeof(struct cxlfork_read) */
	__u32 __reserved;
	__u64 id;
	__u64 offset;
	__u64 length;
	__u64 buf;		/* in: user pointer */
};

/*
 * CXLFORK_IOC_DELETE: remove an image. Only its owner host may; owner uid or
 * CAP_SYS_ADMIN. Errors: ENODEV, ENOENT, EXDEV (another host's image),
 * EPERM, EBUSY (clones hold leases).
 */
struct cxlfork_delete {
	__u32 size;		/* in: sizeof(struct cxlfork_delete) */
	__u32 __reserved;
	__u64 id;
};

/* struct cxlfork_restore.policy: where a restored page lives. */
#define CXLFORK_POLICY_MOW	0	/* migrate on write (default): read from the pool,
					   copy on write; checkpointed-dirty pages copied up front */
#define CXLFORK_POLICY_MOA	1	/* migrate on access: first access copies locally */
#define CXLFORK_POLICY_HT	2	/* hybrid: checkpointed-Accessed pages copied on access,
					   the others mapped from the pool */

/* struct cxlfork_restore.flags */
#define CXLFORK_RESTORE_SKIP_FILES	(1U << 0)	/* skip fds that cannot be reopened */
#define CXLFORK_RESTORE_IMAGE_STDIO	(1U << 1)	/* fds 0-2 from the image too */
/*
 * The caller created the image's eventfd, epoll and pipe objects (which a
 * module cannot create) at the image's descriptor numbers: each eventfd
 * with the image's EFD_SEMAPHORE and counter, each pipe empty with
 * the image's capacity (both ends in the image), each epoll holding the
 * image's registrations, all with the image's O_NONBLOCK/O_DIRECT and
 * close-on-exec, a dup where the image has one. The restore checks them,
 * writes the pipes' buffered bytes, and keeps them
 * (cxlfork-ctl restore does all this through cxlfork-restore). Without it
 * such descriptors are EOPNOTSUPP (or skipped with SKIP_FILES).
 */
#define CXLFORK_RESTORE_PREPARED_FDS	(1U << 2)
#define CXLFORK_RESTORE_FLAGS	(CXLFORK_RESTORE_SKIP_FILES | CXLFORK_RESTORE_IMAGE_STDIO | \
				 CXLFORK_RESTORE_PREPARED_FDS)

/*
 * CXLFORK_IOC_RESTORE: the caller becomes a clone of image `id`, as execve()
 * replaces a program: its mappings (all but vdso/vvar, which must already
 * sit where the image has them: move them with mremap first), registers,
 * FPU state, signal state, limits, mm fields and file descriptors are
 * replaced by the image's, and it returns to user space inside the
 * checkpointed program. A self-checkpoint returns the clone number (> 0)
 * there; a process checkpointed by pid resumes where it was stopped.
 * Everything is validated, opened and allocated first: on error the caller
 * is untouched. Image owner uid or CAP_SYS_ADMIN. An image of N threads
 * needs N - 1 other threads of the caller waiting in
 * CXLFORK_IOC_RESTORE_THREAD for the same id (and no other thread): the
 * caller becomes the image's main thread, each of them one of the others.
 * Errors: ENODEV, ENOENT, EPERM, EBADMSG (invalid image), ENOEXEC (another
 * kernel build), EINVAL (flags, policy, registers, FPU state, vdso/vvar not
 * in place, a waiting thread named another id), EBUSY (the caller has
 * other threads than those, or shares its memory, files, fs or signal
 * handlers with another process), ETIMEDOUT (the other threads did not all
 * come within 10 s), EOPNOTSUPP (a socket, FIFO, timerfd, signalfd... fd,
 * or an eventfd, epoll or pipe fd without PREPARED_FDS, or a pipe whose
 * other end the image lacks, or an epoll watching a reopened file; none
 * of these with SKIP_FILES), with PREPARED_FDS EBADF (a prepared
 * descriptor missing) or EINVAL (one unlike the image's), or the errno of
 * reopening a file. Does not return on success.
 */
struct cxlfork_restore {
	__u32 size;		/* in: sizeof(struct cxlfork_restore) */
	__u32 flags;		/* in: CXLFORK_RESTORE_* */
	__u64 id;		/* in: image */
	__u32 policy;		/* in: CXLFORK_POLICY_* */
	__u32 __reserved;	/* in: 0 */
};

/*
 * CXLFORK_IOC_RESTORE_THREAD: wait to become one of the other threads of
 * image `id`, which another thread of this process restores (with
 * CXLFORK_IOC_RESTORE). Returns on error only: the restore failed before
 * changing anything (its errno), EINTR (killed), ETIMEDOUT (no main
 * thread came to restore within 60 s), EINVAL (flags), EBUSY (this thread
 * is the process's main thread, or is already waiting). On
 * success the thread resumes inside the restored program with its image
 * thread's registers and state, as RESTORE does for the main thread.
 */
struct cxlfork_restore_thread {
	__u32 size;		/* in: sizeof(struct cxlfork_restore_thread) */
	__u32 flags;		/* in: 0 */
	__u64 id;		/* in: image */
};

/* CXLFORK_IOC_CLONE_STAT: a clone's tiering statistics (pid 0: the caller).
 * A process is a clone once its RESTORE completed: its memory, its signal
 * handlers, and the restoring thread's registers and signal mask are the
 * image's (a signal sent to it from then on is the clone's to take; one
 * sent to the restorer earlier meets the restorer's dispositions). Its
 * other threads take their state as each leaves the kernel.
 * Errors: ESRCH, ENOENT (not a clone), EAGAIN (its restore is still under
 * way), EPERM. */
struct cxlfork_clone_stat {
	__u32 size;		/* in: sizeof(struct cxlfork_clone_stat) */
	__s32 pid;		/* in */
	__u64 image_id;		/* out */
	__u32 policy;		/* out */
	__u32 clone_nr;		/* out: the value the clone's checkpoint call returned */
	__u64 restore_ns;	/* out: time inside the RESTORE call */
	__u64 pool_pages;	/* out: pages mapped from the pool (zero copy) */
	__u64 local_pages;	/* out: pages copied to local memory by the policy */
	__u64 prefetched_pages;	/* out: of which MoW copied as dirty (at their leaf's first fault) */
	__u64 zero_pages;	/* out: faults on pages the image does not hold (zero) */
	__u64 file_pages;	/* out: ... (read from the reopened file) */
	__u64 faults;		/* out: faults taken by the clone's mappings */
	__u64 leaves;		/* out: leaf tables loaded (one per 2 MiB touched) */
};

#define CXLFORK_IOC_POOL_ATTACH	_IOW(CXLFORK_IOC_MAGIC, 0x01, struct cxlfork_pool_attach)
#define CXLFORK_IOC_POOL_INFO	_IOWR(CXLFORK_IOC_MAGIC, 0x02, struct cxlfork_pool_info)
/* CAP_SYS_ADMIN. Errors: EPERM, ENODEV (no pool). */
#define CXLFORK_IOC_POOL_DETACH	_IO(CXLFORK_IOC_MAGIC, 0x03)
#define CXLFORK_IOC_CHECKPOINT	_IOWR(CXLFORK_IOC_MAGIC, 0x10, struct cxlfork_checkpoint)
#define CXLFORK_IOC_LIST	_IOWR(CXLFORK_IOC_MAGIC, 0x11, struct cxlfork_list)
#define CXLFORK_IOC_STAT	_IOWR(CXLFORK_IOC_MAGIC, 0x12, struct cxlfork_stat)
#define CXLFORK_IOC_READ	_IOW(CXLFORK_IOC_MAGIC, 0x13, struct cxlfork_read)
#define CXLFORK_IOC_DELETE	_IOW(CXLFORK_IOC_MAGIC, 0x14, struct cxlfork_delete)
#define CXLFORK_IOC_RESTORE	_IOW(CXLFORK_IOC_MAGIC, 0x20, struct cxlfork_restore)
#define CXLFORK_IOC_CLONE_STAT	_IOWR(CXLFORK_IOC_MAGIC, 0x21, struct cxlfork_clone_stat)
#define CXLFORK_IOC_RESTORE_THREAD _IOW(CXLFORK_IOC_MAGIC, 0x22, struct cxlfork_restore_thread)

#endif /* _UAPI_LINUX_CXLFORK_H */
