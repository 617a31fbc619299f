//! A restored clone's view of its image: the context behind the clone's
//! backing file, and its page-fault handler.
//!
//! Every private VMA of a clone is an anonymous private mapping turned into
//! a clone VMA (our vm_operations, VM_MIXEDMAP, the context in
//! vm_private_data). Its vm_pgoff is the image address it stands for, kept
//! by the kernel across mremap and splits, so faults still find their pages
//! after the clone moves its mappings. On the first fault in a 2 MiB range, the
//! leaf table of that range is read from the pool, validated (its CRC and
//! every entry inside the image), and all its checkpointed entries in the
//! faulting VMA are installed at once, each where the tiering policy says:
//! mapped read-only from the pool (zero copy; a write takes the kernel's own
//! copy-on-write) or copied to a local page. Addresses the image has no page
//! for read as zero (anonymous) or from the reopened file (private file).
//!
//! The context is reference counted: each clone VMA holds a reference
//! (taken again by vm_ops->open on fork and split, dropped by ->close), so
//! it lives as long as any VMA of the clone or of a process forked from it
//! maps the image; dropping it drops the clone's lease on the image and the
//! module pin.
//!
//! Lock order: mmap_lock (the fault) -> `CloneCtx::leaves` -> `Pool::state`.

use crate::abi::image::{leaf_block, pte, vma_kind, ImageHeader, Meta, PT_ENTRIES};
use crate::abi::pool::PAGE_SIZE;
use crate::abi::uapi::CloneStat;
use crate::ffi::{self, KFile, VmArea};
use crate::pool::Pool;
use crate::tiering::{Place, Policy};
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{Arc, Mutex};

const VM_FAULT_OOM: u32 = 0x0001;
const VM_FAULT_SIGBUS: u32 = 0x0002;
const VM_FAULT_NOPAGE: u32 = 0x0100;

/// A referenced `struct file`.
///
/// # Invariants
///
/// `0` holds one reference, dropped only by `drop`.
pub(crate) struct FileRef(NonNull<KFile>);

// SAFETY: a file reference may be used and dropped from any task.
unsafe impl Send for FileRef {}
// SAFETY: `FileRef` only hands out the raw pointer; files are thread safe.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// Takes ownership of a reference (`ptr` from a successful open).
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid file pointer holding a reference the caller gives up.
    pub(crate) unsafe fn from_raw(ptr: NonNull<KFile>) -> Self {
        // INVARIANT: the caller gives us its reference.
        Self(ptr)
    }

    /// Takes the reference a kernel function returned as a `struct file *`
    /// that may be an `ERR_PTR` (or NULL: `ENOMEM`).
    ///
    /// # Safety
    ///
    /// Unless an error, `ptr` must be a valid file holding a reference the caller gives up.
    pub(crate) unsafe fn from_err_ptr(ptr: *mut KFile) -> Result<Self> {
        let e = ptr as isize;
        if (-4095..0).contains(&e) {
            return Err(Error::from_errno(e as i32));
        }
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: not an error: the caller's contract applies.
        Ok(unsafe { Self::from_raw(ptr) })
    }

    /// The raw pointer (valid while `self` lives).
    pub(crate) fn as_ptr(&self) -> *mut KFile {
        self.0.as_ptr()
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (invariant).
        unsafe { ffi::cxlfork_file_put(self.0.as_ptr()) };
    }
}

/// Tiering statistics of one clone.
pub(crate) struct Stats {
    pub(crate) pool_pages: Atomic<u64>,
    pub(crate) local_pages: Atomic<u64>,
    pub(crate) prefetched_pages: Atomic<u64>,
    pub(crate) zero_pages: Atomic<u64>,
    pub(crate) file_pages: Atomic<u64>,
    pub(crate) faults: Atomic<u64>,
    pub(crate) leaves: Atomic<u64>,
    pub(crate) restore_ns: Atomic<u64>,
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

/// A loaded, validated leaf table.
struct LeafSlot {
    /// Its `PT_ENTRIES` entries.
    entries: KVec<u64>,
    /// Whether a fault has installed its entries yet.
    batched: bool,
}

/// A clone's image and tiering state.
#[pin_data(PinnedDrop)]
pub(crate) struct CloneCtx {
    pool: Arc<Pool>,
    pub(crate) id: u64,
    base: u64,
    pub(crate) header: KBox<ImageHeader>,
    meta: KVec<u8>,
    policy: &'static dyn Policy,
    pub(crate) policy_abi: u32,
    pub(crate) clone_nr: u32,
    /// Reopened file of each image VMA that needs one (private and shared file mappings).
    pub(crate) vma_files: KVec<Option<FileRef>>,
    /// Keeps the module loaded while the context lives.
    _pin: FileRef,
    /// Validated leaf tables, `PT_ENTRIES` entries each, loaded at first
    /// use; with whether a fault has installed the leaf's entries yet.
    #[pin]
    leaves: Mutex<KVec<Option<LeafSlot>>>,
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
        meta: KVec<u8>,
        policy: &'static dyn Policy,
        policy_abi: u32,
        clone_nr: u32,
        vma_files: KVec<Option<FileRef>>,
    ) -> Result<Arc<Self>> {
        // SAFETY: no preconditions; it returns a new file holding one reference, or an error.
        let pin = unsafe { FileRef::from_err_ptr(ffi::cxlfork_module_pin_file()) }?;
        let mut slots = KVec::with_capacity(header.n_leaves as usize, GFP_KERNEL)?;
        for _ in 0..header.n_leaves {
            slots.push(None, GFP_KERNEL)?;
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
                vma_files,
                _pin: pin,
                leaves <- new_mutex!(slots),
                stats: Stats::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// The (validated) metadata.
    pub(crate) fn meta(&self) -> Meta<'_> {
        Meta { header: &self.header, bytes: &self.meta }
    }

    /// The leaf covering image address `ia`, by binary search of the index.
    fn leaf_index(&self, ia: u64) -> Option<u32> {
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
        let mut bytes = KVec::from_elem(0u8, PAGE_SIZE as usize, GFP_KERNEL)?;
        self.pool.map().read(self.base + self.header.leaves_off + u64::from(k) * PAGE_SIZE, &mut bytes)?;
        let mut entries = KVec::from_elem(0u64, PT_ENTRIES, GFP_KERNEL)?;
        self.meta().validate_leaf(k, &bytes, &mut entries).map_err(|e| {
            pr_warn!("clone of image {:#x}: leaf {} is corrupt: {}\n", self.id, k, e.as_str());
            EBADMSG
        })?;
        inc(&self.stats.leaves);
        Ok(entries)
    }

    /// Runs `f` on leaf `k`'s entries (loading it first if needed). With
    /// `fault`, tells `f` whether this is the leaf's first fault (and marks
    /// it done); otherwise `f` gets `false`.
    pub(crate) fn with_leaf<R>(&self, k: u32, fault: bool, f: impl FnOnce(&[u64], bool) -> R) -> Result<R> {
        let mut leaves = self.leaves.lock();
        let slot = leaves.get_mut(k as usize).ok_or(EINVAL)?;
        if slot.is_none() {
            *slot = Some(LeafSlot { entries: self.read_leaf(k)?, batched: false });
        }
        let leaf = slot.as_mut().ok_or(EINVAL)?;
        let first = fault && !leaf.batched;
        if fault {
            leaf.batched = true;
        }
        Ok(f(&leaf.entries, first))
    }

    /// Maps the checkpointed page `e` at `addr` of `vma` per the policy.
    fn install(&self, vma: *mut VmArea, addr: u64, e: u64) -> u32 {
        // `e` was validated: its frame is one of the image's data pages.
        let off = pte::frame(e).wrapping_mul(PAGE_SIZE);
        match self.policy.place(e) {
            Place::Pool => {
                let pfn = self.pool.map().phys().wrapping_add(off) / PAGE_SIZE;
                // SAFETY: called from this VMA's fault handler (mmap or VMA
                // lock held); `pfn` is a page of the pool, mapped read-only.
                let r = unsafe { ffi::cxlfork_vma_insert_pfn(vma, addr, pfn) };
                if r == VM_FAULT_NOPAGE {
                    inc(&self.stats.pool_pages);
                }
                r
            }
            Place::Local => {
                let r = self.pool.map().with_dst(off, PAGE_SIZE as usize, |src| {
                    // SAFETY: as above; `src` is 4 KiB of pool memory (checked by `with_dst`).
                    Ok(unsafe { ffi::cxlfork_vma_insert_copy(vma, addr, src.cast_const()) })
                });
                let r = r.unwrap_or(VM_FAULT_SIGBUS);
                if r == VM_FAULT_NOPAGE {
                    inc(&self.stats.local_pages);
                }
                r
            }
        }
    }

    /// The fault at `addr` of `vma` (a clone VMA of this context).
    fn fault(&self, vma: *mut VmArea) -> impl Fn(u64) -> u32 + '_ {
        move |addr| {
            inc(&self.stats.faults);
            // SAFETY: `vma` is the faulting VMA, valid during the fault.
            let (start, end, pgoff) = unsafe { (ffi::cxlfork_vma_start(vma), ffi::cxlfork_vma_end(vma), ffi::cxlfork_vma_pgoff(vma)) };
            // The image address this page stands for (the VMA may have moved).
            // Nothing here may overflow: an overflow check is a kernel BUG.
            let Some(base_ia) = pgoff.checked_mul(PAGE_SIZE) else { return VM_FAULT_SIGBUS };
            let Some(ia) = base_ia.checked_add(addr.saturating_sub(start)) else { return VM_FAULT_SIGBUS };
            let m = self.meta();
            let Ok(Some(v)) = m.vma_at(ia) else { return VM_FAULT_SIGBUS };
            if let Some(k) = self.leaf_index(ia) {
                let r = self.with_leaf(k, true, |entries, first| {
                    let block = leaf_block(ia);
                    let here = entries[((ia - block) / PAGE_SIZE) as usize];
                    if first {
                        // Install every entry of this leaf inside this VMA.
                        for (i, &e) in entries.iter().enumerate() {
                            // Where entry i's image address sits in this VMA, if it does.
                            let a = (block + i as u64 * PAGE_SIZE)
                                .checked_sub(base_ia)
                                .and_then(|d| start.checked_add(d))
                                .filter(|&a| a < end);
                            let Some(a) = a else { continue };
                            if e != 0 && a != addr {
                                let r = self.install(vma, a, e);
                                if r & VM_FAULT_OOM != 0 {
                                    return r;
                                }
                            }
                        }
                    }
                    if here != 0 {
                        self.install(vma, addr, here)
                    } else {
                        0
                    }
                });
                match r {
                    Ok(0) => {}
                    Ok(r) => return r,
                    Err(_) => return VM_FAULT_SIGBUS,
                }
            }
            // No checkpointed page: as the parent would read it.
            if v.kind == vma_kind::FILE_PRIVATE {
                let idx = m.vma_index(ia).unwrap_or(u32::MAX) as usize;
                if let Some(Some(f)) = self.vma_files.get(idx) {
                    inc(&self.stats.file_pages);
                    let Some(pos) = v.pgoff.checked_mul(PAGE_SIZE).and_then(|p| p.checked_add(ia - v.start)) else {
                        return VM_FAULT_SIGBUS;
                    };
                    // SAFETY: fault context as above; `f` is a referenced file.
                    return unsafe { ffi::cxlfork_vma_insert_file(vma, addr, f.as_ptr(), pos) };
                }
                return VM_FAULT_SIGBUS;
            }
            inc(&self.stats.zero_pages);
            // SAFETY: fault context as above.
            unsafe { ffi::cxlfork_vma_insert_zero(vma, addr) }
        }
    }

    /// Copies up to `len` bytes at `addr` of `vma`, within one page, as the
    /// clone would read them (for /proc/PID/mem and ptrace); bytes copied.
    fn access(&self, vma: *mut VmArea, addr: u64, buf: *mut u8, len: usize) -> i32 {
        // SAFETY: `vma` is valid during the access (mmap lock held by the caller).
        let (start, pgoff) = unsafe { (ffi::cxlfork_vma_start(vma), ffi::cxlfork_vma_pgoff(vma)) };
        let Some(ia) = pgoff.checked_mul(PAGE_SIZE).and_then(|b| b.checked_add(addr.saturating_sub(start))) else {
            return -(EFAULT.to_errno());
        };
        let in_page = (ia % PAGE_SIZE) as usize;
        let n = len.min(PAGE_SIZE as usize - in_page);
        let Some(k) = self.leaf_index(ia) else { return -(EFAULT.to_errno()) };
        let block = leaf_block(ia);
        let e = self.with_leaf(k, false, |entries, _| entries[((ia - block) / PAGE_SIZE) as usize]);
        let Ok(e) = e.map_err(|_| ()) else { return -(EFAULT.to_errno()) };
        if e == 0 {
            return -(EFAULT.to_errno());
        }
        let off = pte::frame(e).wrapping_mul(PAGE_SIZE) + in_page as u64;
        // SAFETY: the caller gives `len` >= `n` writable bytes at `buf`.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, n) };
        match self.pool.map().read(off, out) {
            Ok(()) => n as i32,
            Err(_) => -(EFAULT.to_errno()),
        }
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

    /// Whether the policy copies page `e` at restore.
    pub(crate) fn prefetch(&self, e: u64) -> bool {
        self.policy.prefetch(e)
    }

    /// Whether the policy copies any page at restore.
    pub(crate) fn prefetches(&self) -> bool {
        self.policy.prefetches()
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

/// Called by a clone VMA on a fault (`shim_restore.c`).
///
/// # Safety
///
/// `ctx` is the VMA's context reference (from [`make_clone_vma`]), alive
/// while the VMA is; `vma` is the faulting VMA.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_clone_fault(ctx: *const c_void, vma: *mut VmArea, addr: u64, _flags: u32) -> u32 {
    // SAFETY: per the contract, `ctx` came from `Arc::into_raw` and the
    // VMA's reference keeps it alive for this call.
    let ctx = unsafe { &*ctx.cast::<CloneCtx>() };
    ctx.fault(vma)(addr)
}

/// A read of a clone VMA through access_remote_vm (`shim_restore.c`).
///
/// # Safety
///
/// As for [`cxlfork_rust_clone_fault`]; `buf` holds `len` writable bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn cxlfork_rust_clone_access(ctx: *const c_void, vma: *mut VmArea, addr: u64, buf: *mut u8, len: i32) -> i32 {
    // SAFETY: per the contract, the VMA's reference keeps `ctx` alive.
    let ctx = unsafe { &*ctx.cast::<CloneCtx>() };
    ctx.access(vma, addr, buf, usize::try_from(len).unwrap_or(0))
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

/// Turns current's fresh anonymous private mapping `[addr, addr + len)` into
/// a clone VMA of `ctx`.
pub(crate) fn make_clone_vma(ctx: &Arc<CloneCtx>, addr: u64, len: u64) -> Result {
    let raw = Arc::into_raw(ctx.clone());
    // SAFETY: the mapping belongs to current; `raw` is a reference the VMA takes over.
    let r = unsafe { ffi::cxlfork_make_clone_vma(addr, len, raw.cast::<c_void>()) };
    if r < 0 {
        // SAFETY: the VMA did not take it: give the reference back.
        drop(unsafe { Arc::from_raw(raw) });
        return Err(Error::from_errno(r));
    }
    Ok(())
}
