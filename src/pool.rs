//! The attached pool: attach (validate, map, find or format the superblock,
//! claim this host's slot), info, detach.
//!
//! Cross-host rules (there are no cross-host atomics): the superblock is
//! written once, by the attach that formats; slot `i` and partition `i` are
//! written only by the host attached as `i`. Everything read from the pool is
//! copied out and validated before use.

use crate::abi::pod::Pod;
use crate::abi::pool::{HostSlot, Layout, SlotView, Superblock};
use crate::abi::uapi::{self, PoolAttach, PoolInfo, MAX_HOSTS};
use crate::kernel_util::{self, RangeKind};
use crate::pool_map::PoolMap;
use kernel::prelude::*;

/// Physical base and size must be aligned to this (one PMD).
const RANGE_ALIGN: u64 = 2 << 20;

/// This host's attachment to a pool.
///
/// # Invariants
///
/// `layout` was validated against (or written to) the superblock of `map`;
/// `host_id < layout.max_hosts`; slot `host_id` in the pool holds `slot`.
pub(crate) struct Pool {
    map: PoolMap,
    layout: Layout,
    uuid: [u8; 16],
    host_id: u32,
    slot: HostSlot,
}

impl Pool {
    /// Attaches to the pool described by `req`. Nothing is left behind on error.
    pub(crate) fn attach(req: &PoolAttach) -> Result<Self> {
        let format = req.flags & uapi::ATTACH_FORMAT != 0;
        let (base, size) = (req.phys_base, req.phys_size);
        let range_ok = size != 0
            && base % RANGE_ALIGN == 0
            && size % RANGE_ALIGN == 0
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
            pr_warn!("attach: [{:#x}, +{:#x}) is System RAM or not inside one device range\n", base, size);
        })?;
        if kind != RangeKind::Cxl {
            pr_info!("attach: [{:#x}, +{:#x}) is device memory outside any CXL window\n", base, size);
        }
        let map = PoolMap::new(base, size)?;

        let (layout, uuid) = if format {
            let hosts = if req.max_hosts == 0 { uapi::DEFAULT_HOSTS } else { req.max_hosts };
            let layout = Layout::new(size, hosts).ok_or(EINVAL)?;
            if req.host_id >= layout.max_hosts {
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
        let slot = view.claim(kernel_util::random_u64(), kernel_util::realtime_ns(), &kernel_util::nodename());
        map.write_pod(off, &slot)?;
        pr_info!(
            "attached pool [{:#x}, +{:#x}) as host {} of {} (generation {})\n",
            base,
            size,
            req.host_id,
            layout.max_hosts,
            slot.generation
        );
        // INVARIANT: `layout` came from the superblock just validated or written;
        // `host_id < max_hosts` was checked; `slot` was just written.
        Ok(Self { map, layout, uuid, host_id: req.host_id, slot })
    }

    /// Writes empty slots, then the superblock last (it makes the pool valid).
    fn format(map: &PoolMap, layout: &Layout, uuid: [u8; 16]) -> Result {
        // Invalidate first, so a crash midway leaves no valid superblock.
        map.zero(0, crate::abi::pool::PAGE_SIZE as usize)?;
        for id in 0..layout.max_hosts {
            map.zero(layout.slot_offset(id), layout.slot_stride as usize)?;
        }
        let sb = layout.superblock(uuid, kernel_util::realtime_ns());
        map.write_pod(0, &sb)?;
        pr_info!("formatted pool: {} bytes, {} host slots of {} bytes\n", layout.pool_size, layout.max_hosts, layout.part_size);
        Ok(())
    }

    /// Reads and validates slot `id` (another host's slots change under us).
    fn slot_view(&self, id: u32) -> SlotView {
        if id == self.host_id {
            // We are this slot's only writer: our copy is authoritative.
            if let Ok(v) = self.slot.validate(id, &self.layout) {
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
    pub(crate) fn info(&self) -> PoolInfo {
        let mut info = PoolInfo::zeroed();
        info.size = PoolInfo::SIZE as u32;
        info.abi_version = uapi::ABI_VERSION;
        info.uuid = self.uuid;
        info.phys_base = self.map.phys();
        info.pool_size = self.map.size();
        info.part_size = self.layout.part_size;
        info.host_id = self.host_id;
        info.max_hosts = self.layout.max_hosts;
        info.format_version = crate::abi::pool::FORMAT_VERSION;
        for id in 0..self.layout.max_hosts {
            let v = self.slot_view(id);
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
        info
    }

    /// Detaches: marks this host's slot detached, then unmaps (on drop).
    pub(crate) fn detach(mut self) {
        self.slot.state = uapi::SLOT_DETACHED;
        self.slot.seal();
        if self.map.write_pod(self.layout.slot_offset(self.host_id), &self.slot).is_err() {
            pr_warn!("detach: could not write host slot {}\n", self.host_id);
        }
        pr_info!("detached from pool as host {}\n", self.host_id);
    }
}
