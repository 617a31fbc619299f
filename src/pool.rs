//! The attached pool: attach (validate, map, find or format the superblock,
//! claim this host's slot, load its directory), info, image allocation and
//! publication, detach.
//!
//! Cross-host rules (there are no cross-host atomics): the superblock is
//! written once, by the attach that formats; slot `i`, directory `i` and
//! partition `i` are written only by the host attached as `i`. Everything
//! read from the pool is copied out and validated before use.
//!
//! Leases and deletion without cross-host atomics (a Dekker handshake over
//! single-writer lines, each side writing, fencing, then reading the
//! other's line): a restore writes its host's lease line in the image, then
//! re-reads the owner's directory entry; it proceeds only if the entry is
//! still PUBLISHED for the same image. A delete marks the entry DELETING,
//! then reads every lease line; it frees the image only if none holds it
//! (a line holds only for this image id and its host's current attach
//! generation), else makes the entry PUBLISHED again (EBUSY). Whatever the
//! interleaving, one of the two sees the other: a clone never maps a freed
//! or reused extent, and a crashed host's leases lapse at its takeover.
//!
//! Lock order: `crate::POOL` -> target `mmap_lock` -> `Pool::state`.

use crate::abi::boxed_zeroed;
use crate::abi::dir::{self, DirEntry, DIR_BYTES, DIR_ENTRIES};
use crate::abi::image::{ImageHeader, LeaseLine, LEASE_LINE, LEASE_OFF};
use crate::abi::pod::{slice_as_bytes_mut, Pod};
use crate::abi::pool::{HostSlot, Layout, SlotView, Superblock, PAGE_SIZE};
use crate::abi::uapi::{self, ImageInfo, PoolAttach, PoolInfo, MAX_HOSTS};
use crate::kernel_util::{self, RangeKind};
use crate::pool_map::PoolMap;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Physical base and size must be aligned to this (one PMD).
const RANGE_ALIGN: u64 = 2 << 20;

/// Mutable per-host state, written back to this host's slot and directory.
pub(crate) struct PoolState {
    /// Our slot as last written (we are its only writer).
    slot: HostSlot,
    /// Our directory as last written (`DIR_ENTRIES` entries).
    dir: KVec<DirEntry>,
    /// Set by detach: no more writes.
    detached: bool,
    /// Live restore contexts (clones) on this host.
    clones: u32,
    /// Per image restored on this host since attach: (id, restores, live clones).
    restores: KVec<(u64, u32, u32)>,
    /// Checkpoints in progress, and their page counts.
    ckpt_active: u32,
    ckpt_pages_done: u64,
    ckpt_pages_total: u64,
}

/// This host's attachment to a pool.
///
/// # Invariants
///
/// `layout` was validated against (or written to) the superblock of `map`;
/// `host_id < layout.max_hosts`; slot `host_id` and directory `host_id` in
/// the pool hold `state.slot` and `state.dir` unless `state.detached`.
#[pin_data]
pub(crate) struct Pool {
    map: PoolMap,
    layout: Layout,
    uuid: [u8; 16],
    host_id: u32,
    #[pin]
    state: Mutex<PoolState>,
}

/// Space reserved for an image being written: a RESERVED directory entry.
pub(crate) struct Reservation {
    index: usize,
    /// Image id.
    pub(crate) id: u64,
    /// Pool offset of the extent.
    pub(crate) offset: u64,
    /// Bytes of the extent.
    pub(crate) length: u64,
}

impl Pool {
    /// Attaches to the pool described by `req`. Nothing is left behind on error.
    pub(crate) fn attach(req: &PoolAttach) -> Result<Arc<Self>> {
        let format = req.flags & uapi::ATTACH_FORMAT != 0;
        let (base, size) = (req.phys_base, req.phys_size);
        let range_ok = size != 0
            && base.is_multiple_of(RANGE_ALIGN)
            && size.is_multiple_of(RANGE_ALIGN)
            && base.checked_add(size).is_some();
        if req.flags & !uapi::ATTACH_FLAGS != 0
            || !range_ok
            || req.host_id as usize >= MAX_HOSTS
            || (!format && req.max_hosts != 0)
            || req.max_hosts as usize > MAX_HOSTS
        {
            return Err(EINVAL);
        }
        let kind = kernel_util::classify_range(base, size).inspect_err(|_| {
            pr_warn!("attach: [{:#x}, +{:#x}) is System RAM or not a claimed device range\n", base, size);
        })?;
        if kind != RangeKind::Cxl {
            pr_info!("attach: [{:#x}, +{:#x}) is device memory outside any CXL window\n", base, size);
        }
        // Only a device-dax range: its pages are refcounted ZONE_DEVICE
        // pages, and the page map pinned here keeps the device from going
        // away while attached (firmware-reserved memory, ACPI tables or a
        // PCI BAR are refused).
        let map = PoolMap::new(base, size).inspect_err(|_| {
            pr_warn!("attach: [{:#x}, +{:#x}) is not one device-dax range (bind it to device_dax first)\n", base, size);
        })?;

        let (layout, uuid) = if format {
            let hosts = if req.max_hosts == 0 { uapi::DEFAULT_HOSTS } else { req.max_hosts };
            let layout = Layout::new(size, hosts).ok_or(EINVAL)?;
            if req.host_id >= layout.max_hosts {
                pr_info!("attach: host id {} is beyond the pool's {} host slots\n", req.host_id, layout.max_hosts);
                return Err(EINVAL);
            }
            let uuid = kernel_util::random_uuid();
            Self::format(&map, &layout, uuid)?;
            (layout, uuid)
        } else {
            let sb: Superblock = map.read_pod(0)?;
            let layout = sb.validate(size).map_err(|e| {
                pr_warn!("attach: no valid superblock at {:#x}: {}\n", base, e.as_str());
                EBADMSG
            })?;
            if req.host_id >= layout.max_hosts {
                pr_info!("attach: host id {} is beyond the pool's {} host slots\n", req.host_id, layout.max_hosts);
                return Err(EINVAL);
            }
            (layout, sb.uuid)
        };

        let off = layout.slot_offset(req.host_id);
        let old: HostSlot = map.read_pod(off)?;
        let view = old.validate(req.host_id, &layout).map_err(|e| {
            pr_warn!("attach: host slot {} is corrupt: {}\n", req.host_id, e.as_str());
            EBADMSG
        })?;
        if view.info.state == uapi::SLOT_ATTACHED && req.flags & uapi::ATTACH_TAKEOVER == 0 {
            pr_warn!(
                "attach: host slot {} is held by another attach (use TAKEOVER if its host is gone)\n",
                req.host_id
            );
            return Err(EBUSY);
        }
        let (dir, used) = Self::load_dir(&map, &layout, req.host_id)?;
        let mut slot = view.claim(kernel_util::random_u64(), kernel_util::realtime_ns(), &kernel_util::nodename());
        slot.part_used = used;
        slot.seal();
        map.write_pod(off, &slot)?;
        pr_info!(
            "attached pool [{:#x}, +{:#x}) as host {} of {} (generation {})\n",
            base,
            size,
            req.host_id,
            layout.max_hosts,
            slot.generation
        );
        let state = PoolState {
            slot,
            dir,
            detached: false,
            clones: 0,
            restores: KVec::new(),
            ckpt_active: 0,
            ckpt_pages_done: 0,
            ckpt_pages_total: 0,
        };
        // INVARIANT: `layout` came from the superblock just validated or written;
        // `host_id < max_hosts` was checked; `slot` and `dir` were just written.
        Arc::pin_init(
            pin_init!(Self { map, layout, uuid, host_id: req.host_id, state <- new_mutex!(state) }),
            GFP_KERNEL,
        )
    }

    /// Writes empty slots and directories, then the superblock last (it
    /// makes the pool valid).
    fn format(map: &PoolMap, layout: &Layout, uuid: [u8; 16]) -> Result {
        // Invalidate first, so a crash midway leaves no valid superblock.
        map.zero(0, PAGE_SIZE as usize)?;
        for id in 0..layout.max_hosts {
            map.zero(layout.slot_offset(id), layout.slot_stride as usize)?;
            map.zero(dir::dir_offset(layout, id), DIR_BYTES as usize)?;
        }
        let sb = layout.superblock(uuid, kernel_util::realtime_ns());
        map.write_pod(0, &sb)?;
        pr_info!("formatted pool: {} bytes, {} host slots of {} bytes\n", layout.pool_size, layout.max_hosts, layout.part_size);
        Ok(())
    }

    /// Reads a host's directory.
    fn read_dir(map: &PoolMap, layout: &Layout, host: u32) -> Result<KVec<DirEntry>> {
        let mut dir = KVec::from_elem(DirEntry::zeroed(), DIR_ENTRIES as usize, GFP_KERNEL)?;
        map.read(dir::dir_offset(layout, host), slice_as_bytes_mut(&mut dir))?;
        Ok(dir)
    }

    /// Loads our own directory at attach: entries left RESERVED by a
    /// checkpoint that never finished, and corrupt ones, are cleared (no
    /// checkpoint of ours can be running). Returns it and the bytes in use.
    fn load_dir(map: &PoolMap, layout: &Layout, host: u32) -> Result<(KVec<DirEntry>, u64)> {
        let mut dir = Self::read_dir(map, layout, host)?;
        let base = dir::dir_offset(layout, host);
        let mut used = 0u64;
        for (i, e) in dir.iter_mut().enumerate() {
            let keep = match e.validate(host, layout) {
                Ok(None) => continue,
                Ok(Some(v)) if v.state == dir::state::PUBLISHED => true,
                Ok(Some(v)) if v.state == dir::state::DELETING => {
                    // A delete that did not finish: published again (its
                    // leases are checked at the next delete).
                    *e = DirEntry::new(dir::state::PUBLISHED, v.id, v.offset, v.length, v.created_ns, v.uid, v.gid);
                    map.write_pod(base + (i * DirEntry::SIZE) as u64, e)?;
                    true
                }
                Ok(Some(_)) => {
                    pr_info!("attach: reclaiming an unfinished checkpoint's space (entry {})\n", i);
                    false
                }
                Err(_) => {
                    pr_warn!("attach: clearing corrupt directory entry {} of host {}\n", i, host);
                    false
                }
            };
            if keep {
                used = used.saturating_add(e.length);
            } else {
                *e = DirEntry::zeroed();
                map.write_pod(base + (i * DirEntry::SIZE) as u64, e)?;
            }
        }
        Ok((dir, used))
    }

    /// The pool mapping.
    pub(crate) fn map(&self) -> &PoolMap {
        &self.map
    }

    /// This host's id.
    pub(crate) fn host_id(&self) -> u32 {
        self.host_id
    }

    /// Reads and validates slot `id` (another host's slots change under us).
    fn slot_view(&self, id: u32, own: &HostSlot) -> SlotView {
        if id == self.host_id {
            // We are this slot's only writer: our copy is authoritative.
            if let Ok(v) = own.validate(id, &self.layout) {
                return v;
            }
        }
        let slot = self.map.read_pod::<HostSlot>(self.layout.slot_offset(id));
        match slot.map(|s| s.validate(id, &self.layout)) {
            Ok(Ok(v)) => v,
            _ => {
                let mut v = SlotView::free(id);
                v.info.state = uapi::SLOT_INVALID;
                v
            }
        }
    }

    /// `CXLFORK_IOC_POOL_INFO`.
    pub(crate) fn info(&self) -> Result<KBox<PoolInfo>> {
        let mut info = boxed_zeroed::<PoolInfo>(GFP_KERNEL)?;
        let (own, active, done, total) = {
            let s = self.state.lock();
            (s.slot, s.ckpt_active, s.ckpt_pages_done, s.ckpt_pages_total)
        };
        info.size = PoolInfo::SIZE as u32;
        info.abi_version = uapi::ABI_VERSION;
        info.uuid = self.uuid;
        info.phys_base = self.map.phys();
        info.pool_size = self.map.size();
        info.part_size = self.layout.part_size;
        info.host_id = self.host_id;
        info.max_hosts = self.layout.max_hosts;
        info.format_version = crate::abi::pool::FORMAT_VERSION;
        info.ckpt_active = active;
        info.ckpt_pages_done = done;
        info.ckpt_pages_total = total;
        for id in 0..self.layout.max_hosts {
            let v = self.slot_view(id, &own);
            let free = match v.info.state {
                uapi::SLOT_INVALID => 0,
                _ => self.layout.part_size - v.info.part_used,
            };
            info.free_bytes += free;
            if id == self.host_id {
                info.part_free = free;
            }
            if v.info.state == uapi::SLOT_ATTACHED {
                info.hosts_in_use += 1;
            }
            info.hosts[id as usize] = v.info;
        }
        info.images = u32::try_from(self.published(&mut |_, _| {})?).unwrap_or(u32::MAX);
        Ok(info)
    }

    /// Calls `f(entry, header)` for every published image of every host,
    /// `header` being `None` when the image's header fails validation.
    /// Returns how many there are.
    pub(crate) fn published(&self, f: &mut dyn FnMut(&DirEntry, Option<&ImageHeader>)) -> Result<usize> {
        let mut n = 0;
        let mut hdr = boxed_zeroed::<ImageHeader>(GFP_KERNEL)?;
        for host in 0..self.layout.max_hosts {
            let dir = if host == self.host_id {
                let s = self.state.lock();
                let mut d = KVec::with_capacity(DIR_ENTRIES as usize, GFP_KERNEL)?;
                d.extend_from_slice(&s.dir, GFP_KERNEL)?;
                d
            } else {
                Self::read_dir(&self.map, &self.layout, host)?
            };
            for e in dir.iter() {
                let Ok(Some(e)) = e.validate(host, &self.layout) else { continue };
                if e.state != dir::state::PUBLISHED {
                    continue;
                }
                n += 1;
                let ok = self.map.read(e.offset, hdr.as_bytes_mut()).is_ok() && hdr.validate(e.offset, e.length).is_ok() && hdr.id == e.id;
                f(&e, ok.then_some(&*hdr));
            }
        }
        Ok(n)
    }

    /// The published directory entry of image `id` (another host's
    /// directory is read from the pool afresh).
    pub(crate) fn find(&self, id: u64) -> Result<DirEntry> {
        let host = dir::id_host(id);
        if host >= self.layout.max_hosts {
            return Err(ENOENT);
        }
        let hit = |e: &DirEntry| matches!(e.validate(host, &self.layout), Ok(Some(v)) if v.id == id && v.state == dir::state::PUBLISHED);
        let found = if host == self.host_id {
            self.state.lock().dir.iter().find(|e| hit(e)).copied()
        } else {
            Self::read_dir(&self.map, &self.layout, host)?.iter().find(|e| hit(e)).copied()
        };
        found.ok_or(ENOENT)
    }

    /// Hosts holding a lease on image `id` at pool offset `base`: a line
    /// holds if it names this image and its host's current attach
    /// generation (a host not attached holds none), or if it is torn.
    pub(crate) fn leases(&self, id: u64, base: u64) -> Result<u32> {
        let own = self.state.lock().slot;
        self.leases_with(id, base, &own)
    }

    fn leases_with(&self, id: u64, base: u64, own: &HostSlot) -> Result<u32> {
        let mut n = 0;
        for host in 0..self.layout.max_hosts {
            let line: LeaseLine = self.map.read_pod(base + LEASE_OFF + LEASE_LINE * u64::from(host))?;
            let v = self.slot_view(host, own);
            let gen = (v.info.state == uapi::SLOT_ATTACHED).then_some(v.info.generation);
            if line.holds(id, gen) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Fills `info` for a directory entry and its header (if valid).
    pub(crate) fn image_info(&self, e: &DirEntry, h: Option<&ImageHeader>, info: &mut ImageInfo) {
        *info = ImageInfo::zeroed();
        info.id = e.id;
        info.base = e.offset;
        info.size = e.length;
        info.created_ns = e.created_ns;
        info.owner_host = dir::id_host(e.id);
        info.uid = kernel_util::uid_for_caller(e.uid);
        info.gid = kernel_util::gid_for_caller(e.gid);
        info.leases = self.leases(e.id, e.offset).unwrap_or(0);
        if let Some(&(_, n, live)) = self.state.lock().restores.iter().find(|(i, _, _)| *i == e.id) {
            info.restores = n;
            info.live_clones = live;
        }
        let Some(h) = h else { return };
        info.valid = 1;
        info.pid = h.pid;
        info.n_vmas = h.n_vmas;
        info.n_files = h.n_files;
        info.pages = h.n_data;
        info.anon_pages = h.anon_pages;
        info.file_pages = h.file_pages;
        info.accessed_pages = h.accessed_pages;
        info.dirty_pages = h.dirty_pages;
        info.duration_ns = h.duration_ns;
        info.name = h.name;
        info.comm = h.comm;
    }

    fn write_dir_entry(&self, s: &PoolState, i: usize) -> Result {
        self.map.write_pod(dir::dir_offset(&self.layout, self.host_id) + (i * DirEntry::SIZE) as u64, &s.dir[i])
    }

    fn write_slot(&self, s: &mut PoolState) -> Result {
        s.slot.seal();
        self.map.write_pod(self.layout.slot_offset(self.host_id), &s.slot)
    }

    /// Reserves `length` bytes of our partition for a new image: first fit,
    /// recorded as a RESERVED entry. ENOSPC if there is no room.
    pub(crate) fn reserve(&self, length: u64, uid: u32, gid: u32) -> Result<Reservation> {
        let mut s = self.state.lock();
        if s.detached {
            return Err(ENODEV);
        }
        let index = s.dir.iter().position(|e| e.magic == 0).ok_or(ENOSPC)?;
        let mut used = KVec::with_capacity(DIR_ENTRIES as usize, GFP_KERNEL)?;
        for e in s.dir.iter().filter(|e| e.magic != 0) {
            used.push((e.offset, e.length), GFP_KERNEL)?;
        }
        let (start, end) = dir::data_area(&self.layout, self.host_id);
        let offset = dir::first_fit(&used, start, end, length).ok_or(ENOSPC)?;
        let id = dir::image_id(self.host_id, s.slot.next_seq);
        s.slot.next_seq = s.slot.next_seq.checked_add(1).ok_or(ENOSPC)?;
        self.write_slot(&mut s)?;
        s.dir[index] = DirEntry::new(dir::state::RESERVED, id, offset, length, 0, uid, gid);
        self.write_dir_entry(&s, index)?;
        Ok(Reservation { index, id, offset, length })
    }

    /// Gives back the end of a reservation: the image turned out smaller
    /// than reserved (all-zero pages left out). `length` is page aligned
    /// and no larger than the reservation.
    pub(crate) fn shrink(&self, r: &mut Reservation, length: u64) -> Result {
        if length > r.length || !length.is_multiple_of(PAGE_SIZE) {
            return Err(EINVAL);
        }
        let mut s = self.state.lock();
        if s.detached {
            return Err(ENODEV);
        }
        let e = s.dir[r.index];
        s.dir[r.index] = DirEntry::new(dir::state::RESERVED, r.id, r.offset, length, 0, e.uid, e.gid);
        self.write_dir_entry(&s, r.index)?;
        r.length = length;
        Ok(())
    }

    /// Publishes a complete image: its entry becomes PUBLISHED (written
    /// last, after the image itself).
    pub(crate) fn publish(&self, r: Reservation, created_ns: u64) -> Result {
        let mut s = self.state.lock();
        if s.detached {
            return Err(ENODEV);
        }
        let e = s.dir[r.index];
        s.dir[r.index] = DirEntry::new(dir::state::PUBLISHED, r.id, r.offset, r.length, created_ns, e.uid, e.gid);
        self.write_dir_entry(&s, r.index)?;
        s.slot.part_used = s.slot.part_used.saturating_add(r.length);
        self.write_slot(&mut s)
    }

    /// Drops a reservation (the checkpoint failed): nothing stays visible.
    pub(crate) fn abort(&self, r: Reservation) {
        let mut s = self.state.lock();
        s.dir[r.index] = DirEntry::zeroed();
        if !s.detached && self.write_dir_entry(&s, r.index).is_err() {
            pr_warn!("checkpoint: could not clear directory entry {}\n", r.index);
        }
    }

    /// Deletes our image `id`: EXDEV if another host owns it, EBUSY while
    /// leases exist. `may` decides permission from the entry.
    pub(crate) fn delete(&self, id: u64, may: impl FnOnce(&DirEntry) -> bool) -> Result {
        if dir::id_host(id) != self.host_id {
            self.find(id)?;
            return Err(EXDEV);
        }
        let mut s = self.state.lock();
        if s.detached {
            return Err(ENODEV);
        }
        let i = s
            .dir
            .iter()
            .position(|e| e.magic != 0 && e.id == id && e.state == dir::state::PUBLISHED)
            .ok_or(ENOENT)?;
        let e = s.dir[i];
        if !may(&e) {
            return Err(EPERM);
        }
        // Mark, fence, then read the leases: a restore on any host either
        // sees the mark (and backs off) or has its lease line seen here.
        s.dir[i] = DirEntry::new(dir::state::DELETING, e.id, e.offset, e.length, e.created_ns, e.uid, e.gid);
        self.write_dir_entry(&s, i)?;
        self.map.fence();
        let held = self.leases_with(id, e.offset, &s.slot);
        if !matches!(held, Ok(0)) {
            s.dir[i] = e;
            self.write_dir_entry(&s, i)?;
            held?;
            return Err(EBUSY);
        }
        s.dir[i] = DirEntry::zeroed();
        self.write_dir_entry(&s, i)?;
        s.slot.part_used = s.slot.part_used.saturating_sub(e.length);
        self.write_slot(&mut s)
    }

    /// Progress accounting of running checkpoints.
    pub(crate) fn ckpt_progress(&self, start: bool, done: u64, total: u64) {
        let mut s = self.state.lock();
        if start {
            s.ckpt_active = s.ckpt_active.saturating_add(1);
            s.ckpt_pages_total = s.ckpt_pages_total.saturating_add(total);
        }
        s.ckpt_pages_done = s.ckpt_pages_done.saturating_add(done);
    }

    /// A checkpoint ended: drop its counts.
    pub(crate) fn ckpt_end(&self, done: u64, total: u64) {
        let mut s = self.state.lock();
        s.ckpt_active = s.ckpt_active.saturating_sub(1);
        s.ckpt_pages_done = s.ckpt_pages_done.saturating_sub(done);
        s.ckpt_pages_total = s.ckpt_pages_total.saturating_sub(total);
    }

    /// Sets this host's lease line of image `id` at `base` to `count`
    /// clones (0 clears it); the state guard proves this host's writers are
    /// serialised. Returns the count before.
    fn write_lease(&self, s: &PoolState, id: u64, base: u64, f: impl FnOnce(u64) -> u64) -> Result<u64> {
        let off = base + LEASE_OFF + LEASE_LINE * u64::from(self.host_id);
        let line: LeaseLine = self.map.read_pod(off)?;
        let gen = s.slot.generation;
        // This host leases another image in the same extent: `id` was
        // deleted and its extent reused (a restore that found `id` there
        // went stale). That lease is never overwritten.
        if line.leased(gen).is_some_and(|other| other != id) {
            return Err(ENOENT);
        }
        let before = if line.holds(id, Some(gen)) && line.image_id == id { line.count } else { 0 };
        let after = f(before);
        let new = if after == 0 { LeaseLine::zeroed() } else { LeaseLine::new(id, gen, after) };
        self.map.write_pod(off, &new)?;
        Ok(before)
    }

    /// A restore takes a lease on image `id` at pool offset `base` (found
    /// PUBLISHED): this host's line first, then the owner's entry is read
    /// again; the lease stands only if the entry still publishes this
    /// image there (else ENOENT: deleted, being deleted, or replaced).
    /// Returns the clone number (restores of this image on this host since
    /// attach).
    pub(crate) fn lease_acquire(&self, id: u64, base: u64) -> Result<u32> {
        let mut s = self.state.lock();
        if s.detached {
            return Err(ENODEV);
        }
        s.restores.reserve(1, GFP_KERNEL)?;
        self.write_lease(&s, id, base, |n| n.saturating_add(1))?;
        self.map.fence();
        let still = if dir::id_host(id) == self.host_id {
            s.dir.iter().any(|e| e.magic != 0 && e.id == id && e.offset == base && e.state == dir::state::PUBLISHED)
        } else {
            matches!(self.find(id), Ok(e) if e.offset == base)
        };
        if !still {
            let _ = self.write_lease(&s, id, base, |n| n.saturating_sub(1));
            return Err(ENOENT);
        }
        s.clones = s.clones.saturating_add(1);
        let nr = match s.restores.iter_mut().find(|(i, _, _)| *i == id) {
            Some((_, n, live)) => {
                *n = n.saturating_add(1);
                *live = live.saturating_add(1);
                *n
            }
            None => {
                // Capacity reserved above: cannot fail.
                let _ = s.restores.push((id, 1, 1), GFP_KERNEL);
                1
            }
        };
        Ok(nr)
    }

    /// The clone (and every process forked from it) dropped its last
    /// mapping of the image: its lease goes.
    pub(crate) fn lease_release(&self, id: u64, base: u64) {
        let mut s = self.state.lock();
        s.clones = s.clones.saturating_sub(1);
        if let Some((_, _, live)) = s.restores.iter_mut().find(|(i, _, _)| *i == id) {
            *live = live.saturating_sub(1);
        }
        if s.detached || self.write_lease(&s, id, base, |n| n.saturating_sub(1)).is_err() {
            pr_warn!("could not drop a lease on the image at {:#x}\n", base);
        }
    }

    /// Detaches: EBUSY while a checkpoint runs or clones live; marks this
    /// host's slot detached. The mapping goes when the last reference does.
    pub(crate) fn detach(&self) -> Result {
        let mut s = self.state.lock();
        if s.ckpt_active != 0 || s.clones != 0 {
            return Err(EBUSY);
        }
        s.detached = true;
        s.slot.state = uapi::SLOT_DETACHED;
        if self.write_slot(&mut s).is_err() {
            pr_warn!("detach: could not write host slot {}\n", self.host_id);
        }
        pr_info!("detached from pool as host {}\n", self.host_id);
        Ok(())
    }
}
