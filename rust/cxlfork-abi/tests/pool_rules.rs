//! One test per rule of the pool validators: `Superblock::validate` (and
//! the `Layout::new` geometry it requires), `HostSlot::validate` and
//! `DirEntry::validate`. Each breaks exactly one thing of a valid, sealed
//! structure, reseals it (not for the checksum rules), and asserts the exact
//! error; with the rule removed the test fails (`tests/mutants/run.py`).

use cxlfork_abi::dir::{self, data_area, dir_offset, image_id, DirEntry, DirError, DIR_BYTES, DIR_MAGIC};
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::*;
use cxlfork_abi::uapi::{self, MAX_HOSTS, NODENAME_LEN};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 256 * MIB;
const HOSTS: u32 = 8;

fn layout() -> Layout {
    Layout::new(SIZE, HOSTS).unwrap()
}

fn sb() -> Superblock {
    let sb = layout().superblock([7; 16], 42);
    assert_eq!(sb.validate(SIZE), Ok(layout()));
    sb
}

fn sb_broken(f: impl FnOnce(&mut Superblock)) -> Result<Layout, FormatError> {
    let mut s = sb();
    f(&mut s);
    s.checksum = s.compute_checksum();
    s.validate(s.pool_size)
}

/// A superblock whose geometry fields follow the format arithmetic for
/// (pool_size, max_hosts), computed here without `Layout::new`'s bounds.
fn sb_geometry(pool_size: u64, max_hosts: u32) -> Superblock {
    let mut s = sb();
    s.pool_size = pool_size;
    s.max_hosts = max_hosts;
    s.slots_offset = PAGE_SIZE;
    s.slot_stride = PAGE_SIZE;
    s.parts_offset = (PAGE_SIZE + PAGE_SIZE * u64::from(max_hosts)).next_multiple_of(PART_ALIGN);
    s.part_size = pool_size.wrapping_sub(s.parts_offset) / u64::from(max_hosts.max(1)) / PART_ALIGN * PART_ALIGN;
    s.checksum = s.compute_checksum();
    s
}

#[test]
fn sb_geometry_matches_layout() {
    assert_eq!(sb_geometry(SIZE, HOSTS), sb());
    let l = Layout::new(SIZE, MAX_HOSTS as u32).unwrap();
    assert_eq!(sb_geometry(SIZE, MAX_HOSTS as u32).validate(SIZE), Ok(l));
}

#[test]
fn sb_magic() {
    assert_eq!(sb_broken(|s| s.magic[0] = b'X'), Err(FormatError::BadMagic));
}

#[test]
fn sb_version() {
    assert_eq!(sb_broken(|s| s.version = FORMAT_VERSION + 1), Err(FormatError::BadVersion));
}

#[test]
fn sb_checksum() {
    let mut s = sb();
    s.format_time_ns ^= 1;
    assert_eq!(s.validate(SIZE), Err(FormatError::BadChecksum));
}

#[test]
fn sb_pool_size_is_the_attached_one() {
    assert_eq!(sb().validate(2 * SIZE), Err(FormatError::SizeMismatch));
}

#[test]
fn sb_max_hosts_not_zero() {
    let s = sb_geometry(SIZE, 0);
    assert_eq!(s.validate(SIZE), Err(FormatError::BadGeometry));
}

#[test]
fn sb_max_hosts_at_most_max() {
    let s = sb_geometry(SIZE, MAX_HOSTS as u32 + 1);
    assert_eq!(s.validate(SIZE), Err(FormatError::BadGeometry));
}

#[test]
fn sb_pool_size_aligned() {
    let size = SIZE + PAGE_SIZE;
    let s = sb_geometry(size, HOSTS);
    assert_eq!(s.validate(size), Err(FormatError::BadGeometry));
}

#[test]
fn sb_pool_holds_the_slots() {
    // A pool smaller than the slot area (0 bytes is 2 MiB aligned).
    let s = sb_geometry(0, HOSTS);
    assert_eq!(s.validate(0), Err(FormatError::BadGeometry));
}

#[test]
fn sb_partition_not_empty() {
    // 4 MiB, 8 hosts: 2 MiB for 8 partitions rounds each down to 0.
    let s = sb_geometry(4 * MIB, HOSTS);
    assert_eq!(s.part_size, 0);
    assert_eq!(s.validate(4 * MIB), Err(FormatError::BadGeometry));
}

#[test]
fn sb_header_size() {
    assert_eq!(sb_broken(|s| s.header_size += 8), Err(FormatError::BadGeometry));
}

#[test]
fn sb_page_size() {
    assert_eq!(sb_broken(|s| s.page_size = 2 * PAGE_SIZE as u32), Err(FormatError::BadGeometry));
}

#[test]
fn sb_slots_offset() {
    assert_eq!(sb_broken(|s| s.slots_offset += PAGE_SIZE), Err(FormatError::BadGeometry));
}

#[test]
fn sb_slot_stride() {
    assert_eq!(sb_broken(|s| s.slot_stride *= 2), Err(FormatError::BadGeometry));
}

#[test]
fn sb_parts_offset() {
    assert_eq!(sb_broken(|s| s.parts_offset += PART_ALIGN), Err(FormatError::BadGeometry));
}

#[test]
fn sb_part_size() {
    assert_eq!(sb_broken(|s| s.part_size -= PART_ALIGN), Err(FormatError::BadGeometry));
}

#[test]
fn sb_reserved_zero() {
    assert_eq!(sb_broken(|s| s.reserved = 1), Err(FormatError::BadGeometry));
}

// ---------------------------------------------------------------------------
// HostSlot::validate

const ID: u32 = 3;

fn slot() -> HostSlot {
    let s = HostSlot::zeroed().validate(ID, &layout()).unwrap().claim(0xabc, 5, b"guest-a");
    let v = s.validate(ID, &layout()).unwrap();
    assert_eq!(v.info.state, uapi::SLOT_ATTACHED);
    s
}

fn slot_broken(f: impl FnOnce(&mut HostSlot)) -> Result<SlotView, FormatError> {
    let mut s = slot();
    f(&mut s);
    s.seal();
    s.validate(ID, &layout())
}

#[test]
fn slot_zero_magic_is_free() {
    // Never claimed: free, whatever else the page holds.
    let mut s = HostSlot::zeroed();
    s.generation = 9;
    s.part_used = u64::MAX;
    assert_eq!(s.validate(ID, &layout()), Ok(SlotView::free(ID)));
}

#[test]
fn slot_magic() {
    assert_eq!(slot_broken(|s| s.magic[7] = b'X'), Err(FormatError::BadMagic));
}

#[test]
fn slot_checksum() {
    let mut s = slot();
    s.next_seq += 1;
    assert_eq!(s.validate(ID, &layout()), Err(FormatError::BadChecksum));
}

#[test]
fn slot_host_id() {
    assert_eq!(slot_broken(|s| s.host_id = ID + 1), Err(FormatError::BadGeometry));
}

#[test]
fn slot_state() {
    assert!(slot_broken(|s| s.state = uapi::SLOT_DETACHED).is_ok());
    for st in [uapi::SLOT_FREE, uapi::SLOT_INVALID, 99] {
        assert_eq!(slot_broken(|s| s.state = st), Err(FormatError::BadGeometry), "state {st}");
    }
}

#[test]
fn slot_part_used_within_partition() {
    let part = layout().part_size;
    assert!(slot_broken(|s| s.part_used = part).is_ok());
    assert_eq!(slot_broken(|s| s.part_used = part + PAGE_SIZE), Err(FormatError::BadGeometry));
}

#[test]
fn slot_reserved_zero() {
    assert_eq!(slot_broken(|s| s.reserved = 1), Err(FormatError::BadGeometry));
}

#[test]
fn slot_nodename_terminated() {
    let v = slot_broken(|s| s.nodename = [b'a'; NODENAME_LEN]).unwrap();
    assert_eq!(v.info.nodename[NODENAME_LEN - 1], 0);
    assert_eq!(uapi::cstr_field(&v.info.nodename).len(), NODENAME_LEN - 1);
}

// ---------------------------------------------------------------------------
// DirEntry::validate

const HOST: u32 = 2;

fn entry() -> DirEntry {
    let (start, _) = data_area(&layout(), HOST);
    let e = DirEntry::new(dir::state::PUBLISHED, image_id(HOST, 7), start + 4 * PAGE_SIZE, 8 * PAGE_SIZE, 1, 0, 0);
    assert_eq!(e.validate(HOST, &layout()), Ok(Some(e)));
    e
}

fn entry_broken(f: impl FnOnce(&mut DirEntry)) -> Result<Option<DirEntry>, DirError> {
    let mut e = entry();
    f(&mut e);
    e.checksum = e.compute_crc();
    e.validate(HOST, &layout())
}

#[test]
fn dir_zero_magic_is_free() {
    let mut e = DirEntry::zeroed();
    e.length = 3;
    assert_eq!(e.validate(HOST, &layout()), Ok(None));
}

#[test]
fn dir_magic() {
    assert_eq!(entry_broken(|e| e.magic = DIR_MAGIC ^ 1), Err(DirError::BadChecksum));
}

#[test]
fn dir_checksum() {
    let mut e = entry();
    e.created_ns += 1;
    assert_eq!(e.validate(HOST, &layout()), Err(DirError::BadChecksum));
}

#[test]
fn dir_state() {
    assert!(entry_broken(|e| e.state = dir::state::RESERVED).is_ok());
    for st in [0, 99] {
        assert_eq!(entry_broken(|e| e.state = st), Err(DirError::BadEntry), "state {st}");
    }
}

#[test]
fn dir_id_of_this_host() {
    assert_eq!(entry_broken(|e| e.id = image_id(HOST + 1, 7)), Err(DirError::BadEntry));
}

#[test]
fn dir_extent_after_the_directory() {
    // Inside this host's own directory.
    let part = dir_offset(&layout(), HOST);
    assert_eq!(entry_broken(|e| e.offset = part + DIR_BYTES - PAGE_SIZE), Err(DirError::BadEntry));
}

#[test]
fn dir_offset_aligned() {
    assert_eq!(entry_broken(|e| e.offset += 512), Err(DirError::BadEntry));
}

#[test]
fn dir_length_not_zero() {
    assert_eq!(entry_broken(|e| e.length = 0), Err(DirError::BadEntry));
}

#[test]
fn dir_length_holds_header_and_lease_page() {
    assert_eq!(entry_broken(|e| e.length = PAGE_SIZE), Err(DirError::BadEntry));
    assert!(entry_broken(|e| e.length = 2 * PAGE_SIZE).is_ok());
}

#[test]
fn dir_length_aligned() {
    assert_eq!(entry_broken(|e| e.length += 512), Err(DirError::BadEntry));
}

#[test]
fn dir_extent_end_overflow() {
    assert_eq!(entry_broken(|e| e.length = !(PAGE_SIZE - 1)), Err(DirError::BadEntry));
}

#[test]
fn dir_extent_inside_the_partition() {
    let (_, end) = data_area(&layout(), HOST);
    assert!(entry_broken(|e| e.length = end - e.offset).is_ok());
    assert_eq!(entry_broken(|e| e.length = end - e.offset + PAGE_SIZE), Err(DirError::BadEntry));
}

#[test]
fn dir_reserved_zero() {
    assert_eq!(entry_broken(|e| e.reserved[11] = 1), Err(DirError::BadEntry));
}
