//! The checkpoint image: its on-pool format and its validator.
//!
//! An image is one contiguous, page-aligned extent of its owner's partition:
//!
//! ```text
//! page 0   ImageHeader                      immutable, header_crc
//! page 1   lease lines: one 64-byte line per host slot, each written only
//!          by that host (the only mutable part of a published image)
//! page 2.. meta: VmaImage[n_vmas] FileImage[n_files] strings ProcImage
//!          TaskImage[n_tasks] FPU area (one XSAVE buffer per task)
//!          ObjImage[n_objs] u64[n_obj_pages] (shared objects and the file
//!          page offsets of their stored pages)
//!          LeafIndex[n_leaves]   (page-padded), then the upper
//!          page-table levels: root, its PUD tables, their PMD tables, each a
//!          4 KiB page of 512 entries `pool_offset | flags`    meta_crc
//! leaves   n_leaves leaf page tables: the hardware PTEs of the checkpointed
//!          process with each frame number replaced by the pool-relative frame
//!          of the copied page; each covered by LeafIndex::crc
//! data     n_data copied 4 KiB pages (the program's bytes: not checksummed):
//!          the pages the leaves map, then the shared objects' pages
//! ```
//!
//! A shared object is shared memory with no name a restore could reopen
//! (MAP_SHARED|MAP_ANONYMOUS, a memfd, a deleted tmpfs file): its whole
//! content is stored once, whatever maps it; every VMA and descriptor of it
//! names it, so a clone gets one object mapped by all of them again.
//!
//! Tables are stored in walk order (root; PUD tables by address; PMD tables
//! by address; leaves by address), so the validator checks that every table
//! is referenced exactly once, in order, by a single sequential walk.

use super::crc::crc32c;
use super::pod::{pod_struct, Pod};
use super::pool::PAGE_SIZE;

/// `ImageHeader::magic`.
pub const IMG_MAGIC: [u8; 8] = *b"CXLFIMG\0";
/// Image format version. 3: every thread is recorded (task 0 the main
/// thread, the others by increasing tid); a version-2 module restored task
/// 0 alone, so it must refuse these. 4: eventfd, epoll and pipe
/// descriptors carry their state (`FileImage::ident` onwards).
pub const IMG_VERSION: u32 = 4;
/// Bytes of an image name, NUL included.
pub const NAME_LEN: usize = 64;
/// Entries of a page table page.
pub const PT_ENTRIES: usize = 512;
/// Signals with an action slot.
pub const NSIG: usize = 64;
/// Resource limits recorded.
pub const NRLIMITS: usize = 16;
/// u64 words of saved auxv.
pub const AUXV_WORDS: usize = 64;
/// Bytes of address space one leaf table maps (2 MiB).
pub const LEAF_SPAN: u64 = PT_ENTRIES as u64 * PAGE_SIZE;
/// The 2 MiB-aligned address of the leaf table block that maps `addr`.
pub const fn leaf_block(addr: u64) -> u64 {
    addr & !(LEAF_SPAN - 1)
}

/// Bytes of the lease line of one host.
pub const LEASE_LINE: u64 = 64;

pod_struct! {
    /// One host's line of an image's lease page (one cache line, written
    /// only by that host): how many clones it runs of the image. A line
    /// counts only while it names this image and its host's current attach
    /// generation: a crashed host's leases lapse when its slot is taken
    /// over, and a line left from an earlier image in the same extent never
    /// counts for a new one.
    pub struct LeaseLine {
        /// The image leased.
        pub image_id: u64,
        /// The holder host's attach generation when it took the lease.
        pub attach_gen: u64,
        /// Live clones of the image on the holder host.
        pub count: u64,
        /// Zero.
        pub reserved: [u64; 4],
        /// CRC-32C of the bytes before this field.
        pub checksum: u32,
        /// Zero.
        pub pad: u32,
    }
}

impl LeaseLine {
    /// A sealed line.
    pub fn new(image_id: u64, attach_gen: u64, count: u64) -> Self {
        let mut l = Self { image_id, attach_gen, count, reserved: [0; 4], checksum: 0, pad: 0 };
        l.checksum = crc32c(&l.as_bytes()[..core::mem::offset_of!(Self, checksum)]);
        l
    }

    /// Whether this line holds a lease on `image_id` for a holder whose
    /// current attach generation is `holder_gen` (`None`: the holder is not
    /// attached, its leases lapsed). A torn or corrupt line holds (a
    /// delete must not free an image a clone may map); an all-zero one
    /// does not.
    pub fn holds(&self, image_id: u64, holder_gen: Option<u64>) -> bool {
        if self.as_bytes().iter().all(|&b| b == 0) {
            return false;
        }
        if self.checksum != crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, checksum)]) {
            return true;
        }
        self.image_id == image_id && self.count != 0 && holder_gen == Some(self.attach_gen)
    }

    /// The image an intact line leases for a holder of generation
    /// `holder_gen` (a torn or empty line, or one of another generation,
    /// leases none).
    pub fn leased(&self, holder_gen: u64) -> Option<u64> {
        let sealed = self.checksum == crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, checksum)]);
        (sealed && self.count != 0 && self.attach_gen == holder_gen).then_some(self.image_id)
    }
}
/// Upper bounds that keep every count and size sane.
pub const MAX_VMAS: u32 = 65536;
/// Most files an image records.
pub const MAX_FILES: u32 = 65536;
/// Most bytes of path strings.
pub const MAX_STRINGS: u32 = 16 << 20;
/// Most bytes of FPU state (all tasks).
pub const MAX_FPU: u32 = 64 << 20;
/// Descriptors are below this (the kernel's nr_open ceiling).
pub const MAX_FD: u32 = 1 << 20;
/// Most upper page-table pages a 47-bit user half can have: the root, a
/// PUD table per user root entry, a PMD table per PUD entry.
pub const MAX_UPPER: u32 = 1 + (PT_ENTRIES as u32 / 2) * (1 + PT_ENTRIES as u32);
/// Most shared objects an image records.
pub const MAX_OBJS: u32 = 65536;
/// Most tasks (threads) an image records.
pub const MAX_TASKS: u32 = 4096;
/// Most bytes of one task's XSAVE buffer.
pub const MAX_TASK_FPU: u32 = 64 << 10;

/// x86-64 page-table entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User accessible.
    pub const USER: u64 = 1 << 2;
    /// Accessed (set by the CPU on any access).
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty (set by the CPU on write).
    pub const DIRTY: u64 = 1 << 6;
    /// Huge page (in a PMD/PUD entry).
    pub const PSE: u64 = 1 << 7;
    /// Linux: a PROT_NONE entry (not present to the CPU, but mapped).
    pub const PROTNONE: u64 = 1 << 8;
    /// No execute.
    pub const NX: u64 = 1 << 63;
    /// Frame number field.
    pub const PFN_MASK: u64 = 0x000f_ffff_ffff_f000;

    /// Whether a leaf entry maps a frame (present or PROT_NONE).
    pub const fn maps_frame(e: u64) -> bool {
        e & (PRESENT | PROTNONE) != 0
    }

    /// The entry with its frame replaced by `frame` (a pool-relative frame).
    pub const fn with_frame(e: u64, frame: u64) -> u64 {
        (e & !PFN_MASK) | ((frame << 12) & PFN_MASK)
    }

    /// The frame number of an entry.
    pub const fn frame(e: u64) -> u64 {
        (e & PFN_MASK) >> 12
    }
}

/// VMA kinds (`VmaImage::kind`).
pub mod vma_kind {
    /// Private anonymous memory.
    pub const ANON: u32 = 1;
    /// The brk heap.
    pub const HEAP: u32 = 2;
    /// The main stack.
    pub const STACK: u32 = 3;
    /// Private mapping of a file: its private copies are in the image, its
    /// clean pages come from the file (as they come from the page cache to
    /// a fork child).
    pub const FILE_PRIVATE: u32 = 4;
    /// Shared mapping of a file (recorded by path and offset, not copied).
    pub const FILE_SHARED: u32 = 5;
    /// `[vdso]`.
    pub const VDSO: u32 = 6;
    /// `[vvar]`.
    pub const VVAR: u32 = 7;
    /// `[vvar_vclock]`.
    pub const VVAR_VCLOCK: u32 = 8;
    /// Another special mapping (e.g. `[uprobes]`): recorded, never copied.
    pub const SPECIAL: u32 = 9;
    /// Shared memory with no name to reopen (MAP_SHARED|MAP_ANONYMOUS,
    /// memfd, unlinked tmpfs): a shared object of the image (`obj`); the
    /// clone gets its own copy of the object.
    pub const SHARED_ANON: u32 = 10;
    /// The highest kind.
    pub const LAST: u32 = SHARED_ANON;

    /// A short name, as in /proc/PID/maps where it has one.
    pub fn name(k: u32) -> &'static str {
        match k {
            ANON => "anon",
            HEAP => "[heap]",
            STACK => "[stack]",
            FILE_PRIVATE => "file-private",
            FILE_SHARED => "file-shared",
            VDSO => "[vdso]",
            VVAR => "[vvar]",
            VVAR_VCLOCK => "[vvar_vclock]",
            SPECIAL => "special",
            SHARED_ANON => "shared-anon",
            _ => "?",
        }
    }

    /// Whether pages of this kind are copied into the image.
    pub fn copies_pages(k: u32) -> bool {
        matches!(k, ANON | HEAP | STACK | FILE_PRIVATE | SHARED_ANON)
    }
}

/// `VmaImage::vm_flags`: image-defined VMA flags (the checkpointing shim
/// translates the kernel's `vm_flags` into these; they do not depend on the
/// kernel build).
pub mod vm {
    /// Readable.
    pub const READ: u64 = 0x1;
    /// Writable.
    pub const WRITE: u64 = 0x2;
    /// Executable.
    pub const EXEC: u64 = 0x4;
    /// Shared.
    pub const SHARED: u64 = 0x8;
    /// May be made writable (mprotect).
    pub const MAYWRITE: u64 = 0x20;
    /// Grows down (stack).
    pub const GROWSDOWN: u64 = 0x100;
    /// Private writable memory without commit charge (MAP_NORESERVE).
    pub const NORESERVE: u64 = 1 << 16;
    /// MADV_WIPEONFORK: a fork child (and so a clone) sees it zeroed.
    pub const WIPEONFORK: u64 = 1 << 17;
    /// MADV_DONTDUMP.
    pub const DONTDUMP: u64 = 1 << 18;
    /// MAP_DROPPABLE: wiped on fork, droppable under pressure.
    pub const DROPPABLE: u64 = 1 << 19;
    /// mlock()ed in the original (a fork child does not inherit locks).
    pub const LOCKED: u64 = 1 << 20;
    /// MADV_HUGEPAGE.
    pub const HUGEPAGE: u64 = 1 << 21;
    /// MADV_NOHUGEPAGE.
    pub const NOHUGEPAGE: u64 = 1 << 22;
    /// mseal()ed.
    pub const SEALED: u64 = 1 << 23;
    /// The VMA's memory protection key (pkey_mprotect) is in these bits.
    pub const PKEY_SHIFT: u32 = 24;
    /// Its mask.
    pub const PKEY_MASK: u64 = 0xf << PKEY_SHIFT;
    /// MADV_DONTFORK (a checkpoint of every thread keeps the mapping; the
    /// clone's is MADV_DONTFORK again).
    pub const DONTCOPY: u64 = 1 << 28;
    /// Every flag an image may carry.
    pub const ALL: u64 = READ | WRITE | EXEC | SHARED | MAYWRITE | GROWSDOWN | NORESERVE | WIPEONFORK | DONTDUMP | DROPPABLE
        | LOCKED | HUGEPAGE | NOHUGEPAGE | SEALED | PKEY_MASK | DONTCOPY;
}

/// `ProcImage::mm_flags`: image-defined mm flags a fork child keeps.
pub mod mmf {
    /// PR_SET_THP_DISABLE (completely).
    pub const THP_DISABLE: u64 = 1 << 0;
    /// PR_SET_THP_DISABLE with PR_THP_DISABLE_EXCEPT_ADVISED.
    pub const THP_DISABLE_EXCEPT_ADVISED: u64 = 1 << 1;
    /// PR_SET_MEMORY_MERGE (KSM for the whole process).
    pub const KSM_MERGE_ANY: u64 = 1 << 2;
    /// PR_SET_MDWE: memory-deny-write-execute.
    pub const MDWE: u64 = 1 << 3;
    /// PR_MDWE_NO_INHERIT.
    pub const MDWE_NO_INHERIT: u64 = 1 << 4;
    /// Every flag an image may carry.
    pub const ALL: u64 = THP_DISABLE | THP_DISABLE_EXCEPT_ADVISED | KSM_MERGE_ANY | MDWE | MDWE_NO_INHERIT;
}

/// `ProcImage::proc_flags`.
pub mod procf {
    /// PR_SET_NO_NEW_PRIVS.
    pub const NO_NEW_PRIVS: u32 = 1 << 0;
    /// Every flag an image may carry.
    pub const ALL: u32 = NO_NEW_PRIVS;
}

/// Open-file kinds (`FileImage::kind`).
pub mod file_kind {
    /// Regular file.
    pub const REG: u32 = 1;
    /// Directory.
    pub const DIR: u32 = 2;
    /// Character device.
    pub const CHR: u32 = 3;
    /// Block device.
    pub const BLK: u32 = 4;
    /// Named FIFO (or a pipe with a watch queue): recorded, unsupported at restore.
    pub const FIFO: u32 = 5;
    /// Socket: recorded, unsupported at restore.
    pub const SOCK: u32 = 6;
    /// Any other anonymous-inode file (timerfd, signalfd, inotify,
    /// io_uring...): recorded, unsupported at restore.
    pub const OTHER: u32 = 7;
    /// eventfd: its counter and EFD_SEMAPHORE are recorded.
    pub const EVENTFD: u32 = 8;
    /// epoll instance: its registrations are recorded.
    pub const EPOLL: u32 = 9;
    /// One end of an anonymous pipe: its capacity and buffered bytes are recorded.
    pub const PIPE: u32 = 10;
    /// The last kind.
    pub const LAST: u32 = PIPE;

    /// A short name.
    pub fn name(k: u32) -> &'static str {
        match k {
            REG => "file",
            DIR => "dir",
            CHR => "chr",
            BLK => "blk",
            FIFO => "fifo",
            SOCK => "socket",
            OTHER => "other",
            EVENTFD => "eventfd",
            EPOLL => "epoll",
            PIPE => "pipe",
            _ => "?",
        }
    }

    /// Kinds whose kernel object the restorer creates (the kernel cannot):
    /// with `RESTORE_PREPARED_FDS` it finds them at the image's numbers,
    /// checks them and fills their state.
    pub fn prepared(k: u32) -> bool {
        matches!(k, EVENTFD | EPOLL | PIPE)
    }
}

/// epoll event bits an image may record (`EpollItem::events`): the poll
/// bits, EPOLLRDHUP, and EPOLLEXCLUSIVE, EPOLLWAKEUP, EPOLLONESHOT, EPOLLET.
pub const EPOLL_EVENTS: u32 = 0x0000_3fff | 0xf000_0000;
/// epoll bits every registration gets (EPOLLERR | EPOLLHUP): compared
/// with them set, as a restorer's EPOLL_CTL_ADD sets them.
pub const EPOLL_ALWAYS: u32 = 0x8 | 0x10;
/// EPOLLWAKEUP: dropped by EPOLL_CTL_ADD without CAP_BLOCK_SUSPEND, so
/// not compared.
pub const EPOLL_WAKEUP: u32 = 1 << 29;
/// Largest pipe capacity an image may record (the kernel's own ceiling is
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
pub const MAX_PIPE: u64 = 1 << 28;

/// One epoll registration (16 bytes, little-endian, packed in the strings
/// at `FileImage::data_off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EpollItem {
    /// The watched descriptor's number.
    pub tfd: u32,
    /// `epoll_event.events`.
    pub events: u32,
    /// `epoll_event.data`.
    pub data: u64,
}

impl EpollItem {
    /// Bytes of one record.
    pub const SIZE: usize = 16;

    /// The record's bytes.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..4].copy_from_slice(&self.tfd.to_le_bytes());
        b[4..8].copy_from_slice(&self.events.to_le_bytes());
        b[8..].copy_from_slice(&self.data.to_le_bytes());
        b
    }

    /// A record from its bytes (`b` is `SIZE` long).
    pub fn from_bytes(b: &[u8]) -> Self {
        let w = |r: core::ops::Range<usize>| b.get(r).map_or(0, |s| s.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)));
        Self { tfd: w(0..4) as u32, events: w(4..8) as u32, data: w(8..16) }
    }

    /// The events as compared between an image and a restorer's epoll.
    pub fn normalized_events(self) -> u32 {
        (self.events | EPOLL_ALWAYS) & !EPOLL_WAKEUP
    }

    /// Parses one line of an epoll file's fdinfo (`tfd: %8d events: %8x
    /// data: %16llx  pos:%lli ino:%llx sdev:%x`): the registration and the
    /// watched file's inode number.
    pub fn parse_fdinfo(line: &[u8]) -> Option<(Self, u64)> {
        let tfd = field(line, b"tfd:", 10)?;
        let events = field(line, b"events:", 16)?;
        let data = field(line, b"data:", 16)?;
        let ino = field(line, b"ino:", 16)?;
        Some((Self { tfd: u32::try_from(tfd).ok()?, events: u32::try_from(events).ok()?, data }, ino))
    }
}

/// The number after `key` (and spaces) in `line`, in `radix`.
fn field(line: &[u8], key: &[u8], radix: u32) -> Option<u64> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let start = rest.iter().position(|&c| c != b' ')?;
    let mut v: u64 = 0;
    let mut n = 0;
    for &c in &rest[start..] {
        let Some(d) = (c as char).to_digit(radix) else { break };
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        n += 1;
    }
    (n > 0).then_some(v)
}

/// The value after `key` in eventfd fdinfo text (`eventfd-count: %16llx`
/// is hexadecimal, `eventfd-semaphore: %d` decimal).
pub fn fdinfo_value(text: &[u8], key: &[u8], radix: u32) -> Option<u64> {
    text.split(|&c| c == b'\n').find(|l| l.starts_with(key)).and_then(|l| field(l, key, radix))
}

pod_struct! {
    /// x86-64 user registers in `struct pt_regs` order, plus the segment bases.
    pub struct RegsImage {
        /// r15.
        pub r15: u64,
        /// r14.
        pub r14: u64,
        /// r13.
        pub r13: u64,
        /// r12.
        pub r12: u64,
        /// rbp.
        pub bp: u64,
        /// rbx.
        pub bx: u64,
        /// r11.
        pub r11: u64,
        /// r10.
        pub r10: u64,
        /// r9.
        pub r9: u64,
        /// r8.
        pub r8: u64,
        /// rax.
        pub ax: u64,
        /// rcx.
        pub cx: u64,
        /// rdx.
        pub dx: u64,
        /// rsi.
        pub si: u64,
        /// rdi.
        pub di: u64,
        /// Syscall number at entry (-1 if none).
        pub orig_ax: u64,
        /// rip.
        pub ip: u64,
        /// cs.
        pub cs: u64,
        /// rflags.
        pub flags: u64,
        /// rsp.
        pub sp: u64,
        /// ss.
        pub ss: u64,
        /// fs base.
        pub fs_base: u64,
        /// gs base.
        pub gs_base: u64,
        /// How the registers were taken: `REGS_*`.
        pub origin: u64,
    }
}

/// `RegsImage::origin`: the process checkpointed itself inside the ioctl;
/// a restore makes the ioctl return the clone number.
pub const REGS_SELF: u64 = 1;
/// Taken from a stopped process at a user instruction boundary.
pub const REGS_STOPPED: u64 = 2;
/// Taken from a process stopped in a restartable system call, already in the
/// restarted form (ip on the `syscall` instruction, ax = the call number).
pub const REGS_RESTART: u64 = 3;
/// Taken from a process stopped in a system call that restarts through its
/// restart block (nanosleep, poll...): the clone sees it return `-EINTR`.
pub const REGS_INTERRUPTED: u64 = 4;

pod_struct! {
    /// One VMA.
    pub struct VmaImage {
        /// First address.
        pub start: u64,
        /// End address (exclusive).
        pub end: u64,
        /// Kernel `vm_flags`.
        pub vm_flags: u64,
        /// File offset in pages (file mappings).
        pub pgoff: u64,
        /// `vma_kind::*`.
        pub kind: u32,
        /// Offset of the path (file mappings) or name (special) in the strings.
        pub path_off: u32,
        /// Length of that path (0: none).
        pub path_len: u32,
        /// SHARED_ANON: its shared object, 1-based (0 for other kinds).
        pub obj: u32,
        /// Pages of this VMA checkpointed in the image.
        pub pages: u64,
        /// Zero.
        pub obj_size: u64,
        /// File mappings: the file's size at the checkpoint.
        pub file_size: u64,
        /// File mappings: the file's modification time at the checkpoint,
        /// ns since the epoch. A private file mapping's image holds only
        /// the pages that differ from the file (private copies); a restore
        /// refuses a file whose size or mtime changed (ESTALE).
        pub file_mtime_ns: u64,
    }
}

pod_struct! {
    /// One open file descriptor.
    pub struct FileImage {
        /// The fd number.
        pub fd: u32,
        /// `file_kind::*`.
        pub kind: u32,
        /// `f_flags` (O_* open flags).
        pub flags: u32,
        /// 1 if close-on-exec.
        pub cloexec: u32,
        /// File position.
        pub pos: u64,
        /// `i_mode` of the inode.
        pub mode: u32,
        /// Offset of the path in the strings.
        pub path_off: u32,
        /// Length of the path.
        pub path_len: u32,
        /// A descriptor of a shared object (a memfd...): the object, 1-based.
        pub obj: u32,
        /// eventfd, epoll, pipe: the kernel object's number in the image
        /// (1-based, numbered in order of first descriptor): descriptors of
        /// one object (dups, a pipe's two ends) share it. 0 otherwise.
        pub ident: u32,
        /// eventfd: 1 if EFD_SEMAPHORE. pipe: 1 for the write end.
        pub sub: u32,
        /// eventfd: the counter. pipe: the capacity in bytes (F_GETPIPE_SZ).
        pub value: u64,
        /// pipe: its buffered bytes; epoll: its registrations (`EpollItem`
        /// records by increasing `tfd`): their offset in the strings, on
        /// the object's first descriptor only.
        pub data_off: u32,
        /// Their length in bytes.
        pub data_len: u32,
    }
}

pod_struct! {
    /// A shared object: shared memory with no name to reopen.
    pub struct ObjImage {
        /// Its size in bytes (the memfd's size; a shared anonymous mapping's length).
        pub size: u64,
        /// Index of its first stored page in the object page table.
        pub first: u64,
        /// Pages stored (the others read zero).
        pub n_pages: u64,
        /// Offset of its name (its /proc path, e.g. `/memfd:x (deleted)`) in the strings.
        pub name_off: u32,
        /// Its length.
        pub name_len: u32,
        /// Zero.
        pub flags: u32,
        /// Zero.
        pub reserved: u32,
    }
}

pod_struct! {
    /// One signal's action (`struct sigaction`, kernel layout).
    pub struct SigAction {
        /// Handler (or SIG_DFL 0 / SIG_IGN 1).
        pub handler: u64,
        /// SA_* flags.
        pub flags: u64,
        /// sa_restorer.
        pub restorer: u64,
        /// Signals blocked while the handler runs.
        pub mask: u64,
    }
}

pod_struct! {
    /// Process-wide state: what every thread shares and a fork child keeps.
    pub struct ProcImage {
        /// Actions of signals 1..=64 (index 0 is signal 1).
        pub actions: [SigAction; NSIG],
        /// (soft, hard) resource limits, RLIMIT_* order.
        pub rlimits: [[u64; 2]; NRLIMITS],
        /// personality(2) value.
        pub personality: u64,
        /// `mmf::*` flags.
        pub mm_flags: u64,
        /// umask.
        pub umask: u32,
        /// `procf::*` flags.
        pub proc_flags: u32,
        /// Dumpable (PR_GET_DUMPABLE: 0, 1 or 2).
        pub dumpable: u32,
        /// /proc/PID/coredump_filter.
        pub coredump_filter: u32,
        /// Allocated protection keys (bit per key; bit 0 is always set).
        pub pkey_map: u32,
        /// The execute-only protection key, or u32::MAX.
        pub exec_only_pkey: u32,
        /// CLOCK_REALTIME at the checkpoint, ns.
        pub realtime_ns: u64,
        /// CLOCK_MONOTONIC at the checkpoint, ns.
        pub monotonic_ns: u64,
        /// CLOCK_BOOTTIME at the checkpoint, ns.
        pub boottime_ns: u64,
        /// Current directory: offset of its path in the strings.
        pub cwd_off: u32,
        /// Its length.
        pub cwd_len: u32,
        /// The executable (/proc/PID/exe): offset of its path in the strings.
        pub exe_off: u32,
        /// Its length.
        pub exe_len: u32,
        /// Zero.
        pub reserved: [u64; 4],
    }
}

pod_struct! {
    /// One thread: registers, FPU, signal mask and the per-thread
    /// registrations a fork child keeps (rseq, robust list, child tid).
    pub struct TaskImage {
        /// Registers.
        pub regs: RegsImage,
        /// Blocked signal mask.
        pub blocked: u64,
        /// Alternate signal stack base.
        pub ss_sp: u64,
        /// Its size.
        pub ss_size: u64,
        /// Its flags (SS_ONSTACK is never recorded: the thread is not on it).
        pub ss_flags: u64,
        /// rseq area (0: none registered).
        pub rseq: u64,
        /// Its registered length.
        pub rseq_len: u32,
        /// Its abort signature.
        pub rseq_sig: u32,
        /// The kernel's rseq ABI version of the registration (1 or 2).
        pub rseq_version: u32,
        /// Zero (rseq registration flags, reserved).
        pub rseq_flags: u32,
        /// set_robust_list head (0: none).
        pub robust_list: u64,
        /// Its length.
        pub robust_len: u64,
        /// set_tid_address / CLONE_CHILD_CLEARTID address (0: none). A
        /// restore writes the clone's tid there, as CLONE_CHILD_SETTID would.
        pub clear_child_tid: u64,
        /// Image offset of this thread's XSAVE buffer (in the FPU area).
        pub fpu_off: u64,
        /// Its length.
        pub fpu_len: u32,
        /// PKRU.
        pub pkru: u32,
        /// XSAVE features of the buffer.
        pub fpu_xfeatures: u64,
        /// PR_SET_TIMERSLACK.
        pub timer_slack_ns: u64,
        /// Thread id at checkpoint.
        pub tid: u32,
        /// Zero (per-thread flags, reserved).
        pub flags: u32,
        /// Thread name (NUL padded).
        pub comm: [u8; 16],
        /// Nice value (-20..=19, two's complement).
        pub nice: u32,
        /// Scheduling policy (SCHED_NORMAL 0, FIFO 1, RR 2, BATCH 3, IDLE 5).
        pub policy: u32,
        /// Real-time priority (FIFO, RR).
        pub rt_priority: u32,
        /// Zero.
        pub pad: u32,
        /// Zero.
        pub reserved: [u64; 2],
    }
}

pod_struct! {
    /// mm fields needed to resume.
    pub struct MmImage {
        /// Code start.
        pub start_code: u64,
        /// Code end.
        pub end_code: u64,
        /// Data start.
        pub start_data: u64,
        /// Data end.
        pub end_data: u64,
        /// Heap start.
        pub start_brk: u64,
        /// Current break.
        pub brk: u64,
        /// Stack start.
        pub start_stack: u64,
        /// argv start.
        pub arg_start: u64,
        /// argv end.
        pub arg_end: u64,
        /// environ start.
        pub env_start: u64,
        /// environ end.
        pub env_end: u64,
        /// Saved auxv (pairs, AT_NULL terminated).
        pub auxv: [u64; AUXV_WORDS],
    }
}

pod_struct! {
    /// One leaf page table of the image.
    pub struct LeafIndex {
        /// Virtual address its first entry maps (2 MiB aligned).
        pub vaddr: u64,
        /// CRC-32C of the leaf's 4 KiB.
        pub crc: u32,
        /// Entries mapping a frame.
        pub mapped: u32,
    }
}

pod_struct! {
    /// Page 0 of an image.
    pub struct ImageHeader {
        /// `IMG_MAGIC`.
        pub magic: [u8; 8],
        /// `IMG_VERSION`.
        pub version: u32,
        /// `ImageHeader::SIZE`.
        pub header_size: u32,
        /// Image id (unique in the pool).
        pub id: u64,
        /// Pool offset of the image (its first byte).
        pub base: u64,
        /// Bytes of the extent.
        pub size: u64,
        /// Host that wrote it.
        pub owner_host: u32,
        /// Owner's uid (restore permission).
        pub uid: u32,
        /// Owner's gid.
        pub gid: u32,
        /// Pid at checkpoint.
        pub pid: u32,
        /// Command name (NUL padded).
        pub comm: [u8; 16],
        /// User-given name (NUL padded).
        pub name: [u8; NAME_LEN],
        /// Kernel release of the checkpointing host (NUL padded).
        pub kernel: [u8; 64],
        /// `CLOCK_REALTIME` at publication, ns.
        pub created_ns: u64,
        /// Time the checkpoint took, ns.
        pub duration_ns: u64,
        /// mm fields.
        pub mm: MmImage,
        /// Offset (image-relative) of `VmaImage[n_vmas]`.
        pub vmas_off: u64,
        /// VMAs.
        pub n_vmas: u32,
        /// Open files.
        pub n_files: u32,
        /// Offset of `FileImage[n_files]`.
        pub files_off: u64,
        /// Offset of the strings.
        pub strings_off: u64,
        /// Bytes of strings.
        pub strings_len: u32,
        /// Bytes of the FPU area.
        pub fpu_len: u32,
        /// Offset of `ProcImage`.
        pub proc_off: u64,
        /// Offset of `TaskImage[n_tasks]`.
        pub tasks_off: u64,
        /// Tasks (threads). Task 0 is the one a restore starts with: with
        /// several, the main thread (its tid is `pid`), the others by
        /// increasing tid; one alone may be any thread (a checkpoint of the
        /// calling thread only, as fork(2) copies it).
        pub n_tasks: u32,
        /// Shared objects.
        pub n_objs: u32,
        /// Offset of `ObjImage[n_objs]`.
        pub objs_off: u64,
        /// Offset of the object page table: `u64[n_obj_pages]`, the page
        /// offset in its object of each stored object page.
        pub obj_pages_off: u64,
        /// Stored object pages (the last `n_obj_pages` data pages).
        pub n_obj_pages: u64,
        /// Offset of the FPU area (every task's XSAVE buffer, 64-byte aligned).
        pub fpu_off: u64,
        /// Offset of `LeafIndex[n_leaves]`.
        pub leaf_index_off: u64,
        /// Offset of the first upper table (the root).
        pub upper_off: u64,
        /// Upper tables (root + PUD + PMD pages).
        pub n_upper: u32,
        /// Leaf tables.
        pub n_leaves: u32,
        /// Offset of the first leaf table.
        pub leaves_off: u64,
        /// Offset of the first data page.
        pub data_off: u64,
        /// Data pages.
        pub n_data: u64,
        /// Pages of anonymous VMAs (anon, heap, stack).
        pub anon_pages: u64,
        /// Pages of private file VMAs.
        pub file_pages: u64,
        /// Entries with the Accessed bit.
        pub accessed_pages: u64,
        /// Entries with the Dirty bit.
        pub dirty_pages: u64,
        /// CRC-32C of bytes [META_OFF, leaves_off).
        pub meta_crc: u32,
        /// CRC-32C of the header bytes before this field.
        pub header_crc: u32,
    }
}

/// Image offset of the lease page.
pub const LEASE_OFF: u64 = PAGE_SIZE;
/// Image offset of the metadata (page 2).
pub const META_OFF: u64 = 2 * PAGE_SIZE;

const fn page_up(v: u64) -> u64 {
    v.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Where everything goes in an image with the given counts: a pure function,
/// used by the writer to place and by the validator to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// `VmaImage` table.
    pub vmas_off: u64,
    /// `FileImage` table.
    pub files_off: u64,
    /// Strings.
    pub strings_off: u64,
    /// `ProcImage`.
    pub proc_off: u64,
    /// `TaskImage` table.
    pub tasks_off: u64,
    /// FPU area.
    pub fpu_off: u64,
    /// `ObjImage` table.
    pub objs_off: u64,
    /// Object page table.
    pub obj_pages_off: u64,
    /// `LeafIndex` table.
    pub leaf_index_off: u64,
    /// First upper table.
    pub upper_off: u64,
    /// First leaf table.
    pub leaves_off: u64,
    /// First data page.
    pub data_off: u64,
    /// Bytes of the whole image.
    pub size: u64,
}

impl ImageLayout {
    /// The layout for these counts, or `None` if a count is out of bounds.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n_vmas: u32,
        n_files: u32,
        strings_len: u32,
        n_tasks: u32,
        fpu_len: u32,
        objs: (u32, u64),
        n_upper: u32,
        n_leaves: u32,
        n_data: u64,
    ) -> Option<Self> {
        let (n_objs, n_obj_pages) = objs;
        if n_vmas > MAX_VMAS || n_files > MAX_FILES || strings_len > MAX_STRINGS || fpu_len > MAX_FPU {
            return None;
        }
        if n_objs > MAX_OBJS || n_obj_pages > n_data {
            return None;
        }
        if n_tasks == 0 || n_tasks > MAX_TASKS {
            return None;
        }
        if n_leaves > (1 << 24) || n_upper > MAX_UPPER || n_data > (1 << 40) {
            return None;
        }
        let vmas_off = META_OFF;
        let files_off = vmas_off + VmaImage::SIZE as u64 * u64::from(n_vmas);
        let strings_off = files_off + FileImage::SIZE as u64 * u64::from(n_files);
        let proc_off = (strings_off + u64::from(strings_len)).next_multiple_of(8);
        let tasks_off = proc_off + ProcImage::SIZE as u64;
        let fpu_off = (tasks_off + TaskImage::SIZE as u64 * u64::from(n_tasks)).next_multiple_of(64);
        let objs_off = (fpu_off + u64::from(fpu_len)).next_multiple_of(8);
        let obj_pages_off = objs_off + ObjImage::SIZE as u64 * u64::from(n_objs);
        let leaf_index_off = obj_pages_off + 8 * n_obj_pages;
        let upper_off = page_up(leaf_index_off + LeafIndex::SIZE as u64 * u64::from(n_leaves));
        let leaves_off = upper_off + PAGE_SIZE * u64::from(n_upper);
        let data_off = leaves_off + PAGE_SIZE * u64::from(n_leaves);
        let size = data_off.checked_add(PAGE_SIZE.checked_mul(n_data)?)?;
        Some(Self {
            vmas_off,
            files_off,
            strings_off,
            proc_off,
            tasks_off,
            fpu_off,
            objs_off,
            obj_pages_off,
            leaf_index_off,
            upper_off,
            leaves_off,
            data_off,
            size,
        })
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an image (magic).
    Magic,
    /// Unknown version or header size.
    Version,
    /// Header checksum mismatch.
    HeaderChecksum,
    /// Metadata checksum mismatch.
    MetaChecksum,
    /// A leaf table's checksum mismatch.
    LeafChecksum,
    /// Counts, offsets or sizes inconsistent with the layout or the extent.
    Layout,
    /// A VMA is unsorted, overlapping, empty, non-canonical or unaligned.
    Vma,
    /// A path or name runs outside the strings.
    String,
    /// A process or task record holds an unknown flag, a non-zero reserved
    /// field, or an FPU buffer outside the FPU area.
    State,
    /// A page-table entry points outside the image's own tables or data.
    PageTable,
}

impl ImageError {
    /// A short human-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Magic => "not an image (bad magic)",
            Self::Version => "unsupported image version",
            Self::HeaderChecksum => "header checksum mismatch",
            Self::MetaChecksum => "metadata checksum mismatch",
            Self::LeafChecksum => "leaf page table checksum mismatch",
            Self::Layout => "counts or offsets inconsistent with the image extent",
            Self::Vma => "VMA table unsorted, overlapping or non-canonical",
            Self::String => "path outside the string table",
            Self::State => "process or task record malformed",
            Self::PageTable => "page-table entry points outside the image",
        }
    }
}

/// Highest user address + 1: x86-64's TASK_SIZE_MAX with 4-level paging
/// (the last page of the 47-bit half is never mapped).
pub const USER_END: u64 = (1 << 47) - PAGE_SIZE;

impl ImageHeader {
    /// CRC-32C of the bytes before `header_crc`.
    pub fn compute_crc(&self) -> u32 {
        crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, header_crc)])
    }

    /// Checks the header alone for an image at pool offset `base` whose
    /// extent holds `extent` bytes; returns the layout its counts imply.
    pub fn validate(&self, base: u64, extent: u64) -> Result<ImageLayout, ImageError> {
        if self.magic != IMG_MAGIC {
            return Err(ImageError::Magic);
        }
        if self.version != IMG_VERSION || self.header_size as usize != Self::SIZE {
            return Err(ImageError::Version);
        }
        if self.header_crc != self.compute_crc() {
            return Err(ImageError::HeaderChecksum);
        }
        let l = ImageLayout::new(
            self.n_vmas,
            self.n_files,
            self.strings_len,
            self.n_tasks,
            self.fpu_len,
            (self.n_objs, self.n_obj_pages),
            self.n_upper,
            self.n_leaves,
            self.n_data,
        )
        .ok_or(ImageError::Layout)?;
        let placed = self.vmas_off == l.vmas_off
            && self.files_off == l.files_off
            && self.strings_off == l.strings_off
            && self.proc_off == l.proc_off
            && self.tasks_off == l.tasks_off
            && self.fpu_off == l.fpu_off
            && self.objs_off == l.objs_off
            && self.obj_pages_off == l.obj_pages_off
            && self.leaf_index_off == l.leaf_index_off
            && self.upper_off == l.upper_off
            && self.leaves_off == l.leaves_off
            && self.data_off == l.data_off;
        let base_ok = base.is_multiple_of(PAGE_SIZE) && base.checked_add(l.size).is_some();
        if !placed || self.base != base || self.size != l.size || l.size > extent || !base_ok {
            return Err(ImageError::Layout);
        }
        // Tables: a tree needs at least a root when it has leaves, and at
        // most one root + PUD + PMD table per leaf.
        if (self.n_leaves == 0) != (self.n_upper == 0) || self.n_upper > 1 + 2 * self.n_leaves {
            return Err(ImageError::Layout);
        }
        Ok(l)
    }
}

/// A string of the strings table.
pub fn string_at(strings: &[u8], off: u32, len: u32) -> Result<&[u8], ImageError> {
    let end = (off as usize).checked_add(len as usize).ok_or(ImageError::String)?;
    strings.get(off as usize..end).ok_or(ImageError::String)
}

fn read_at<T: Pod>(meta: &[u8], image_off: u64, index: u64) -> Result<T, ImageError> {
    let off = image_off
        .checked_sub(META_OFF)
        .and_then(|o| o.checked_add(index.checked_mul(core::mem::size_of::<T>() as u64)?))
        .ok_or(ImageError::Layout)?;
    let off = usize::try_from(off).map_err(|_| ImageError::Layout)?;
    T::read_from(meta.get(off..).ok_or(ImageError::Layout)?).ok_or(ImageError::Layout)
}

/// Accessors over an image's validated metadata bytes `[META_OFF, leaves_off)`.
#[derive(Clone, Copy)]
pub struct Meta<'a> {
    /// The header the metadata was validated against.
    pub header: &'a ImageHeader,
    /// Bytes `[META_OFF, leaves_off)` of the image.
    pub bytes: &'a [u8],
}

impl<'a> Meta<'a> {
    /// VMA `i`.
    pub fn vma(&self, i: u32) -> Result<VmaImage, ImageError> {
        read_at(self.bytes, self.header.vmas_off, u64::from(i))
    }

    /// File `i`.
    pub fn file(&self, i: u32) -> Result<FileImage, ImageError> {
        read_at(self.bytes, self.header.files_off, u64::from(i))
    }

    /// Leaf index entry `i`.
    pub fn leaf(&self, i: u32) -> Result<LeafIndex, ImageError> {
        read_at(self.bytes, self.header.leaf_index_off, u64::from(i))
    }

    /// Process-wide state.
    pub fn proc(&self) -> Result<ProcImage, ImageError> {
        read_at(self.bytes, self.header.proc_off, 0)
    }

    /// Shared object `i` (0-based).
    pub fn obj(&self, i: u32) -> Result<ObjImage, ImageError> {
        read_at(self.bytes, self.header.objs_off, u64::from(i))
    }

    /// Entry `i` of the object page table: a page offset in its object.
    pub fn obj_page(&self, i: u64) -> Result<u64, ImageError> {
        read_at(self.bytes, self.header.obj_pages_off, i)
    }

    /// The image-relative offset of stored object page `i` (its data page).
    pub fn obj_page_data_off(&self, i: u64) -> u64 {
        let h = self.header;
        h.data_off + (h.n_data - h.n_obj_pages + i) * PAGE_SIZE
    }

    /// Process-wide state, into `out` (the record is large: a kernel caller
    /// keeps it on the heap).
    pub fn read_proc(&self, out: &mut ProcImage) -> Result<(), ImageError> {
        let off = usize::try_from(self.header.proc_off - META_OFF).map_err(|_| ImageError::Layout)?;
        let src = self.bytes.get(off..off + ProcImage::SIZE).ok_or(ImageError::Layout)?;
        out.as_bytes_mut().copy_from_slice(src);
        Ok(())
    }

    /// Task `i` (0: the one a restore starts with).
    pub fn task(&self, i: u32) -> Result<TaskImage, ImageError> {
        read_at(self.bytes, self.header.tasks_off, u64::from(i))
    }

    /// The strings table.
    pub fn strings(&self) -> &'a [u8] {
        let s = (self.header.strings_off - META_OFF) as usize;
        &self.bytes[s..s + self.header.strings_len as usize]
    }

    /// The XSAVE buffer of task `t` (validated by [`Meta::validate`]).
    pub fn task_fpu(&self, t: &TaskImage) -> Result<&'a [u8], ImageError> {
        let s = t.fpu_off.checked_sub(META_OFF).ok_or(ImageError::Layout)?;
        let s = usize::try_from(s).map_err(|_| ImageError::Layout)?;
        self.bytes.get(s..s + t.fpu_len as usize).ok_or(ImageError::Layout)
    }

    /// A string of the strings table (empty when `len` is 0).
    pub fn string(&self, off: u32, len: u32) -> Result<&'a [u8], ImageError> {
        string_at(self.strings(), off, len)
    }

    /// Entry `i` of upper table `t` (0 is the root).
    pub fn upper_entry(&self, t: u32, i: usize) -> Result<u64, ImageError> {
        read_at::<u64>(self.bytes, self.header.upper_off + PAGE_SIZE * u64::from(t), i as u64)
    }

    /// Path (or name) of a VMA.
    pub fn vma_path(&self, v: &VmaImage) -> Result<&'a [u8], ImageError> {
        string_at(self.strings(), v.path_off, v.path_len)
    }

    /// Path of a file.
    pub fn file_path(&self, f: &FileImage) -> Result<&'a [u8], ImageError> {
        string_at(self.strings(), f.path_off, f.path_len)
    }

    /// Validates the metadata (checksum, VMA table, strings, upper tables,
    /// leaf index): everything a restore trusts before its point of no return.
    /// `meta` must be bytes `[META_OFF, header.leaves_off)` of an image whose
    /// header passed [`ImageHeader::validate`].
    pub fn validate(header: &'a ImageHeader, meta: &'a [u8]) -> Result<Self, ImageError> {
        if meta.len() as u64 != header.leaves_off - META_OFF {
            return Err(ImageError::Layout);
        }
        if crc32c(meta) != header.meta_crc {
            return Err(ImageError::MetaChecksum);
        }
        let m = Self { header, bytes: meta };
        m.validate_vmas()?;
        m.validate_files()?;
        m.validate_objs()?;
        m.validate_state()?;
        m.validate_tables()?;
        Ok(m)
    }

    /// Descriptors strictly increasing, below the kernel's nr_open ceiling;
    /// a known kind; close-on-exec a boolean; the state of eventfd, epoll
    /// and pipe descriptors consistent (see `validate_object`).
    fn validate_files(&self) -> Result<(), ImageError> {
        let h = self.header;
        let mut prev_fd: Option<u32> = None;
        let mut idents = 0u32;
        for i in 0..h.n_files {
            let f = self.file(i)?;
            self.file_path(&f)?;
            let ok = f.obj <= h.n_objs
                && prev_fd.is_none_or(|p| f.fd > p)
                && f.fd < MAX_FD
                && (1..=file_kind::LAST).contains(&f.kind)
                && f.cloexec <= 1;
            if !ok {
                return Err(ImageError::Layout);
            }
            prev_fd = Some(f.fd);
            if !file_kind::prepared(f.kind) {
                if f.ident != 0 || f.sub != 0 || f.value != 0 || f.data_off != 0 || f.data_len != 0 {
                    return Err(ImageError::Layout);
                }
                continue;
            }
            // Objects numbered in order of first descriptor.
            if f.obj != 0 || f.ident == 0 || f.ident > idents + 1 {
                return Err(ImageError::Layout);
            }
            // Only an object's first descriptor holds its state (the
            // restore compares every descriptor's with the restorer's).
            if f.ident == idents + 1 {
                idents += 1;
                self.validate_object(&f)?;
            } else if f.sub > 1 || f.data_off != 0 || f.data_len != 0 {
                return Err(ImageError::Layout);
            }
        }
        Ok(())
    }

    /// An object's first descriptor: an eventfd's counter below its
    /// ceiling; a pipe's capacity a power of two of pages up to `MAX_PIPE`
    /// holding at most that many bytes; an epoll's registrations whole
    /// records, by strictly increasing descriptor, each of a descriptor of
    /// the image other than itself, with known event bits.
    fn validate_object(&self, f: &FileImage) -> Result<(), ImageError> {
        let data = self.string(f.data_off, f.data_len)?;
        let ok = match f.kind {
            file_kind::EVENTFD => f.sub <= 1 && f.value != u64::MAX && data.is_empty(),
            file_kind::PIPE => {
                f.sub <= 1
                    && f.value.is_power_of_two()
                    && (PAGE_SIZE..=MAX_PIPE).contains(&f.value)
                    && data.len() as u64 <= f.value
            }
            _ => {
                f.sub == 0
                    && f.value == 0
                    && data.len().is_multiple_of(EpollItem::SIZE)
                    && self.epoll_items_ok(f.fd, data)?
            }
        };
        if !ok {
            return Err(ImageError::Layout);
        }
        Ok(())
    }

    fn epoll_items_ok(&self, epfd: u32, data: &[u8]) -> Result<bool, ImageError> {
        let mut prev: Option<u32> = None;
        for rec in data.chunks_exact(EpollItem::SIZE) {
            let it = EpollItem::from_bytes(rec);
            if prev.is_some_and(|p| it.tfd <= p) || it.tfd == epfd || it.events & !EPOLL_EVENTS != 0 {
                return Ok(false);
            }
            if self.file_at(it.tfd)?.is_none() {
                return Ok(false);
            }
            prev = Some(it.tfd);
        }
        Ok(true)
    }

    /// The image's descriptor `fd`, if it has one (the table is sorted).
    pub fn file_at(&self, fd: u32) -> Result<Option<FileImage>, ImageError> {
        let (mut lo, mut hi) = (0u32, self.header.n_files);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let f = self.file(mid)?;
            match f.fd.cmp(&fd) {
                core::cmp::Ordering::Equal => return Ok(Some(f)),
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// An epoll descriptor's registrations (checked by the validator).
    pub fn epoll_items(&self, f: &FileImage) -> Result<impl Iterator<Item = EpollItem> + 'a, ImageError> {
        Ok(self.string(f.data_off, f.data_len)?.chunks_exact(EpollItem::SIZE).map(EpollItem::from_bytes))
    }

    fn validate_vmas(&self) -> Result<(), ImageError> {
        // Shared kinds are shared mappings, private kinds private ones.
        fn shared_ok(kind: u32, flags: u64) -> bool {
            let shared = flags & vm::SHARED != 0;
            match kind {
                vma_kind::FILE_SHARED | vma_kind::SHARED_ANON => shared,
                vma_kind::ANON | vma_kind::HEAP | vma_kind::STACK | vma_kind::FILE_PRIVATE => !shared,
                _ => true,
            }
        }
        let mut prev_end = 0u64;
        for i in 0..self.header.n_vmas {
            let v = self.vma(i)?;
            let ok = v.start.is_multiple_of(PAGE_SIZE)
                && v.end.is_multiple_of(PAGE_SIZE)
                && v.start < v.end
                && v.end <= USER_END
                && v.start >= prev_end
                && (1..=vma_kind::LAST).contains(&v.kind)
                && v.pages <= (v.end - v.start) / PAGE_SIZE
                && v.pgoff.checked_mul(PAGE_SIZE).and_then(|o| o.checked_add(v.end - v.start)).is_some()
                && v.vm_flags & !vm::ALL == 0
                && (v.kind == vma_kind::SHARED_ANON) == (v.obj != 0)
                && shared_ok(v.kind, v.vm_flags)
                && v.obj <= self.header.n_objs
                && v.obj_size == 0;
            if !ok {
                return Err(ImageError::Vma);
            }
            self.vma_path(&v)?;
            prev_end = v.end;
        }
        Ok(())
    }

    /// Shared objects: names inside the strings; each object's stored pages
    /// a run of the object page table, in the order of the objects, with
    /// strictly increasing page offsets inside the object's size.
    fn validate_objs(&self) -> Result<(), ImageError> {
        let h = self.header;
        let mut next = 0u64;
        for i in 0..h.n_objs {
            let o = self.obj(i)?;
            self.string(o.name_off, o.name_len)?;
            let pages = o.size.div_ceil(PAGE_SIZE);
            if o.first != next || o.n_pages > pages || o.flags != 0 || o.reserved != 0 {
                return Err(ImageError::Layout);
            }
            let mut prev: Option<u64> = None;
            for j in 0..o.n_pages {
                let p = self.obj_page(o.first + j)?;
                if p >= pages || prev.is_some_and(|q| p <= q) {
                    return Err(ImageError::Layout);
                }
                prev = Some(p);
            }
            next = o.first.checked_add(o.n_pages).ok_or(ImageError::Layout)?;
        }
        if next != h.n_obj_pages {
            return Err(ImageError::Layout);
        }
        Ok(())
    }

    /// Process and task records: flags the format knows, strings inside the
    /// table, and every task's XSAVE buffer inside the FPU area, 64-byte
    /// aligned, without overlap.
    fn validate_state(&self) -> Result<(), ImageError> {
        let h = self.header;
        // Field by field: the record is too large for a kernel stack frame.
        let field = |off: usize| -> Result<u64, ImageError> { read_at(self.bytes, h.proc_off + off as u64, 0) };
        let word = |off: usize| -> Result<u32, ImageError> { read_at(self.bytes, h.proc_off + off as u64, 0) };
        let mm_flags = field(core::mem::offset_of!(ProcImage, mm_flags))?;
        let proc_flags = word(core::mem::offset_of!(ProcImage, proc_flags))?;
        let dumpable = word(core::mem::offset_of!(ProcImage, dumpable))?;
        let umask = word(core::mem::offset_of!(ProcImage, umask))?;
        let pkey_map = word(core::mem::offset_of!(ProcImage, pkey_map))?;
        let exec_only = word(core::mem::offset_of!(ProcImage, exec_only_pkey))?;
        let mut reserved = 0;
        for i in 0..4 {
            reserved |= field(core::mem::offset_of!(ProcImage, reserved) + 8 * i)?;
        }
        // Protection keys: 16 (key 0 always allocated); the execute-only
        // key none, or an allocated key other than 0.
        let pkeys_ok = pkey_map & 1 != 0
            && pkey_map < 1 << 16
            && (exec_only == u32::MAX || (exec_only != 0 && exec_only < 16 && pkey_map & (1 << exec_only) != 0));
        if mm_flags & !mmf::ALL != 0 || proc_flags & !procf::ALL != 0 || dumpable > 2 || reserved != 0 || umask > 0o777 || !pkeys_ok {
            return Err(ImageError::State);
        }
        // Each resource limit as setrlimit() would take it: soft <= hard.
        for r in 0..NRLIMITS {
            let off = core::mem::offset_of!(ProcImage, rlimits) + 16 * r;
            if field(off)? > field(off + 8)? {
                return Err(ImageError::State);
            }
        }
        for (off, len) in [(core::mem::offset_of!(ProcImage, cwd_off), core::mem::offset_of!(ProcImage, cwd_len)), (core::mem::offset_of!(ProcImage, exe_off), core::mem::offset_of!(ProcImage, exe_len))] {
            self.string(word(off)?, word(len)?)?;
        }
        let area = h.fpu_off..h.fpu_off + u64::from(h.fpu_len);
        let mut next = h.fpu_off;
        let (mut selves, mut prev_tid) = (0u32, 0u32);
        for i in 0..h.n_tasks {
            let t = self.task(i)?;
            // Thread ids: none zero; with several threads, task 0 the main
            // thread and the others in increasing order, so no tid twice.
            let tid_ok = t.tid != 0
                && (h.n_tasks == 1 || i != 0 || t.tid == h.pid)
                && (i < 2 || t.tid > prev_tid)
                && (i == 0 || t.tid != h.pid);
            // One thread at most made the checkpoint call (its registers
            // are those of the call).
            selves += u32::from(t.regs.origin == REGS_SELF);
            if !tid_ok || selves > 1 {
                return Err(ImageError::State);
            }
            prev_tid = t.tid;
            let end = t.fpu_off.checked_add(u64::from(t.fpu_len)).ok_or(ImageError::State)?;
            let ok = t.fpu_off >= next
                && t.fpu_off.is_multiple_of(64)
                && area.contains(&t.fpu_off)
                && end <= area.end
                && t.fpu_len != 0
                && t.fpu_len <= MAX_TASK_FPU
                && t.rseq_flags == 0
                && t.flags == 0
                && (REGS_SELF..=REGS_INTERRUPTED).contains(&t.regs.origin)
                && (t.nice as i32) >= -20
                && (t.nice as i32) <= 19
                && matches!(t.policy, 0 | 1 | 2 | 3 | 5)
                && t.rt_priority <= 99
                && t.pad == 0
                && t.reserved == [0; 2];
            if !ok {
                return Err(ImageError::State);
            }
            next = end;
        }
        Ok(())
    }

    /// Index of the VMA containing `addr`, if any (binary search: VMAs are sorted).
    pub fn vma_index(&self, addr: u64) -> Option<u32> {
        let (mut lo, mut hi) = (0u32, self.header.n_vmas);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let v = self.vma(mid).ok()?;
            if addr < v.start {
                hi = mid;
            } else if addr >= v.end {
                lo = mid + 1;
            } else {
                return Some(mid);
            }
        }
        None
    }

    /// The VMA containing `addr`, if any.
    pub fn vma_at(&self, addr: u64) -> Result<Option<VmaImage>, ImageError> {
        self.vma_index(addr).map(|i| self.vma(i)).transpose()
    }

    /// Checks one upper-level entry: present, flags it may carry, and the
    /// pool offset of exactly the table expected next (`expect`, image-relative).
    fn check_upper(&self, e: u64, expect: u64) -> Result<(), ImageError> {
        let ok = e & pte::PRESENT != 0
            && e & !pte::PFN_MASK & !UPPER_FLAGS == 0
            && e & pte::PFN_MASK == self.header.base + expect;
        if ok {
            Ok(())
        } else {
            Err(ImageError::PageTable)
        }
    }

    /// Walks root -> PUD -> PMD tables in storage order, checking that each
    /// present entry references exactly the next table of the level below (so
    /// every table is used once and the walk is a tree of the image's own
    /// tables), and that leaf `k`'s index names the address the walk gives it.
    fn validate_tables(&self) -> Result<(), ImageError> {
        let h = self.header;
        if h.n_leaves == 0 {
            return Ok(());
        }
        let upper = |t: u32| h.upper_off + PAGE_SIZE * u64::from(t);
        // Root: user half only; present entries name PUD tables 1, 2, ...
        let mut n_puds = 0u32;
        for i in 0..PT_ENTRIES {
            let e = self.upper_entry(0, i)?;
            if e == 0 {
                continue;
            }
            if i >= PT_ENTRIES / 2 || 1 + n_puds >= h.n_upper {
                return Err(ImageError::PageTable);
            }
            self.check_upper(e, upper(1 + n_puds))?;
            n_puds += 1;
        }
        // PUD tables in order; present entries name the PMD tables that follow.
        let mut n_pmds = 0u32;
        for t in 1..=n_puds {
            for j in 0..PT_ENTRIES {
                let e = self.upper_entry(t, j)?;
                if e == 0 {
                    continue;
                }
                if 1 + n_puds + n_pmds >= h.n_upper {
                    return Err(ImageError::PageTable);
                }
                self.check_upper(e, upper(1 + n_puds + n_pmds))?;
                n_pmds += 1;
            }
        }
        if 1 + n_puds + n_pmds != h.n_upper {
            return Err(ImageError::PageTable);
        }
        // Walk again, now with addresses: PMD entries name the leaves in order.
        let (mut pud_t, mut pmd_t, mut leaf) = (1u32, 1 + n_puds, 0u32);
        for i in 0..PT_ENTRIES / 2 {
            if self.upper_entry(0, i)? == 0 {
                continue;
            }
            for j in 0..PT_ENTRIES {
                if self.upper_entry(pud_t, j)? == 0 {
                    continue;
                }
                for k in 0..PT_ENTRIES {
                    let e = self.upper_entry(pmd_t, k)?;
                    if e == 0 {
                        continue;
                    }
                    if leaf >= h.n_leaves {
                        return Err(ImageError::PageTable);
                    }
                    self.check_upper(e, h.leaves_off + PAGE_SIZE * u64::from(leaf))?;
                    let vaddr = ((i as u64) << 39) | ((j as u64) << 30) | ((k as u64) << 21);
                    let li = self.leaf(leaf)?;
                    if li.vaddr != vaddr || li.mapped as usize > PT_ENTRIES {
                        return Err(ImageError::PageTable);
                    }
                    leaf += 1;
                }
                pmd_t += 1;
            }
            pud_t += 1;
        }
        if leaf != h.n_leaves {
            return Err(ImageError::PageTable);
        }
        Ok(())
    }

    /// Validates leaf table `k` (its 4 KiB `bytes`): checksum, and every
    /// entry that maps a frame maps one of the image's own data pages.
    /// Writes the entries to `out` (512 words; not on the kernel stack).
    pub fn validate_leaf(&self, k: u32, bytes: &[u8], out: &mut [u64]) -> Result<(), ImageError> {
        if k >= self.header.n_leaves {
            return Err(ImageError::Layout);
        }
        let li = self.leaf(k)?;
        if bytes.len() != PAGE_SIZE as usize || out.len() != PT_ENTRIES {
            return Err(ImageError::Layout);
        }
        if crc32c(bytes) != li.crc {
            return Err(ImageError::LeafChecksum);
        }
        let h = self.header;
        let first = (h.base + h.data_off) / PAGE_SIZE;
        // Leaves map the data pages before the objects' pages.
        let end = first + (h.n_data - h.n_obj_pages);
        let mut mapped = 0u32;
        for (i, e) in out.iter_mut().enumerate() {
            let v = u64::read_from(&bytes[i * 8..]).ok_or(ImageError::Layout)?;
            if pte::maps_frame(v) {
                let f = pte::frame(v);
                if f < first || f >= end {
                    return Err(ImageError::PageTable);
                }
                mapped += 1;
            } else if v != 0 {
                return Err(ImageError::PageTable);
            }
            *e = v;
        }
        if mapped != li.mapped {
            return Err(ImageError::PageTable);
        }
        Ok(())
    }
}

/// Flags an upper-level entry may carry besides the table's pool offset.
pub const UPPER_FLAGS: u64 = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED;

/// Number of upper tables (root + PUD + PMD pages) the sorted, distinct,
/// 2 MiB-aligned leaf addresses `vaddrs` need.
pub fn upper_table_count(vaddrs: &[u64]) -> u32 {
    if vaddrs.is_empty() {
        return 0;
    }
    let mut n = 1u32;
    for (i, &v) in vaddrs.iter().enumerate() {
        let prev = if i == 0 { None } else { Some(vaddrs[i - 1]) };
        if prev.is_none_or(|p| p >> 39 != v >> 39) {
            n += 1; // a new PUD table
        }
        if prev.is_none_or(|p| p >> 30 != v >> 30) {
            n += 1; // a new PMD table
        }
    }
    n
}

/// Fills upper table `t` (0 = root, then PUD tables, then PMD tables, in
/// address order) for the sorted, distinct leaf addresses `vaddrs` of an
/// image at pool offset `base` with header `h` (its `upper_off`,
/// `leaves_off` and `n_upper` set). Entries are `pool offset | UPPER_FLAGS`.
pub fn fill_upper_table(t: u32, vaddrs: &[u64], h: &ImageHeader, out: &mut [u64]) {
    out.fill(0);
    if out.len() != PT_ENTRIES {
        return;
    }
    let upper = |i: u32| h.base + h.upper_off + PAGE_SIZE * u64::from(i);
    // Distinct PGD indices are PUD tables 1..=n_puds, distinct (PGD, PUD)
    // pairs are PMD tables after them.
    let n_puds = {
        let mut n = 0u32;
        for (i, &v) in vaddrs.iter().enumerate() {
            if i == 0 || vaddrs[i - 1] >> 39 != v >> 39 {
                n += 1;
            }
        }
        n
    };
    let (mut pud_rank, mut pmd_rank) = (0u32, 0u32);
    for (leaf, &v) in vaddrs.iter().enumerate() {
        let first = leaf == 0;
        let new_pud = first || vaddrs[leaf - 1] >> 39 != v >> 39;
        let new_pmd = first || vaddrs[leaf - 1] >> 30 != v >> 30;
        if new_pud {
            pud_rank += 1;
        }
        if new_pmd {
            pmd_rank += 1;
        }
        let pgd_i = ((v >> 39) & 511) as usize;
        let pud_i = ((v >> 30) & 511) as usize;
        let pmd_i = ((v >> 21) & 511) as usize;
        if t == 0 && new_pud {
            out[pgd_i] = upper(pud_rank) | UPPER_FLAGS;
        } else if t == pud_rank && new_pmd && t <= n_puds {
            out[pud_i] = upper(n_puds + pmd_rank) | UPPER_FLAGS;
        } else if t == n_puds + pmd_rank {
            out[pmd_i] = (h.base + h.leaves_off + PAGE_SIZE * leaf as u64) | UPPER_FLAGS;
        }
    }
}

/// Writes `v` at image offset `image_off` of a metadata buffer that holds
/// image bytes `[META_OFF, ..)`.
pub fn put<T: Pod>(meta: &mut [u8], image_off: u64, v: &T) -> Option<()> {
    let off = usize::try_from(image_off.checked_sub(META_OFF)?).ok()?;
    let b = v.as_bytes();
    meta.get_mut(off..off + b.len())?.copy_from_slice(b);
    Some(())
}

/// Fills the header's layout fields from `l` and the counts.
#[allow(clippy::too_many_arguments)]
pub fn place(h: &mut ImageHeader, l: &ImageLayout) {
    h.vmas_off = l.vmas_off;
    h.files_off = l.files_off;
    h.strings_off = l.strings_off;
    h.proc_off = l.proc_off;
    h.tasks_off = l.tasks_off;
    h.fpu_off = l.fpu_off;
    h.objs_off = l.objs_off;
    h.obj_pages_off = l.obj_pages_off;
    h.leaf_index_off = l.leaf_index_off;
    h.upper_off = l.upper_off;
    h.leaves_off = l.leaves_off;
    h.data_off = l.data_off;
    h.size = l.size;
}

/// Seals a complete metadata buffer into the header: meta and header CRCs.
pub fn seal(h: &mut ImageHeader, meta: &[u8]) {
    h.meta_crc = crc32c(meta);
    h.header_crc = h.compute_crc();
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ImageError {}
