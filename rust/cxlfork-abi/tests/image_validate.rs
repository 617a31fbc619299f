//! The image validator against images built like the module builds them,
//! and against random mutations of them (resealed or not): it must never
//! panic, must refuse every unsealed change to checksummed bytes, and any
//! image it accepts must only reference its own tables and data pages.

use cxlfork_abi::image::*;
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::PAGE_SIZE;
use proptest::prelude::*;

const BASE: u64 = 64 << 20; // pool offset of the test image

struct Built {
    bytes: Vec<u8>,
}

/// Builds an image the way the module does: VMAs, a path string table, a
/// file, leaves at `vaddrs` each mapping `per_leaf` pages.
fn build(vaddrs: &[u64], per_leaf: u32) -> Built {
    let vmas: Vec<VmaImage> = vaddrs
        .iter()
        .map(|&v| VmaImage {
            start: v,
            end: v + (2 << 20),
            vm_flags: vm::READ | vm::WRITE,
            pgoff: 0,
            kind: vma_kind::ANON,
            path_off: 0,
            path_len: 0,
            obj: 0,
            pages: u64::from(per_leaf),
            obj_size: 0,
            file_size: 0,
            file_mtime_ns: 0,
        })
        .collect();
    let strings = b"/bin/true\0".to_vec();
    let n_data = vaddrs.len() as u64 * u64::from(per_leaf);
    let n_upper = upper_table_count(vaddrs);
    let l = ImageLayout::new(vmas.len() as u32, 1, strings.len() as u32, 1, 512, (0, 0), n_upper, vaddrs.len() as u32, n_data).unwrap();
    let mut h = ImageHeader::zeroed();
    h.magic = IMG_MAGIC;
    h.version = IMG_VERSION;
    h.header_size = ImageHeader::SIZE as u32;
    h.id = 42;
    h.base = BASE;
    h.n_vmas = vmas.len() as u32;
    h.n_files = 1;
    h.strings_len = strings.len() as u32;
    h.fpu_len = 512;
    h.n_tasks = 1;
    h.n_upper = n_upper;
    h.n_leaves = vaddrs.len() as u32;
    h.n_data = n_data;
    place(&mut h, &l);
    let mut img = vec![0u8; l.size as usize];
    let mut meta = vec![0u8; (l.leaves_off - META_OFF) as usize];
    for (i, v) in vmas.iter().enumerate() {
        put(&mut meta, l.vmas_off + (i * VmaImage::SIZE) as u64, v).unwrap();
    }
    let f = FileImage { fd: 3, kind: file_kind::REG, flags: 0, cloexec: 0, pos: 7, mode: 0o100644, path_off: 0, path_len: 9, obj: 0, ..FileImage::zeroed() };
    put(&mut meta, l.files_off, &f).unwrap();
    meta[(l.strings_off - META_OFF) as usize..][..strings.len()].copy_from_slice(&strings);
    let mut proc_ = ProcImage::zeroed();
    proc_.pkey_map = 1;
    proc_.exec_only_pkey = u32::MAX;
    put(&mut meta, l.proc_off, &proc_).unwrap();
    let mut task = TaskImage::zeroed();
    task.fpu_off = l.fpu_off;
    task.fpu_len = 512;
    task.regs.origin = REGS_SELF;
    task.tid = 1;
    put(&mut meta, l.tasks_off, &task).unwrap();
    let first_frame = (BASE + l.data_off) / PAGE_SIZE;
    let mut d = 0u64;
    for (k, &v) in vaddrs.iter().enumerate() {
        let mut leaf = [0u64; PT_ENTRIES];
        for e in leaf.iter_mut().take(per_leaf as usize) {
            *e = pte::with_frame(pte::PRESENT | pte::USER | pte::ACCESSED | pte::NX, first_frame + d);
            let page = (l.data_off + d * PAGE_SIZE) as usize;
            img[page..page + 8].copy_from_slice(&d.to_le_bytes());
            d += 1;
        }
        let lb = leaf.as_bytes();
        img[(l.leaves_off + k as u64 * PAGE_SIZE) as usize..][..PAGE_SIZE as usize].copy_from_slice(lb);
        let li = LeafIndex { vaddr: v, crc: cxlfork_abi::crc::crc32c(lb), mapped: per_leaf };
        put(&mut meta, l.leaf_index_off + (k * LeafIndex::SIZE) as u64, &li).unwrap();
    }
    for t in 0..n_upper {
        let mut tab = [0u64; PT_ENTRIES];
        fill_upper_table(t, vaddrs, &h, &mut tab);
        put(&mut meta, l.upper_off + u64::from(t) * PAGE_SIZE, &tab).unwrap();
    }
    seal(&mut h, &meta);
    img[..ImageHeader::SIZE].copy_from_slice(h.as_bytes());
    img[META_OFF as usize..l.leaves_off as usize].copy_from_slice(&meta);
    Built { bytes: img }
}

/// Everything a reader does, returning the frames referenced on success.
fn validate(img: &[u8]) -> Result<Vec<u64>, ImageError> {
    let h = ImageHeader::read_from(img).ok_or(ImageError::Layout)?;
    h.validate(BASE, img.len() as u64)?;
    let meta = &img[META_OFF as usize..h.leaves_off as usize];
    let m = Meta::validate(&h, meta)?;
    let mut frames = Vec::new();
    for k in 0..h.n_leaves {
        let off = (h.leaves_off + u64::from(k) * PAGE_SIZE) as usize;
        let mut leaf = [0u64; PT_ENTRIES];
        m.validate_leaf(k, &img[off..off + PAGE_SIZE as usize], &mut leaf)?;
        frames.extend(leaf.iter().filter(|&&e| pte::maps_frame(e)).map(|&e| pte::frame(e)));
    }
    Ok(frames)
}

fn sample() -> Vec<u64> {
    vec![0x40_0000, 0x60_0000, 0x4000_0000, 0x7f00_0000_0000, 0x7ffd_f000_0000 & !0x1f_ffff]
}

#[test]
fn built_image_validates() {
    let img = build(&sample(), 3);
    let frames = validate(&img.bytes).unwrap();
    assert_eq!(frames.len(), 15);
    let h = ImageHeader::read_from(&img.bytes).unwrap();
    assert_eq!(h.n_upper, upper_table_count(&sample()));
    // root + 3 PUD tables (PGD 0, 254, 255) + PMD tables for 4 distinct GiB ranges.
    assert_eq!(h.n_upper, 1 + 3 + 4);
    let m = Meta::validate(&h, &img.bytes[META_OFF as usize..h.leaves_off as usize]).unwrap();
    assert_eq!(m.vma_at(0x40_1000).unwrap().unwrap().start, 0x40_0000);
    assert!(m.vma_at(0x20_0000).unwrap().is_none());
    assert_eq!(m.file_path(&m.file(0).unwrap()).unwrap(), b"/bin/true");
}

#[test]
fn empty_image_validates() {
    let img = build(&[], 0);
    assert_eq!(validate(&img.bytes).unwrap().len(), 0);
}

#[test]
fn every_unsealed_byte_change_in_checksummed_parts_is_refused() {
    let img = build(&sample(), 2);
    let h = ImageHeader::read_from(&img.bytes).unwrap();
    let checked = (0..ImageHeader::SIZE).chain(META_OFF as usize..(h.leaves_off + u64::from(h.n_leaves) * PAGE_SIZE) as usize);
    for i in checked.step_by(7) {
        let mut b = img.bytes.clone();
        b[i] ^= 0x41;
        assert!(validate(&b).is_err(), "change at byte {i} accepted");
    }
}

#[test]
fn resealed_leaf_pointing_outside_data_is_refused() {
    let img = build(&sample(), 2);
    let mut b = img.bytes.clone();
    let h = ImageHeader::read_from(&b).unwrap();
    // Point leaf 0's first entry at the leaf table itself, then fix its CRC.
    let loff = h.leaves_off as usize;
    let frame = (BASE + h.leaves_off) / PAGE_SIZE;
    b[loff..loff + 8].copy_from_slice(&pte::with_frame(pte::PRESENT, frame).to_le_bytes());
    let crc = cxlfork_abi::crc::crc32c(&b[loff..loff + PAGE_SIZE as usize]);
    let mut meta = b[META_OFF as usize..loff].to_vec();
    let mut li = LeafIndex::read_from(&meta[(h.leaf_index_off - META_OFF) as usize..]).unwrap();
    li.crc = crc;
    put(&mut meta, h.leaf_index_off, &li).unwrap();
    let mut h2 = h;
    seal(&mut h2, &meta);
    b[META_OFF as usize..loff].copy_from_slice(&meta);
    b[..ImageHeader::SIZE].copy_from_slice(h2.as_bytes());
    assert_eq!(validate(&b), Err(ImageError::PageTable));
}

/// Reseals header and metadata after a mutation (what a hostile writer can do).
fn reseal(b: &mut [u8]) {
    let Some(mut h) = ImageHeader::read_from(b) else { return };
    let Some(end) = usize::try_from(h.leaves_off).ok().filter(|&e| e >= META_OFF as usize && e <= b.len()) else { return };
    seal(&mut h, &b[META_OFF as usize..end]);
    b[..ImageHeader::SIZE].copy_from_slice(h.as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_images_never_panic_and_accepted_ones_stay_inside(
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        resealed in any::<bool>(),
        leaf_scope in any::<bool>(),
    ) {
        let img = build(&sample(), 3);
        let h = ImageHeader::read_from(&img.bytes).unwrap();
        // Mutate the header+meta region, or the leaf tables.
        let (lo, hi) = if leaf_scope {
            (h.leaves_off as usize, (h.leaves_off + u64::from(h.n_leaves) * PAGE_SIZE) as usize)
        } else {
            (0, h.leaves_off as usize)
        };
        let mut b = img.bytes.clone();
        for (idx, val) in &muts {
            let i = lo + idx.index(hi - lo);
            b[i] = *val;
        }
        if resealed {
            reseal(&mut b);
        }
        if let Ok(frames) = validate(&b) {
            let h = ImageHeader::read_from(&b).unwrap();
            let first = (BASE + h.data_off) / PAGE_SIZE;
            for f in frames {
                prop_assert!(f >= first && f < first + h.n_data);
            }
            prop_assert!(h.size <= b.len() as u64);
        }
    }
}
