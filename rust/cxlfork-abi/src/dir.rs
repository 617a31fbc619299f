//! Per-host image directories.
//!
//! Each host's partition starts with its directory: `DIR_ENTRIES` entries of
//! one cache line each, written only by that host. An entry is published
//! last, after the image it names is complete and flushed; other hosts read
//! every directory to list the pool's images.

use super::crc::crc32c;
use super::pod::{pod_struct, Pod};
use super::pool::{Layout, PAGE_SIZE};

/// `DirEntry::magic`.
pub const DIR_MAGIC: u32 = 0x4552_4944; // "DIRE"
/// Entries per host directory.
pub const DIR_ENTRIES: u32 = 1024;
/// Bytes of a host directory (page aligned).
pub const DIR_BYTES: u64 = DIR_ENTRIES as u64 * DirEntry::SIZE as u64;

/// Entry states.
pub mod state {
    /// Space being written by a checkpoint in progress (reclaimed at attach).
    pub const RESERVED: u32 = 1;
    /// A complete, immutable image.
    pub const PUBLISHED: u32 = 2;
    /// Being deleted: invisible, no new lease; the owner checks the leases
    /// and then frees it or makes it PUBLISHED again.
    pub const DELETING: u32 = 3;
}

pod_struct! {
    /// One directory entry (64 bytes: one cache line, one writer).
    pub struct DirEntry {
        /// `DIR_MAGIC` when in use; zero when free.
        pub magic: u32,
        /// `state::*`.
        pub state: u32,
        /// Image id.
        pub id: u64,
        /// Pool offset of the image extent.
        pub offset: u64,
        /// Bytes of the extent.
        pub length: u64,
        /// `CLOCK_REALTIME` at publication, ns.
        pub created_ns: u64,
        /// Owner uid.
        pub uid: u32,
        /// Owner gid.
        pub gid: u32,
        /// Zero.
        pub reserved: [u8; 12],
        /// CRC-32C of the bytes before this field.
        pub checksum: u32,
    }
}

/// Bits of an image id that hold the per-host sequence number.
pub const ID_SEQ_BITS: u32 = 48;

/// The id of the `seq`-th image of `host`.
pub const fn image_id(host: u32, seq: u64) -> u64 {
    ((host as u64) << ID_SEQ_BITS) | (seq & ((1 << ID_SEQ_BITS) - 1))
}

/// The host that owns image `id`.
pub const fn id_host(id: u64) -> u32 {
    (id >> ID_SEQ_BITS) as u32
}

/// Where host `host`'s directory and data area are.
pub fn dir_offset(layout: &Layout, host: u32) -> u64 {
    layout.part_offset(host)
}

/// `[start, end)` pool offsets host `host` allocates images from.
pub fn data_area(layout: &Layout, host: u32) -> (u64, u64) {
    let p = layout.part_offset(host);
    (p + DIR_BYTES, p + layout.part_size)
}

/// Why a directory entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirError {
    /// Checksum mismatch (torn or corrupt).
    BadChecksum,
    /// Fields out of range for this host's partition.
    BadEntry,
}

impl DirEntry {
    /// CRC-32C of the bytes before `checksum`.
    pub fn compute_crc(&self) -> u32 {
        crc32c(&self.as_bytes()[..core::mem::offset_of!(Self, checksum)])
    }

    /// A sealed entry.
    pub fn new(state: u32, id: u64, offset: u64, length: u64, created_ns: u64, uid: u32, gid: u32) -> Self {
        let mut e = Self { magic: DIR_MAGIC, state, id, offset, length, created_ns, uid, gid, reserved: [0; 12], checksum: 0 };
        e.checksum = e.compute_crc();
        e
    }

    /// Decodes entry of host `host`'s directory: `None` if free; the entry
    /// if valid (its extent inside the host's data area, its id the host's).
    pub fn validate(&self, host: u32, layout: &Layout) -> Result<Option<Self>, DirError> {
        if self.magic == 0 {
            return Ok(None);
        }
        if self.magic != DIR_MAGIC || self.checksum != self.compute_crc() {
            return Err(DirError::BadChecksum);
        }
        let (start, end) = data_area(layout, host);
        let ok = matches!(self.state, state::RESERVED | state::PUBLISHED | state::DELETING)
            && id_host(self.id) == host
            && self.offset >= start
            && self.offset.is_multiple_of(PAGE_SIZE)
            // At least the header and the lease page: a restore writes its
            // lease line before it reads the header.
            && self.length >= super::image::META_OFF
            && self.length.is_multiple_of(PAGE_SIZE)
            && self.offset.checked_add(self.length).is_some_and(|e| e <= end)
            && self.reserved == [0; 12];
        if ok {
            Ok(Some(*self))
        } else {
            Err(DirError::BadEntry)
        }
    }
}

/// First fit: the lowest offset in `[start, end)` where `len` bytes fit
/// between the `used` extents (`(offset, length)`, any order).
pub fn first_fit(used: &[(u64, u64)], start: u64, end: u64, len: u64) -> Option<u64> {
    let mut at = start;
    loop {
        let fits_until = at.checked_add(len)?;
        if fits_until > end {
            return None;
        }
        // Any extent overlapping [at, at + len)? Jump past the one ending last.
        let mut blocked = None;
        for &(o, l) in used {
            if o < fits_until && at < o + l {
                blocked = Some(blocked.map_or(o + l, |b: u64| b.max(o + l)));
            }
        }
        match blocked {
            None => return Some(at),
            Some(next) => at = next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_finds_gaps() {
        assert_eq!(first_fit(&[], 100, 200, 50), Some(100));
        assert_eq!(first_fit(&[(100, 50)], 100, 200, 50), Some(150));
        assert_eq!(first_fit(&[(150, 10)], 100, 200, 50), Some(100));
        assert_eq!(first_fit(&[(140, 10)], 100, 200, 50), Some(150));
        assert_eq!(first_fit(&[(140, 10)], 100, 199, 50), None);
        assert_eq!(first_fit(&[(100, 100)], 100, 200, 1), None);
        assert_eq!(first_fit(&[(120, 10), (100, 10)], 100, 200, 10), Some(110));
    }

    #[test]
    fn entry_validation() {
        let l = Layout::new(256 << 20, 8).unwrap();
        let (s, e) = data_area(&l, 2);
        let ok = DirEntry::new(state::PUBLISHED, image_id(2, 7), s, 8192, 1, 0, 0);
        assert_eq!(ok.validate(2, &l), Ok(Some(ok)));
        assert_eq!(DirEntry::zeroed().validate(2, &l), Ok(None));
        // Wrong host, out of the area, torn.
        assert_eq!(ok.validate(3, &l), Err(DirError::BadEntry));
        let far = DirEntry::new(state::PUBLISHED, image_id(2, 7), e - 4096, 8192, 1, 0, 0);
        assert_eq!(far.validate(2, &l), Err(DirError::BadEntry));
        let mut torn = ok;
        torn.length = 4096;
        assert_eq!(torn.validate(2, &l), Err(DirError::BadChecksum));
        assert_eq!(id_host(image_id(5, 9)), 5);
    }
}
