//! `/dev/cxlfork` and its ioctls.

use crate::error::{Error, Op, Result};
use cxlfork_abi::pod::Pod;
use cxlfork_abi::uapi::{self, Checkpoint, CloneStat, Delete, ImageInfo, List, PoolAttach, PoolInfo, Read, Restore, Stat};
use rustix::fs::{open, Mode, OFlags};
use rustix::ioctl::{ioctl, opcode, Ioctl, IoctlOutput, NoArg, Opcode, Setter, Updater};
use std::ffi::c_void;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Where the module's misc device appears.
pub const DEVICE_PATH: &str = "/dev/cxlfork";

/// An open `/dev/cxlfork`.
#[derive(Debug)]
pub struct Device {
    fd: OwnedFd,
}

/// What happens to a checkpointed process (other than the caller) afterwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum After {
    /// Resume it.
    #[default]
    Resume,
    /// Leave it stopped.
    LeaveStopped,
    /// Kill it.
    Kill,
}

/// The result of a checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointResult {
    /// Image id.
    pub id: u64,
    /// Bytes of pool used.
    pub size: u64,
    /// Data pages copied.
    pub pages: u64,
    /// Time in the kernel, ns.
    pub duration_ns: u64,
}

/// What a self-checkpoint returned: like `fork()`, once in the original
/// process and once in every restored clone.
#[derive(Clone, Copy, Debug)]
pub enum Forked {
    /// The original process: the image is published.
    Parent(CheckpointResult),
    /// A restored clone, with its clone number (1, 2, ...).
    Clone(u32),
}

/// Tiering policy of a restore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Migrate on write (default).
    #[default]
    Mow,
    /// Migrate on access.
    Moa,
    /// Hybrid tiering.
    Ht,
}

impl Policy {
    /// The `CXLFORK_POLICY_*` value.
    pub fn abi(self) -> u32 {
        match self {
            Policy::Mow => uapi::POLICY_MOW,
            Policy::Moa => uapi::POLICY_MOA,
            Policy::Ht => uapi::POLICY_HT,
        }
    }
}

/// `CXLFORK_IOC_CHECKPOINT` keeping the ioctl's return value (the clone
/// number in a clone), which rustix's `Updater` drops.
struct CheckpointIoctl<'a>(&'a mut Checkpoint);

// SAFETY: the opcode matches `Checkpoint`, which the kernel reads and writes.
unsafe impl Ioctl for CheckpointIoctl<'_> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        opcode::read_write::<Checkpoint>(uapi::IOC_MAGIC as u8, uapi::NR_CHECKPOINT as u8)
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::from_mut(self.0).cast::<c_void>()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Arguments of [`Device::attach`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachOptions {
    /// Physical address of the pool (2 MiB aligned).
    pub phys_base: u64,
    /// Its size in bytes (2 MiB aligned).
    pub phys_size: u64,
    /// This host's slot.
    pub host_id: u32,
    /// Write a new superblock (destroys the pool's contents).
    pub format: bool,
    /// With `format`: host slots (0: the default).
    pub max_hosts: u32,
    /// Claim the slot even if marked attached by a host that is gone.
    pub takeover: bool,
}

impl Device {
    /// Opens [`DEVICE_PATH`].
    pub fn open() -> Result<Self> {
        Self::open_path(Path::new(DEVICE_PATH))
    }

    /// Opens the device at `path`.
    pub fn open_path(path: &Path) -> Result<Self> {
        let fd = open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| Error::Kernel { op: Op::Open, errno })?;
        Ok(Self { fd })
    }

    /// `CXLFORK_IOC_POOL_ATTACH`.
    pub fn attach(&self, o: &AttachOptions) -> Result<()> {
        let mut flags = 0;
        if o.format {
            flags |= uapi::ATTACH_FORMAT;
        }
        if o.takeover {
            flags |= uapi::ATTACH_TAKEOVER;
        }
        let arg = PoolAttach {
            size: PoolAttach::SIZE as u32,
            flags,
            phys_base: o.phys_base,
            phys_size: o.phys_size,
            host_id: o.host_id,
            max_hosts: o.max_hosts,
        };
        // SAFETY: the opcode's direction and size match `PoolAttach`, which the
        // kernel only reads.
        unsafe { ioctl(&self.fd, Setter::<{ uapi::IOC_POOL_ATTACH }, PoolAttach>::new(arg)) }
            .map_err(|errno| Error::Kernel { op: Op::Attach, errno })
    }

    /// `CXLFORK_IOC_POOL_INFO`.
    pub fn pool_info(&self) -> Result<PoolInfo> {
        let mut info = PoolInfo::zeroed();
        info.size = PoolInfo::SIZE as u32;
        // SAFETY: the opcode's direction and size match `PoolInfo`, which the
        // kernel reads (`size`) and writes; any bytes it writes are a valid `PoolInfo`.
        unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_POOL_INFO }, PoolInfo>::new(&mut info)) }
            .map_err(|errno| Error::Kernel { op: Op::Info, errno })?;
        Ok(info)
    }

    /// `CXLFORK_IOC_POOL_DETACH`.
    pub fn detach(&self) -> Result<()> {
        // SAFETY: the command takes no argument.
        unsafe { ioctl(&self.fd, NoArg::<{ uapi::IOC_POOL_DETACH }>::new()) }
            .map_err(|errno| Error::Kernel { op: Op::Detach, errno })
    }

    /// `CXLFORK_IOC_CHECKPOINT` of process `pid` (0: the caller).
    pub fn checkpoint(&self, pid: i32, name: &str, after: After) -> Result<CheckpointResult> {
        let mut c = Checkpoint::zeroed();
        c.size = Checkpoint::SIZE as u32;
        c.pid = pid as u32;
        // The right to checkpoint another process: opening its memory runs
        // the kernel's ptrace access check (Yama, LSMs); the module takes
        // the descriptor as proof.
        let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
            .map_err(|e| Error::Kernel { op: Op::Checkpoint, errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::PERM) })?;
        c.mem_fd = std::os::fd::AsRawFd::as_raw_fd(&mem) as u32;
        c.flags = match after {
            After::Resume => 0,
            After::LeaveStopped => uapi::CKPT_LEAVE_STOPPED,
            After::Kill => uapi::CKPT_KILL,
        };
        let n = name.len().min(uapi::NAME_LEN - 1);
        c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        // SAFETY: the opcode matches `Checkpoint`, read and written by the kernel.
        unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_CHECKPOINT }, Checkpoint>::new(&mut c)) }
            .map_err(|errno| Error::Kernel { op: Op::Checkpoint, errno })?;
        Ok(CheckpointResult { id: c.image_id, size: c.image_size, pages: c.pages, duration_ns: c.duration_ns })
    }

    /// `CXLFORK_IOC_LIST`: every published image of the pool.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let mut room = 64usize;
        loop {
            let mut v = vec![ImageInfo::zeroed(); room];
            let mut l = List::zeroed();
            l.size = List::SIZE as u32;
            l.count = room as u32;
            l.images = v.as_mut_ptr() as u64;
            // SAFETY: the opcode matches `List`; `images` points at `count` writable infos.
            unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_LIST }, List>::new(&mut l)) }
                .map_err(|errno| Error::Kernel { op: Op::List, errno })?;
            if l.total as usize <= room {
                v.truncate(l.count as usize);
                return Ok(v);
            }
            room = l.total as usize + 16;
        }
    }

    /// `CXLFORK_IOC_STAT`.
    pub fn stat(&self, id: u64) -> Result<ImageInfo> {
        let mut s = Stat::zeroed();
        s.size = Stat::SIZE as u32;
        s.id = id;
        // SAFETY: the opcode matches `Stat`, read and written by the kernel.
        unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_STAT }, Stat>::new(&mut s)) }
            .map_err(|errno| Error::Kernel { op: Op::Stat, errno })?;
        Ok(s.info)
    }

    /// `CXLFORK_IOC_READ`: bytes `[offset, offset + buf.len())` of image `id`.
    pub fn read_image(&self, id: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut r = Read::zeroed();
        r.size = Read::SIZE as u32;
        r.id = id;
        r.offset = offset;
        r.length = buf.len() as u64;
        r.buf = buf.as_mut_ptr() as u64;
        // SAFETY: the opcode matches `Read`; `buf` is `length` writable bytes.
        unsafe { ioctl(&self.fd, Setter::<{ uapi::IOC_READ_IMAGE }, Read>::new(r)) }
            .map_err(|errno| Error::Kernel { op: Op::Read, errno })
    }

    /// `CXLFORK_IOC_DELETE`.
    pub fn delete(&self, id: u64) -> Result<()> {
        let mut d = Delete::zeroed();
        d.size = Delete::SIZE as u32;
        d.id = id;
        // SAFETY: the opcode matches `Delete`, which the kernel only reads.
        unsafe { ioctl(&self.fd, Setter::<{ uapi::IOC_DELETE }, Delete>::new(d)) }
            .map_err(|errno| Error::Kernel { op: Op::Delete, errno })
    }

    /// Checkpoints the calling process itself, like `fork()`: returns
    /// [`Forked::Parent`] here once the image is published, and
    /// [`Forked::Clone`] in every process later restored from it.
    pub fn checkpoint_self(&self, name: &str) -> Result<Forked> {
        self.checkpoint_self_with(name, 0)
    }

    /// As [`Device::checkpoint_self`], recording the calling thread alone,
    /// as `fork()` copies only the thread that calls it (the other threads
    /// are held still while memory is copied, and are not in the image).
    /// No `pthread_atfork` handler runs: locks other threads held stay
    /// held in the clone.
    pub fn checkpoint_this_thread(&self, name: &str) -> Result<Forked> {
        self.checkpoint_self_with(name, uapi::CKPT_THIS_THREAD)
    }

    fn checkpoint_self_with(&self, name: &str, flags: u32) -> Result<Forked> {
        let mut c = Checkpoint::zeroed();
        c.size = Checkpoint::SIZE as u32;
        c.flags = flags;
        let n = name.len().min(uapi::NAME_LEN - 1);
        c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        // SAFETY: `CheckpointIoctl` describes the command and its argument.
        let r = unsafe { ioctl(&self.fd, CheckpointIoctl(&mut c)) }
            .map_err(|errno| Error::Kernel { op: Op::Checkpoint, errno })?;
        if r > 0 {
            return Ok(Forked::Clone(r as u32));
        }
        Ok(Forked::Parent(CheckpointResult { id: c.image_id, size: c.image_size, pages: c.pages, duration_ns: c.duration_ns }))
    }

    /// `CXLFORK_IOC_RESTORE`: the caller becomes a clone of image `id`. Only
    /// returns on error. The caller's vdso and vvar must already be where the
    /// image has them (the `cxlfork-restore` stub moves them).
    pub fn restore(&self, id: u64, policy: Policy, flags: u32) -> Result<std::convert::Infallible> {
        let mut r = Restore::zeroed();
        r.size = Restore::SIZE as u32;
        r.id = id;
        r.policy = policy.abi();
        r.flags = flags;
        // SAFETY: the opcode matches `Restore`, which the kernel only reads.
        let e = unsafe { ioctl(&self.fd, Setter::<{ uapi::IOC_RESTORE }, Restore>::new(r)) };
        match e {
            Err(errno) => Err(Error::Kernel { op: Op::Restore, errno }),
            Ok(()) => unreachable!("a successful restore does not return here"),
        }
    }

    /// `CXLFORK_IOC_CLONE_STAT` of process `pid` (0: the caller).
    pub fn clone_stat(&self, pid: i32) -> Result<CloneStat> {
        let mut s = CloneStat::zeroed();
        s.size = CloneStat::SIZE as u32;
        s.pid = pid as u32;
        // SAFETY: the opcode matches `CloneStat`, read and written by the kernel.
        unsafe { ioctl(&self.fd, Updater::<{ uapi::IOC_CLONE_STAT }, CloneStat>::new(&mut s)) }
            .map_err(|errno| Error::Kernel { op: Op::CloneStat, errno })?;
        Ok(s)
    }
}
