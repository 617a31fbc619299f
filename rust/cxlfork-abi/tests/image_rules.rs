//! One test per rule of the image validator (`ImageHeader::validate`,
//! `Meta::validate` and its `validate_vmas`, `validate_objs`,
//! `validate_state`, `validate_tables`, and `Meta::validate_leaf`).
//!
//! Each test takes the standard valid image of `common` (every record kind
//! present), breaks exactly the one thing its rule forbids, reseals what a
//! hostile writer can reseal (leaf CRCs, metadata CRC, header CRC; not for
//! the checksum rules themselves), and asserts the exact `ImageError` of
//! the stage that owns the rule (the earlier stages must pass). With the
//! rule removed from the validator, the test fails: the image is accepted,
//! or refused later for another reason (`tests/mutants/run.py` removes the
//! rules one by one and checks).

mod common;

use common::*;
use core::mem::offset_of;
use cxlfork_abi::crc::crc32c;
use cxlfork_abi::image::*;
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::PAGE_SIZE;
use ImageError::*;

#[test]
fn standard_image_is_valid_at_every_stage() {
    let img = valid();
    let h = img.h();
    assert_eq!(h.n_upper, N_UPPER);
    assert_eq!(h.n_tasks, 2);
    assert_eq!(h.n_objs, 2);
    assert_eq!(h.n_obj_pages, 3);
    assert_eq!(h.n_data, 5 * 3 + 3);
    let m = Meta::validate(&h, img.meta_bytes()).unwrap();
    assert_eq!(m.vma_path(&m.vma(1).unwrap()).unwrap(), b"/bin/true");
    assert_eq!(m.vma(1).unwrap().file_mtime_ns, 1_700_000_000_123_456_789);
    assert_eq!(m.task_fpu(&m.task(1).unwrap()).unwrap().len(), FPU_LENS[1] as usize);
    assert_eq!(m.obj_page(2).unwrap(), 1);
    for k in 0..h.n_leaves {
        assert_eq!(img.leaf(k).unwrap().iter().filter(|&&e| pte::maps_frame(e)).count(), PER_LEAF as usize);
    }
}

// ---------------------------------------------------------------------------
// ImageHeader::validate

#[test]
fn hdr_magic() {
    let mut img = valid();
    img.edit_h(|h| h.magic[7] = b'X');
    img.reseal_header();
    assert_eq!(img.header(), Err(Magic));
}

#[test]
fn hdr_version() {
    let mut img = valid();
    img.edit_h(|h| h.version = IMG_VERSION + 1);
    img.reseal_header();
    assert_eq!(img.header(), Err(Version));
}

#[test]
fn hdr_header_size() {
    let mut img = valid();
    img.edit_h(|h| h.header_size = ImageHeader::SIZE as u32 + 8);
    img.reseal_header();
    assert_eq!(img.header(), Err(Version));
}

#[test]
fn hdr_checksum() {
    let mut img = valid();
    img.edit_h(|h| h.id ^= 1); // not resealed
    assert_eq!(img.header(), Err(HeaderChecksum));
}

/// A header of the standard image with `f` applied to its counts, every
/// offset and the size placed by the layout arithmetic (unbounded), and
/// resealed; with the extent its size.
fn counted(f: impl FnOnce(&mut ImageHeader)) -> (ImageHeader, u64) {
    let mut h = valid().h();
    f(&mut h);
    let l = raw_layout(&h);
    place(&mut h, &l);
    h.header_crc = h.compute_crc();
    (h, l.size)
}

/// The count set by `at` (the bound) passes the header; by `over` it is refused.
fn bound(at: impl FnOnce(&mut ImageHeader), over: impl FnOnce(&mut ImageHeader)) {
    let (h, extent) = counted(at);
    assert!(h.validate(BASE, extent).is_ok(), "at the bound: {:?}", h.validate(BASE, extent));
    let (h, extent) = counted(over);
    assert_eq!(h.validate(BASE, extent), Err(Layout));
}

#[test]
fn hdr_count_vmas() {
    bound(|h| h.n_vmas = MAX_VMAS, |h| h.n_vmas = MAX_VMAS + 1);
}

#[test]
fn hdr_count_files() {
    bound(|h| h.n_files = MAX_FILES, |h| h.n_files = MAX_FILES + 1);
}

#[test]
fn hdr_count_strings() {
    bound(|h| h.strings_len = MAX_STRINGS, |h| h.strings_len = MAX_STRINGS + 1);
}

#[test]
fn hdr_count_fpu() {
    bound(|h| h.fpu_len = MAX_FPU, |h| h.fpu_len = MAX_FPU + 1);
}

#[test]
fn hdr_count_objs() {
    bound(|h| h.n_objs = MAX_OBJS, |h| h.n_objs = MAX_OBJS + 1);
}

#[test]
fn hdr_count_obj_pages_within_data() {
    bound(|h| h.n_obj_pages = h.n_data, |h| h.n_obj_pages = h.n_data + 1);
}

#[test]
fn hdr_count_tasks_zero() {
    bound(|h| h.n_tasks = 1, |h| h.n_tasks = 0);
}

#[test]
fn hdr_count_tasks_max() {
    bound(|h| h.n_tasks = MAX_TASKS, |h| h.n_tasks = MAX_TASKS + 1);
}

#[test]
fn hdr_count_leaves() {
    bound(|h| h.n_leaves = 1 << 24, |h| h.n_leaves = (1 << 24) + 1);
}

#[test]
fn hdr_count_upper() {
    bound(
        |h| {
            h.n_leaves = 1 << 19;
            h.n_upper = MAX_UPPER;
        },
        |h| {
            h.n_leaves = 1 << 19;
            h.n_upper = MAX_UPPER + 1;
        },
    );
}

#[test]
fn hdr_count_data() {
    bound(|h| h.n_data = 1 << 40, |h| h.n_data = (1 << 40) + 1);
}

/// One offset of the header moved by 8 bytes (everything else consistent).
fn misplaced(f: impl FnOnce(&mut ImageHeader)) {
    let mut img = valid();
    img.edit_h(f);
    img.reseal_header();
    assert_eq!(img.header(), Err(Layout));
}

#[test]
fn hdr_placed_vmas_off() {
    misplaced(|h| h.vmas_off += 8);
}
#[test]
fn hdr_placed_files_off() {
    misplaced(|h| h.files_off += 8);
}
#[test]
fn hdr_placed_strings_off() {
    misplaced(|h| h.strings_off += 8);
}
#[test]
fn hdr_placed_proc_off() {
    misplaced(|h| h.proc_off += 8);
}
#[test]
fn hdr_placed_tasks_off() {
    misplaced(|h| h.tasks_off += 8);
}
#[test]
fn hdr_placed_fpu_off() {
    misplaced(|h| h.fpu_off += 64);
}
#[test]
fn hdr_placed_objs_off() {
    misplaced(|h| h.objs_off += 8);
}
#[test]
fn hdr_placed_obj_pages_off() {
    misplaced(|h| h.obj_pages_off += 8);
}
#[test]
fn hdr_placed_leaf_index_off() {
    misplaced(|h| h.leaf_index_off += 8);
}
#[test]
fn hdr_placed_upper_off() {
    misplaced(|h| h.upper_off += PAGE_SIZE);
}
#[test]
fn hdr_placed_leaves_off() {
    misplaced(|h| h.leaves_off += PAGE_SIZE);
}
#[test]
fn hdr_placed_data_off() {
    misplaced(|h| h.data_off += PAGE_SIZE);
}

#[test]
fn hdr_base_is_where_it_lies() {
    let img = valid();
    assert_eq!(img.h().validate(BASE + (2 << 20), img.bytes.len() as u64), Err(Layout));
}

#[test]
fn hdr_size_field() {
    let mut img = valid();
    img.edit_h(|h| h.size += PAGE_SIZE);
    img.reseal_header();
    img.bytes.extend([0; PAGE_SIZE as usize]); // the extent holds it
    assert_eq!(img.header(), Err(Layout));
}

#[test]
fn hdr_extent() {
    let img = valid();
    let h = img.h();
    assert!(h.validate(BASE, h.size).is_ok());
    assert_eq!(h.validate(BASE, h.size - PAGE_SIZE), Err(Layout));
}

#[test]
fn hdr_base_aligned() {
    let mut img = valid();
    img.edit_h(|h| h.base = BASE + 512);
    img.reseal_header();
    assert_eq!(img.h().validate(BASE + 512, img.bytes.len() as u64), Err(Layout));
}

#[test]
fn hdr_base_plus_size_overflows() {
    let base = !(PAGE_SIZE - 1);
    let mut img = valid();
    img.edit_h(|h| h.base = base);
    img.reseal_header();
    assert_eq!(img.h().validate(base, u64::MAX), Err(Layout));
}

#[test]
fn hdr_upper_without_leaves() {
    let (h, extent) = counted(|h| {
        h.n_leaves = 0;
        h.n_upper = 1;
    });
    assert_eq!(h.validate(BASE, extent), Err(Layout));
}

#[test]
fn hdr_leaves_without_upper() {
    let (h, extent) = counted(|h| {
        h.n_leaves = 1;
        h.n_upper = 0;
    });
    assert_eq!(h.validate(BASE, extent), Err(Layout));
}

#[test]
fn hdr_upper_at_most_1_plus_2_per_leaf() {
    let (h, extent) = counted(|h| {
        h.n_leaves = 1;
        h.n_upper = 3;
    });
    assert!(h.validate(BASE, extent).is_ok());
    let (h, extent) = counted(|h| {
        h.n_leaves = 1;
        h.n_upper = 4;
    });
    assert_eq!(h.validate(BASE, extent), Err(Layout));
}

// ---------------------------------------------------------------------------
// Meta::validate

#[test]
fn meta_length() {
    let img = valid();
    let mut h = img.h();
    let mut meta = img.meta_bytes().to_vec();
    meta.extend([0u8; 8]);
    h.meta_crc = crc32c(&meta);
    h.header_crc = h.compute_crc();
    assert_eq!(Meta::validate(&h, &meta).map(|_| ()), Err(Layout));
}

#[test]
fn meta_checksum() {
    let mut img = valid();
    // A byte of a path: nothing but the checksum covers it.
    let at = img.h().strings_off as usize + 1;
    img.bytes[at] ^= 0x20;
    assert_eq!(img.meta(), Err(MetaChecksum));
}

// --- validate_vmas

fn vma_broken(i: u32, f: impl FnOnce(&mut VmaImage)) -> Result<(), ImageError> {
    let mut img = valid();
    img.edit_vma(i, f);
    img.reseal();
    img.meta()
}

#[test]
fn vma_start_aligned() {
    assert_eq!(vma_broken(2, |v| v.start += 8), Err(Vma));
}

#[test]
fn vma_end_aligned() {
    assert_eq!(vma_broken(2, |v| v.end += 8), Err(Vma));
}

#[test]
fn vma_not_empty() {
    assert_eq!(
        vma_broken(6, |v| {
            v.end = v.start;
            v.pages = 0;
        }),
        Err(Vma)
    );
}

#[test]
fn vma_user_half() {
    assert_eq!(vma_broken(6, |v| v.end = USER_END), Ok(()));
    assert_eq!(vma_broken(6, |v| v.end = USER_END + PAGE_SIZE), Err(Vma));
}

#[test]
fn vma_private_kinds_are_private() {
    assert_eq!(vma_broken(0, |v| v.vm_flags |= vm::SHARED), Err(Vma));
    assert_eq!(vma_broken(1, |v| v.vm_flags |= vm::SHARED), Err(Vma));
    assert_eq!(vma_broken(5, |v| v.vm_flags |= vm::SHARED), Err(Vma));
}

#[test]
fn vma_shared_kinds_are_shared() {
    assert_eq!(vma_broken(2, |v| v.vm_flags &= !vm::SHARED), Err(Vma));
}

#[test]
fn vma_overlap() {
    assert_eq!(vma_broken(3, |v| v.start = 0x5000_2000), Err(Vma));
}

#[test]
fn vma_sorted() {
    let mut img = valid();
    let (a, b): (VmaImage, VmaImage) = (img.get(img.vma_off(4)), img.get(img.vma_off(5)));
    img.edit_vma(4, |v| *v = b);
    img.edit_vma(5, |v| *v = a);
    img.reseal();
    assert_eq!(img.meta(), Err(Vma));
}

#[test]
fn vma_kind_known() {
    assert_eq!(vma_broken(0, |v| v.kind = 0), Err(Vma));
    assert_eq!(vma_broken(0, |v| v.kind = vma_kind::LAST + 1), Err(Vma));
}

#[test]
fn vma_pages_within() {
    assert_eq!(vma_broken(2, |v| v.pages = 3), Ok(()));
    assert_eq!(vma_broken(2, |v| v.pages = 4), Err(Vma));
}

#[test]
fn vma_file_offset_overflow() {
    assert_eq!(vma_broken(1, |v| v.pgoff = u64::MAX / PAGE_SIZE + 1), Err(Vma));
    assert_eq!(vma_broken(1, |v| v.pgoff = (u64::MAX - 0x10_0000) / PAGE_SIZE), Err(Vma));
}

#[test]
fn vma_flags_known() {
    assert_eq!(vma_broken(0, |v| v.vm_flags |= 1 << 40), Err(Vma));
}

#[test]
fn vma_shared_anon_has_object() {
    assert_eq!(vma_broken(2, |v| v.obj = 0), Err(Vma));
}

#[test]
fn vma_object_only_for_shared_anon() {
    assert_eq!(vma_broken(0, |v| v.obj = 1), Err(Vma));
}

#[test]
fn vma_object_exists() {
    assert_eq!(vma_broken(3, |v| v.obj = 3), Err(Vma));
}

#[test]
fn vma_obj_size_zero() {
    assert_eq!(vma_broken(2, |v| v.obj_size = PAGE_SIZE), Err(Vma));
}

#[test]
fn vma_path_in_strings() {
    let len = valid().h().strings_len;
    assert_eq!(vma_broken(1, |v| v.path_off = len - 3), Err(String));
}

// --- files

#[test]
fn file_path_in_strings() {
    let mut img = valid();
    let len = img.h().strings_len;
    img.edit_file(0, |f| f.path_off = len - 3);
    img.reseal();
    assert_eq!(img.meta(), Err(String));
}

#[test]
fn file_fds_increasing() {
    let mut img = valid();
    img.edit_file(1, |f| f.fd = 3);
    img.reseal();
    assert_eq!(img.meta(), Err(Layout));
}

#[test]
fn file_fd_below_nr_open() {
    let mut img = valid();
    img.edit_file(F_EVENTFD_DUP, |f| f.fd = MAX_FD - 1);
    img.reseal();
    assert_eq!(img.meta(), Ok(()));
    img.edit_file(F_EVENTFD_DUP, |f| f.fd = MAX_FD);
    img.reseal();
    assert_eq!(img.meta(), Err(Layout));
}

#[test]
fn file_kind_known() {
    for kind in [0, file_kind::LAST + 1] {
        let mut img = valid();
        img.edit_file(0, |f| f.kind = kind);
        img.reseal();
        assert_eq!(img.meta(), Err(Layout), "kind {kind}");
    }
}

#[test]
fn file_cloexec_boolean() {
    let mut img = valid();
    img.edit_file(0, |f| f.cloexec = 2);
    img.reseal();
    assert_eq!(img.meta(), Err(Layout));
}

#[test]
fn file_object_exists() {
    let mut img = valid();
    img.edit_file(1, |f| f.obj = 3);
    img.reseal();
    assert_eq!(img.meta(), Err(Layout));
}

// --- validate_objs

fn obj_broken(f: impl FnOnce(&mut Img)) -> Result<(), ImageError> {
    let mut img = valid();
    f(&mut img);
    img.reseal();
    img.meta()
}

#[test]
fn obj_name_in_strings() {
    let len = valid().h().strings_len;
    assert_eq!(
        obj_broken(|i| i.edit_obj(0, |o| {
            o.name_off = len;
            o.name_len = 0;
        })),
        Ok(())
    );
    assert_eq!(
        obj_broken(|i| i.edit_obj(0, |o| {
            o.name_off = len;
            o.name_len = 1;
        })),
        Err(String)
    );
}

#[test]
fn obj_pages_contiguous() {
    // Object 0 starts at entry 1 (its page 2) and skips entry 0: the run is
    // otherwise consistent (object 1 starts where it ends, total matches).
    assert_eq!(
        obj_broken(|i| i.edit_obj(0, |o| {
            o.first = 1;
            o.n_pages = 1;
        })),
        Err(Layout)
    );
}

#[test]
fn obj_stored_within_size() {
    // Object 1 (2 pages) claims 3 stored pages: entries 0, 1, 2.
    let mut s = spec();
    s.objs[1].n_pages = 3;
    s.obj_pages = vec![0, 2, 0, 1, 2];
    assert_eq!(build(&s).meta(), Err(Layout));
}

#[test]
fn obj_flags_zero() {
    assert_eq!(obj_broken(|i| i.edit_obj(1, |o| o.flags = 1)), Err(Layout));
}

#[test]
fn obj_reserved_zero() {
    assert_eq!(obj_broken(|i| i.edit_obj(1, |o| o.reserved = 1)), Err(Layout));
}

#[test]
fn obj_page_inside_object() {
    assert_eq!(obj_broken(|i| i.set_obj_page(2, 2)), Err(Layout));
}

#[test]
fn obj_pages_increasing() {
    assert_eq!(obj_broken(|i| i.set_obj_page(1, 0)), Err(Layout)); // equal
    assert_eq!(
        obj_broken(|i| {
            i.set_obj_page(0, 2);
            i.set_obj_page(1, 1);
        }),
        Err(Layout)
    ); // decreasing
}

#[test]
fn obj_pages_all_claimed() {
    assert_eq!(obj_broken(|i| i.edit_obj(1, |o| o.n_pages = 0)), Err(Layout));
}

// --- validate_state: the process record

fn proc_broken<T: Pod>(off: usize, f: impl FnOnce(&mut T)) -> Result<(), ImageError> {
    let mut img = valid();
    img.edit_proc(off, f);
    img.reseal();
    img.meta()
}

#[test]
fn proc_mm_flags_known() {
    assert_eq!(proc_broken::<u64>(offset_of!(ProcImage, mm_flags), |v| *v |= 1 << 5), Err(State));
}

#[test]
fn proc_flags_known() {
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, proc_flags), |v| *v |= 1 << 1), Err(State));
}

#[test]
fn proc_dumpable_range() {
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, dumpable), |v| *v = 3), Err(State));
}

#[test]
fn proc_reserved_zero() {
    for w in 0..4 {
        assert_eq!(proc_broken::<u64>(offset_of!(ProcImage, reserved) + 8 * w, |v| *v = 1), Err(State), "word {w}");
    }
}

#[test]
fn proc_umask_bits() {
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, umask), |v| *v = 0o1000), Err(State));
}

#[test]
fn proc_pkey_zero_allocated() {
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, pkey_map), |v| *v = 2), Err(State));
}

#[test]
fn proc_pkey_map_16_keys() {
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, pkey_map), |v| *v = 0xffff), Ok(()));
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, pkey_map), |v| *v = 0x1_0001), Err(State));
}

#[test]
fn proc_exec_only_pkey() {
    let with = |map: u32, key: u32| {
        let mut img = valid();
        img.edit_proc::<u32>(offset_of!(ProcImage, pkey_map), |v| *v = map);
        img.edit_proc::<u32>(offset_of!(ProcImage, exec_only_pkey), |v| *v = key);
        img.reseal();
        img.meta()
    };
    assert_eq!(with(1 | 1 << 15, 15), Ok(()));
    assert_eq!(with(1, 15), Err(State), "not allocated");
    assert_eq!(with(0xffff, 0), Err(State), "key 0");
    assert_eq!(with(0xffff, 16), Err(State));
}

#[test]
fn proc_rlimit_soft_within_hard() {
    let off = offset_of!(ProcImage, rlimits) + 16 * 7;
    assert_eq!(proc_broken::<u64>(off, |v| *v = u64::MAX), Err(State));
}

#[test]
fn proc_cwd_in_strings() {
    let len = valid().h().strings_len;
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, cwd_off), |v| *v = len - 2), Err(String));
}

#[test]
fn proc_exe_in_strings() {
    let len = valid().h().strings_len;
    assert_eq!(proc_broken::<u32>(offset_of!(ProcImage, exe_off), |v| *v = len - 2), Err(String));
}

// --- validate_state: task records

fn task_broken(i: u32, f: impl FnOnce(&mut TaskImage)) -> Result<(), ImageError> {
    let mut img = valid();
    img.edit_task(i, f);
    img.reseal();
    img.meta()
}

#[test]
fn task_fpu_end_overflow() {
    assert_eq!(task_broken(1, |t| t.fpu_off = !63), Err(State));
}

#[test]
fn task_fpu_no_overlap() {
    // Task 1's buffer starts inside task 0's (aligned, inside the area).
    assert_eq!(task_broken(1, |t| t.fpu_off -= 64), Err(State));
}

#[test]
fn task_fpu_aligned() {
    assert_eq!(
        task_broken(1, |t| {
            t.fpu_off += 8;
            t.fpu_len -= 64;
        }),
        Err(State)
    );
}

#[test]
fn task_fpu_starts_in_area() {
    let area_end = {
        let h = valid().h();
        h.fpu_off + u64::from(h.fpu_len)
    };
    assert_eq!(
        task_broken(1, |t| {
            t.fpu_off = area_end;
            t.fpu_len = 64;
        }),
        Err(State)
    );
}

#[test]
fn task_fpu_ends_in_area() {
    assert_eq!(task_broken(1, |t| t.fpu_len += 64), Err(State));
}

#[test]
fn task_fpu_not_empty() {
    assert_eq!(task_broken(1, |t| t.fpu_len = 0), Err(State));
}

#[test]
fn task_fpu_at_most_max() {
    let mut s = spec();
    s.fpu_lens[1] = MAX_TASK_FPU;
    s.fpu_len = s.fpu_lens.iter().sum();
    build(&s).check_valid();
    s.fpu_lens[1] = MAX_TASK_FPU + 64;
    s.fpu_len = s.fpu_lens.iter().sum();
    assert_eq!(build(&s).meta(), Err(State));
}

#[test]
fn task_rseq_flags_zero() {
    assert_eq!(task_broken(0, |t| t.rseq_flags = 1), Err(State));
}

#[test]
fn task_flags_zero() {
    assert_eq!(task_broken(0, |t| t.flags = 1), Err(State));
}

#[test]
fn task_nice_min() {
    assert_eq!(task_broken(1, |t| t.nice = (-21i32) as u32), Err(State));
}

#[test]
fn task_nice_max() {
    assert_eq!(task_broken(0, |t| t.nice = 20), Err(State));
}

#[test]
fn task_policy_known() {
    assert_eq!(task_broken(0, |t| t.policy = 5), Ok(()));
    assert_eq!(task_broken(0, |t| t.policy = 4), Err(State));
    assert_eq!(task_broken(0, |t| t.policy = 6), Err(State));
}

#[test]
fn task_rt_priority_max() {
    assert_eq!(task_broken(1, |t| t.rt_priority = 100), Err(State));
}

#[test]
fn task_pad_zero() {
    assert_eq!(task_broken(0, |t| t.pad = 1), Err(State));
}

#[test]
fn task_regs_origin_known() {
    assert_eq!(task_broken(0, |t| t.regs.origin = 0), Err(State));
    assert_eq!(task_broken(1, |t| t.regs.origin = REGS_INTERRUPTED + 1), Err(State));
}

#[test]
fn task_tid_nonzero() {
    let one = |tid: u32| {
        let mut s = spec();
        s.tasks.truncate(1);
        s.fpu_lens.truncate(1);
        s.fpu_len = s.fpu_lens.iter().sum();
        s.tasks[0].tid = tid;
        build(&s).meta()
    };
    // One thread alone may be any thread of the process...
    assert_eq!(one(123), Ok(()));
    // ...but never tid 0.
    assert_eq!(one(0), Err(State));
}

#[test]
fn task_main_first() {
    // With several threads, task 0 is the main thread (tid == pid).
    assert_eq!(task_broken(0, |t| t.tid = 99), Err(State));
}

#[test]
fn task_main_once() {
    // No other task has the main thread's tid.
    assert_eq!(task_broken(1, |t| t.tid = 100), Err(State));
}

#[test]
fn task_tids_increasing() {
    let three = |tids: [u32; 2]| {
        let mut s = spec();
        let mut t2 = s.tasks[1];
        t2.tid = tids[1];
        t2.regs.origin = REGS_STOPPED;
        s.tasks[1].tid = tids[0];
        s.tasks.push(t2);
        s.fpu_lens.push(s.fpu_lens[1]);
        s.fpu_len = s.fpu_lens.iter().sum();
        build(&s).meta()
    };
    assert_eq!(three([101, 102]), Ok(()));
    assert_eq!(three([102, 101]), Err(State));
    assert_eq!(three([101, 101]), Err(State));
}

#[test]
fn task_one_self() {
    // Task 0 made the checkpoint call; a second one cannot have.
    assert_eq!(task_broken(1, |t| t.regs.origin = REGS_SELF), Err(State));
}

#[test]
fn task_reserved_zero() {
    assert_eq!(task_broken(0, |t| t.reserved[1] = 1), Err(State));
}

// --- validate_tables

fn tables_broken(f: impl FnOnce(&mut Img)) -> Result<(), ImageError> {
    let mut img = valid();
    f(&mut img);
    img.reseal();
    img.meta()
}

#[test]
fn pt_root_user_half_only() {
    // Root entry 256 (the kernel half) names an empty PUD table; the tree
    // is otherwise whole: root, PUD tables 1 and 2, PMD table 3 (two leaves).
    let mut s = spec();
    s.vaddrs = vec![0x40_0000, 0x60_0000];
    s.extra_upper = 1;
    let mut img = build(&s);
    for i in 0..PT_ENTRIES {
        let pmd = img.upper(2, i);
        img.set_upper(3, i, pmd);
        img.set_upper(2, i, 0);
    }
    let pud = (0..PT_ENTRIES).find(|&j| img.upper(1, j) != 0).unwrap();
    let e = img.upper_pool(3) | UPPER_FLAGS;
    img.set_upper(1, pud, e);
    let e = img.upper_pool(2) | UPPER_FLAGS;
    img.set_upper(0, 256, e);
    img.reseal();
    assert_eq!(img.meta(), Err(PageTable));
    // Leaves under the kernel half are refused too.
    let mut s = spec();
    s.vaddrs = vec![0x40_0000, 256 << 39];
    assert_eq!(build(&s).meta(), Err(PageTable));
}

#[test]
fn pt_root_names_no_more_tables_than_exist() {
    // Root entries 0..8 name upper tables 1..8, but there are 8 upper
    // tables (0..7); tables 1..7 are empty.
    let r = tables_broken(|img| {
        for t in 1..N_UPPER {
            for i in 0..PT_ENTRIES {
                img.set_upper(t, i, 0);
            }
        }
        for i in 0..PT_ENTRIES {
            img.set_upper(0, i, 0);
        }
        for i in 0..N_UPPER as usize {
            let e = img.upper_pool(i as u32 + 1) | UPPER_FLAGS;
            img.set_upper(0, i, e);
        }
    });
    assert_eq!(r, Err(PageTable));
}

#[test]
fn pt_root_entry_present() {
    assert_eq!(tables_broken(|i| i.set_upper(0, 0, i.upper(0, 0) & !pte::PRESENT)), Err(PageTable));
}

#[test]
fn pt_root_entry_flags() {
    assert_eq!(tables_broken(|i| i.set_upper(0, 0, i.upper(0, 0) | pte::NX)), Err(PageTable));
}

#[test]
fn pt_root_entry_names_next_table() {
    assert_eq!(tables_broken(|i| i.set_upper(0, 0, i.upper_pool(2) | UPPER_FLAGS)), Err(PageTable));
}

/// PUD table 3 (root entry 255) and its present entry's index.
fn last_pud(img: &Img) -> usize {
    (0..PT_ENTRIES).find(|&j| img.upper(3, j) != 0).unwrap()
}

#[test]
fn pt_pud_names_no_more_tables_than_exist() {
    // A second entry in the last PUD table names table 8 (one past the end).
    assert_eq!(
        tables_broken(|i| {
            let j = last_pud(i) + 1;
            i.set_upper(3, j, i.upper_pool(N_UPPER) | UPPER_FLAGS)
        }),
        Err(PageTable)
    );
}

#[test]
fn pt_pud_entry_present() {
    assert_eq!(tables_broken(|i| i.set_upper(1, 0, i.upper(1, 0) & !pte::PRESENT)), Err(PageTable));
}

#[test]
fn pt_pud_entry_flags() {
    // A 1 GiB page instead of a table.
    assert_eq!(tables_broken(|i| i.set_upper(1, 0, i.upper(1, 0) | pte::PSE)), Err(PageTable));
}

#[test]
fn pt_pud_entry_names_next_table() {
    assert_eq!(tables_broken(|i| i.set_upper(1, 0, i.upper_pool(5) | UPPER_FLAGS)), Err(PageTable));
}

#[test]
fn pt_every_upper_table_used() {
    let mut s = spec();
    s.extra_upper = 1;
    assert_eq!(build(&s).meta(), Err(PageTable));
}

#[test]
fn pt_pmd_names_no_more_leaves_than_exist() {
    // The last PMD table gets a second entry (511) naming leaf 5 (one past
    // the end); the leaf index slot after the table (padding) even holds
    // the address that entry maps, so only the count refuses it.
    assert_eq!(
        tables_broken(|i| {
            let e = i.leaf_pool(5) | UPPER_FLAGS;
            i.set_upper(7, 511, e);
            let vaddr = (VADDRS[4] & !((1 << 30) - 1)) | (511 << 21);
            let off = i.leaf_index_off(5);
            assert!(off + LeafIndex::SIZE as u64 <= i.h().upper_off, "slot 5 is padding");
            i.edit::<LeafIndex>(off, |li| *li = LeafIndex { vaddr, crc: 0, mapped: 0 });
        }),
        Err(PageTable)
    );
}

/// Index of leaf 0's entry in PMD table 4.
const PMD0: usize = (0x40_0000 >> 21) & 511;

#[test]
fn pt_pmd_entry_present() {
    assert_eq!(tables_broken(|i| i.set_upper(4, PMD0, i.upper(4, PMD0) & !pte::PRESENT)), Err(PageTable));
}

#[test]
fn pt_pmd_entry_flags() {
    // A 2 MiB page instead of a leaf table.
    assert_eq!(tables_broken(|i| i.set_upper(4, PMD0, i.upper(4, PMD0) | pte::PSE)), Err(PageTable));
}

#[test]
fn pt_pmd_entry_names_its_leaf() {
    assert_eq!(tables_broken(|i| i.set_upper(4, PMD0, i.leaf_pool(1) | UPPER_FLAGS)), Err(PageTable));
}

#[test]
fn pt_leaf_index_address() {
    assert_eq!(tables_broken(|i| i.edit_leaf_index(1, |li| li.vaddr += 2 << 20)), Err(PageTable));
}

#[test]
fn pt_leaf_index_mapped_at_most_512() {
    assert_eq!(tables_broken(|i| i.edit_leaf_index(1, |li| li.mapped = PT_ENTRIES as u32 + 1)), Err(PageTable));
}

#[test]
fn pt_every_leaf_named() {
    // The last leaf's PMD entry removed: its PMD table is left empty.
    let j = ((VADDRS[4] >> 21) & 511) as usize;
    assert_eq!(tables_broken(|i| i.set_upper(7, j, 0)), Err(PageTable));
}

// ---------------------------------------------------------------------------
// Meta::validate_leaf

fn leaf_broken(k: u32, f: impl FnOnce(&mut Img)) -> Result<Vec<u64>, ImageError> {
    let mut img = valid();
    f(&mut img);
    img.reseal();
    img.leaf(k)
}

#[test]
fn leaf_buffer_one_page() {
    let mut img = valid();
    let mut bytes = img.leaf_bytes(0).to_vec();
    bytes.push(0);
    let crc = crc32c(&bytes);
    img.edit_leaf_index(0, |li| li.crc = crc);
    img.reseal_meta();
    let h = img.h();
    let m = Meta::validate(&h, img.meta_bytes()).unwrap();
    let mut out = vec![0u64; PT_ENTRIES];
    assert_eq!(m.validate_leaf(0, &bytes, &mut out), Err(Layout));
}

#[test]
fn leaf_output_512_entries() {
    let img = valid();
    let h = img.h();
    let m = Meta::validate(&h, img.meta_bytes()).unwrap();
    let mut out = vec![0u64; PT_ENTRIES - 1];
    assert_eq!(m.validate_leaf(0, img.leaf_bytes(0), &mut out), Err(Layout));
}

#[test]
fn leaf_index_in_range() {
    let img = valid();
    let h = img.h();
    let m = Meta::validate(&h, img.meta_bytes()).unwrap();
    let mut out = vec![0u64; PT_ENTRIES];
    assert_eq!(m.validate_leaf(h.n_leaves, img.leaf_bytes(0), &mut out), Err(Layout));
}

#[test]
fn leaf_checksum() {
    let mut img = valid();
    // Another of the image's own data pages: only the checksum differs.
    let e = pte::with_frame(img.leaf_entry(0, 0), img.data_frame(7));
    img.set_leaf_entry(0, 0, e);
    assert_eq!(img.leaf(0), Err(LeafChecksum));
}

#[test]
fn leaf_frame_not_below_data() {
    // A present entry naming leaf table 0 itself, a PROT_NONE one the header.
    assert_eq!(
        leaf_broken(0, |i| {
            let e = pte::with_frame(i.leaf_entry(0, 0), i.leaf_pool(0) / PAGE_SIZE);
            i.set_leaf_entry(0, 0, e)
        }),
        Err(PageTable)
    );
    assert_eq!(
        leaf_broken(0, |i| {
            let e = pte::with_frame(i.leaf_entry(0, 1), BASE / PAGE_SIZE);
            assert!(e & pte::PRESENT == 0 && e & pte::PROTNONE != 0);
            i.set_leaf_entry(0, 1, e)
        }),
        Err(PageTable)
    );
}

#[test]
fn leaf_frame_not_past_data() {
    assert_eq!(
        leaf_broken(2, |i| {
            let n = i.h().n_data;
            let e = pte::with_frame(i.leaf_entry(2, 0), i.data_frame(n));
            i.set_leaf_entry(2, 0, e)
        }),
        Err(PageTable)
    );
}

#[test]
fn leaf_frame_not_an_object_page() {
    // The first of the objects' pages (the last n_obj_pages data pages).
    assert_eq!(
        leaf_broken(2, |i| {
            let h = i.h();
            let e = pte::with_frame(i.leaf_entry(2, 0), i.data_frame(h.n_data - h.n_obj_pages));
            i.set_leaf_entry(2, 0, e)
        }),
        Err(PageTable)
    );
    // The last page before them is a leaf page.
    assert!(leaf_broken(2, |i| {
        let h = i.h();
        let e = pte::with_frame(i.leaf_entry(2, 0), i.data_frame(h.n_data - h.n_obj_pages - 1));
        i.set_leaf_entry(2, 0, e)
    })
    .is_ok());
}

#[test]
fn leaf_unmapped_entry_zero() {
    // Not present, not PROT_NONE (a swap entry's shape), in an unused slot.
    assert_eq!(leaf_broken(3, |i| i.set_leaf_entry(3, 10, 0x1234 << 12 | pte::RW)), Err(PageTable));
}

#[test]
fn leaf_mapped_count() {
    assert_eq!(leaf_broken(1, |i| i.edit_leaf_index(1, |li| li.mapped += 1)), Err(PageTable));
    assert_eq!(leaf_broken(1, |i| i.edit_leaf_index(1, |li| li.mapped -= 1)), Err(PageTable));
}

// ---------------------------------------------------------------------------
// LeaseLine

#[test]
fn lease_line_leased_only_when_intact_live_and_current() {
    let l = LeaseLine::new(7, 3, 2);
    assert_eq!(l.leased(3), Some(7));
    assert_eq!(l.leased(4), None, "another attach generation");
    let mut torn = l;
    torn.count = 5;
    assert_eq!(torn.leased(3), None, "checksum no longer matches");
    assert!(torn.holds(99, Some(3)), "a torn line holds any image (delete stays safe)");
    let mut zero = LeaseLine::new(7, 3, 1);
    zero.count = 0;
    zero.checksum = LeaseLine::new(7, 3, 0).checksum;
    assert_eq!(zero.leased(3), None, "no clones");
    assert_eq!(LeaseLine::zeroed().leased(0), None);
}

// --- eventfd, epoll and pipe descriptors (validate_files, validate_object)

fn file_broken(i: u32, f: impl FnOnce(&mut FileImage)) -> Result<(), ImageError> {
    let mut img = valid();
    img.edit_file(i, f);
    img.reseal();
    img.meta()
}

/// The epoll's registrations replaced by `items` (same byte length).
fn epoll_broken(items: [EpollItem; 2]) -> Result<(), ImageError> {
    let mut img = valid();
    let off = img.get::<FileImage>(img.file_off(F_EPOLL)).data_off;
    let mut b = Vec::new();
    for it in items {
        b.extend_from_slice(&it.to_bytes());
    }
    img.edit_strings(off, &b);
    img.reseal();
    img.meta()
}

#[test]
fn file_state_only_on_special_kinds() {
    assert_eq!(file_broken(0, |f| f.ident = 1), Err(Layout));
    assert_eq!(file_broken(0, |f| f.value = 1), Err(Layout));
    assert_eq!(file_broken(0, |f| f.sub = 1), Err(Layout));
    assert_eq!(file_broken(0, |f| f.data_len = 1), Err(Layout));
}

#[test]
fn file_objects_numbered_in_order() {
    assert_eq!(file_broken(F_EVENTFD, |f| f.ident = 0), Err(Layout));
    assert_eq!(file_broken(F_EVENTFD, |f| f.ident = 2), Err(Layout));
    assert_eq!(file_broken(F_EVENTFD_DUP, |f| f.ident = 5), Err(Layout));
    // A dup naming an earlier object is fine.
    assert_eq!(file_broken(F_EVENTFD_DUP, |f| f.ident = 2), Ok(()));
}

#[test]
fn file_special_not_a_shared_object() {
    assert_eq!(file_broken(F_EVENTFD, |f| f.obj = 1), Err(Layout));
}

#[test]
fn file_later_descriptor_holds_no_state() {
    assert_eq!(file_broken(F_EVENTFD_DUP, |f| f.data_len = 1), Err(Layout));
    assert_eq!(file_broken(F_PIPE_W, |f| f.sub = 2), Err(Layout));
}

#[test]
fn file_eventfd_counter_below_ceiling() {
    assert_eq!(file_broken(F_EVENTFD, |f| f.value = u64::MAX - 1), Ok(()));
    assert_eq!(file_broken(F_EVENTFD, |f| f.value = u64::MAX), Err(Layout));
    assert_eq!(file_broken(F_EVENTFD, |f| f.sub = 2), Err(Layout));
    assert_eq!(file_broken(F_EVENTFD, |f| (f.data_off, f.data_len) = (0, 1)), Err(Layout));
}

#[test]
fn file_pipe_capacity() {
    assert_eq!(file_broken(F_PIPE_R, |f| f.value = MAX_PIPE), Ok(()));
    for v in [0, 65536 + 4096, 2048, MAX_PIPE * 2] {
        assert_eq!(file_broken(F_PIPE_R, |f| f.value = v), Err(Layout), "capacity {v}");
    }
}

#[test]
fn file_pipe_data_within_capacity() {
    // 4097 buffered bytes: too many for a 4 KiB pipe, fine in an 8 KiB one.
    for (cap, want) in [(4096, Err(Layout)), (8192, Ok(()))] {
        let mut sp = spec();
        let off = sp.strings.len() as u32;
        sp.strings.extend(vec![b'x'; 4097]);
        let p = &mut sp.files[F_PIPE_R as usize];
        (p.value, p.data_off, p.data_len) = (cap, off, 4097);
        sp.files[F_PIPE_W as usize].value = cap;
        assert_eq!(build(&sp).meta(), want, "capacity {cap}");
    }
}

#[test]
fn file_epoll_whole_records() {
    assert_eq!(file_broken(F_EPOLL, |f| f.data_len -= 1), Err(Layout));
    assert_eq!(file_broken(F_EPOLL, |f| f.value = 1), Err(Layout));
}

#[test]
fn file_epoll_by_increasing_descriptor() {
    let [a, b] = EPOLL_ITEMS;
    assert_eq!(epoll_broken([b, a]), Err(Layout));
    assert_eq!(epoll_broken([a, a]), Err(Layout));
}

#[test]
fn file_epoll_watches_an_image_descriptor() {
    let [a, b] = EPOLL_ITEMS;
    assert_eq!(epoll_broken([a, EpollItem { tfd: 7, ..b }]), Ok(()));
    assert_eq!(epoll_broken([a, EpollItem { tfd: 1000, ..b }]), Err(Layout));
}

#[test]
fn file_epoll_not_itself() {
    let [a, b] = EPOLL_ITEMS;
    assert_eq!(epoll_broken([a, EpollItem { tfd: 8, ..b }]), Err(Layout));
}

#[test]
fn file_epoll_events_known() {
    let [a, b] = EPOLL_ITEMS;
    assert_eq!(epoll_broken([a, EpollItem { events: b.events | (1 << 20), ..b }]), Err(Layout));
}

#[test]
fn epoll_fdinfo_parses() {
    let line = b"tfd:        5 events:       19 data: deadbeef00000005  pos:0 ino:3f8 sdev:f";
    let (it, ino) = EpollItem::parse_fdinfo(line).unwrap();
    assert_eq!(it, EpollItem { tfd: 5, events: 0x19, data: 0xdead_beef_0000_0005 });
    assert_eq!(ino, 0x3f8);
    assert_eq!(EpollItem::parse_fdinfo(b"tfd: x"), None);
    let text = b"pos:\t0\nflags:\t02\neventfd-count:                7\neventfd-id: 3\neventfd-semaphore: 1\n";
    assert_eq!(fdinfo_value(text, b"eventfd-count:", 16), Some(7));
    assert_eq!(fdinfo_value(text, b"eventfd-semaphore:", 10), Some(1));
    assert_eq!(fdinfo_value(text, b"eventfd-nope:", 10), None);
}
