//! image_fuzz: an in-guest fuzzer of cxlfork images (run as root, in a
//! guest with the pool attached).
//!
//! ```text
//! image_fuzz [SEED [N [FIRST]]]   iterations FIRST..N (default 0..10000)
//! ```
//!
//! It checkpoints a few small workloads (a process with several mappings: a
//! private file mapping, a memfd, shared anonymous memory, a read-only
//! region, 2 MiB of data, and an eventfd, a pipe holding bytes and an epoll
//! watching both (restored through the stub, which creates them, with
//! IMAGE_FUZZ_STUB); a small one; one whose XMM registers hold a
//! pattern; one checkpointed by pid while it waits in pause()), keeps each
//! image's bytes, then loops: pick an image, mutate it *in the pool*
//! (through an mmap of the device-dax node) with blind mutations (bit
//! flips, byte runs) or structure-aware ones (header counts and offsets, mm
//! fields, VMA fields and flags, file records and paths, process and task
//! records with the XSAVE header, leaf index, upper-table entries, leaf
//! entries, shared-object tables, data pages, the lease page), reseal the
//! checksums with the ABI crate (leaf CRCs, meta CRC, header CRC; now and
//! then only some of them, or none) so the structural checks are reached,
//! classify it with the ABI crate's validator (refused: header, meta, a
//! leaf; or accepted), restore it in a forked child with a timeout, put the
//! saved bytes back.
//!
//! A restore must end in time as: an errno (refused before the point of no
//! return: the caller lives), or a clone that runs and exits (its own
//! checks of its memory and registers give its exit status) or dies of a
//! signal (SIGBUS at a corrupt leaf). Never a hang, never a kernel report,
//! never a clone of an image whose header or metadata the validator
//! refuses; a "point of no return" message in the kernel log (a
//! valid-looking image failed after the commit point) is reported with the
//! mutation that caused it.
//!
//! Output: KTAP, with counts as `# ` lines. Environment: IMAGE_FUZZ_VERBOSE=1
//! prints every mutation; IMAGE_FUZZ_STUB=PCT restores PCT% of the
//! iterations through the cxlfork-restore stub (the command line
//! `cxlfork-ctl restore ID --dry-run` prints) instead of a direct ioctl;
//! IMAGE_FUZZ_NO_RESEAL=1 never reseals (the validator must then refuse
//! every structural mutation: a check that the fuzzer can fail);
//! IMAGE_FUZZ_MUTATOR=NAME applies only that mutator (header_field,
//! vma_top, xsave, leaf_entry...: see `Mutation::one`).

use std::fmt::Write as _;
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cxlfork_abi::crc::crc32c;
use cxlfork_abi::image::{
    vm, FileImage, ImageError, ImageHeader, LeafIndex, Meta, MmImage, ObjImage, ProcImage, RegsImage, SigAction,
    TaskImage, VmaImage, LEASE_OFF, META_OFF, PT_ENTRIES,
};
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::PAGE_SIZE;
use cxlfork_abi::uapi::{self, Checkpoint, CloneStat, ImageInfo, List, PoolInfo, Restore};

const PAGE: usize = PAGE_SIZE as usize;
/// Exit statuses of a clone of a workload.
const CLONE_OK: i32 = 100;
const CLONE_BAD_DATA: i32 = 101;
const CLONE_BAD_FPU: i32 = 102;
/// A restore child whose RESTORE returned (its errno is in the shared page).
const CHILD_REFUSED: i32 = 0x7e;
/// Until a restore must have ended (TCG is slow).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a clone may run (a mutated one may loop).
const CLONE_TIMEOUT: Duration = Duration::from_secs(4);
const DATA_FILE: &str = "/tmp/image_fuzz.dat";
/// show_unhandled_signals: the kernel logs a user-space fault it signals.
const EXCEPTION_TRACE: &str = "/proc/sys/debug/exception-trace";
const DATA_FILE_LEN: usize = 256 << 10;

// ---------------------------------------------------------------------------
// Small helpers.

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn strerror(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

fn errname(e: i32) -> String {
    // SAFETY: strerrorname_np returns a static string or NULL.
    let p = unsafe { strerrorname_np(e) };
    if p.is_null() {
        format!("E{e}")
    } else {
        // SAFETY: a NUL-terminated static string.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

extern "C" {
    fn strerrorname_np(errnum: libc::c_int) -> *const libc::c_char;
}

/// splitmix64.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        s[self.below(s.len() as u64) as usize]
    }
}

fn ioctl<T: Pod>(fd: i32, req: u32, v: &mut T) -> Result<i64, i32> {
    // SAFETY: `v` is a valid, writable struct of the command's type.
    let r = unsafe { libc::ioctl(fd, req as libc::c_ulong, core::ptr::from_mut(v)) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as i64)
    }
}

fn list_images(dev: i32) -> Vec<ImageInfo> {
    let mut infos = vec![ImageInfo::zeroed(); 1024];
    let mut l = List::zeroed();
    l.size = List::SIZE as u32;
    l.count = infos.len() as u32;
    l.images = infos.as_mut_ptr() as u64;
    if ioctl(dev, uapi::IOC_LIST, &mut l).is_err() {
        return Vec::new();
    }
    infos.truncate(l.count as usize);
    infos
}

fn id_string(id: u64) -> String {
    format!("{}:{}", id >> 48, id & 0xffff_ffff_ffff)
}

// ---------------------------------------------------------------------------
// Workloads: forked children that checkpoint themselves (or are checkpointed
// by pid); their clones check their memory and exit with CLONE_*.

static mut REGIONS: [(usize, usize); 16] = [(0, 0); 16];
static mut NREG: usize = 0;
static mut EXPECT: u64 = 0;
static mut XMM_OUT: [u64; 16] = [0; 16];
static USR1: AtomicBool = AtomicBool::new(false);
const XMM_PATTERN: [u64; 16] = [
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x9999_aaaa_bbbb_cccc,
    0xdddd_eeee_ffff_0000,
    0x0f0f_0f0f_f0f0_f0f0,
    0x3c3c_3c3c_c3c3_c3c3,
    0xa5a5_a5a5_5a5a_5a5a,
    0x0000_0001_0000_0002,
    0x8000_0000_0000_0001,
    0x7fff_ffff_ffff_fffe,
    0x1234_0000_5678_0000,
    0x0000_9abc_0000_def0,
    0xcafe_babe_dead_beef,
    0x0bad_f00d_feed_face,
];

fn fill(p: *mut u8, len: usize, seed: u64) {
    let mut r = Rng(seed);
    for i in (0..len).step_by(8) {
        let v = r.next().to_le_bytes();
        let n = (len - i).min(8);
        // SAFETY: [p, p + len) is writable memory of the caller's.
        unsafe { core::ptr::copy_nonoverlapping(v.as_ptr(), p.add(i), n) };
    }
}

fn add_region(p: *const u8, len: usize) {
    // SAFETY: single-threaded workload child; the statics are only used there.
    unsafe {
        let n = *core::ptr::addr_of!(NREG);
        (*core::ptr::addr_of_mut!(REGIONS))[n] = (p as usize, len);
        *core::ptr::addr_of_mut!(NREG) = n + 1;
    }
}

fn checksum() -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    // SAFETY: the regions are mappings the workload made and keeps.
    unsafe {
        for &(p, len) in (*core::ptr::addr_of!(REGIONS)).iter().take(*core::ptr::addr_of!(NREG)) {
            let s = core::slice::from_raw_parts(p as *const u8, len);
            for w in s.chunks(8) {
                let mut b = [0u8; 8];
                b[..w.len()].copy_from_slice(w);
                h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    h
}

fn set_expect() {
    // SAFETY: single-threaded workload child.
    unsafe { *core::ptr::addr_of_mut!(EXPECT) = checksum() };
}

/// A clone checks its memory (and, fpu, its XMM registers) and exits.
fn clone_exit(fpu: bool) -> ! {
    // SAFETY: single-threaded clone; statics as the workload left them.
    let (expect, xmm) = unsafe { (*core::ptr::addr_of!(EXPECT), *core::ptr::addr_of!(XMM_OUT)) };
    let code = if checksum() != expect {
        CLONE_BAD_DATA
    } else if fpu && xmm != XMM_PATTERN {
        CLONE_BAD_FPU
    } else {
        CLONE_OK
    };
    // SAFETY: ends the process.
    unsafe { libc::_exit(code) }
}

fn mmap_anon(len: usize, prot: i32, flags: i32) -> *mut u8 {
    // SAFETY: a new anonymous mapping.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, prot, flags | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        // SAFETY: ends the process.
        unsafe { libc::_exit(3) };
    }
    p.cast()
}

fn checkpoint_self(dev: i32, name: &str) -> i64 {
    let mut c = Checkpoint::zeroed();
    c.size = Checkpoint::SIZE as u32;
    let n = name.len().min(c.name.len() - 1);
    c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    ioctl(dev, uapi::IOC_CHECKPOINT, &mut c).unwrap_or(-1)
}

/// The checkpoint ioctl with XMM8-15 holding XMM_PATTERN around the very
/// syscall, stored to XMM_OUT right after it returns (in the original and in
/// every clone).
fn checkpoint_self_xmm(dev: i32, name: &str) -> i64 {
    let mut c = Checkpoint::zeroed();
    c.size = Checkpoint::SIZE as u32;
    let n = name.len().min(c.name.len() - 1);
    c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let ret: i64;
    let pat = XMM_PATTERN.as_ptr();
    let out = core::ptr::addr_of_mut!(XMM_OUT).cast::<u64>();
    // SAFETY: loads/stores 128 bytes at `pat`/`out` (both 16 u64s); the
    // syscall is ioctl(dev, CHECKPOINT, &c); rcx/r11 are clobbered by it.
    unsafe {
        core::arch::asm!(
            "movdqu xmm8, [{p}]",
            "movdqu xmm9, [{p} + 16]",
            "movdqu xmm10, [{p} + 32]",
            "movdqu xmm11, [{p} + 48]",
            "movdqu xmm12, [{p} + 64]",
            "movdqu xmm13, [{p} + 80]",
            "movdqu xmm14, [{p} + 96]",
            "movdqu xmm15, [{p} + 112]",
            "syscall",
            "movdqu [{o}], xmm8",
            "movdqu [{o} + 16], xmm9",
            "movdqu [{o} + 32], xmm10",
            "movdqu [{o} + 48], xmm11",
            "movdqu [{o} + 64], xmm12",
            "movdqu [{o} + 80], xmm13",
            "movdqu [{o} + 96], xmm14",
            "movdqu [{o} + 112], xmm15",
            p = in(reg) pat,
            o = in(reg) out,
            inlateout("rax") libc::SYS_ioctl => ret,
            in("rdi") dev as i64,
            in("rsi") uapi::IOC_CHECKPOINT as u64,
            in("rdx") core::ptr::addr_of_mut!(c),
            out("rcx") _,
            out("r11") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack),
        );
    }
    ret
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Several mappings of every kind, 2 MiB of data.
    Maps,
    /// A small heap.
    Small,
    /// XMM registers.
    Fpu,
    /// Checkpointed by pid while it waits in pause(); its clone needs SIGUSR1.
    Pid,
}

extern "C" fn on_usr1(_: libc::c_int) {
    USR1.store(true, Ordering::SeqCst);
}

fn close_other_fds(keep: &[i32]) {
    for fd in 3..1024 {
        if !keep.contains(&fd) {
            // SAFETY: closing descriptors of this (child) process.
            unsafe { libc::close(fd) };
        }
    }
}

/// The body of a workload child (never returns).
fn workload(kind: Kind, dev: i32) -> ! {
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let mut keep = vec![dev];
    match kind {
        Kind::Small => {
            // SAFETY: a fresh heap allocation, used as memory only.
            let p = unsafe { libc::malloc(48 << 10) }.cast::<u8>();
            fill(p, 48 << 10, 1);
            add_region(p, 48 << 10);
        }
        Kind::Fpu => {
            let p = mmap_anon(64 << 10, rw, libc::MAP_PRIVATE);
            fill(p, 64 << 10, 2);
            add_region(p, 64 << 10);
        }
        Kind::Pid => {
            let p = mmap_anon(256 << 10, rw, libc::MAP_PRIVATE);
            fill(p, 256 << 10, 3);
            add_region(p, 256 << 10);
            // SAFETY: installs a plain handler that stores an atomic.
            unsafe {
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = on_usr1 as *const () as usize;
                libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut());
            }
        }
        Kind::Maps => {
            let path = std::ffi::CString::new(DATA_FILE).unwrap();
            // SAFETY: plain system calls on this child's own resources.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                if fd < 0 {
                    libc::_exit(4);
                }
                libc::lseek(fd, 1234, libc::SEEK_SET);
                keep.push(fd);
                // Private file mapping: clean pages from the file, some private copies.
                let f = libc::mmap(core::ptr::null_mut(), DATA_FILE_LEN, rw, libc::MAP_PRIVATE, fd, 0).cast::<u8>();
                if f.cast() == libc::MAP_FAILED {
                    libc::_exit(5);
                }
                for pg in [0usize, 5, 17, 40] {
                    fill(f.add(pg * PAGE), PAGE, 100 + pg as u64);
                }
                add_region(f, DATA_FILE_LEN);
                // A memfd, mapped shared, its descriptor open.
                let name = std::ffi::CString::new("image_fuzz_memfd").unwrap();
                let mfd = libc::memfd_create(name.as_ptr(), 0);
                if mfd < 0 || libc::ftruncate(mfd, 128 << 10) != 0 {
                    libc::_exit(6);
                }
                keep.push(mfd);
                let m = libc::mmap(core::ptr::null_mut(), 128 << 10, rw, libc::MAP_SHARED, mfd, 0).cast::<u8>();
                if m.cast() == libc::MAP_FAILED {
                    libc::_exit(7);
                }
                fill(m, 128 << 10, 4);
                add_region(m, 128 << 10);
                // An event loop's descriptors: an eventfd counting 3, a
                // pipe holding 4 bytes, an epoll watching both (restored
                // through the stub, which creates them).
                let efd = libc::eventfd(0, libc::EFD_NONBLOCK);
                let mut pp = [0i32; 2];
                let ep = libc::epoll_create1(0);
                if efd < 0 || ep < 0 || libc::pipe(pp.as_mut_ptr()) != 0 {
                    libc::_exit(8);
                }
                let three = 3u64;
                if libc::write(efd, (&raw const three).cast(), 8) != 8 || libc::write(pp[1], b"fuzz".as_ptr().cast(), 4) != 4 {
                    libc::_exit(8);
                }
                for (fd, data) in [(efd, 1u64), (pp[0], 2)] {
                    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: data };
                    if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) != 0 {
                        libc::_exit(8);
                    }
                }
                keep.extend([efd, pp[0], pp[1], ep]);
            }
            // Shared anonymous memory.
            let s = mmap_anon(64 << 10, rw, libc::MAP_SHARED);
            fill(s, 64 << 10, 5);
            add_region(s, 64 << 10);
            // 2 MiB of data.
            let d = mmap_anon(2 << 20, rw, libc::MAP_PRIVATE);
            fill(d, 2 << 20, 6);
            add_region(d, 2 << 20);
            // A read-only region written before.
            let r = mmap_anon(64 << 10, rw, libc::MAP_PRIVATE);
            fill(r, 64 << 10, 7);
            // SAFETY: our own mapping.
            unsafe { libc::mprotect(r.cast(), 64 << 10, libc::PROT_READ) };
            add_region(r, 64 << 10);
            // Reserved address space.
            mmap_anon(1 << 20, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_NORESERVE);
            // A large private writable mapping without commit charge, one
            // page touched (a runtime's heap arena): restored NORESERVE, it
            // costs nothing; a mutation that drops NORESERVE asks the
            // restoring host to commit 4 GiB.
            let big = mmap_anon(4 << 30, rw, libc::MAP_PRIVATE | libc::MAP_NORESERVE);
            fill(big, PAGE, 9);
            add_region(big, PAGE);
            // Some heap.
            // SAFETY: a fresh heap allocation.
            let h = unsafe { libc::malloc(20000) }.cast::<u8>();
            fill(h, 20000, 8);
            add_region(h, 20000);
        }
    }
    close_other_fds(&keep);
    set_expect();
    match kind {
        Kind::Pid => {
            // Wait to be checkpointed (and killed) in nanosleep; a clone
            // resumes in it (the call restarted or interrupted) and, having
            // another pid, checks its memory and exits. SIGUSR1 also ends
            // the wait.
            // SAFETY: plain system calls.
            let me = unsafe { libc::getpid() };
            loop {
                // SAFETY: as above.
                if USR1.load(Ordering::SeqCst) || unsafe { libc::getpid() } != me {
                    clone_exit(false);
                }
                let ts = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
                // SAFETY: a valid timespec.
                unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
            }
        }
        Kind::Fpu => match checkpoint_self_xmm(dev, "image_fuzz-fpu") {
            0 => {
                // SAFETY: ends the original.
                unsafe { libc::_exit(0) }
            }
            r if r > 0 => clone_exit(true),
            _ => {
                // SAFETY: ends the original.
                unsafe { libc::_exit(1) }
            }
        },
        _ => match checkpoint_self(dev, if kind == Kind::Maps { "image_fuzz-maps" } else { "image_fuzz-small" }) {
            0 => {
                // SAFETY: ends the original.
                unsafe { libc::_exit(0) }
            }
            r if r > 0 => clone_exit(false),
            _ => {
                // SAFETY: ends the original.
                unsafe { libc::_exit(1) }
            }
        },
    }
}

/// Checkpoints one workload; returns its image id.
fn make_image(kind: Kind, dev: i32) -> Result<u64, String> {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: fork of a single-threaded process; the child only runs `workload`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        workload(kind, dev);
    }
    if pid < 0 {
        return Err(format!("fork: {}", strerror(errno())));
    }
    let mut st = 0;
    if kind == Kind::Pid {
        // Let it reach pause(), then checkpoint it by pid (and kill it).
        std::thread::sleep(Duration::from_millis(300));
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).map_err(|e| format!("open /proc/{pid}/mem: {e}"))?;
        let mut c = Checkpoint::zeroed();
        c.size = Checkpoint::SIZE as u32;
        c.flags = uapi::CKPT_KILL;
        c.pid = pid as u32;
        c.name[..13].copy_from_slice(b"image_fuzz-pi");
        // mem_fd: the field after pid (the module's proof of the ptrace check).
        c.as_bytes_mut()[12..16].copy_from_slice(&std::os::fd::AsRawFd::as_raw_fd(&mem).to_le_bytes());
        let r = ioctl(dev, uapi::IOC_CHECKPOINT, &mut c);
        // SAFETY: reaps our child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut st, 0);
        }
        return r.map(|_| c.image_id).map_err(|e| format!("checkpoint of pid {pid}: {}", strerror(e)));
    }
    // SAFETY: reaps our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
        return Err(format!("workload {kind:?} ended with status {st:#x}"));
    }
    list_images(dev)
        .iter()
        .filter(|i| i.pid == pid as u32)
        .map(|i| i.id)
        .max()
        .ok_or_else(|| format!("no image of pid {pid}"))
}

// ---------------------------------------------------------------------------
// The images under test.

struct Base {
    kind: Kind,
    id: u64,
    /// Pool offset of the extent.
    base: u64,
    /// Bytes of the extent.
    extent: u64,
    /// The published bytes.
    orig: Vec<u8>,
    /// The working copy: equal to `orig` between iterations.
    work: Vec<u8>,
    hdr: ImageHeader,
    /// `cxlfork-ctl restore ID --dry-run --skip-files` words, and where the policy is.
    stub: Vec<String>,
    stub_policy: usize,
}

struct Pool {
    map: *mut u8,
    size: u64,
}

impl Pool {
    fn write(&self, off: u64, bytes: &[u8]) {
        assert!(off + bytes.len() as u64 <= self.size);
        // SAFETY: inside the mapping (checked); the pool is ours to write.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.add(off as usize), bytes.len()) };
    }
    fn read(&self, off: u64, out: &mut [u8]) {
        assert!(off + out.len() as u64 <= self.size);
        // SAFETY: inside the mapping (checked).
        unsafe { core::ptr::copy_nonoverlapping(self.map.add(off as usize), out.as_mut_ptr(), out.len()) };
    }
}

fn stub_words(id: u64) -> (Vec<String>, usize) {
    let out = std::process::Command::new("cxlfork-ctl")
        .args(["restore", &id_string(id), "--dry-run", "--skip-files"])
        .output();
    let Ok(out) = out else { return (Vec::new(), 0) };
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
    // stub [-C DIR] [-T N] [-F SPEC]... [-E SPEC]... ID POLICY FLAGS [NAME START END]...
    let mut at = 1;
    while words.get(at).is_some_and(|w| w.starts_with('-')) {
        at += 2;
    }
    (words, at + 1)
}

// ---------------------------------------------------------------------------
// Mutations.

/// (name, offset, size) of a struct's fields.
type Fields = Vec<(&'static str, usize, usize)>;

macro_rules! fields {
    ($t:ty: $($f:ident),+ $(,)?) => {
        vec![$( (stringify!($f), core::mem::offset_of!($t, $f), {
            let z = <$t as Pod>::zeroed();
            core::mem::size_of_val(&z.$f)
        }) ),+]
    };
}

struct Tables {
    header: Fields,
    mm: Fields,
    vma: Fields,
    file: Fields,
    obj: Fields,
    proc: Fields,
    sigaction: Fields,
    task: Fields,
    regs: Fields,
    leaf: Fields,
}

fn tables() -> Tables {
    Tables {
        header: fields!(ImageHeader: magic, version, header_size, id, base, size, owner_host, uid, gid, pid, comm,
            name, kernel, created_ns, duration_ns, vmas_off, n_vmas, n_files, files_off, strings_off,
            strings_len, fpu_len, proc_off, tasks_off, n_tasks, n_objs, objs_off, obj_pages_off, n_obj_pages, fpu_off,
            leaf_index_off, upper_off, n_upper, n_leaves, leaves_off, data_off, n_data, anon_pages, file_pages,
            accessed_pages, dirty_pages),
        mm: fields!(MmImage: start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start,
            arg_end, env_start, env_end, auxv),
        vma: fields!(VmaImage: start, end, vm_flags, pgoff, kind, path_off, path_len, obj, pages, obj_size,
            file_size, file_mtime_ns),
        file: fields!(FileImage: fd, kind, flags, cloexec, pos, mode, path_off, path_len, obj, ident, sub, value, data_off, data_len),
        obj: fields!(ObjImage: size, first, n_pages, name_off, name_len, flags, reserved),
        proc: fields!(ProcImage: rlimits, personality, mm_flags, umask, proc_flags, dumpable, coredump_filter,
            pkey_map, exec_only_pkey, realtime_ns, monotonic_ns, boottime_ns, cwd_off, cwd_len, exe_off, exe_len,
            reserved),
        sigaction: fields!(SigAction: handler, flags, restorer, mask),
        task: fields!(TaskImage: blocked, ss_sp, ss_size, ss_flags, rseq, rseq_len, rseq_sig, rseq_version,
            rseq_flags, robust_list, robust_len, clear_child_tid, fpu_off, fpu_len, pkru, fpu_xfeatures,
            timer_slack_ns, tid, flags, comm, nice, policy, rt_priority, pad, reserved),
        regs: fields!(RegsImage: r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs,
            flags, sp, ss, fs_base, gs_base, origin),
        leaf: fields!(LeafIndex: vaddr, crc, mapped),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reseal {
    /// Leaf CRCs, meta CRC, header CRC.
    Full,
    /// Meta and header CRCs.
    MetaHeader,
    /// Header CRC only.
    Header,
    None,
}

/// Paths a path mutation writes (truncated to the room the original has).
const PATHS: &[&str] = &[
    "/dev/cxlfork",
    "/proc/self/mem",
    "/dev/dax0.0",
    "/",
    "/proc/1/mem",
    "/dev/console",
    "/dev/null",
    "/tmp",
    "/proc/self/fd/0",
    "/sys/kernel/debug",
    "/dev/zero",
    "/etc/passwd",
    "..",
    "",
];

struct Mutation<'a> {
    rng: &'a mut Rng,
    t: &'a Tables,
    buf: &'a mut Vec<u8>,
    /// The image's original header (where things are).
    h: ImageHeader,
    dirty: Vec<(usize, usize)>,
    desc: String,
    skip_leaf_crc: bool,
    skip_meta_crc: bool,
    skip_header_crc: bool,
}

/// A mutator, by the name `IMAGE_FUZZ_MUTATOR` may give.
type Named<'m, 'a> = (&'static str, fn(&'m mut Mutation<'a>));

impl Mutation<'_> {
    fn put(&mut self, off: usize, bytes: &[u8]) {
        let Some(end) = off.checked_add(bytes.len()) else { return };
        if end > self.buf.len() || self.buf[off..end] == *bytes {
            return;
        }
        self.buf[off..end].copy_from_slice(bytes);
        self.dirty.push((off, bytes.len()));
    }

    fn get(&self, off: usize, sz: usize) -> u64 {
        let mut b = [0u8; 8];
        if off + sz <= self.buf.len() && sz <= 8 {
            b[..sz].copy_from_slice(&self.buf[off..off + sz]);
        }
        u64::from_le_bytes(b)
    }

    fn set(&mut self, off: usize, sz: usize, v: u64) {
        let b = v.to_le_bytes();
        self.put(off, &b[..sz.min(8)]);
    }

    fn note(&mut self, s: &str) {
        if !self.desc.is_empty() {
            self.desc.push_str("; ");
        }
        self.desc.push_str(s);
    }

    /// An interesting value for an integer field of `sz` bytes that held `old`.
    fn value(&mut self, old: u64, sz: usize) -> u64 {
        let bits = 8 * sz as u32;
        let mask = if sz >= 8 { u64::MAX } else { (1u64 << bits) - 1 };
        let v = match self.rng.below(18) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => old.wrapping_add(1),
            4 => old.wrapping_sub(1),
            5 => old ^ (1u64 << self.rng.below(u64::from(bits))),
            6 => old.wrapping_add(PAGE_SIZE),
            7 => old.wrapping_sub(PAGE_SIZE),
            8 => old.wrapping_mul(2),
            9 => mask >> 1,
            10 => 1u64 << (bits - 1),
            11 => 0xffff_ffff_8100_0000,
            12 => 0x0000_8000_0000_0000,
            13 => 0x0000_7fff_ffff_f000,
            14 => self.rng.below(64),
            15 => old.wrapping_add(2 << 20),
            16 => old ^ self.rng.next(),
            _ => self.rng.next(),
        };
        v & mask
    }

    /// Mutates the field (name, off, sz) of a struct at `at`; arrays get one
    /// word changed.
    fn field(&mut self, what: &str, at: usize, f: (&'static str, usize, usize)) {
        let (name, off, sz) = f;
        let (mut o, mut s) = (at + off, sz);
        if sz > 8 {
            if sz % 8 == 0 {
                o += 8 * self.rng.below((sz / 8) as u64) as usize;
                s = 8;
            } else {
                o += self.rng.below(sz as u64) as usize;
                s = 1;
            }
        }
        let old = self.get(o, s);
        let v = self.value(old, s);
        self.set(o, s, v);
        self.note(&format!("{what}.{name}(+{:#x}) {old:#x} -> {v:#x}", o - at - off));
    }

    fn pick_field(&mut self, fields: &Fields) -> (&'static str, usize, usize) {
        fields[self.rng.below(fields.len() as u64) as usize]
    }

    // -- the mutators ------------------------------------------------------

    fn header_field(&mut self) {
        let f = self.pick_field(&self.t.header.clone());
        self.field("header", 0, f);
    }

    fn mm_field(&mut self) {
        let f = self.pick_field(&self.t.mm.clone());
        self.field("mm", core::mem::offset_of!(ImageHeader, mm), f);
    }

    /// A count changed and the offsets recomputed: a self-consistent header
    /// that does not describe the metadata.
    fn header_count(&mut self) {
        let mut h = ImageHeader::read_from(self.buf).unwrap();
        let which = self.rng.below(9);
        let d = self.rng.pick(&[1i64, -1, 2, -2, 8, -8, 64]);
        let adj32 = |v: u32| (i64::from(v) + d).max(0) as u32;
        match which {
            0 => h.n_vmas = adj32(h.n_vmas),
            1 => h.n_files = adj32(h.n_files),
            2 => h.strings_len = adj32(h.strings_len),
            3 => h.fpu_len = adj32(h.fpu_len),
            4 => h.n_objs = adj32(h.n_objs),
            5 => h.n_obj_pages = (h.n_obj_pages as i64 + d).max(0) as u64,
            6 => h.n_upper = adj32(h.n_upper),
            7 => h.n_leaves = adj32(h.n_leaves),
            _ => h.n_tasks = adj32(h.n_tasks),
        }
        let Some(l) = cxlfork_abi::image::ImageLayout::new(
            h.n_vmas,
            h.n_files,
            h.strings_len,
            h.n_tasks,
            h.fpu_len,
            (h.n_objs, h.n_obj_pages),
            h.n_upper,
            h.n_leaves,
            h.n_data,
        ) else {
            self.note("header count: no layout");
            return;
        };
        cxlfork_abi::image::place(&mut h, &l);
        self.put(0, h.as_bytes());
        self.note(&format!("header count #{which} by {d}, offsets replaced (size {:#x})", l.size));
    }

    fn vma_at(&self, i: u32) -> usize {
        (self.h.vmas_off + VmaImage::SIZE as u64 * u64::from(i)) as usize
    }

    fn vma_field(&mut self) {
        if self.h.n_vmas == 0 {
            return;
        }
        let i = self.rng.below(u64::from(self.h.n_vmas)) as u32;
        let at = self.vma_at(i);
        let v = VmaImage::read_from(&self.buf[at..]).unwrap();
        match self.rng.below(6) {
            0 => {
                let bit = self.rng.pick(&[
                    vm::READ,
                    vm::WRITE,
                    vm::EXEC,
                    vm::SHARED,
                    vm::MAYWRITE,
                    vm::GROWSDOWN,
                    vm::NORESERVE,
                    vm::WIPEONFORK,
                    vm::DROPPABLE,
                    vm::LOCKED,
                    vm::HUGEPAGE,
                    vm::SEALED,
                    3 << vm::PKEY_SHIFT,
                    1 << 40,
                ]);
                self.set(at + core::mem::offset_of!(VmaImage, vm_flags), 8, v.vm_flags ^ bit);
                self.note(&format!("vma[{i}].vm_flags ^= {bit:#x} (kind {})", v.kind));
            }
            1 => {
                let k = self.rng.below(12);
                self.set(at + core::mem::offset_of!(VmaImage, kind), 4, k);
                self.note(&format!("vma[{i}].kind {} -> {k}", v.kind));
            }
            2 => {
                // Bounds: grow, shrink, onto a neighbour, unaligned, huge.
                let (name, off) = if self.rng.chance(50) {
                    ("start", core::mem::offset_of!(VmaImage, start))
                } else {
                    ("end", core::mem::offset_of!(VmaImage, end))
                };
                let old = self.get(at + off, 8);
                let other = if self.h.n_vmas > 1 {
                    let j = self.rng.below(u64::from(self.h.n_vmas)) as u32;
                    self.get(self.vma_at(j) + off, 8)
                } else {
                    old
                };
                let nv = self.rng.pick(&[
                    old.wrapping_add(PAGE_SIZE),
                    old.wrapping_sub(PAGE_SIZE),
                    old.wrapping_add(2 << 20),
                    old + 1,
                    other,
                    0,
                    1 << 47,
                    (1 << 47) - PAGE_SIZE,
                    PAGE_SIZE,
                ]);
                self.set(at + off, 8, nv);
                self.note(&format!("vma[{i}].{name} {old:#x} -> {nv:#x}"));
            }
            3 if self.h.n_vmas > 1 => {
                // Swap two entries (unsorted), or duplicate one (overlap).
                let j = self.rng.below(u64::from(self.h.n_vmas)) as u32;
                let a = self.buf[at..at + VmaImage::SIZE].to_vec();
                let bj = self.vma_at(j);
                let b = self.buf[bj..bj + VmaImage::SIZE].to_vec();
                if self.rng.chance(50) {
                    self.put(at, &b);
                    self.put(bj, &a);
                    self.note(&format!("vma[{i}] <-> vma[{j}]"));
                } else {
                    self.put(at, &b);
                    self.note(&format!("vma[{i}] = vma[{j}]"));
                }
            }
            _ => {
                let f = self.pick_field(&self.t.vma.clone());
                self.field(&format!("vma[{i}]"), at, f);
            }
        }
    }

    /// The last VMA made an anonymous page at the very top of the user
    /// half, [2^47 - 4 KiB, 2^47): no x86-64 process (4-level paging) can
    /// map it (TASK_SIZE is 2^47 - 4 KiB).
    fn vma_top(&mut self) {
        if self.h.n_vmas == 0 {
            return;
        }
        let i = self.h.n_vmas - 1;
        let at = self.vma_at(i);
        let mut v = VmaImage::read_from(&self.buf[at..]).unwrap();
        let top = 1u64 << 47;
        v.start = top - PAGE_SIZE;
        v.end = top;
        v.kind = cxlfork_abi::image::vma_kind::ANON;
        v.vm_flags = vm::READ | vm::WRITE | vm::MAYWRITE;
        v.pgoff = 0;
        v.path_off = 0;
        v.path_len = 0;
        v.obj = 0;
        v.pages = 0;
        v.file_size = 0;
        v.file_mtime_ns = 0;
        self.put(at, v.as_bytes());
        self.note(&format!("vma[{i}] -> anonymous [{:#x}, {top:#x})", top - PAGE_SIZE));
    }

    fn file_field(&mut self) {
        if self.h.n_files == 0 {
            return self.vma_field();
        }
        let i = self.rng.below(u64::from(self.h.n_files)) as u32;
        let at = (self.h.files_off + FileImage::SIZE as u64 * u64::from(i)) as usize;
        let f = FileImage::read_from(&self.buf[at..]).unwrap();
        match self.rng.below(4) {
            0 => {
                let bit = self.rng.pick(&[
                    libc::O_WRONLY,
                    libc::O_RDWR,
                    libc::O_APPEND,
                    libc::O_DIRECTORY,
                    libc::O_PATH,
                    libc::O_NONBLOCK,
                    libc::O_SYNC,
                    libc::O_DIRECT,
                    libc::O_NOATIME,
                    libc::O_TMPFILE,
                    libc::O_CREAT | libc::O_TRUNC,
                    libc::O_NOFOLLOW,
                    1 << 30,
                ]) as u32;
                self.set(at + core::mem::offset_of!(FileImage, flags), 4, u64::from(f.flags ^ bit));
                self.note(&format!("file[{i}] (fd {}).flags ^= {bit:#o}", f.fd));
            }
            1 => {
                let fd = self.rng.pick(&[0u64, 1, 2, 3, u64::from(f.fd) + 1, 1023, 1 << 20, (1 << 20) - 1, u64::from(u32::MAX)]);
                self.set(at, 4, fd);
                self.note(&format!("file[{i}].fd {} -> {fd}", f.fd));
            }
            2 => {
                let k = self.rng.below(12);
                self.set(at + core::mem::offset_of!(FileImage, kind), 4, k);
                self.note(&format!("file[{i}] (fd {}).kind {} -> {k}", f.fd, f.kind));
            }
            _ => {
                let fl = self.pick_field(&self.t.file.clone());
                self.field(&format!("file[{i}]"), at, fl);
            }
        }
    }

    /// Rewrites a path of the strings table (a VMA's, a file's, cwd, exe, an
    /// object's name) with another (no longer than the room it has).
    fn path(&mut self) {
        let mut spots: Vec<(usize, usize)> = Vec::new(); // (offset of u32 off, offset of u32 len)
        for i in 0..self.h.n_vmas {
            let at = self.vma_at(i);
            spots.push((at + core::mem::offset_of!(VmaImage, path_off), at + core::mem::offset_of!(VmaImage, path_len)));
        }
        for i in 0..self.h.n_files {
            let at = (self.h.files_off + FileImage::SIZE as u64 * u64::from(i)) as usize;
            spots.push((at + core::mem::offset_of!(FileImage, path_off), at + core::mem::offset_of!(FileImage, path_len)));
        }
        let p = self.h.proc_off as usize;
        spots.push((p + core::mem::offset_of!(ProcImage, cwd_off), p + core::mem::offset_of!(ProcImage, cwd_len)));
        spots.push((p + core::mem::offset_of!(ProcImage, exe_off), p + core::mem::offset_of!(ProcImage, exe_len)));
        for i in 0..self.h.n_objs {
            let at = (self.h.objs_off + ObjImage::SIZE as u64 * u64::from(i)) as usize;
            spots.push((at + core::mem::offset_of!(ObjImage, name_off), at + core::mem::offset_of!(ObjImage, name_len)));
        }
        let (po, pl) = self.rng.pick(&spots);
        let (off, len) = (self.get(po, 4) as usize, self.get(pl, 4) as usize);
        if len == 0 {
            return self.note("path: empty");
        }
        // An earlier mutation of this iteration may have moved the path
        // anywhere (or out of the image): rewrite only paths still inside it.
        let s = self.h.strings_off as usize + off;
        if s.checked_add(len).is_none_or(|end| end > self.buf.len()) {
            return self.note(&format!("path: at {off:#x}+{len} is outside the image"));
        }
        let old = String::from_utf8_lossy(&self.buf[s..s + len]).into_owned();
        let new = if self.rng.chance(80) {
            self.rng.pick(PATHS).as_bytes().to_vec()
        } else {
            // A byte of the path changed (a NUL, a slash, anything).
            let mut v = self.buf[s..s + len].to_vec();
            let k = self.rng.below(len as u64) as usize;
            v[k] = self.rng.pick(&[0u8, b'/', b'.', 0xff, b'a']);
            v
        };
        let n = new.len().min(len);
        self.put(s, &new[..n]);
        self.set(pl, 4, n as u64);
        self.note(&format!("path {old:?} -> {:?}", String::from_utf8_lossy(&new[..n])));
    }

    fn proc_field(&mut self) {
        let at = self.h.proc_off as usize;
        if self.rng.chance(40) {
            let sig = self.rng.below(64) as usize;
            let sa = at + core::mem::offset_of!(ProcImage, actions) + sig * SigAction::SIZE;
            let f = self.pick_field(&self.t.sigaction.clone());
            self.field(&format!("proc.actions[sig {}]", sig + 1), sa, f);
        } else if self.rng.chance(30) {
            // A limit: soft above hard, zero, tiny.
            let r = self.rng.below(16) as usize;
            let o = at + core::mem::offset_of!(ProcImage, rlimits) + r * 16;
            let (soft, hard) = (self.get(o, 8), self.get(o + 8, 8));
            let (ns, nh) = match self.rng.below(4) {
                0 => (hard.wrapping_add(1), hard),
                1 => (0, 0),
                2 => (1, 1),
                _ => (u64::MAX, self.rng.next()),
            };
            self.set(o, 8, ns);
            self.set(o + 8, 8, nh);
            self.note(&format!("proc.rlimits[{r}] ({soft:#x}, {hard:#x}) -> ({ns:#x}, {nh:#x})"));
        } else {
            let f = self.pick_field(&self.t.proc.clone());
            self.field("proc", at, f);
        }
    }

    fn task_at(&self) -> usize {
        self.h.tasks_off as usize
    }

    fn task_field(&mut self) {
        let at = self.task_at();
        if self.rng.chance(50) {
            let regs = at + core::mem::offset_of!(TaskImage, regs);
            let f = self.pick_field(&self.t.regs.clone());
            match f.0 {
                "cs" | "ss" if self.rng.chance(60) => {
                    let v = self.rng.pick(&[0x10u64, 0x18, 0x23, 0x2b, 0x33, 0, 0x3, 0xffff]);
                    self.set(regs + f.1, 8, v);
                    self.note(&format!("regs.{} -> {v:#x}", f.0));
                }
                "flags" if self.rng.chance(60) => {
                    // TF, IF, IOPL, NT, RF, VM, AC, VIF, VIP, ID, reserved bits.
                    let bit = self.rng.pick(&[8u32, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21, 1, 3, 5, 15, 22, 40]);
                    let old = self.get(regs + f.1, 8);
                    self.set(regs + f.1, 8, old ^ (1u64 << bit));
                    self.note(&format!("regs.flags ^= bit {bit}"));
                }
                "origin" => {
                    let v = self.rng.below(7);
                    self.set(regs + f.1, 8, v);
                    self.note(&format!("regs.origin -> {v}"));
                }
                _ => self.field("regs", regs, f),
            }
        } else if self.rng.chance(20) {
            let f = self.rng.pick(&[
                ("nice", core::mem::offset_of!(TaskImage, nice), [0xffff_ffecu64, 19, 20, 0xffff_ffeb, 0x8000_0000]),
                ("policy", core::mem::offset_of!(TaskImage, policy), [1, 2, 4, 5, 6]),
                ("rt_priority", core::mem::offset_of!(TaskImage, rt_priority), [1, 50, 99, 100, u64::from(u32::MAX)]),
            ]);
            let v = self.rng.pick(&f.2);
            self.set(at + f.1, 4, v);
            self.note(&format!("task.{} -> {v:#x}", f.0));
        } else {
            let f = self.pick_field(&self.t.task.clone());
            self.field("task", at, f);
        }
    }

    /// The XSAVE buffer of task 0: header (xstate_bv, xcomp_bv, reserved),
    /// MXCSR, legacy and extended state, and the task's feature mask.
    fn xsave(&mut self) {
        let t = TaskImage::read_from(&self.buf[self.task_at()..]).unwrap();
        let (b, len) = (t.fpu_off as usize, t.fpu_len as usize);
        if b + len > self.buf.len() || len < 576 {
            return self.note("xsave: no buffer");
        }
        match self.rng.below(8) {
            0 | 1 => {
                // xstate_bv: supervisor or unknown features, all, none.
                let old = self.get(b + 512, 8);
                let bit = self.rng.pick(&[8u32, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 62, 63, 2, 5, 6, 7, 9]);
                let v = match self.rng.below(4) {
                    0 => u64::MAX,
                    1 => 0,
                    _ => old | (1u64 << bit),
                };
                self.set(b + 512, 8, v);
                self.note(&format!("xsave.xstate_bv {old:#x} -> {v:#x}"));
            }
            2 => {
                let old = self.get(b + 520, 8);
                let v = self.rng.pick(&[1u64 << 63, (1u64 << 63) | 7, old ^ 1, u64::MAX, 3]);
                self.set(b + 520, 8, v);
                self.note(&format!("xsave.xcomp_bv {old:#x} -> {v:#x}"));
            }
            3 => {
                let o = b + 528 + 8 * self.rng.below(6) as usize;
                let v = self.rng.next();
                self.set(o, 8, v);
                self.note(&format!("xsave.header reserved +{} -> {v:#x}", o - b));
            }
            4 => {
                // MXCSR reserved bits, MXCSR_MASK.
                let old = self.get(b + 24, 4);
                let v = if self.rng.chance(70) { old | (1 << (16 + self.rng.below(16))) } else { self.rng.next() & 0xffff_ffff };
                let o = if self.rng.chance(80) { 24 } else { 28 };
                self.set(b + o, 4, v);
                self.note(&format!("xsave.{} -> {v:#x}", if o == 24 { "mxcsr" } else { "mxcsr_mask" }));
            }
            5 => {
                let o = self.rng.below(512) as usize;
                let v = self.rng.next() as u8;
                self.set(b + o, 1, u64::from(v));
                self.note(&format!("xsave.legacy[{o}] -> {v:#x}"));
            }
            6 if len > 576 => {
                let o = 576 + self.rng.below((len - 576) as u64) as usize;
                let v = self.rng.next();
                self.set(b + o, 8.min(len - o), v);
                self.note(&format!("xsave.ext[{o}] -> {v:#x}"));
            }
            _ => {
                let o = self.task_at() + core::mem::offset_of!(TaskImage, fpu_xfeatures);
                let old = self.get(o, 8);
                let v = old ^ (1u64 << self.rng.pick(&[1u32, 2, 5, 6, 7, 8, 9, 11, 12, 17, 18, 63]));
                self.set(o, 8, v);
                self.note(&format!("task.fpu_xfeatures {old:#x} -> {v:#x}"));
            }
        }
    }

    fn leaf_index(&mut self) {
        if self.h.n_leaves == 0 {
            return self.header_field();
        }
        let k = self.rng.below(u64::from(self.h.n_leaves)) as usize;
        let at = self.h.leaf_index_off as usize + k * LeafIndex::SIZE;
        let li = LeafIndex::read_from(&self.buf[at..]).unwrap();
        match self.rng.below(4) {
            0 => {
                let v = self.rng.pick(&[li.vaddr + (2 << 20), li.vaddr.wrapping_sub(2 << 20), li.vaddr + 4096, 0, 1 << 47, li.vaddr ^ (1 << 39)]);
                self.set(at, 8, v);
                self.note(&format!("leaf_index[{k}].vaddr {:#x} -> {v:#x}", li.vaddr));
            }
            1 => {
                let v = self.rng.pick(&[0u64, u64::from(li.mapped) + 1, u64::from(li.mapped).saturating_sub(1), 512, 513, u64::from(u32::MAX)]);
                self.set(at + core::mem::offset_of!(LeafIndex, mapped), 4, v);
                self.note(&format!("leaf_index[{k}].mapped {} -> {v}", li.mapped));
            }
            2 => {
                let f = self.pick_field(&self.t.leaf.clone());
                self.field(&format!("leaf_index[{k}]"), at, f);
            }
            _ => {
                self.set(at + core::mem::offset_of!(LeafIndex, crc), 4, u64::from(li.crc ^ 1));
                self.skip_leaf_crc = true;
                self.note(&format!("leaf_index[{k}].crc ^= 1 (not resealed)"));
            }
        }
    }

    /// An entry of an upper table (root, PUD, PMD pages).
    fn upper(&mut self) {
        if self.h.n_upper == 0 {
            return self.header_field();
        }
        let t = self.rng.below(u64::from(self.h.n_upper)) as usize;
        let tab = self.h.upper_off as usize + t * PAGE;
        // Mostly a present entry.
        let present: Vec<usize> = (0..PT_ENTRIES).filter(|&i| self.get(tab + 8 * i, 8) != 0).collect();
        let i = if !present.is_empty() && self.rng.chance(80) {
            self.rng.pick(&present)
        } else {
            self.rng.below(PT_ENTRIES as u64) as usize
        };
        let old = self.get(tab + 8 * i, 8);
        let base = self.h.base;
        let v = match self.rng.below(8) {
            0 => old | (1 << 7),                                 // huge
            1 => old & !1,                                       // not present
            2 => old | (1 << 63),                                // NX
            3 => (base + self.h.upper_off) | 0x27,               // the root again (a loop)
            4 => (base + self.h.data_off) | 0x27,                // a data page
            5 => old.wrapping_add(PAGE_SIZE),                    // the next table
            6 => 0xfee0_0000 | 0x27,                             // outside the pool
            _ => self.rng.next(),
        };
        self.set(tab + 8 * i, 8, v);
        self.note(&format!("upper[{t}][{i}] {old:#x} -> {v:#x}"));
    }

    /// An entry of a leaf page table.
    fn leaf_entry(&mut self) {
        if self.h.n_leaves == 0 {
            return self.data_page();
        }
        let k = self.rng.below(u64::from(self.h.n_leaves)) as usize;
        let leaf = self.h.leaves_off as usize + k * PAGE;
        let mapped: Vec<usize> = (0..PT_ENTRIES).filter(|&i| self.get(leaf + 8 * i, 8) & 0x101 != 0).collect();
        let i = if !mapped.is_empty() && self.rng.chance(85) {
            self.rng.pick(&mapped)
        } else {
            self.rng.below(PT_ENTRIES as u64) as usize
        };
        let old = self.get(leaf + 8 * i, 8);
        let h = self.h;
        let first = (h.base + h.data_off) / PAGE_SIZE;
        let end = first + h.n_data;
        let frame = |f: u64| (old & !0x000f_ffff_ffff_f000) | ((f << 12) & 0x000f_ffff_ffff_f000);
        let v = match self.rng.below(12) {
            0 => frame(first.wrapping_sub(1)),               // the page before the data (a leaf)
            1 => frame(end),                                  // past the data
            2 => frame(end - h.n_obj_pages.min(h.n_data)),   // an object page
            3 => frame(h.base / PAGE_SIZE),                   // the header
            4 => frame((h.base + LEASE_OFF) / PAGE_SIZE),     // the lease page
            5 => frame(0),                                    // the superblock
            6 => frame(self.rng.below(1 << 40)),
            7 => old ^ self.rng.pick(&[1u64 << 1, 1 << 2, 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 52, 1 << 58, 1 << 59, 1 << 62, 1 << 63]),
            8 => old & !1,                                    // not present, not PROT_NONE: a swap entry
            9 => 0,
            10 => frame(first) | 0x67,                        // a second mapping of the first data page
            _ => self.rng.next(),
        };
        self.set(leaf + 8 * i, 8, v);
        self.note(&format!("leaf[{k}][{i}] {old:#x} -> {v:#x}"));
        if self.rng.chance(30) {
            // Keep the index's count in step with the entries.
            let n = (0..PT_ENTRIES).filter(|&j| self.get(leaf + 8 * j, 8) & 0x101 != 0).count();
            let at = h.leaf_index_off as usize + k * LeafIndex::SIZE + core::mem::offset_of!(LeafIndex, mapped);
            self.set(at, 4, n as u64);
            self.note("mapped count kept");
        }
    }

    fn obj(&mut self) {
        if self.h.n_objs == 0 || self.rng.chance(20) {
            if self.h.n_obj_pages == 0 {
                return self.vma_field();
            }
            let j = self.rng.below(self.h.n_obj_pages) as usize;
            let at = self.h.obj_pages_off as usize + 8 * j;
            let old = self.get(at, 8);
            let v = self.value(old, 8);
            self.set(at, 8, v);
            return self.note(&format!("obj_pages[{j}] {old:#x} -> {v:#x}"));
        }
        let i = self.rng.below(u64::from(self.h.n_objs)) as usize;
        let at = self.h.objs_off as usize + i * ObjImage::SIZE;
        let f = self.pick_field(&self.t.obj.clone());
        self.field(&format!("obj[{i}]"), at, f);
    }

    fn data_page(&mut self) {
        if self.h.n_data == 0 {
            return self.header_field();
        }
        let p = self.rng.below(self.h.n_data) as usize;
        let at = self.h.data_off as usize + p * PAGE + self.rng.below(PAGE as u64) as usize;
        let n = (1 + self.rng.below(64) as usize).min(self.buf.len() - at);
        let bytes: Vec<u8> = (0..n).map(|_| self.rng.next() as u8).collect();
        self.put(at, &bytes);
        self.note(&format!("data page {p}: {n} bytes"));
    }

    fn lease(&mut self) {
        let line = self.rng.below(4) as usize;
        let at = LEASE_OFF as usize + 64 * line + 8 * self.rng.below(8) as usize;
        let r = self.rng.next();
        let v = self.rng.pick(&[1u64, u64::MAX, r, self.h.id]);
        self.set(at, 8, v);
        self.note(&format!("lease line {line} +{} -> {v:#x}", at % 64));
    }

    fn bit_flips(&mut self) {
        let n = 1 + self.rng.below(8);
        let hi = if self.rng.chance(90) { self.h.data_off as usize } else { self.buf.len() };
        let mut at = Vec::new();
        for _ in 0..n {
            let bit = self.rng.below(8 * hi as u64) as usize;
            let b = self.buf[bit / 8] ^ (1 << (bit % 8));
            self.put(bit / 8, &[b]);
            at.push(format!("{:#x}.{}", bit / 8, bit % 8));
        }
        self.note(&format!("bit flips at {}", at.join(" ")));
    }

    fn byte_run(&mut self) {
        let hi = if self.rng.chance(90) { self.h.data_off as usize } else { self.buf.len() };
        let at = self.rng.below(hi as u64) as usize;
        let n = (1 + self.rng.below(64) as usize).min(self.buf.len() - at);
        let fillb = self.rng.pick(&[0u8, 0xff, 0x41, 0x80]);
        let bytes: Vec<u8> = if self.rng.chance(30) { (0..n).map(|_| self.rng.next() as u8).collect() } else { vec![fillb; n] };
        self.put(at, &bytes);
        self.note(&format!("byte run at {at:#x} len {n}"));
    }

    fn crc_field(&mut self) {
        if self.rng.chance(50) {
            let o = core::mem::offset_of!(ImageHeader, header_crc);
            let v = self.get(o, 4) ^ 0x100;
            self.set(o, 4, v);
            self.skip_header_crc = true;
            self.note("header_crc corrupted");
        } else {
            let o = core::mem::offset_of!(ImageHeader, meta_crc);
            let v = self.get(o, 4) ^ 0x8000;
            self.set(o, 4, v);
            self.skip_meta_crc = true;
            self.note("meta_crc corrupted");
        }
    }

    /// One mutation, chosen by weight (or the one IMAGE_FUZZ_MUTATOR names).
    fn one(&mut self, only: Option<&str>) {
        let named: &[Named<'_, '_>] = &[
            ("header_field", Self::header_field),
            ("mm_field", Self::mm_field),
            ("header_count", Self::header_count),
            ("vma_field", Self::vma_field),
            ("vma_top", Self::vma_top),
            ("file_field", Self::file_field),
            ("path", Self::path),
            ("proc_field", Self::proc_field),
            ("task_field", Self::task_field),
            ("xsave", Self::xsave),
            ("leaf_index", Self::leaf_index),
            ("upper", Self::upper),
            ("leaf_entry", Self::leaf_entry),
            ("obj", Self::obj),
            ("data_page", Self::data_page),
            ("lease", Self::lease),
            ("bit_flips", Self::bit_flips),
            ("byte_run", Self::byte_run),
            ("crc_field", Self::crc_field),
        ];
        if let Some(name) = only {
            if let Some((_, f)) = named.iter().find(|(n, _)| *n == name) {
                return f(self);
            }
        }
        match self.rng.below(100) {
            0..=7 => self.header_field(),
            8..=10 => self.mm_field(),
            11..=14 => self.header_count(),
            15..=23 => self.vma_field(),
            24 => self.vma_top(),
            25..=30 => self.file_field(),
            31..=35 => self.path(),
            36..=42 => self.proc_field(),
            43..=52 => self.task_field(),
            53..=60 => self.xsave(),
            61..=64 => self.leaf_index(),
            65..=69 => self.upper(),
            70..=79 => self.leaf_entry(),
            80..=83 => self.obj(),
            84..=86 => self.data_page(),
            87..=88 => self.lease(),
            89..=93 => self.bit_flips(),
            94..=97 => self.byte_run(),
            _ => self.crc_field(),
        }
    }

    /// Reseals the checksums the mode asks for (those of the mutated
    /// header's layout, where it stays inside the image).
    fn reseal(&mut self, mode: Reseal) {
        let len = self.buf.len() as u64;
        let h = ImageHeader::read_from(self.buf).unwrap();
        if mode == Reseal::Full && !self.skip_leaf_crc {
            let idx_ok = h.leaf_index_off >= META_OFF && h.leaves_off <= len;
            for k in 0..u64::from(h.n_leaves) {
                let li = h.leaf_index_off + k * LeafIndex::SIZE as u64;
                let leaf = h.leaves_off + k * PAGE_SIZE;
                if !idx_ok || li + LeafIndex::SIZE as u64 > len || leaf + PAGE_SIZE > len {
                    break;
                }
                let crc = crc32c(&self.buf[leaf as usize..(leaf + PAGE_SIZE) as usize]);
                self.set(li as usize + core::mem::offset_of!(LeafIndex, crc), 4, u64::from(crc));
            }
        }
        if matches!(mode, Reseal::Full | Reseal::MetaHeader) && !self.skip_meta_crc && h.leaves_off >= META_OFF && h.leaves_off <= len {
            let crc = crc32c(&self.buf[META_OFF as usize..h.leaves_off as usize]);
            self.set(core::mem::offset_of!(ImageHeader, meta_crc), 4, u64::from(crc));
        }
        if mode != Reseal::None && !self.skip_header_crc {
            let h = ImageHeader::read_from(self.buf).unwrap();
            self.set(core::mem::offset_of!(ImageHeader, header_crc), 4, u64::from(h.compute_crc()));
        }
    }
}

// ---------------------------------------------------------------------------
// The validator's verdict.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    Header(ImageError),
    Meta(ImageError),
    Leaf(ImageError),
    Accepted,
}

fn classify(buf: &[u8], base: u64, extent: u64) -> Verdict {
    let h = ImageHeader::read_from(buf).unwrap();
    if let Err(e) = h.validate(base, extent) {
        return Verdict::Header(e);
    }
    let meta = &buf[META_OFF as usize..h.leaves_off as usize];
    let m = match Meta::validate(&h, meta) {
        Ok(m) => m,
        Err(e) => return Verdict::Meta(e),
    };
    let mut out = vec![0u64; PT_ENTRIES];
    for k in 0..h.n_leaves {
        let off = (h.leaves_off + PAGE_SIZE * u64::from(k)) as usize;
        if let Err(e) = m.validate_leaf(k, &buf[off..off + PAGE], &mut out) {
            return Verdict::Leaf(e);
        }
    }
    Verdict::Accepted
}

// ---------------------------------------------------------------------------
// Restores.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// RESTORE returned this errno (the caller lives).
    Refused(i32),
    /// The stub exited with this status without becoming a clone.
    StubFailed(i32),
    /// A clone exited with this status.
    CloneExit(i32),
    /// A clone died of this signal.
    CloneSignal(i32),
    /// A clone ran past CLONE_TIMEOUT and was killed.
    CloneKilled,
    /// The restore did not end in time.
    Hang,
}

struct Shared {
    errno: i32,
}

fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

fn kernel_stack(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stack")).unwrap_or_default()
}

/// Restores image id in a forked child (a direct ioctl, or the stub) and
/// waits for the outcome.
fn restore(dev: i32, shm: *mut Shared, id: u64, policy: u32, stub: Option<&[String]>) -> (Outcome, String) {
    let argv: Vec<std::ffi::CString> = stub.unwrap_or(&[]).iter().map(|s| std::ffi::CString::new(s.as_str()).unwrap()).collect();
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argp.push(core::ptr::null());
    let devnull = c"/dev/null";
    // SAFETY: the shared page is ours.
    unsafe { (*shm).errno = 0 };
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: fork of a single-threaded process; the child makes only
    // async-signal-safe calls before it execs, restores or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            let n = libc::open(devnull.as_ptr(), libc::O_RDWR);
            libc::dup2(n, 0);
            libc::dup2(n, 1);
            libc::dup2(n, 2);
            if stub.is_some() {
                libc::execv(argp[0], argp.as_ptr());
                libc::_exit(127);
            }
            let mut r = Restore::zeroed();
            r.size = Restore::SIZE as u32;
            r.id = id;
            r.policy = policy;
            r.flags = uapi::RESTORE_SKIP_FILES;
            libc::ioctl(dev, uapi::IOC_RESTORE as libc::c_ulong, &mut r);
            (*shm).errno = *libc::__errno_location();
            libc::_exit(CHILD_REFUSED);
        }
    }
    let t0 = Instant::now();
    let mut clone_at: Option<Instant> = None;
    let mut st = 0;
    loop {
        // SAFETY: waits for our child without blocking.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if clone_at.is_none() {
            let mut cs = CloneStat::zeroed();
            cs.size = CloneStat::SIZE as u32;
            cs.pid = pid as u32;
            if ioctl(dev, uapi::IOC_CLONE_STAT, &mut cs).is_ok() {
                clone_at = Some(Instant::now());
            }
        }
        match clone_at {
            Some(t) if t.elapsed() > CLONE_TIMEOUT => {
                // SAFETY: kills and reaps our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut st, 0);
                }
                return (Outcome::CloneKilled, String::new());
            }
            None if t0.elapsed() > RESTORE_TIMEOUT => {
                let info = format!("wchan {} stack:\n{}", wchan(pid), kernel_stack(pid));
                // SAFETY: kills our child; reaps it if it dies.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    for _ in 0..100 {
                        if libc::waitpid(pid, &mut st, libc::WNOHANG) == pid {
                            break;
                        }
                        libc::usleep(100_000);
                    }
                }
                return (Outcome::Hang, info);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(if t0.elapsed() < Duration::from_millis(200) { 2 } else { 20 }));
    }
    // SAFETY: the child wrote it before exiting (or left the 0 we set).
    let e = unsafe { (*shm).errno };
    let out = if libc::WIFSIGNALED(st) {
        Outcome::CloneSignal(libc::WTERMSIG(st))
    } else {
        let code = libc::WEXITSTATUS(st);
        if stub.is_none() && code == CHILD_REFUSED && e != 0 {
            Outcome::Refused(e)
        } else if (CLONE_OK..=CLONE_BAD_FPU).contains(&code) || clone_at.is_some() {
            Outcome::CloneExit(code)
        } else if stub.is_some() {
            Outcome::StubFailed(code)
        } else {
            Outcome::CloneExit(code)
        }
    };
    (out, String::new())
}

// ---------------------------------------------------------------------------
// The kernel log.

const KREPORT: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "Call Trace",
    "KASAN",
    "UBSAN",
    "lockdep",
    "possible circular",
    "general protection",
    "refcount_t",
    "list_add corruption",
    "list_del corruption",
    "Kernel panic",
    "INFO: task",
    "soft lockup",
    "kmemleak",
    "Bad rss-counter",
    "KFENCE",
    "rcu: INFO",
];

struct Kmsg {
    f: Option<std::fs::File>,
}

impl Kmsg {
    fn open() -> Self {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok();
        if let Some(f) = &f {
            // SAFETY: seeks our own descriptor.
            unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(f), 0, libc::SEEK_END) };
        }
        Self { f }
    }

    /// New records: (point-of-no-return lines, kernel report lines).
    fn scan(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut ponr, mut rep) = (Vec::new(), Vec::new());
        let Some(f) = &mut self.f else { return (ponr, rep) };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m).trim_end().to_string();
                    if msg.contains("point of no return") {
                        ponr.push(msg);
                    } else if !msg.starts_with("traps: ") && KREPORT.iter().any(|k| msg.contains(k)) {
                        // ("traps:" reports a user-space fault: a clone's.)
                        rep.push(msg);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        (ponr, rep)
    }
}

use std::os::unix::fs::OpenOptionsExt as _;

// ---------------------------------------------------------------------------
// The environment a restore depends on: the data file the Maps workload maps
// privately (a mutated image may map it shared and write it).

struct DataFile {
    content: Vec<u8>,
    mtime: libc::timespec,
}

impl DataFile {
    fn create() -> std::io::Result<Self> {
        let mut content = vec![0u8; DATA_FILE_LEN];
        fill(content.as_mut_ptr(), DATA_FILE_LEN, 42);
        std::fs::write(DATA_FILE, &content)?;
        let st = stat(DATA_FILE).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self { content, mtime: libc::timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec } })
    }

    /// Puts the file back as the images recorded it (size, mtime, bytes).
    fn repair(&self) -> bool {
        let Some(st) = stat(DATA_FILE) else { return self.rewrite() };
        if st.st_size as usize == DATA_FILE_LEN && st.st_mtime == self.mtime.tv_sec && st.st_mtime_nsec == self.mtime.tv_nsec {
            return false;
        }
        self.rewrite()
    }

    fn rewrite(&self) -> bool {
        let _ = std::fs::write(DATA_FILE, &self.content);
        let path = std::ffi::CString::new(DATA_FILE).unwrap();
        let times = [self.mtime, self.mtime];
        // SAFETY: a valid path and two timespecs.
        unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
        true
    }
}

fn stat(path: &str) -> Option<libc::stat> {
    let p = std::ffi::CString::new(path).unwrap();
    // SAFETY: `st` is a valid out-pointer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a valid path and out-pointer.
    (unsafe { libc::stat(p.as_ptr(), &mut st) } == 0).then_some(st)
}

// ---------------------------------------------------------------------------
// Statistics and the report.

#[derive(Default)]
struct Stats {
    iterations: u64,
    mutations: u64,
    resealed: [u64; 4],
    verdict_header: u64,
    verdict_meta: u64,
    verdict_leaf: u64,
    verdict_accepted: u64,
    refused: std::collections::BTreeMap<i32, u64>,
    stub_failed: u64,
    clone_ok: u64,
    clone_bad_data: u64,
    clone_bad_fpu: u64,
    clone_other_exit: u64,
    clone_signal: std::collections::BTreeMap<i32, u64>,
    clone_killed: u64,
    hangs: Vec<String>,
    ponr: Vec<String>,
    reports: Vec<String>,
    mismatches: Vec<String>,
    repairs: u64,
    by_kind: [u64; 4],
    kind_secs: [f64; 4],
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let mut b = [0u8; 8];
        let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
        u64::from_le_bytes(b) & 0xffff_ffff_ffff
    });
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let first: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let verbose = std::env::var_os("IMAGE_FUZZ_VERBOSE").is_some();
    let stub_pct: u64 = std::env::var("IMAGE_FUZZ_STUB").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let no_reseal = std::env::var_os("IMAGE_FUZZ_NO_RESEAL").is_some();
    let only = std::env::var("IMAGE_FUZZ_MUTATOR").ok();
    let n_tests = 6;
    println!("KTAP version 1");
    println!("1..{n_tests}");
    println!("# image_fuzz seed {seed} iterations {first}..{n} (reproduce: image_fuzz {seed} {n} {first})");
    let bail = |msg: String| -> ! {
        println!("# {msg}");
        for i in 1..=n_tests {
            println!("not ok {i} setup failed");
        }
        std::process::exit(1);
    };

    // The device and the pool.
    let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/cxlfork").unwrap_or_else(|e| bail(format!("/dev/cxlfork: {e}")));
    let dev = std::os::fd::IntoRawFd::into_raw_fd(dev);
    let mut info = PoolInfo::zeroed();
    info.size = PoolInfo::SIZE as u32;
    if let Err(e) = ioctl(dev, uapi::IOC_POOL_INFO, &mut info) {
        bail(format!("POOL_INFO: {}", strerror(e)));
    }
    // A crashing clone must not dump core into the guest's RAM, nor log
    // its user-space fault ("traps: ... general protection fault", which
    // qemu/run would take for a kernel report).
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let _ = std::fs::write("/proc/sys/kernel/core_pattern", "/nonexistent/image_fuzz-core");
    let exception_trace = std::fs::read_to_string(EXCEPTION_TRACE).unwrap_or_default();
    let _ = std::fs::write(EXCEPTION_TRACE, "0");

    // The images.
    let data = DataFile::create().unwrap_or_else(|e| bail(format!("{DATA_FILE}: {e}")));
    let mut bases: Vec<Base> = Vec::new();
    // Every workload first: a fork of this process carries its memory, so
    // the images' buffers must not exist yet.
    let mut ids = Vec::new();
    for kind in [Kind::Maps, Kind::Small, Kind::Fpu, Kind::Pid] {
        ids.push((kind, make_image(kind, dev).unwrap_or_else(|e| bail(format!("checkpoint of the {kind:?} workload: {e}")))));
    }
    // The pool is mapped only now: a workload (a fork of this process)
    // would otherwise carry the mapping, and its clones the whole pool,
    // writable.
    let dax = std::env::var("CXLFORK_DAX").unwrap_or_else(|_| "/dev/dax0.0".into());
    let daxf = std::fs::OpenOptions::new().read(true).write(true).open(&dax).unwrap_or_else(|e| bail(format!("{dax}: {e}")));
    // SAFETY: maps the whole device-dax node shared (offset 0, 2 MiB aligned).
    let map = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            info.pool_size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&daxf),
            0,
        )
    };
    if map == libc::MAP_FAILED {
        bail(format!("mmap {dax}: {}", strerror(errno())));
    }
    let pool = Pool { map: map.cast(), size: info.pool_size };
    for (kind, id) in ids {
        let Some(ii) = list_images(dev).into_iter().find(|i| i.id == id) else { bail(format!("image {id:#x} not listed")) };
        let mut orig = vec![0u8; ii.size as usize];
        pool.read(ii.base, &mut orig);
        let hdr = ImageHeader::read_from(&orig).unwrap();
        let v = classify(&orig, ii.base, ii.size);
        let (stub, stub_policy) = stub_words(id);
        println!(
            "# image {} ({kind:?}): {} KiB at pool offset {:#x}, {} VMAs, {} files, {} objects, {} leaves, {} upper tables, {} data pages, validator: {v:?}",
            id_string(id),
            ii.size >> 10,
            ii.base,
            hdr.n_vmas,
            hdr.n_files,
            hdr.n_objs,
            hdr.n_leaves,
            hdr.n_upper,
            hdr.n_data
        );
        if v != Verdict::Accepted {
            bail(format!("the validator refuses the pristine image {}: {v:?}", id_string(id)));
        }
        bases.push(Base { kind, id, base: ii.base, extent: ii.size, work: orig.clone(), orig, hdr, stub, stub_policy });
    }
    // SAFETY: a shared anonymous page for the restore children's errno.
    let shm = unsafe {
        libc::mmap(core::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
    }
    .cast::<Shared>();
    let mut kmsg = Kmsg::open();
    let tables = tables();

    // Test 1: the validator refuses corruption that is not resealed.
    let mut self_check = Vec::new();
    for b in &bases {
        let mut w = b.orig.clone();
        w[core::mem::offset_of!(ImageHeader, n_vmas)] ^= 1;
        if !matches!(classify(&w, b.base, b.extent), Verdict::Header(ImageError::HeaderChecksum)) {
            self_check.push(format!("{:?}: a header bit flip passes", b.kind));
        }
        let mut w = b.orig.clone();
        w[b.hdr.vmas_off as usize] ^= 0x10;
        if !matches!(classify(&w, b.base, b.extent), Verdict::Meta(ImageError::MetaChecksum)) {
            self_check.push(format!("{:?}: a VMA bit flip passes", b.kind));
        }
        if b.hdr.n_leaves > 0 {
            let mut w = b.orig.clone();
            w[b.hdr.leaves_off as usize + 8] ^= 0x2;
            if !matches!(classify(&w, b.base, b.extent), Verdict::Leaf(ImageError::LeafChecksum)) {
                self_check.push(format!("{:?}: a leaf bit flip passes", b.kind));
            }
        }
    }
    for s in &self_check {
        println!("# {s}");
    }
    println!("{} 1 the validator refuses unsealed corruption of header, metadata and leaves", if self_check.is_empty() { "ok" } else { "not ok" });

    // The loop.
    let mut st = Stats::default();
    let t0 = Instant::now();
    let mut last_report = Instant::now();
    let kinds_w = [15u64, 40, 25, 20];
    for it in first..n {
        let mut rng = Rng(seed ^ it.wrapping_mul(0x2545_f491_4f6c_dd1d));
        rng.next();
        let mut x = rng.below(100);
        let mut bi = 0;
        while x >= kinds_w[bi] {
            x -= kinds_w[bi];
            bi += 1;
        }
        let policy = rng.below(3) as u32;
        let b = &mut bases[bi];
        st.by_kind[bi] += 1;
        let mut m = Mutation {
            rng: &mut rng,
            t: &tables,
            buf: &mut b.work,
            h: b.hdr,
            dirty: Vec::new(),
            desc: String::new(),
            skip_leaf_crc: false,
            skip_meta_crc: false,
            skip_header_crc: false,
        };
        let count = if m.rng.chance(80) { 1 } else { 2 + m.rng.below(3) };
        for _ in 0..count {
            m.one(only.as_deref());
        }
        st.mutations += count;
        let mode = if no_reseal {
            Reseal::None
        } else {
            match m.rng.below(100) {
                0..=74 => Reseal::Full,
                75..=84 => Reseal::MetaHeader,
                85..=92 => Reseal::Header,
                _ => Reseal::None,
            }
        };
        m.reseal(mode);
        st.resealed[mode as usize] += 1;
        let via_stub = stub_pct > 0 && m.rng.below(100) < stub_pct && !b.stub.is_empty();
        let desc = std::mem::take(&mut m.desc);
        let dirty = std::mem::take(&mut m.dirty);
        drop(m);
        let verdict = classify(&b.work, b.base, b.extent);
        match verdict {
            Verdict::Header(_) => st.verdict_header += 1,
            Verdict::Meta(_) => st.verdict_meta += 1,
            Verdict::Leaf(_) => st.verdict_leaf += 1,
            Verdict::Accepted => st.verdict_accepted += 1,
        }
        // Into the pool.
        for &(o, l) in &dirty {
            pool.write(b.base + o as u64, &b.work[o..o + l]);
        }
        let what = format!(
            "iteration {it} image {} ({:?}) policy {policy} reseal {mode:?}{}: {desc}",
            id_string(b.id),
            b.kind,
            if via_stub { " via stub" } else { "" }
        );
        if verbose {
            println!("# {what} [{verdict:?}]");
        }
        let mut stub_args = Vec::new();
        if via_stub {
            stub_args = b.stub.clone();
            stub_args[b.stub_policy] = policy.to_string();
        }
        let tr = Instant::now();
        let (out, hang_info) = restore(dev, shm, b.id, policy, via_stub.then_some(&stub_args[..]));
        st.kind_secs[bi] += tr.elapsed().as_secs_f64();
        // Put the image back.
        for &(o, l) in &dirty {
            let (orig, work) = (&b.orig, &mut b.work);
            work[o..o + l].copy_from_slice(&orig[o..o + l]);
            pool.write(b.base + o as u64, &orig[o..o + l]);
        }
        if data.repair() {
            st.repairs += 1;
        }
        st.iterations += 1;
        match out {
            Outcome::Refused(e) => *st.refused.entry(e).or_default() += 1,
            Outcome::StubFailed(_) => st.stub_failed += 1,
            Outcome::CloneExit(CLONE_OK) => st.clone_ok += 1,
            Outcome::CloneExit(CLONE_BAD_DATA) => st.clone_bad_data += 1,
            Outcome::CloneExit(CLONE_BAD_FPU) => st.clone_bad_fpu += 1,
            Outcome::CloneExit(_) => st.clone_other_exit += 1,
            Outcome::CloneSignal(s) => *st.clone_signal.entry(s).or_default() += 1,
            Outcome::CloneKilled => st.clone_killed += 1,
            Outcome::Hang => {
                println!("# HANG: {what}: {hang_info}");
                st.hangs.push(what.clone());
            }
        }
        // A clone of an image the validator refuses (header or metadata:
        // what a restore checks before its point of no return).
        let is_clone = matches!(out, Outcome::CloneExit(_) | Outcome::CloneSignal(_) | Outcome::CloneKilled);
        if is_clone && matches!(verdict, Verdict::Header(_) | Verdict::Meta(_)) && !via_stub {
            let s = format!("{what}: the validator refuses it ({verdict:?}) but the kernel restored it ({out:?})");
            println!("# MISMATCH: {s}");
            st.mismatches.push(s);
        }
        let (ponr, rep) = kmsg.scan();
        for p in ponr {
            let s = format!("{what} [{verdict:?}, {out:?}]: {p}");
            println!("# POINT OF NO RETURN: {s}");
            st.ponr.push(s);
        }
        for r in rep {
            let s = format!("{what}: {r}");
            println!("# KERNEL REPORT: {s}");
            st.reports.push(s);
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            let done = it + 1 - first;
            println!("# progress: {done} of {} iterations, {:.1}/s", n - first, done as f64 / t0.elapsed().as_secs_f64());
        }
        if st.hangs.len() > 3 {
            println!("# stopping: restores hang");
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();

    // Test 2..6.
    println!("{} 2 every restore ended in time ({} hangs)", if st.hangs.is_empty() { "ok" } else { "not ok" }, st.hangs.len());
    println!(
        "{} 3 no clone of an image whose header or metadata the validator refuses ({} found)",
        if st.mismatches.is_empty() { "ok" } else { "not ok" },
        st.mismatches.len()
    );
    println!(
        "{} 4 no restore failed after its point of no return ({} found)",
        if st.ponr.is_empty() { "ok" } else { "not ok" },
        st.ponr.len()
    );
    // The pristine images restore and their clones check out.
    let mut pristine = Vec::new();
    for b in &bases {
        if pool_differs(&pool, b) {
            pristine.push(format!("image {} was not put back", id_string(b.id)));
        }
        for policy in 0..3 {
            let (out, _) = restore(dev, shm, b.id, policy, None);
            if out != Outcome::CloneExit(CLONE_OK) {
                pristine.push(format!("image {} ({:?}) policy {policy}: {out:?}", id_string(b.id), b.kind));
            }
        }
    }
    for p in &pristine {
        println!("# pristine: {p}");
    }
    println!("{} 5 the pristine images still restore into clones whose memory and registers check out", if pristine.is_empty() { "ok" } else { "not ok" });
    let (ponr, rep) = kmsg.scan();
    st.ponr.extend(ponr);
    st.reports.extend(rep);
    println!("{} 6 no kernel report (WARN, BUG, KASAN, lockdep...) in the log ({} found)", if st.reports.is_empty() { "ok" } else { "not ok" }, st.reports.len());

    // Counts.
    let refused: u64 = st.refused.values().sum();
    let signals: u64 = st.clone_signal.values().sum();
    println!("# iterations: {} in {secs:.1} s: {:.1}/s; mutations: {}", st.iterations, st.iterations as f64 / secs, st.mutations);
    println!(
        "# images (iterations, s in restores): maps {} {:.1} small {} {:.1} fpu {} {:.1} pid {} {:.1}",
        st.by_kind[0], st.kind_secs[0], st.by_kind[1], st.kind_secs[1], st.by_kind[2], st.kind_secs[2], st.by_kind[3], st.kind_secs[3]
    );
    println!(
        "# resealed: full {} meta+header {} header {} none {}",
        st.resealed[0], st.resealed[1], st.resealed[2], st.resealed[3]
    );
    println!(
        "# validator: refused header {} meta {} leaf {}, accepted {}",
        st.verdict_header, st.verdict_meta, st.verdict_leaf, st.verdict_accepted
    );
    let mut line = String::new();
    for (e, c) in &st.refused {
        let _ = write!(line, " {} {c}", errname(*e));
    }
    println!("# refused before restore by errno: {refused} ({})", line.trim());
    let mut line = String::new();
    for (s, c) in &st.clone_signal {
        let _ = write!(line, " {s}:{c}");
    }
    println!("# clones that faulted (signal:count): {signals} ({})", line.trim());
    println!(
        "# clones that ran: {} (memory and registers intact {}, data differs {}, xmm differ {}, other exit {}, killed after {} s {})",
        st.clone_ok + st.clone_bad_data + st.clone_bad_fpu + st.clone_other_exit + st.clone_killed,
        st.clone_ok,
        st.clone_bad_data,
        st.clone_bad_fpu,
        st.clone_other_exit,
        CLONE_TIMEOUT.as_secs(),
        st.clone_killed
    );
    if st.stub_failed > 0 {
        println!("# restores through the stub that gave no clone (refused: the errno as exit status; or the stub failed): {}", st.stub_failed);
    }
    println!("# data file repaired after {} restores (a mutation mapped it shared and wrote it)", st.repairs);
    for s in st.ponr.iter().take(20) {
        println!("# point of no return: {s}");
    }
    for s in st.reports.iter().take(20) {
        println!("# kernel report: {s}");
    }
    let _ = std::fs::write("/proc/sys/kernel/core_pattern", core_pattern.trim_end());
    let _ = std::fs::write(EXCEPTION_TRACE, exception_trace.trim_end());
    for b in &bases {
        let mut d = uapi::Delete::zeroed();
        d.size = uapi::Delete::SIZE as u32;
        d.id = b.id;
        let _ = ioctl(dev, uapi::IOC_DELETE, &mut d);
    }
    let _ = std::fs::remove_file(DATA_FILE);
    let fails = [!self_check.is_empty(), !st.hangs.is_empty(), !st.mismatches.is_empty(), !st.ponr.is_empty(), !pristine.is_empty(), !st.reports.is_empty()]
        .iter()
        .filter(|&&f| f)
        .count();
    println!("# reproduce: image_fuzz {seed} {n} {first} (one iteration I: image_fuzz {seed} I+1 I)");
    println!("# Totals: pass:{} fail:{fails} xfail:0 xpass:0 skip:0 error:0", n_tests - fails);
    std::process::exit(i32::from(fails != 0));
}

fn pool_differs(pool: &Pool, b: &Base) -> bool {
    let mut now = vec![0u8; b.orig.len()];
    pool.read(b.base, &mut now);
    // The lease page is the kernel's to write.
    now[LEASE_OFF as usize..2 * PAGE].copy_from_slice(&b.orig[LEASE_OFF as usize..2 * PAGE]);
    now != b.orig
}
