//! A builder of complete, valid images in the current format (task and
//! process records, shared objects and their page table, per-VMA file
//! identity), laid out and sealed as the module writes them, and the
//! accessors the rule tests use to break exactly one thing and reseal.

#![allow(dead_code, unreachable_pub)]

use cxlfork_abi::crc::crc32c;
use cxlfork_abi::image::*;
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::PAGE_SIZE;

/// Pool offset of the test images.
pub const BASE: u64 = 64 << 20;
/// Leaf blocks of the standard image: two in one PMD table, one in another
/// PUD entry, and the last two in other root entries (254 and 255).
pub const VADDRS: [u64; 5] = [0x40_0000, 0x60_0000, 0x4000_0000, 0x7f00_0000_0000, 0x7ffd_e000_0000];
/// Pages each leaf of the standard image maps.
pub const PER_LEAF: u32 = 3;
/// Upper tables of the standard image: root, 3 PUD tables, 4 PMD tables.
pub const N_UPPER: u32 = 8;
/// Tasks' XSAVE buffer sizes (64-byte multiples, packed).
pub const FPU_LENS: [u32; 2] = [576, 832];

/// What to build.
#[derive(Clone)]
pub struct Spec {
    pub vmas: Vec<VmaImage>,
    pub files: Vec<FileImage>,
    pub strings: Vec<u8>,
    pub proc_: Box<ProcImage>,
    pub tasks: Vec<TaskImage>,
    /// Bytes of the FPU area; tasks' buffers packed from its start.
    pub fpu_len: u32,
    pub fpu_lens: Vec<u32>,
    pub objs: Vec<ObjImage>,
    pub obj_pages: Vec<u64>,
    /// Leaf blocks (sorted, distinct, 2 MiB aligned).
    pub vaddrs: Vec<u64>,
    pub per_leaf: u32,
    /// Unused upper tables appended after the used ones.
    pub extra_upper: u32,
}

/// Offset of `s` in `strings` (which must hold it).
fn str_off(strings: &[u8], s: &[u8]) -> (u32, u32) {
    let at = strings.windows(s.len()).position(|w| w == s).expect("string in table");
    (at as u32, s.len() as u32)
}

pub fn vma(start: u64, end: u64, kind: u32, flags: u64, pages: u64) -> VmaImage {
    VmaImage {
        start,
        end,
        vm_flags: flags,
        pgoff: 0,
        kind,
        path_off: 0,
        path_len: 0,
        obj: 0,
        pages,
        obj_size: 0,
        file_size: 0,
        file_mtime_ns: 0,
    }
}

/// The standard epoll's registrations.
pub const EPOLL_ITEMS: [EpollItem; 2] = [
    EpollItem { tfd: 5, events: 0x1 | 0x8 | 0x10 | (1 << 31), data: 0xdead_beef_0000_0005 },
    EpollItem { tfd: 6, events: 0x1 | 0x8 | 0x10, data: 6 },
];
/// Index of the standard image's first special descriptor (the eventfd at fd 5).
pub const F_EVENTFD: u32 = 2;
/// ... its pipe's read end (holding the bytes), write end, epoll, eventfd dup.
pub const F_PIPE_R: u32 = 3;
pub const F_PIPE_W: u32 = 4;
pub const F_EPOLL: u32 = 5;
pub const F_EVENTFD_DUP: u32 = 6;

/// A descriptor record with every field zero.
pub fn file0() -> FileImage {
    FileImage::zeroed()
}

fn special((path_off, path_len): (u32, u32)) -> FileImage {
    FileImage { path_off, path_len, mode: 0o600, ..file0() }
}

/// The standard image: every record kind present and valid.
pub fn spec() -> Spec {
    let mut strings = b"/bin/true\0/memfd:x (deleted)\0/dev/zero (deleted)\0/root\0/cxlfork/tests/t\0[vdso]\0".to_vec();
    // The special files' state: a pipe's buffered bytes, an epoll's
    // registrations (on the eventfd, edge-triggered, and the pipe's read end).
    strings.extend_from_slice(b"anon_inode:[eventfd]\0pipe:[42]\0anon_inode:[eventpoll]\0");
    let (pipe_off, pipe_len) = (strings.len() as u32, 5u32);
    strings.extend_from_slice(b"hello");
    let ep_off = strings.len() as u32;
    for it in EPOLL_ITEMS {
        strings.extend_from_slice(&it.to_bytes());
    }
    let ep_len = strings.len() as u32 - ep_off;
    let s = |x: &[u8]| str_off(&strings, x);
    let rw = vm::READ | vm::WRITE | vm::MAYWRITE;
    let mut vmas = vec![
        vma(0x40_0000, 0x80_0000, vma_kind::ANON, rw | vm::HUGEPAGE, 6),
        vma(0x4000_0000, 0x4020_0000, vma_kind::FILE_PRIVATE, rw | vm::EXEC, 3),
        vma(0x5000_0000, 0x5000_3000, vma_kind::SHARED_ANON, rw | vm::SHARED, 0),
        vma(0x5000_4000, 0x5000_6000, vma_kind::SHARED_ANON, vm::READ | vm::SHARED, 0),
        vma(0x7f00_0000_0000, 0x7f00_0020_0000, vma_kind::ANON, rw | vm::NORESERVE, 3),
        vma(0x7ffd_e000_0000, 0x7ffd_e020_0000, vma_kind::STACK, rw | vm::GROWSDOWN, 3),
        vma(0x7ffd_ff00_0000, 0x7ffd_ff00_2000, vma_kind::VDSO, vm::READ | vm::EXEC, 0),
    ];
    // File identity of the private file mapping.
    (vmas[1].path_off, vmas[1].path_len) = s(b"/bin/true");
    vmas[1].pgoff = 2;
    vmas[1].file_size = 3 << 20;
    vmas[1].file_mtime_ns = 1_700_000_000_123_456_789;
    vmas[2].obj = 1;
    (vmas[2].path_off, vmas[2].path_len) = s(b"/memfd:x (deleted)");
    vmas[3].obj = 2;
    (vmas[3].path_off, vmas[3].path_len) = s(b"/dev/zero (deleted)");
    (vmas[6].path_off, vmas[6].path_len) = s(b"[vdso]");

    let (p, l) = s(b"/bin/true");
    let (mp, ml) = s(b"/memfd:x (deleted)");
    let files = vec![
        FileImage { fd: 3, kind: file_kind::REG, flags: 0, cloexec: 0, pos: 7, mode: 0o100755, path_off: p, path_len: l, obj: 0, ..file0() },
        FileImage { fd: 4, kind: file_kind::REG, flags: 2, cloexec: 1, pos: 0, mode: 0o100777, path_off: mp, path_len: ml, obj: 1, ..file0() },
        // fd 5: eventfd (object 1, EFD_SEMAPHORE, count 7), dup'd at fd 9.
        FileImage { fd: 5, kind: file_kind::EVENTFD, flags: 2, ident: 1, sub: 1, value: 7, ..special(s(b"anon_inode:[eventfd]")) },
        // fds 6 and 7: a pipe's read and write ends (object 2), 5 bytes buffered.
        FileImage { fd: 6, kind: file_kind::PIPE, ident: 2, value: 65536, data_off: pipe_off, data_len: pipe_len, ..special(s(b"pipe:[42]")) },
        FileImage { fd: 7, kind: file_kind::PIPE, flags: 1, ident: 2, sub: 1, value: 65536, ..special(s(b"pipe:[42]")) },
        // fd 8: epoll (object 3) watching fds 5 and 6.
        FileImage { fd: 8, kind: file_kind::EPOLL, cloexec: 1, ident: 3, data_off: ep_off, data_len: ep_len, ..special(s(b"anon_inode:[eventpoll]")) },
        FileImage { fd: 9, kind: file_kind::EVENTFD, flags: 2, ident: 1, sub: 1, value: 7, ..special(s(b"anon_inode:[eventfd]")) },
    ];

    let mut proc_ = Box::new(ProcImage::zeroed());
    proc_.mm_flags = mmf::THP_DISABLE | mmf::MDWE;
    proc_.proc_flags = procf::NO_NEW_PRIVS;
    proc_.dumpable = 2;
    proc_.umask = 0o022;
    proc_.pkey_map = 1;
    proc_.exec_only_pkey = u32::MAX;
    (proc_.cwd_off, proc_.cwd_len) = s(b"/root");
    (proc_.exe_off, proc_.exe_len) = s(b"/cxlfork/tests/t");

    let mut t0 = TaskImage::zeroed();
    t0.regs.origin = REGS_SELF;
    t0.tid = 100;
    t0.policy = 3; // SCHED_BATCH
    t0.nice = 19;
    t0.rseq_version = 2;
    let mut t1 = TaskImage::zeroed();
    t1.regs.origin = REGS_STOPPED;
    t1.tid = 101;
    t1.policy = 1; // SCHED_FIFO
    t1.rt_priority = 99;
    t1.nice = (-20i32) as u32;

    // Object 1: 3 pages, pages 0 and 2 stored; object 2: 2 pages (4096 +
    // 100 bytes), page 1 stored.
    let objs = vec![
        ObjImage { size: 3 * PAGE_SIZE, first: 0, n_pages: 2, name_off: mp, name_len: ml, flags: 0, reserved: 0 },
        ObjImage { size: PAGE_SIZE + 100, first: 2, n_pages: 1, name_off: 0, name_len: 0, flags: 0, reserved: 0 },
    ];
    Spec {
        vmas,
        files,
        strings,
        proc_,
        tasks: vec![t0, t1],
        fpu_len: FPU_LENS.iter().sum(),
        fpu_lens: FPU_LENS.to_vec(),
        objs,
        obj_pages: vec![0, 2, 1],
        vaddrs: VADDRS.to_vec(),
        per_leaf: PER_LEAF,
        extra_upper: 0,
    }
}

/// A built image and the accessors to break it.
#[derive(Clone)]
pub struct Img {
    pub bytes: Vec<u8>,
}

/// The layout arithmetic of `ImageLayout::new` without its bounds (for
/// headers whose counts break exactly one bound).
pub fn raw_layout(h: &ImageHeader) -> ImageLayout {
    let vmas_off = META_OFF;
    let files_off = vmas_off + VmaImage::SIZE as u64 * u64::from(h.n_vmas);
    let strings_off = files_off + FileImage::SIZE as u64 * u64::from(h.n_files);
    let proc_off = (strings_off + u64::from(h.strings_len)).next_multiple_of(8);
    let tasks_off = proc_off + ProcImage::SIZE as u64;
    let fpu_off = (tasks_off + TaskImage::SIZE as u64 * u64::from(h.n_tasks)).next_multiple_of(64);
    let objs_off = (fpu_off + u64::from(h.fpu_len)).next_multiple_of(8);
    let obj_pages_off = objs_off + ObjImage::SIZE as u64 * u64::from(h.n_objs);
    let leaf_index_off = obj_pages_off + 8 * h.n_obj_pages;
    let upper_off = (leaf_index_off + LeafIndex::SIZE as u64 * u64::from(h.n_leaves)).next_multiple_of(PAGE_SIZE);
    let leaves_off = upper_off + PAGE_SIZE * u64::from(h.n_upper);
    let data_off = leaves_off + PAGE_SIZE * u64::from(h.n_leaves);
    let size = data_off + PAGE_SIZE * h.n_data;
    ImageLayout {
        vmas_off,
        files_off,
        strings_off,
        proc_off,
        tasks_off,
        fpu_off,
        objs_off,
        obj_pages_off,
        leaf_index_off,
        upper_off,
        leaves_off,
        data_off,
        size,
    }
}

pub fn build(s: &Spec) -> Img {
    let n_leaf_pages = s.vaddrs.len() as u64 * u64::from(s.per_leaf);
    let n_obj_pages = s.obj_pages.len() as u64;
    let n_data = n_leaf_pages + n_obj_pages;
    let n_upper = upper_table_count(&s.vaddrs) + s.extra_upper;
    let l = ImageLayout::new(
        s.vmas.len() as u32,
        s.files.len() as u32,
        s.strings.len() as u32,
        s.tasks.len() as u32,
        s.fpu_len,
        (s.objs.len() as u32, n_obj_pages),
        n_upper,
        s.vaddrs.len() as u32,
        n_data,
    )
    .expect("layout");
    let mut h = ImageHeader::zeroed();
    h.magic = IMG_MAGIC;
    h.version = IMG_VERSION;
    h.header_size = ImageHeader::SIZE as u32;
    h.id = 0x0001_0000_0000_002a;
    h.base = BASE;
    h.owner_host = 1;
    h.pid = 100;
    h.comm[..4].copy_from_slice(b"test");
    h.n_vmas = s.vmas.len() as u32;
    h.n_files = s.files.len() as u32;
    h.strings_len = s.strings.len() as u32;
    h.fpu_len = s.fpu_len;
    h.n_tasks = s.tasks.len() as u32;
    h.n_objs = s.objs.len() as u32;
    h.n_obj_pages = n_obj_pages;
    h.n_upper = n_upper;
    h.n_leaves = s.vaddrs.len() as u32;
    h.n_data = n_data;
    h.anon_pages = n_leaf_pages;
    place(&mut h, &l);
    assert_eq!(raw_layout(&h), l, "raw_layout must be ImageLayout::new's arithmetic");

    let mut img = vec![0u8; l.size as usize];
    let mut meta = vec![0u8; (l.leaves_off - META_OFF) as usize];
    for (i, v) in s.vmas.iter().enumerate() {
        put(&mut meta, l.vmas_off + (i * VmaImage::SIZE) as u64, v).unwrap();
    }
    for (i, f) in s.files.iter().enumerate() {
        put(&mut meta, l.files_off + (i * FileImage::SIZE) as u64, f).unwrap();
    }
    meta[(l.strings_off - META_OFF) as usize..][..s.strings.len()].copy_from_slice(&s.strings);
    put(&mut meta, l.proc_off, &*s.proc_).unwrap();
    let mut at = l.fpu_off;
    for (i, t) in s.tasks.iter().enumerate() {
        let mut t = *t;
        t.fpu_off = at;
        t.fpu_len = s.fpu_lens[i];
        at += u64::from(t.fpu_len);
        put(&mut meta, l.tasks_off + (i * TaskImage::SIZE) as u64, &t).unwrap();
        // Something recognisable in each buffer.
        let b = (t.fpu_off - META_OFF) as usize;
        meta[b..b + 8].copy_from_slice(&(i as u64 + 0xf0).to_le_bytes());
    }
    for (i, o) in s.objs.iter().enumerate() {
        put(&mut meta, l.objs_off + (i * ObjImage::SIZE) as u64, o).unwrap();
    }
    for (i, p) in s.obj_pages.iter().enumerate() {
        put(&mut meta, l.obj_pages_off + 8 * i as u64, p).unwrap();
    }
    let first_frame = (BASE + l.data_off) / PAGE_SIZE;
    let mut d = 0u64;
    for (k, &v) in s.vaddrs.iter().enumerate() {
        let mut leaf = [0u64; PT_ENTRIES];
        for (j, e) in leaf.iter_mut().take(s.per_leaf as usize).enumerate() {
            let flags = if j % 2 == 0 { pte::PRESENT | pte::USER | pte::ACCESSED | pte::DIRTY | pte::RW } else { pte::PROTNONE | pte::NX };
            *e = pte::with_frame(flags, first_frame + d);
            let page = (l.data_off + d * PAGE_SIZE) as usize;
            img[page..page + 8].copy_from_slice(&d.to_le_bytes());
            d += 1;
        }
        let lb = leaf.as_bytes();
        img[(l.leaves_off + k as u64 * PAGE_SIZE) as usize..][..PAGE_SIZE as usize].copy_from_slice(lb);
        let li = LeafIndex { vaddr: v, crc: crc32c(lb), mapped: s.per_leaf };
        put(&mut meta, l.leaf_index_off + (k * LeafIndex::SIZE) as u64, &li).unwrap();
    }
    for t in 0..n_upper - s.extra_upper.min(n_upper) {
        let mut tab = [0u64; PT_ENTRIES];
        fill_upper_table(t, &s.vaddrs, &h, &mut tab);
        put(&mut meta, l.upper_off + u64::from(t) * PAGE_SIZE, &tab).unwrap();
    }
    seal(&mut h, &meta);
    img[..ImageHeader::SIZE].copy_from_slice(h.as_bytes());
    img[META_OFF as usize..l.leaves_off as usize].copy_from_slice(&meta);
    Img { bytes: img }
}

/// The standard image, checked valid at every stage.
pub fn valid() -> Img {
    let img = build(&spec());
    img.check_valid();
    img
}

impl Img {
    pub fn h(&self) -> ImageHeader {
        ImageHeader::read_from(&self.bytes).unwrap()
    }

    /// Changes header fields (unsealed: call `reseal_header` or `reseal`).
    pub fn edit_h(&mut self, f: impl FnOnce(&mut ImageHeader)) {
        let mut h = self.h();
        f(&mut h);
        self.bytes[..ImageHeader::SIZE].copy_from_slice(h.as_bytes());
    }

    pub fn reseal_header(&mut self) {
        self.edit_h(|h| h.header_crc = h.compute_crc());
    }

    /// Reads a record at image offset `off`.
    pub fn get<T: Pod>(&self, off: u64) -> T {
        T::read_from(&self.bytes[off as usize..]).unwrap()
    }

    /// Changes the record at image offset `off` (unsealed).
    pub fn edit<T: Pod>(&mut self, off: u64, f: impl FnOnce(&mut T)) {
        let mut v: T = self.get(off);
        f(&mut v);
        let b = v.as_bytes();
        self.bytes[off as usize..off as usize + b.len()].copy_from_slice(b);
    }

    pub fn vma_off(&self, i: u32) -> u64 {
        self.h().vmas_off + u64::from(i) * VmaImage::SIZE as u64
    }
    pub fn file_off(&self, i: u32) -> u64 {
        self.h().files_off + u64::from(i) * FileImage::SIZE as u64
    }
    pub fn task_off(&self, i: u32) -> u64 {
        self.h().tasks_off + u64::from(i) * TaskImage::SIZE as u64
    }
    pub fn obj_off(&self, i: u32) -> u64 {
        self.h().objs_off + u64::from(i) * ObjImage::SIZE as u64
    }
    pub fn obj_page_off(&self, i: u64) -> u64 {
        self.h().obj_pages_off + 8 * i
    }
    pub fn leaf_index_off(&self, k: u32) -> u64 {
        self.h().leaf_index_off + u64::from(k) * LeafIndex::SIZE as u64
    }
    /// Image offset of entry `i` of upper table `t`.
    pub fn upper_off(&self, t: u32, i: usize) -> u64 {
        self.h().upper_off + u64::from(t) * PAGE_SIZE + 8 * i as u64
    }
    /// Image offset of entry `i` of leaf `k`.
    pub fn leaf_entry_off(&self, k: u32, i: usize) -> u64 {
        self.h().leaves_off + u64::from(k) * PAGE_SIZE + 8 * i as u64
    }

    pub fn edit_vma(&mut self, i: u32, f: impl FnOnce(&mut VmaImage)) {
        let o = self.vma_off(i);
        self.edit(o, f);
    }
    pub fn edit_file(&mut self, i: u32, f: impl FnOnce(&mut FileImage)) {
        let o = self.file_off(i);
        self.edit(o, f);
    }
    /// Overwrites bytes of the strings at offset `off` (unsealed).
    pub fn edit_strings(&mut self, off: u32, b: &[u8]) {
        let o = (self.h().strings_off + u64::from(off)) as usize;
        self.bytes[o..][..b.len()].copy_from_slice(b);
    }
    pub fn edit_task(&mut self, i: u32, f: impl FnOnce(&mut TaskImage)) {
        let o = self.task_off(i);
        self.edit(o, f);
    }
    pub fn edit_obj(&mut self, i: u32, f: impl FnOnce(&mut ObjImage)) {
        let o = self.obj_off(i);
        self.edit(o, f);
    }
    pub fn set_obj_page(&mut self, i: u64, p: u64) {
        let o = self.obj_page_off(i);
        self.edit::<u64>(o, |v| *v = p);
    }
    pub fn edit_leaf_index(&mut self, k: u32, f: impl FnOnce(&mut LeafIndex)) {
        let o = self.leaf_index_off(k);
        self.edit(o, f);
    }
    /// Changes a field of the process record at byte `off` inside it.
    pub fn edit_proc<T: Pod>(&mut self, off: usize, f: impl FnOnce(&mut T)) {
        let o = self.h().proc_off + off as u64;
        self.edit(o, f);
    }
    pub fn upper(&self, t: u32, i: usize) -> u64 {
        self.get(self.upper_off(t, i))
    }
    pub fn set_upper(&mut self, t: u32, i: usize, e: u64) {
        let o = self.upper_off(t, i);
        self.edit::<u64>(o, |v| *v = e);
    }
    pub fn leaf_entry(&self, k: u32, i: usize) -> u64 {
        self.get(self.leaf_entry_off(k, i))
    }
    pub fn set_leaf_entry(&mut self, k: u32, i: usize, e: u64) {
        let o = self.leaf_entry_off(k, i);
        self.edit::<u64>(o, |v| *v = e);
    }

    /// Pool offset of upper table `t` (what an upper entry holds).
    pub fn upper_pool(&self, t: u32) -> u64 {
        BASE + self.h().upper_off + u64::from(t) * PAGE_SIZE
    }
    /// Pool offset of leaf `k`.
    pub fn leaf_pool(&self, k: u32) -> u64 {
        BASE + self.h().leaves_off + u64::from(k) * PAGE_SIZE
    }
    /// Pool frame of data page `d`.
    pub fn data_frame(&self, d: u64) -> u64 {
        (BASE + self.h().data_off) / PAGE_SIZE + d
    }

    /// The leaf bytes of leaf `k`.
    pub fn leaf_bytes(&self, k: u32) -> &[u8] {
        let o = (self.h().leaves_off + u64::from(k) * PAGE_SIZE) as usize;
        &self.bytes[o..o + PAGE_SIZE as usize]
    }

    /// Recomputes every leaf's CRC into the leaf index.
    pub fn reseal_leaves(&mut self) {
        let h = self.h();
        for k in 0..h.n_leaves {
            let crc = crc32c(self.leaf_bytes(k));
            self.edit_leaf_index(k, |li| li.crc = crc);
        }
    }

    /// Recomputes the metadata CRC and then the header CRC.
    pub fn reseal_meta(&mut self) {
        let h = self.h();
        let crc = crc32c(&self.bytes[META_OFF as usize..h.leaves_off as usize]);
        self.edit_h(|h| h.meta_crc = crc);
        self.reseal_header();
    }

    /// Reseals everything a hostile writer can: leaf CRCs, meta CRC, header CRC.
    pub fn reseal(&mut self) {
        self.reseal_leaves();
        self.reseal_meta();
    }

    pub fn meta_bytes(&self) -> &[u8] {
        &self.bytes[META_OFF as usize..self.h().leaves_off as usize]
    }

    /// Stage 1: the header alone, against the image's own length.
    pub fn header(&self) -> Result<ImageLayout, ImageError> {
        self.h().validate(BASE, self.bytes.len() as u64)
    }

    /// Stage 2: the metadata (the header must pass).
    pub fn meta(&self) -> Result<(), ImageError> {
        let h = self.h();
        h.validate(BASE, self.bytes.len() as u64).expect("header valid");
        Meta::validate(&h, self.meta_bytes()).map(|_| ())
    }

    /// Stage 3: leaf `k` (header and metadata must pass).
    pub fn leaf(&self, k: u32) -> Result<Vec<u64>, ImageError> {
        let h = self.h();
        h.validate(BASE, self.bytes.len() as u64).expect("header valid");
        let m = Meta::validate(&h, self.meta_bytes()).expect("metadata valid");
        let mut out = vec![0u64; PT_ENTRIES];
        m.validate_leaf(k, self.leaf_bytes(k), &mut out)?;
        Ok(out)
    }

    /// Every stage, every leaf.
    pub fn full(&self) -> Result<(), ImageError> {
        let h = self.h();
        h.validate(BASE, self.bytes.len() as u64)?;
        let m = Meta::validate(&h, self.meta_bytes())?;
        let mut out = vec![0u64; PT_ENTRIES];
        for k in 0..h.n_leaves {
            m.validate_leaf(k, self.leaf_bytes(k), &mut out)?;
        }
        Ok(())
    }

    pub fn check_valid(&self) {
        assert_eq!(self.full(), Ok(()), "the unbroken image must validate");
    }
}
