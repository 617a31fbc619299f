//! Rust mirror of `include/uapi/linux/cxlfork.h`.
//!
//! Keep both in step: `tests/c_header.rs` compiles the header with `cc` and
//! checks every size and offset below against it.

use super::pod::pod_struct;

/// Version of the ioctl ABI.
pub const ABI_VERSION: u32 = 1;
/// The ioctl type byte of every cxlfork command.
pub const IOC_MAGIC: u32 = 0xC7;
/// Upper bound on the host slots of a pool.
pub const MAX_HOSTS: usize = 16;
/// Host slots of a pool formatted with `max_hosts == 0`.
pub const DEFAULT_HOSTS: u32 = 8;
/// Bytes of `HostInfo::nodename`, NUL included.
pub const NODENAME_LEN: usize = 64;

/// Attach flag: write a new superblock (destroys every image in the pool).
pub const ATTACH_FORMAT: u32 = 1 << 0;
/// Attach flag: claim the host slot even if it is marked attached.
pub const ATTACH_TAKEOVER: u32 = 1 << 1;
/// Every attach flag this ABI knows.
pub const ATTACH_FLAGS: u32 = ATTACH_FORMAT | ATTACH_TAKEOVER;

/// Host slot state: never claimed since format.
pub const SLOT_FREE: u32 = 0;
/// Host slot state: a host is attached through it.
pub const SLOT_ATTACHED: u32 = 1;
/// Host slot state: claimed before, detached cleanly since.
pub const SLOT_DETACHED: u32 = 2;
/// Host slot state (reported, never stored): the slot fails validation.
pub const SLOT_INVALID: u32 = 3;

pod_struct! {
    /// `struct cxlfork_pool_attach`.
    pub struct PoolAttach {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// `ATTACH_*` flags.
        pub flags: u32,
        /// Physical address of the pool.
        pub phys_base: u64,
        /// Length of the pool in bytes.
        pub phys_size: u64,
        /// This host's slot.
        pub host_id: u32,
        /// With `ATTACH_FORMAT`: slots to format (0: `DEFAULT_HOSTS`).
        pub max_hosts: u32,
    }
}

pod_struct! {
    /// `struct cxlfork_host_info`: one host slot as its owner published it.
    pub struct HostInfo {
        /// `SLOT_*`.
        pub state: u32,
        /// The slot's number.
        pub host_id: u32,
        /// Attaches of this slot since format.
        pub generation: u64,
        /// `CLOCK_REALTIME` of the last attach, in ns.
        pub attach_time_ns: u64,
        /// Bytes allocated in the slot's partition.
        pub part_used: u64,
        /// The owner's node name, NUL-terminated.
        pub nodename: [u8; NODENAME_LEN],
    }
}

pod_struct! {
    /// `struct cxlfork_pool_info`.
    pub struct PoolInfo {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// `ABI_VERSION`.
        pub abi_version: u32,
        /// The pool's uuid.
        pub uuid: [u8; 16],
        /// Physical address of the pool.
        pub phys_base: u64,
        /// Pool size in bytes.
        pub pool_size: u64,
        /// Unallocated bytes in all partitions.
        pub free_bytes: u64,
        /// Bytes of each host's partition.
        pub part_size: u64,
        /// Unallocated bytes in this host's partition.
        pub part_free: u64,
        /// This host's slot.
        pub host_id: u32,
        /// Slots in this pool.
        pub max_hosts: u32,
        /// On-pool format version.
        pub format_version: u32,
        /// Slots currently attached.
        pub hosts_in_use: u32,
        /// Slots `[0, max_hosts)`.
        pub hosts: [HostInfo; MAX_HOSTS],
        /// Published images, all hosts.
        pub images: u32,
        /// Checkpoints in progress on this host.
        pub ckpt_active: u32,
        /// Their pages copied so far.
        pub ckpt_pages_done: u64,
        /// Their pages to copy.
        pub ckpt_pages_total: u64,
    }
}

/// Bytes of an image name, NUL included.
pub const NAME_LEN: usize = 64;
/// Checkpoint flag: leave the target stopped afterwards.
pub const CKPT_LEAVE_STOPPED: u32 = 1 << 0;
/// Checkpoint flag: kill the target afterwards.
pub const CKPT_KILL: u32 = 1 << 1;
/// Checkpoint flag (pid 0 only): record the calling thread alone, as
/// fork(2) copies it.
pub const CKPT_THIS_THREAD: u32 = 1 << 2;
/// Every checkpoint flag.
pub const CKPT_FLAGS: u32 = CKPT_LEAVE_STOPPED | CKPT_KILL | CKPT_THIS_THREAD;

pod_struct! {
    /// `struct cxlfork_checkpoint`.
    pub struct Checkpoint {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// `CKPT_*`.
        pub flags: u32,
        /// Target pid, 0 for the caller (i32 in C).
        pub pid: u32,
        /// With a pid: a descriptor of `/proc/PID/mem` the caller opened
        /// (opening it ran the kernel's ptrace access check, LSMs and Yama
        /// included). Ignored for the caller itself (i32 in C).
        pub mem_fd: u32,
        /// Label, NUL-terminated.
        pub name: [u8; NAME_LEN],
        /// Out: image id.
        pub image_id: u64,
        /// Out: bytes of pool used.
        pub image_size: u64,
        /// Out: data pages copied.
        pub pages: u64,
        /// Out: checkpoint time.
        pub duration_ns: u64,
    }
}

pod_struct! {
    /// `struct cxlfork_image_info`.
    pub struct ImageInfo {
        /// Image id.
        pub id: u64,
        /// Pool offset.
        pub base: u64,
        /// Bytes.
        pub size: u64,
        /// Publication time.
        pub created_ns: u64,
        /// Owner host.
        pub owner_host: u32,
        /// Owner uid.
        pub uid: u32,
        /// Owner gid.
        pub gid: u32,
        /// Pid at checkpoint.
        pub pid: u32,
        /// 0 if the header fails validation.
        pub valid: u32,
        /// Hosts holding a lease.
        pub leases: u32,
        /// VMAs.
        pub n_vmas: u32,
        /// Files.
        pub n_files: u32,
        /// Data pages.
        pub pages: u64,
        /// Anonymous pages.
        pub anon_pages: u64,
        /// Private file pages.
        pub file_pages: u64,
        /// Pages with the Accessed bit.
        pub accessed_pages: u64,
        /// Pages with the Dirty bit.
        pub dirty_pages: u64,
        /// Checkpoint time.
        pub duration_ns: u64,
        /// Restores of it on this host since attach.
        pub restores: u32,
        /// Clones of it alive on this host.
        pub live_clones: u32,
        /// Label.
        pub name: [u8; NAME_LEN],
        /// Command name.
        pub comm: [u8; 16],
    }
}

pod_struct! {
    /// `struct cxlfork_list`.
    pub struct List {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// In: room in `images`; out: entries written.
        pub count: u32,
        /// Out: images in the pool.
        pub total: u32,
        /// Zero.
        pub reserved: u32,
        /// User pointer to `ImageInfo[count]`.
        pub images: u64,
    }
}

pod_struct! {
    /// `struct cxlfork_stat`.
    pub struct Stat {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// Zero.
        pub reserved: u32,
        /// Image id.
        pub id: u64,
        /// Out.
        pub info: ImageInfo,
    }
}

pod_struct! {
    /// `struct cxlfork_read`.
    pub struct Read {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// Zero.
        pub reserved: u32,
        /// Image id.
        pub id: u64,
        /// Offset in the image.
        pub offset: u64,
        /// Bytes.
        pub length: u64,
        /// User pointer.
        pub buf: u64,
    }
}

pod_struct! {
    /// `struct cxlfork_delete`.
    pub struct Delete {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// Zero.
        pub reserved: u32,
        /// Image id.
        pub id: u64,
    }
}

/// Policy: migrate on write (default).
pub const POLICY_MOW: u32 = 0;
/// Policy: migrate on access.
pub const POLICY_MOA: u32 = 1;
/// Policy: hybrid tiering.
pub const POLICY_HT: u32 = 2;
/// Restore flag: skip fds that cannot be reopened.
pub const RESTORE_SKIP_FILES: u32 = 1 << 0;
/// Restore flag: fds 0-2 from the image too.
pub const RESTORE_IMAGE_STDIO: u32 = 1 << 1;
/// Restore flag: the restorer created the image's eventfd, epoll and pipe
/// objects at the image's descriptor numbers (checked, filled and kept).
pub const RESTORE_PREPARED_FDS: u32 = 1 << 2;
/// Every restore flag.
pub const RESTORE_FLAGS: u32 = RESTORE_SKIP_FILES | RESTORE_IMAGE_STDIO | RESTORE_PREPARED_FDS;

pod_struct! {
    /// `struct cxlfork_restore`.
    pub struct Restore {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// `RESTORE_*`.
        pub flags: u32,
        /// Image id.
        pub id: u64,
        /// `POLICY_*`.
        pub policy: u32,
        /// Zero.
        pub reserved: u32,
    }
}

pod_struct! {
    /// `struct cxlfork_restore_thread`.
    pub struct RestoreThread {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// Zero.
        pub flags: u32,
        /// Image id.
        pub id: u64,
    }
}

pod_struct! {
    /// `struct cxlfork_clone_stat`.
    pub struct CloneStat {
        /// `sizeof` as the caller knows it.
        pub size: u32,
        /// Pid (i32 in C), 0 for the caller.
        pub pid: u32,
        /// Out: image.
        pub image_id: u64,
        /// Out: policy.
        pub policy: u32,
        /// Out: clone number.
        pub clone_nr: u32,
        /// Out: time in RESTORE.
        pub restore_ns: u64,
        /// Out: pages mapped from the pool.
        pub pool_pages: u64,
        /// Out: pages copied local by the policy.
        pub local_pages: u64,
        /// Out: of which MoW copied as dirty (at their leaf's first fault).
        pub prefetched_pages: u64,
        /// Out: zero-fill faults.
        pub zero_pages: u64,
        /// Out: faults served from the reopened file.
        pub file_pages: u64,
        /// Out: faults.
        pub faults: u64,
        /// Out: leaf tables loaded.
        pub leaves: u64,
    }
}

const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOC_MAGIC << 8) | nr
}

/// Command number (the `_IOC_NR` byte) of `CXLFORK_IOC_POOL_ATTACH`.
pub const NR_POOL_ATTACH: u32 = 0x01;
/// Command number of `CXLFORK_IOC_POOL_INFO`.
pub const NR_POOL_INFO: u32 = 0x02;
/// Command number of `CXLFORK_IOC_POOL_DETACH`.
pub const NR_POOL_DETACH: u32 = 0x03;

/// Command number of `CXLFORK_IOC_CHECKPOINT`.
pub const NR_CHECKPOINT: u32 = 0x10;
/// Command number of `CXLFORK_IOC_LIST`.
pub const NR_LIST: u32 = 0x11;
/// Command number of `CXLFORK_IOC_STAT`.
pub const NR_STAT: u32 = 0x12;
/// Command number of `CXLFORK_IOC_READ`.
pub const NR_READ: u32 = 0x13;
/// Command number of `CXLFORK_IOC_DELETE`.
pub const NR_DELETE: u32 = 0x14;

/// Command number of `CXLFORK_IOC_RESTORE`.
pub const NR_RESTORE: u32 = 0x20;
/// Command number of `CXLFORK_IOC_CLONE_STAT`.
pub const NR_CLONE_STAT: u32 = 0x21;
/// Command number of `CXLFORK_IOC_RESTORE_THREAD`.
pub const NR_RESTORE_THREAD: u32 = 0x22;
/// `CXLFORK_IOC_RESTORE_THREAD`.
pub const IOC_RESTORE_THREAD: u32 = ioc(IOC_WRITE, NR_RESTORE_THREAD, RestoreThread::SIZE);
/// `CXLFORK_IOC_RESTORE`.
pub const IOC_RESTORE: u32 = ioc(IOC_WRITE, NR_RESTORE, Restore::SIZE);
/// `CXLFORK_IOC_CLONE_STAT`.
pub const IOC_CLONE_STAT: u32 = ioc(IOC_READ | IOC_WRITE, NR_CLONE_STAT, CloneStat::SIZE);

/// `CXLFORK_IOC_CHECKPOINT`.
pub const IOC_CHECKPOINT: u32 = ioc(IOC_READ | IOC_WRITE, NR_CHECKPOINT, Checkpoint::SIZE);
/// `CXLFORK_IOC_LIST`.
pub const IOC_LIST: u32 = ioc(IOC_READ | IOC_WRITE, NR_LIST, List::SIZE);
/// `CXLFORK_IOC_STAT`.
pub const IOC_STAT: u32 = ioc(IOC_READ | IOC_WRITE, NR_STAT, Stat::SIZE);
/// `CXLFORK_IOC_READ`.
pub const IOC_READ_IMAGE: u32 = ioc(IOC_WRITE, NR_READ, Read::SIZE);
/// `CXLFORK_IOC_DELETE`.
pub const IOC_DELETE: u32 = ioc(IOC_WRITE, NR_DELETE, Delete::SIZE);

/// `CXLFORK_IOC_POOL_ATTACH`.
pub const IOC_POOL_ATTACH: u32 = ioc(IOC_WRITE, NR_POOL_ATTACH, PoolAttach::SIZE);
/// `CXLFORK_IOC_POOL_INFO`.
pub const IOC_POOL_INFO: u32 = ioc(IOC_READ | IOC_WRITE, NR_POOL_INFO, PoolInfo::SIZE);
/// `CXLFORK_IOC_POOL_DETACH`.
pub const IOC_POOL_DETACH: u32 = ioc(IOC_NONE, NR_POOL_DETACH, 0);

/// Splits an ioctl command into (type, number).
pub const fn ioc_type_nr(cmd: u32) -> (u32, u32) {
    ((cmd >> 8) & 0xff, cmd & 0xff)
}

/// The first published size of each versioned struct: smaller is refused.
pub mod min_size {
    /// `struct cxlfork_pool_attach` v1.
    pub const POOL_ATTACH: usize = 32;
    /// `struct cxlfork_pool_info` v1.
    pub const POOL_INFO: usize = 80 + 16 * 96 + 24;
    /// `struct cxlfork_checkpoint` v1.
    pub const CHECKPOINT: usize = 112;
    /// `struct cxlfork_list` v1.
    pub const LIST: usize = 24;
    /// `struct cxlfork_stat` v1.
    pub const STAT: usize = 16 + 200;
    /// `struct cxlfork_read` v1.
    pub const READ: usize = 40;
    /// `struct cxlfork_delete` v1.
    pub const DELETE: usize = 16;
    /// `struct cxlfork_restore` v1.
    pub const RESTORE: usize = 24;
    /// `struct cxlfork_clone_stat` v1.
    pub const CLONE_STAT: usize = 88;
    /// `struct cxlfork_restore_thread` v1.
    pub const RESTORE_THREAD: usize = 16;
}

/// The NUL-terminated prefix of a fixed-size name field.
pub fn cstr_field(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}
