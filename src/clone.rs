//! A restored clone's view of its image: the context its VMAs share, and
//! its page-fault handler.
//!
//! Every private VMA of a clone is a clone VMA (`shim_restore.c`: our
//! vm_operations, VM_MIXEDMAP, a per-VMA `struct cxlfork_cvma`) standing
//! for one VMA of the image: an anonymous private mapping, or a private
//! mapping of the reopened file (so /proc/PID/maps names the file, and the
//! file's own fault handler serves what the image lacks). The kernel keeps
//! the VMA's page offset across mremap, splits and stack growth, so a fault
//! always knows which image address it stands for.
//!
//! On a fault on an image page not yet installed in this VMA's lineage, the
//! leaf table of that 2 MiB range is read from the pool (once per clone),
//! validated (its CRC and every entry inside the image), and all its
//! entries that fall in this VMA are installed at once, each where the
//! tiering policy says: mapped read-only from the pool (zero copy; a write
//! takes the kernel's own copy-on-write) or copied to a local page. Each
//! installed page is marked in the VMA: after the kernel zaps it
//! (MADV_DONTNEED, a fork child's wiped VMA), the address reads what any
//! process reads there (zero, or the file), never the image again. So do
//! addresses the image has no page for, and pages beyond the image VMA
//! (a grown stack, an mremap-grown mapping).
//!
//! The context is reference counted: each clone VMA holds a reference
//! (taken again by vm_ops->open on fork, split and mremap, dropped by
//! ->close), so it lives as long as any VMA of the clone or of a process
//! forked from it maps the image; dropping it drops the clone's lease on
//! the image and the module pin.
//!
//! Lock order: mmap_lock or the VMA lock (the fault) -> `CloneCtx::leaves`
//! -> `Pool::state`. Nothing sleeps on user memory under `leaves`.

use crate::abi::image::{leaf_block, pte, ImageHeader, Meta, PT_ENTRIES};
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::{self, CloneStat};
use crate::ffi::{self, Cvma, VmArea, FAULT_FALLBACK};
use crate::file_ref::FileRef;
use crate::kernel_util::image_gfp;
use crate::pool::Pool;
use crate::tiering::{Access, Place, Policy};
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};
use kernel::sync::{Arc, Mutex};


const VM_FAULT_OOM: u32 = 0x0001;
const VM_FAULT_SIGBUS: u32 = 0x0002;
const VM_FAULT_NOPAGE: u32 = 0x0100;

/// Tiering statistics of one clone.
pub(crate) struct Stats {
    pub(crate) pool_pages: Atomic<u64>,
    pub(crate) local_pages: Atomic<u64>,
    pub(crate) prefetched_pages: Atomic<u64>,
    pub(crate) zero_pages: Atomic<u64>,
    pub(crate) file_pages: Atomic<u64>,
    pub(crate) faults: Atomic<u64>,
    pub(crate) leaves: Atomic<u64>,
    /// Time inside the RESTORE call; 0 until the restore completed (see
    /// `CloneCtx::set_restored`).
    restore_ns: Atomic<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            pool_pages: Atomic::new(0),
            local_pages: Atomic::new(0),
            prefetched_pages: Atomic::new(0),
            zero_pages: Atomic::new(0),
            file_pages: Atomic::new(0),
            faults: Atomic::new(0),
            leaves: Atomic::new(0),
            restore_ns: Atomic::new(0),
        }
    }
}

fn inc(a: &Atomic<u64>) {
    a.fetch_add(1, Relaxed);
}

/// A clone's image and tiering state.
#[pin_data(PinnedDrop)]
pub(crate) struct CloneCtx {
    pool: Arc<Pool>,
    pub(crate) id: u64,
    base: u64,
    pub(crate) header: KBox<ImageHeader>,
    meta: KVVec<u8>,
    policy: &'static dyn Policy,
    pub(crate) policy_abi: u32,
    pub(crate) clone_nr: u32,
    /// Keeps the module loaded while the context lives.
    pin: FileRef,
    /// Validated leaf tables, `PT_ENTRIES` entries each, loaded at first use.
    #[pin]
    leaves: Mutex<KVVec<Option<KVec<u64>>>>,
    pub(crate) stats: Stats,
}

impl CloneCtx {
    /// A context for a validated image; `meta` holds its metadata bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pool: Arc<Pool>,
        id: u64,
        base: u64,
        header: KBox<ImageHeader>,
        meta: KVVec<u8>,
        policy: &'static dyn Policy,
        policy_abi: u32,
        clone_nr: u32,
    ) -> Result<Arc<Self>> {
        let pin = FileRef::module_pin()?;
        let mut slots = KVVec::with_capacity(header.n_leaves as usize, image_gfp())?;
        for _ in 0..header.n_leaves {
            slots.push(None, image_gfp())?;
        }
        Arc::pin_init(
            pin_init!(Self {
                pool,
                id,
                base,
                header,
                meta,
                policy,
                policy_abi,
                clone_nr,
                pin,
                leaves <- new_mutex!(slots),
                stats: Stats::new(),
            }),
            image_gfp(),
        )
    }

    /// The (validated) metadata.
    pub(crate) fn meta(&self) -> Meta<'_> {
        Meta { header: &self.header, bytes: &self.meta }
    }

    /// The file that pins the module (for work that outlives the restore call).
    pub(crate) fn pin(&self) -> &FileRef {
        &self.pin
    }

    /// The leaf covering image address `ia`, by binary search of the index.
    pub(crate) fn leaf_index(&self, ia: u64) -> Option<u32> {
        let block = leaf_block(ia);
        let m = self.meta();
        let (mut lo, mut hi) = (0u32, self.header.n_leaves);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let v = m.leaf(mid).ok()?.vaddr;
            if v == block {
                return Some(mid);
            }
            if v < block {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        None
    }

    /// Reads and validates leaf `k` from the pool.
    fn read_leaf(&self, k: u32) -> Result<KVec<u64>> {
        let mut bytes = KVec::from_elem(0u8, PAGE_SIZE as usize, image_gfp())?;
        self.pool.map().read(self.base + self.header.leaves_off + u64::from(k) * PAGE_SIZE, &mut bytes)?;
        let mut entries = KVec::from_elem(0u64, PT_ENTRIES, image_gfp())?;
        self.meta().validate_leaf(k, &bytes, &mut entries).map_err(|e| {
            pr_warn!("clone of image {:#x}: leaf {} is corrupt: {}\n", self.id, k, e.as_str());
            EBADMSG
        })?;
        inc(&self.stats.leaves);
        Ok(entries)
    }

    /// Runs `f` on leaf `k`'s entries (loading it first if needed), under
    /// the leaf lock.
    pub(crate) fn with_leaf<R>(&self, k: u32, f: impl FnOnce(&[u64]) -> R) -> Result<R> {
        let mut leaves = self.leaves.lock();
        let slot = leaves.get_mut(k as usize).ok_or(EINVAL)?;
        if slot.is_none() {
            *slot = Some(self.read_leaf(k)?);
        }
        Ok(f(slot.as_deref().ok_or(EINVAL)?))
    }

    /// Maps the checkpointed page `e` at `addr` of `cv`'s VMA per the policy.
    fn install(&self, cv: &CloneVma, addr: u64, e: u64, access: Access) -> u32 {
        // `e` was validated: its frame is one of the image's data pages.
        let off = pte::frame(e).wrapping_mul(PAGE_SIZE);
        match self.policy.place(e, access) {
            Place::Pool => {
                // A line of this page cached from an earlier image in the
                // same extent must not reach the clone.
                if self.pool.map().invalidate(off, PAGE_SIZE as usize).is_err() {
                    return VM_FAULT_SIGBUS;
                }
                let pfn = self.pool.map().phys().wrapping_add(off) / PAGE_SIZE;
                let r = cv.insert_pfn(addr, pfn);
                if r == VM_FAULT_NOPAGE {
                    inc(&self.stats.pool_pages);
                }
                r
            }
            Place::Local => {
                let r = self.pool.map().with_dst(off, PAGE_SIZE as usize, |src| Ok(cv.insert_copy(addr, src.cast_const())));
                let r = r.unwrap_or(VM_FAULT_SIGBUS);
                if r == VM_FAULT_NOPAGE {
                    inc(&self.stats.local_pages);
                    if self.policy_abi == uapi::POLICY_MOW {
                        inc(&self.stats.prefetched_pages);
                    }
                }
                r
            }
        }
    }

    /// The fault at `addr` of a clone VMA, image address `ia` (inside the
    /// VMA's image VMA, not installed when the shim looked).
    fn fault(&self, cv: &CloneVma, ia: u64) -> u32 {
        inc(&self.stats.faults);
        let Some(k) = self.leaf_index(ia) else { return FAULT_FALLBACK };
        let access = cv.access();
        let block = leaf_block(ia);
        let r = self.with_leaf(k, |entries| {
            // Under the leaf lock, the installed marks and the PTEs agree:
            // another fault may have installed this page (or it was zapped
            // since): then fall back; inserting over a present PTE is a no-op.
            if cv.installed(ia) || entries[((ia - block) / PAGE_SIZE) as usize] == 0 {
                return FAULT_FALLBACK;
            }
            let mut here = FAULT_FALLBACK;
            // Install every entry of this leaf that falls in this VMA.
            for (i, &e) in entries.iter().enumerate() {
                let eia = block + i as u64 * PAGE_SIZE;
                if e == 0 || cv.installed(eia) {
                    continue;
                }
                let Some(a) = cv.addr_of(eia) else { continue };
                let r = self.install(cv, a, e, access);
                if r & (VM_FAULT_OOM | VM_FAULT_SIGBUS) != 0 {
                    if eia == ia || r & VM_FAULT_OOM != 0 {
                        return r;
                    }
                    continue;
                }
                cv.set_installed(eia);
                if eia == ia {
                    here = r;
                }
            }
            here
        });
        // A leaf that fails validation costs the clone a SIGBUS, never the kernel.
        r.unwrap_or(VM_FAULT_SIGBUS)
    }

    /// Copies up to `len` bytes at image address `ia`, within one page, as
    /// the clone would read them (for /proc/PID/mem and ptrace); bytes copied.
    fn access(&self, ia: u64, buf: *mut u8, len: usize) -> i32 {
        let in_page = (ia % PAGE_SIZE) as usize;
        let n = len.min(PAGE_SIZE as usize - in_page);
        let Some(k) = self.leaf_index(ia) else { return EFAULT.to_errno() };
        let block = leaf_block(ia);
        let e = self.with_leaf(k, |entries| entries[((ia - block) / PAGE_SIZE) as usize]);
        let Ok(e) = e.map_err(|_| ()) else { return EFAULT.to_errno() };
        if e == 0 {
            return EFAULT.to_errno();
        }
        let off = pte::frame(e).wrapping_mul(PAGE_SIZE) + in_page as u64;
        // SAFETY: the caller gives `len` >= `n` writable bytes at `buf`.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, n) };
        match self.pool.map().read(off, out) {
            Ok(()) => n as i32,
            Err(_) => EFAULT.to_errno(),
        }
    }

    /// The restore completed in `ns`: the address space, the signal
    /// handlers and the restoring thread's registers and signal mask are
    /// the image's (the other threads, released, take theirs as each
    /// leaves the kernel). From here on (Release: after all of that) the
    /// process is a clone to `CLONE_STAT`.
    pub(crate) fn set_restored(&self, ns: u64) {
        self.stats.restore_ns.store(ns.max(1), Release);
    }

    /// Whether the restore completed (`set_restored`).
    pub(crate) fn restored(&self) -> bool {
        self.stats.restore_ns.load(Acquire) != 0
    }

    /// Fills `out` with this clone's statistics.
    pub(crate) fn stat(&self, out: &mut CloneStat) {
        let s = &self.stats;
        out.image_id = self.id;
        out.policy = self.policy_abi;
        out.clone_nr = self.clone_nr;
        out.restore_ns = s.restore_ns.load(Relaxed);
        out.pool_pages = s.pool_pages.load(Relaxed);
        out.local_pages = s.local_pages.load(Relaxed);
        out.prefetched_pages = s.prefetched_pages.load(Relaxed);
        out.zero_pages = s.zero_pages.load(Relaxed);
        out.file_pages = s.file_pages.load(Relaxed);
        out.faults = s.faults.load(Relaxed);
        out.leaves = s.leaves.load(Relaxed);
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}

#[pinned_drop]
impl PinnedDrop for CloneCtx {
    fn drop(self: Pin<&mut Self>) {
        self.pool.lease_release(self.id, self.base);
    }
}

/// A clone VMA during one of its faults.
///
/// # Invariants
///
/// `cv` is the VMA's live `struct cxlfork_cvma` and `vma` the faulting VMA,
/// both valid for the fault (mmap or VMA lock held).
struct CloneVma {
    cv: *mut Cvma,
    vma: *mut VmArea,
}

impl CloneVma {
    /// The user address of image address `ia` in this VMA, if it is there
    /// and inside the VMA's image VMA.
    fn addr_of(&self, ia: u64) -> Option<u64> {
        // SAFETY: both valid (invariant).
        let a = unsafe { ffi::cxlfork_cvma_addr(self.cv, self.vma, ia) };
        (a != 0).then_some(a)
    }

    /// Whether image page `ia` was already installed in this VMA's lineage.
    fn installed(&self, ia: u64) -> bool {
        // SAFETY: valid (invariant).
        unsafe { ffi::cxlfork_cvma_installed(self.cv, ia) }
    }

    fn set_installed(&self, ia: u64) {
        // SAFETY: valid (invariant); the bit is set atomically.
        unsafe { ffi::cxlfork_cvma_set_installed(self.cv, ia) }
    }

    fn access(&self) -> Access {
        // SAFETY: valid (invariant).
        let prot = unsafe { ffi::cxlfork_vma_prot(self.vma) };
        Access { writable: prot & 2 != 0, exec: prot & 4 != 0 }
    }

    fn insert_pfn(&self, addr: u64, pfn: u64) -> u32 {
        // SAFETY: the VMA's fault context (invariant); `pfn` is a page of
        // the pool, mapped read-only (special PTE, no refcount).
        unsafe { ffi::cxlfork_vma_insert_pfn(self.vma, addr, pfn) }
    }

    fn insert_copy(&self, addr: u64, src: *const c_void) -> u32 {
        // SAFETY: the VMA's fault context (invariant); `src` is 4 KiB of pool
        // memory (checked by the caller's `with_dst`).
        unsafe { ffi::cxlfork_vma_insert_copy(self.vma, addr, src) }
    }
}

/// Called by a clone VMA on a fault (`shim_restore.c`).
///
/// # Safety
///
/// `ctx` is the VMA's context reference, alive while the VMA is; `cv` is
/// the VMA's cvma and `vma` the faulting VMA.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_clone_fault(ctx: *const c_void, cv: *mut Cvma, vma: *mut VmArea, _addr: u64, ia: u64) -> u32 {
    // SAFETY: per the contract, `ctx` came from `Arc::into_raw` and the
    // VMA's reference keeps it alive for this call.
    let ctx = unsafe { &*ctx.cast::<CloneCtx>() };
    // INVARIANT: per the contract, both are valid for the fault.
    ctx.fault(&CloneVma { cv, vma }, ia)
}

/// A clone VMA's fault got what any process gets there (`shim_restore.c`):
/// the zero page, or the file's page.
///
/// # Safety
///
/// As for [`cxlfork_rust_clone_fault`].
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_clone_fallback(ctx: *const c_void, file: bool, count_fault: bool) {
    // SAFETY: per the contract, the VMA's reference keeps `ctx` alive.
    let ctx = unsafe { &*ctx.cast::<CloneCtx>() };
    if count_fault {
        inc(&ctx.stats.faults);
    }
    inc(if file { &ctx.stats.file_pages } else { &ctx.stats.zero_pages });
}

/// A read of a clone VMA through access_remote_vm (`shim_restore.c`).
///
/// # Safety
///
/// As for [`cxlfork_rust_clone_fault`]; `buf` holds `len` writable bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_clone_access(ctx: *const c_void, ia: u64, buf: *mut u8, len: i32) -> i32 {
    // SAFETY: per the contract, the VMA's reference keeps `ctx` alive.
    let ctx = unsafe { &*ctx.cast::<CloneCtx>() };
    ctx.access(ia, buf, usize::try_from(len).unwrap_or(0))
}

/// A clone VMA was duplicated or split: one more reference.
///
/// # Safety
///
/// `ctx` is a live context pointer from `Arc::into_raw`.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_ctx_get(ctx: *const c_void) {
    // SAFETY: `ctx` is live; we add a reference and leak both handles back.
    let a = unsafe { Arc::from_raw(ctx.cast::<CloneCtx>()) };
    let b = a.clone();
    let _ = Arc::into_raw(a);
    let _ = Arc::into_raw(b);
}

/// A clone VMA went: one reference less.
///
/// # Safety
///
/// `ctx` is a context pointer whose reference the caller gives up.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_ctx_put(ctx: *const c_void) {
    // SAFETY: the caller gives up one reference from `Arc::into_raw`.
    drop(unsafe { Arc::from_raw(ctx.cast::<CloneCtx>()) });
}

/// A clone VMA's state, allocated before the point of no return.
///
/// # Invariants
///
/// `0` came from `cxlfork_cvma_alloc` and is owned here until a clone VMA
/// takes it over.
pub(crate) struct CvmaBox(NonNull<Cvma>);

impl CvmaBox {
    /// State for a clone VMA whose image range meets the image's leaf
    /// ranges at `leaves` (sorted, distinct, 2 MiB aligned).
    pub(crate) fn new(leaves: &[u64]) -> Result<Self> {
        let n = u32::try_from(leaves.len()).map_err(|_| ENOMEM)?;
        // SAFETY: `leaves` is `n` readable words; NULL on failure.
        let p = unsafe { ffi::cxlfork_cvma_alloc(leaves.as_ptr(), n) };
        // INVARIANT: from `cxlfork_cvma_alloc`.
        Ok(Self(NonNull::new(p).ok_or(ENOMEM)?))
    }
}

impl Drop for CvmaBox {
    fn drop(&mut self) {
        // SAFETY: owned here (invariant), freed once.
        unsafe { ffi::cxlfork_cvma_free(self.0.as_ptr()) };
    }
}

/// Where a clone VMA comes from in the image.
pub(crate) struct ImageVma {
    /// Index in the image's VMA table.
    pub(crate) index: u32,
    /// Its first image address.
    pub(crate) start: u64,
    /// Its file page offset (file mappings).
    pub(crate) pgoff: u64,
    /// MADV_WIPEONFORK.
    pub(crate) wipe: bool,
}

/// Turns current's fresh private mapping `[addr, addr + len)` (anonymous,
/// or of the reopened file) into a clone VMA of `ctx` standing for `img`.
pub(crate) fn make_clone_vma(ctx: &Arc<CloneCtx>, addr: u64, len: u64, cv: CvmaBox, img: &ImageVma) -> Result {
    let raw = Arc::into_raw(ctx.clone());
    let cvp = cv.0.as_ptr();
    // SAFETY: the mapping belongs to current; `raw` is a context reference
    // and `cvp` a cvma, both taken over by the VMA on success.
    let r = unsafe { ffi::cxlfork_make_clone_vma(addr, len, raw.cast::<c_void>(), cvp, img.index, img.start, img.pgoff, img.wipe) };
    if r < 0 {
        // SAFETY: the VMA did not take it: give the reference back.
        drop(unsafe { Arc::from_raw(raw) });
        return Err(Error::from_errno(r));
    }
    // The VMA owns the cvma now.
    core::mem::forget(cv);
    Ok(())
}
