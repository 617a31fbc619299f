//! The pool's on-device format: superblock, host slots and partitions.
//!
//! ```text
//! 0            4 KiB        4 KiB * (1 + max_hosts)   parts_offset (2 MiB aligned)
//! | superblock | slot 0 | slot 1 | ... |  (unused)  | partition 0 | partition 1 | ...
//! ```
//!
//! Single writer per cache line across hosts (there are no cross-host atomics):
//! the superblock is written once, at format; slot `i` and partition `i` are
//! written only by the host attached as `i`. Each structure carries a CRC-32C
//! over its bytes up to its `checksum` field. All offsets are pool-relative.

use super::crc::crc32c;
use super::pod::{pod_struct, Pod};
use super::uapi::{self, MAX_HOSTS, NODENAME_LEN};

/// The pool's page size.
pub const PAGE_SIZE: u64 = 4096;
/// Partition alignment (one leaf page table's reach).
pub const PART_ALIGN: u64 = 2 << 20;
/// On-pool format version.
pub const FORMAT_VERSION: u32 = 1;
/// `Superblock::magic`.
pub const SB_MAGIC: [u8; 8] = *b"CXLFORK\0";
/// `HostSlot::magic`.
pub const SLOT_MAGIC: [u8; 8] = *b"CXLFSLOT";

pod_struct! {
    /// The superblock at pool offset 0, written once at format.
    pub struct Superblock {
        /// `SB_MAGIC`.
        pub magic: [u8; 8],
        /// `FORMAT_VERSION`.
        pub version: u32,
        /// `Superblock::SIZE` when written.
        pub header_size: u32,
        /// Random, set at format.
        pub uuid: [u8; 16],
        /// Bytes of the whole pool.
        pub pool_size: u64,
        /// Host slots (and partitions).
        pub max_hosts: u32,
        /// `PAGE_SIZE`.
        pub page_size: u32,
        /// Offset of slot 0.
        pub slots_offset: u64,
        /// Bytes between two slots.
        pub slot_stride: u64,
        /// Offset of partition 0.
        pub parts_offset: u64,
        /// Bytes of each partition.
        pub part_size: u64,
        /// `CLOCK_REALTIME` at format, in ns.
        pub format_time_ns: u64,
        /// CRC-32C of the bytes before this field.
        pub checksum: u32,
        /// Zero.
        pub reserved: u32,
    }
}

pod_struct! {
    /// A host slot: one 4 KiB page per host, written only by that host.
    pub struct HostSlot {
        /// `SLOT_MAGIC` once claimed; zero while free.
        pub magic: [u8; 8],
        /// The slot's number.
        pub host_id: u32,
        /// `uapi::SLOT_*`.
        pub state: u32,
        /// Attaches since format.
        pub generation: u64,
        /// Random per attach: tells this attach from an earlier one.
        pub instance: u64,
        /// `CLOCK_REALTIME` of the last attach, in ns.
        pub attach_time_ns: u64,
        /// Bytes allocated in this host's partition.
        pub part_used: u64,
        /// Sequence number of this host's next image id.
        pub next_seq: u64,
        /// The owner's node name, NUL-terminated.
        pub nodename: [u8; NODENAME_LEN],
        /// CRC-32C of the bytes before this field.
        pub checksum: u32,
        /// Zero.
        pub reserved: u32,
    }
}

/// Why on-pool metadata was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Wrong magic: not a cxlfork pool (or never formatted).
    BadMagic,
    /// A format version this code does not know.
    BadVersion,
    /// The checksum does not match the contents.
    BadChecksum,
    /// The superblock describes a pool of another size than the one attached.
    SizeMismatch,
    /// A field is out of range or inconsistent with the others.
    BadGeometry,
}

impl FormatError {
    /// A short human-readable reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMagic => "bad magic (not a formatted cxlfork pool)",
            Self::BadVersion => "unsupported format version",
            Self::BadChecksum => "checksum mismatch",
            Self::SizeMismatch => "superblock describes a pool of another size",
            Self::BadGeometry => "inconsistent geometry",
        }
    }
}

/// Where everything is in a pool of a given size: a pure function of
/// (pool size, host count), so format and validation agree by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes of the whole pool.
    pub pool_size: u64,
    /// Host slots and partitions.
    pub max_hosts: u32,
    /// Offset of slot 0.
    pub slots_offset: u64,
    /// Bytes between two slots.
    pub slot_stride: u64,
    /// Offset of partition 0.
    pub parts_offset: u64,
    /// Bytes of each partition.
    pub part_size: u64,
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl Layout {
    /// The layout of a pool of `pool_size` bytes with `max_hosts` slots, or
    /// `None` if the pool is too small to give each host one 2 MiB partition,
    /// `pool_size` is not 2 MiB aligned, or `max_hosts` is not in `1..=MAX_HOSTS`.
    pub fn new(pool_size: u64, max_hosts: u32) -> Option<Self> {
        if max_hosts == 0 || max_hosts as usize > MAX_HOSTS || !pool_size.is_multiple_of(PART_ALIGN) {
            return None;
        }
        let slots_offset = PAGE_SIZE;
        let slot_stride = PAGE_SIZE;
        let parts_offset = align_up(slots_offset + slot_stride * u64::from(max_hosts), PART_ALIGN);
        let part_size = pool_size.checked_sub(parts_offset)? / u64::from(max_hosts) / PART_ALIGN * PART_ALIGN;
        if part_size == 0 {
            return None;
        }
        Some(Self { pool_size, max_hosts, slots_offset, slot_stride, parts_offset, part_size })
    }

    /// Pool offset of host `id`'s slot.
    pub fn slot_offset(&self, id: u32) -> u64 {
        self.slots_offset + self.slot_stride * u64::from(id)
    }

    /// Pool offset of host `id`'s partition.
    pub fn part_offset(&self, id: u32) -> u64 {
        self.parts_offset + self.part_size * u64::from(id)
    }

    /// A new superblock describing this layout.
    pub fn superblock(&self, uuid: [u8; 16], format_time_ns: u64) -> Superblock {
        let mut sb = Superblock {
            magic: SB_MAGIC,
            version: FORMAT_VERSION,
            header_size: Superblock::SIZE as u32,
            uuid,
            pool_size: self.pool_size,
            max_hosts: self.max_hosts,
            page_size: PAGE_SIZE as u32,
            slots_offset: self.slots_offset,
            slot_stride: self.slot_stride,
            parts_offset: self.parts_offset,
            part_size: self.part_size,
            format_time_ns,
            checksum: 0,
            reserved: 0,
        };
        sb.checksum = sb.compute_checksum();
        sb
    }
}

impl Superblock {
    /// CRC-32C of the bytes before `checksum`.
    pub fn compute_checksum(&self) -> u32 {
        crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, checksum)])
    }

    /// Checks everything an attach trusts, for a pool of `pool_size` bytes,
    /// and returns the layout it describes.
    pub fn validate(&self, pool_size: u64) -> Result<Layout, FormatError> {
        if self.magic != SB_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if self.version != FORMAT_VERSION {
            return Err(FormatError::BadVersion);
        }
        if self.checksum != self.compute_checksum() {
            return Err(FormatError::BadChecksum);
        }
        if self.pool_size != pool_size {
            return Err(FormatError::SizeMismatch);
        }
        // The geometry must be exactly what format computes for this size:
        // nothing a corrupt superblock says can point outside the pool.
        let layout = Layout::new(self.pool_size, self.max_hosts).ok_or(FormatError::BadGeometry)?;
        let ok = self.header_size as usize == Superblock::SIZE
            && u64::from(self.page_size) == PAGE_SIZE
            && self.slots_offset == layout.slots_offset
            && self.slot_stride == layout.slot_stride
            && self.parts_offset == layout.parts_offset
            && self.part_size == layout.part_size
            && self.reserved == 0;
        if ok {
            Ok(layout)
        } else {
            Err(FormatError::BadGeometry)
        }
    }
}

impl HostSlot {
    /// CRC-32C of the bytes before `checksum`.
    pub fn compute_checksum(&self) -> u32 {
        crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, checksum)])
    }

    /// Seals the slot: sets its checksum.
    pub fn seal(&mut self) {
        self.checksum = self.compute_checksum();
    }

    /// Decodes slot `id` of a pool with `layout`: a slot never written (all
    /// zero magic) is free; anything else must be a valid, sealed slot for `id`
    /// whose usage fits its partition.
    pub fn validate(&self, id: u32, layout: &Layout) -> Result<SlotView, FormatError> {
        if self.magic == [0; 8] {
            return Ok(SlotView::free(id));
        }
        if self.magic != SLOT_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if self.checksum != self.compute_checksum() {
            return Err(FormatError::BadChecksum);
        }
        let state_ok = matches!(self.state, uapi::SLOT_ATTACHED | uapi::SLOT_DETACHED);
        if self.host_id != id || !state_ok || self.part_used > layout.part_size || self.reserved != 0 {
            return Err(FormatError::BadGeometry);
        }
        let mut nodename = self.nodename;
        nodename[NODENAME_LEN - 1] = 0;
        Ok(SlotView {
            info: uapi::HostInfo {
                state: self.state,
                host_id: id,
                generation: self.generation,
                attach_time_ns: self.attach_time_ns,
                part_used: self.part_used,
                nodename,
            },
            instance: self.instance,
            next_seq: self.next_seq,
        })
    }
}

/// A validated host slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// What the ABI reports of it.
    pub info: uapi::HostInfo,
    /// The attach instance that wrote it.
    pub instance: u64,
    /// Sequence number of the host's next image id.
    pub next_seq: u64,
}

impl SlotView {
    /// A slot never claimed since format.
    pub fn free(id: u32) -> Self {
        let mut info = uapi::HostInfo::zeroed();
        info.state = uapi::SLOT_FREE;
        info.host_id = id;
        Self { info, instance: 0, next_seq: 1 }
    }

    /// The slot as written by a new attach of `id` over this one.
    pub fn claim(&self, instance: u64, attach_time_ns: u64, nodename: &[u8]) -> HostSlot {
        let mut slot = HostSlot::zeroed();
        slot.magic = SLOT_MAGIC;
        slot.host_id = self.info.host_id;
        slot.state = uapi::SLOT_ATTACHED;
        slot.generation = self.info.generation.wrapping_add(1);
        slot.instance = instance;
        slot.attach_time_ns = attach_time_ns;
        slot.part_used = self.info.part_used;
        slot.next_seq = self.next_seq;
        let n = nodename.len().min(NODENAME_LEN - 1);
        slot.nodename[..n].copy_from_slice(&nodename[..n]);
        slot.seal();
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn layout_partitions_fit_and_align() {
        for &(size, hosts) in &[(256 * MIB, 8), (1024 * MIB, 16), (36 * MIB, 16), (4 * MIB, 1)] {
            let l = Layout::new(size, hosts).unwrap();
            assert_eq!(l.parts_offset % PART_ALIGN, 0);
            assert_eq!(l.part_size % PART_ALIGN, 0);
            assert!(l.slot_offset(hosts - 1) + PAGE_SIZE <= l.parts_offset);
            assert!(l.part_offset(hosts - 1) + l.part_size <= size);
        }
        assert_eq!(Layout::new(256 * MIB, 8).unwrap().part_size, 30 * MIB);
    }

    #[test]
    fn layout_refuses_bad_input() {
        assert!(Layout::new(256 * MIB, 0).is_none());
        assert!(Layout::new(256 * MIB, MAX_HOSTS as u32 + 1).is_none());
        assert!(Layout::new(256 * MIB + 4096, 8).is_none());
        assert!(Layout::new(2 * MIB, 1).is_none());
        assert!(Layout::new(32 * MIB, 16).is_none());
    }

    #[test]
    fn superblock_round_trip_and_corruption() {
        let l = Layout::new(256 * MIB, 8).unwrap();
        let sb = l.superblock([7; 16], 42);
        let back = Superblock::read_from(sb.as_bytes()).unwrap();
        assert_eq!(back.validate(256 * MIB), Ok(l));
        assert_eq!(back.validate(512 * MIB), Err(FormatError::SizeMismatch));
        // Every single-bit flip is caught.
        for bit in 0..Superblock::SIZE * 8 {
            let mut bytes = [0u8; Superblock::SIZE];
            bytes.copy_from_slice(sb.as_bytes());
            bytes[bit / 8] ^= 1 << (bit % 8);
            let bad = Superblock::read_from(&bytes).unwrap();
            assert!(bad.validate(256 * MIB).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn resealed_bad_geometry_is_refused() {
        let l = Layout::new(256 * MIB, 8).unwrap();
        let mut sb = l.superblock([1; 16], 0);
        sb.part_size *= 2;
        sb.checksum = sb.compute_checksum();
        assert_eq!(sb.validate(256 * MIB), Err(FormatError::BadGeometry));
        let mut sb = l.superblock([1; 16], 0);
        sb.max_hosts = 99;
        sb.checksum = sb.compute_checksum();
        assert_eq!(sb.validate(256 * MIB), Err(FormatError::BadGeometry));
    }

    #[test]
    fn slot_claim_validate() {
        let l = Layout::new(256 * MIB, 8).unwrap();
        let free = HostSlot::zeroed().validate(3, &l).unwrap();
        assert_eq!(free.info.state, uapi::SLOT_FREE);
        let claimed = free.claim(0xabc, 5, b"guest-a");
        let v = claimed.validate(3, &l).unwrap();
        assert_eq!(v.info.state, uapi::SLOT_ATTACHED);
        assert_eq!(v.info.generation, 1);
        assert_eq!(v.instance, 0xabc);
        assert_eq!(uapi::cstr_field(&v.info.nodename), b"guest-a");
        // Slot written for another id, or corrupted, is refused.
        assert_eq!(claimed.validate(4, &l), Err(FormatError::BadGeometry));
        let mut bad = claimed;
        bad.generation ^= 1;
        assert_eq!(bad.validate(3, &l), Err(FormatError::BadChecksum));
    }
}
