#!/usr/bin/env python3
"""Removes each validator rule in turn and checks that its test fails.

    rust/cxlfork-abi/tests/mutants/run.py [--rev REV] [--only ID,...] [--markdown]

For every rule of image.rs (ImageHeader::validate, ImageLayout::new's
bounds, Meta::validate and its validate_* parts, Meta::validate_leaf),
pool.rs (Superblock::validate, Layout::new, HostSlot::validate) and dir.rs
(DirEntry::validate), MUTANTS below gives the source edit that removes the
rule and the tests of tests/image_rules.rs and tests/pool_rules.rs that
must then fail. Each mutant is applied to a scratch copy of the crate (the
working tree's, or git REV's with --rev; the checkout is never touched),
the named tests are run there, and the outcome is reported: "killed" when
every named test fails (with the assertion's left-hand side: what the
validator said without the rule), "survived" otherwise.

A mutant marked redundant is a rule that another rule backs up: removing it
alone cannot change any verdict (its test survives, as expected), and the
mutant listed after it removes both to show the test still detects them.

Exit status: 0 when every non-redundant mutant is killed and every source
edit applied; 1 otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

CRATE = "rust/cxlfork-abi"
IMG, POOL, DIR = "src/image.rs", "src/pool.rs", "src/dir.rs"
TI, TP = "image_rules", "pool_rules"

# (id, rule, file, [(old, new), ...], test binary, [tests], redundant-note or None)
MUTANTS = [
    # --- ImageHeader::validate
    ("H1", "magic", IMG, [("if self.magic != IMG_MAGIC {", "if false {")], TI, ["hdr_magic"], None),
    ("H2", "version", IMG, [("if self.version != IMG_VERSION || self.header_size as usize != Self::SIZE {",
                             "if self.header_size as usize != Self::SIZE {")], TI, ["hdr_version"], None),
    ("H3", "header_size", IMG, [("if self.version != IMG_VERSION || self.header_size as usize != Self::SIZE {",
                                 "if self.version != IMG_VERSION {")], TI, ["hdr_header_size"], None),
    ("H4", "header CRC", IMG, [("if self.header_crc != self.compute_crc() {", "if false {")], TI, ["hdr_checksum"], None),
    # ImageLayout::new bounds (the header's counts)
    ("L1", "n_vmas <= MAX_VMAS", IMG, [("if n_vmas > MAX_VMAS || n_files", "if n_files")], TI, ["hdr_count_vmas"], None),
    ("L2", "n_files <= MAX_FILES", IMG, [("|| n_files > MAX_FILES ||", "||")], TI, ["hdr_count_files"], None),
    ("L3", "strings_len <= MAX_STRINGS", IMG, [("|| strings_len > MAX_STRINGS ||", "||")], TI, ["hdr_count_strings"], None),
    ("L4", "fpu_len <= MAX_FPU", IMG, [("|| fpu_len > MAX_FPU {", "{")], TI, ["hdr_count_fpu"], None),
    ("L5", "n_objs <= MAX_OBJS", IMG, [("if n_objs > MAX_OBJS || n_obj_pages > n_data {", "if n_obj_pages > n_data {")], TI, ["hdr_count_objs"], None),
    ("L6", "n_obj_pages <= n_data", IMG, [("if n_objs > MAX_OBJS || n_obj_pages > n_data {", "if n_objs > MAX_OBJS {")], TI, ["hdr_count_obj_pages_within_data"], None),
    ("L7", "n_tasks != 0", IMG, [("if n_tasks == 0 || n_tasks > MAX_TASKS {", "if n_tasks > MAX_TASKS {")], TI, ["hdr_count_tasks_zero"], None),
    ("L8", "n_tasks <= MAX_TASKS", IMG, [("if n_tasks == 0 || n_tasks > MAX_TASKS {", "if n_tasks == 0 {")], TI, ["hdr_count_tasks_max"], None),
    ("L9", "n_leaves <= 2^24", IMG, [("if n_leaves > (1 << 24) || n_upper", "if n_upper")], TI, ["hdr_count_leaves"], None),
    ("L10", "n_upper <= MAX_UPPER", IMG, [("|| n_upper > MAX_UPPER ||", "||")], TI, ["hdr_count_upper"], None),
    ("L11", "n_data <= 2^40", IMG, [("|| n_data > (1 << 40) {", "{")], TI, ["hdr_count_data"], None),
] + [
    ("H5." + f, f"{f} where the layout puts it", IMG,
     [(f"let placed = self.{f} == l.{f}", "let placed = true") if f == "vmas_off" else (f"&& self.{f} == l.{f}", "&& true")],
     TI, [f"hdr_placed_{f}"], None)
    for f in ["vmas_off", "files_off", "strings_off", "proc_off", "tasks_off", "fpu_off", "objs_off", "obj_pages_off",
              "leaf_index_off", "upper_off", "leaves_off", "data_off"]
] + [
    ("H6", "header base == its pool offset", IMG, [("if !placed || self.base != base ||", "if !placed ||")], TI, ["hdr_base_is_where_it_lies"], None),
    ("H7", "size field == layout size", IMG, [("|| self.size != l.size ||", "||")], TI, ["hdr_size_field"], None),
    ("H8", "layout size <= extent", IMG, [("|| l.size > extent ||", "||")], TI, ["hdr_extent"], None),
    ("H9", "base page aligned", IMG, [("let base_ok = base.is_multiple_of(PAGE_SIZE) && base.checked_add(l.size).is_some();",
                                       "let base_ok = base.checked_add(l.size).is_some();")], TI, ["hdr_base_aligned"], None),
    ("H10", "base + size no overflow", IMG, [("let base_ok = base.is_multiple_of(PAGE_SIZE) && base.checked_add(l.size).is_some();",
                                              "let base_ok = base.is_multiple_of(PAGE_SIZE);")], TI, ["hdr_base_plus_size_overflows"], None),
    ("H11", "leaves <=> upper tables", IMG, [("if (self.n_leaves == 0) != (self.n_upper == 0) || self.n_upper", "if self.n_upper")],
     TI, ["hdr_upper_without_leaves", "hdr_leaves_without_upper"], None),
    ("H12", "n_upper <= 1 + 2 n_leaves", IMG, [("|| self.n_upper > 1 + 2 * self.n_leaves {", "{")], TI, ["hdr_upper_at_most_1_plus_2_per_leaf"], None),

    # --- Meta::validate
    ("M1", "meta length", IMG, [("if meta.len() as u64 != header.leaves_off - META_OFF {", "if false {")], TI, ["meta_length"], None),
    ("M2", "meta CRC", IMG, [("if crc32c(meta) != header.meta_crc {", "if false {")], TI, ["meta_checksum"], None),
    ("F1", "file path in strings", IMG, [("            self.file_path(&f)?;", "            let _ = self.file_path(&f);")], TI, ["file_path_in_strings"], None),
    ("F2", "file object exists", IMG, [("let ok = f.obj <= h.n_objs", "let ok = true")], TI, ["file_object_exists"], None),
    ("F3", "state only on eventfd/epoll/pipe", IMG, [("if f.ident != 0 || f.sub != 0 || f.value != 0 || f.data_off != 0 || f.data_len != 0 {", "if false {")], TI, ["file_state_only_on_special_kinds"], None),
    ("F4", "objects numbered in order", IMG, [("if f.obj != 0 || f.ident == 0 || f.ident > idents + 1 {", "if f.obj != 0 {")], TI, ["file_objects_numbered_in_order"], None),
    ("F5", "special file not a shared object", IMG, [("if f.obj != 0 || f.ident == 0 || f.ident > idents + 1 {", "if f.ident == 0 || f.ident > idents + 1 {")], TI, ["file_special_not_a_shared_object"], None),
    ("F6", "later descriptor holds no state", IMG, [("} else if f.sub > 1 || f.data_off != 0 || f.data_len != 0 {", "} else if false {")], TI, ["file_later_descriptor_holds_no_state"], None),
    ("F7", "eventfd counter below its ceiling", IMG, [("file_kind::EVENTFD => f.sub <= 1 && f.value != u64::MAX && data.is_empty(),", "file_kind::EVENTFD => true,")], TI, ["file_eventfd_counter_below_ceiling"], None),
    ("F8", "pipe capacity a power of two of pages", IMG, [("&& f.value.is_power_of_two()\n                    && (PAGE_SIZE..=MAX_PIPE).contains(&f.value)", "")], TI, ["file_pipe_capacity"], None),
    ("F9", "pipe bytes within capacity", IMG, [("&& data.len() as u64 <= f.value", "")], TI, ["file_pipe_data_within_capacity"], None),
    ("F10", "epoll whole records", IMG, [("&& data.len().is_multiple_of(EpollItem::SIZE)", "")], TI, ["file_epoll_whole_records"], None),
    ("F11", "epoll by increasing descriptor", IMG, [("if prev.is_some_and(|p| it.tfd <= p) || it.tfd == epfd", "if it.tfd == epfd")], TI, ["file_epoll_by_increasing_descriptor"], None),
    ("F12", "epoll watches an image descriptor", IMG, [("if self.file_at(it.tfd)?.is_none() {", "if false {")], TI, ["file_epoll_watches_an_image_descriptor"], None),
    ("F13", "epoll not itself", IMG, [("|| it.tfd == epfd ||", "||")], TI, ["file_epoll_not_itself"], None),
    ("F14", "epoll events known", IMG, [("|| it.events & !EPOLL_EVENTS != 0 {", "{")], TI, ["file_epoll_events_known"], None),
    # validate_vmas
    ("V1", "start aligned", IMG, [("let ok = v.start.is_multiple_of(PAGE_SIZE)", "let ok = true")], TI, ["vma_start_aligned"], None),
    ("V2", "end aligned", IMG, [("&& v.end.is_multiple_of(PAGE_SIZE)", "&& true")], TI, ["vma_end_aligned"], None),
    ("V3", "start < end", IMG, [("&& v.start < v.end", "&& true")], TI, ["vma_not_empty"], None),
    ("V4", "end <= USER_END", IMG, [("&& v.end <= USER_END", "&& true")], TI, ["vma_user_half"], None),
    ("V5", "sorted, no overlap", IMG, [("&& v.start >= prev_end", "&& true")], TI, ["vma_overlap", "vma_sorted"], None),
    ("V6", "kind known", IMG, [("&& (1..=vma_kind::LAST).contains(&v.kind)", "&& true")], TI, ["vma_kind_known"], None),
    ("V7", "pages <= length", IMG, [("&& v.pages <= (v.end - v.start) / PAGE_SIZE", "&& true")], TI, ["vma_pages_within"], None),
    ("V8", "file offset + length no overflow", IMG,
     [("&& v.pgoff.checked_mul(PAGE_SIZE).and_then(|o| o.checked_add(v.end - v.start)).is_some()", "&& true")], TI, ["vma_file_offset_overflow"], None),
    ("V9", "vm_flags known", IMG, [("&& v.vm_flags & !vm::ALL == 0", "&& true")], TI, ["vma_flags_known"], None),
    ("V10", "SHARED_ANON <=> obj", IMG, [("&& (v.kind == vma_kind::SHARED_ANON) == (v.obj != 0)", "&& true")],
     TI, ["vma_shared_anon_has_object", "vma_object_only_for_shared_anon"], None),
    ("V11", "obj <= n_objs", IMG, [("&& v.obj <= self.header.n_objs", "&& true")], TI, ["vma_object_exists"], None),
    ("V12", "obj_size zero", IMG, [("&& v.obj_size == 0;", "&& true;")], TI, ["vma_obj_size_zero"], None),
    ("V13", "VMA path in strings", IMG, [("            self.vma_path(&v)?;", "            let _ = self.vma_path(&v);")], TI, ["vma_path_in_strings"], None),
    # validate_objs
    ("O1", "object name in strings", IMG, [("self.string(o.name_off, o.name_len)?;", "let _ = self.string(o.name_off, o.name_len);")], TI, ["obj_name_in_strings"], None),
    ("O2", "object pages contiguous (first == next)", IMG, [("if o.first != next || o.n_pages", "if o.n_pages")], TI, ["obj_pages_contiguous"], None),
    ("O3", "stored pages <= object pages", IMG, [("|| o.n_pages > pages ||", "||")], TI, ["obj_stored_within_size"],
     "n strictly increasing page offsets below `pages` cannot be more than `pages`: O5 refuses the same image"),
    ("O3+O5", "O3 and O5 together", IMG, [("|| o.n_pages > pages ||", "||"), ("if p >= pages || prev", "if prev")], TI, ["obj_stored_within_size"], None),
    ("O4", "object flags zero", IMG, [("|| o.flags != 0 ||", "||")], TI, ["obj_flags_zero"], None),
    ("O4b", "object reserved zero", IMG, [("|| o.reserved != 0 {", "{")], TI, ["obj_reserved_zero"], None),
    ("O5", "page offset inside the object", IMG, [("if p >= pages || prev", "if prev")], TI, ["obj_page_inside_object"], None),
    ("O6", "page offsets strictly increasing", IMG, [("if p >= pages || prev.is_some_and(|q| p <= q) {", "if p >= pages {")], TI, ["obj_pages_increasing"], None),
    ("O7", "every object page claimed", IMG, [("if next != h.n_obj_pages {", "if false {")], TI, ["obj_pages_all_claimed"], None),
    # validate_state: process record
    ("S1", "mm_flags known", IMG, [("if mm_flags & !mmf::ALL != 0 || proc_flags", "if proc_flags")], TI, ["proc_mm_flags_known"], None),
    ("S2", "proc_flags known", IMG, [("|| proc_flags & !procf::ALL != 0 ||", "||")], TI, ["proc_flags_known"], None),
    ("S3", "dumpable <= 2", IMG, [("|| dumpable > 2 ||", "||")], TI, ["proc_dumpable_range"], None),
    ("S4", "proc reserved zero", IMG, [("|| dumpable > 2 || reserved != 0 ||", "|| dumpable > 2 ||")], TI, ["proc_reserved_zero"], None),
    ("S4b", "proc reserved: all four words", IMG, [("for i in 0..4 {\n            reserved |=", "for i in 0..3 {\n            reserved |=")], TI, ["proc_reserved_zero"], None),
    ("S5", "cwd in strings", IMG, [("[(core::mem::offset_of!(ProcImage, cwd_off), core::mem::offset_of!(ProcImage, cwd_len)), ", "[")], TI, ["proc_cwd_in_strings"], None),
    ("S6", "exe in strings", IMG, [(", (core::mem::offset_of!(ProcImage, exe_off), core::mem::offset_of!(ProcImage, exe_len))]", "]")], TI, ["proc_exe_in_strings"], None),
    # validate_state: task records
    ("T1", "FPU end no overflow (plain +)", IMG, [("let end = t.fpu_off.checked_add(u64::from(t.fpu_len)).ok_or(ImageError::State)?;",
                                                   "let end = t.fpu_off + u64::from(t.fpu_len);")], TI, ["task_fpu_end_overflow"], None),
    ("T1w", "FPU end no overflow (wrapping +)", IMG, [("let end = t.fpu_off.checked_add(u64::from(t.fpu_len)).ok_or(ImageError::State)?;",
                                                       "let end = t.fpu_off.wrapping_add(u64::from(t.fpu_len));")], TI, ["task_fpu_end_overflow"],
     "with a wrapping sum the buffer start (!63) is outside the area: T4 refuses it"),
    ("T2", "FPU buffers do not overlap", IMG, [("let ok = t.fpu_off >= next", "let ok = true")], TI, ["task_fpu_no_overlap"], None),
    ("T3", "FPU buffer 64-byte aligned", IMG, [("&& t.fpu_off.is_multiple_of(64)", "&& true")], TI, ["task_fpu_aligned"], None),
    ("T4", "FPU buffer starts in the area", IMG, [("&& area.contains(&t.fpu_off)", "&& true")], TI, ["task_fpu_starts_in_area"],
     "a start >= next >= area start outside the area has end > area end (T5) or length 0 (T6)"),
    ("T4+T5", "T4 and T5 together", IMG, [("&& area.contains(&t.fpu_off)", "&& true"), ("&& end <= area.end", "&& true")], TI, ["task_fpu_starts_in_area"], None),
    ("T5", "FPU buffer ends in the area", IMG, [("&& end <= area.end", "&& true")], TI, ["task_fpu_ends_in_area"], None),
    ("T6", "FPU buffer not empty", IMG, [("&& t.fpu_len != 0", "&& true")], TI, ["task_fpu_not_empty"], None),
    ("T7", "FPU buffer <= MAX_TASK_FPU", IMG, [("&& t.fpu_len <= MAX_TASK_FPU", "&& true")], TI, ["task_fpu_at_most_max"], None),
    ("T8", "rseq_flags zero", IMG, [("&& t.rseq_flags == 0", "&& true")], TI, ["task_rseq_flags_zero"], None),
    ("T9", "task flags zero", IMG, [("&& t.flags == 0", "&& true")], TI, ["task_flags_zero"], None),
    ("T10", "nice >= -20", IMG, [("&& (t.nice as i32) >= -20", "&& true")], TI, ["task_nice_min"], None),
    ("T11", "nice <= 19", IMG, [("&& (t.nice as i32) <= 19", "&& true")], TI, ["task_nice_max"], None),
    ("T12", "policy known", IMG, [("&& matches!(t.policy, 0 | 1 | 2 | 3 | 5)", "&& true")], TI, ["task_policy_known"], None),
    ("T13", "rt_priority <= 99", IMG, [("&& t.rt_priority <= 99", "&& true")], TI, ["task_rt_priority_max"], None),
    ("T14", "task pad zero", IMG, [("&& t.pad == 0", "&& true")], TI, ["task_pad_zero"], None),
    ("T15", "task reserved zero", IMG, [("&& t.reserved == [0; 2];", "&& true;")], TI, ["task_reserved_zero"], None),
    ("T16", "tid nonzero", IMG, [("let tid_ok = t.tid != 0", "let tid_ok = true")], TI, ["task_tid_nonzero"], None),
    ("T17", "main thread first", IMG, [("&& (h.n_tasks == 1 || i != 0 || t.tid == h.pid)", "&& true")], TI, ["task_main_first"], None),
    ("T18", "tids increasing", IMG, [("&& (i < 2 || t.tid > prev_tid)", "&& true")], TI, ["task_tids_increasing"], None),
    ("T19", "main thread's tid once", IMG, [("&& (i == 0 || t.tid != h.pid);", "&& true;")], TI, ["task_main_once"], None),
    ("T20", "one thread made the call", IMG, [("if !tid_ok || selves > 1 {", "if !tid_ok {")], TI, ["task_one_self"], None),
    # validate_tables
    ("P1", "root: user half only", IMG, [("if i >= PT_ENTRIES / 2 || 1 + n_puds >= h.n_upper {", "if 1 + n_puds >= h.n_upper {")], TI, ["pt_root_user_half_only"], None),
    ("P2", "root names no more PUD tables than exist", IMG, [("if i >= PT_ENTRIES / 2 || 1 + n_puds >= h.n_upper {", "if i >= PT_ENTRIES / 2 {")],
     TI, ["pt_root_names_no_more_tables_than_exist"], None),
    ("P3", "root entries checked (check_upper at the root)", IMG, [("self.check_upper(e, upper(1 + n_puds))?;", "let _ = self.check_upper(e, upper(1 + n_puds));")],
     TI, ["pt_root_entry_present", "pt_root_entry_flags", "pt_root_entry_names_next_table"], None),
    ("P4", "PUD tables name no more PMD tables than exist", IMG, [("if 1 + n_puds + n_pmds >= h.n_upper {", "if false {")],
     TI, ["pt_pud_names_no_more_tables_than_exist"], "the count check after the PUD walk (P6) refuses the same image"),
    ("P4+P6", "P4 and P6 together", IMG, [("if 1 + n_puds + n_pmds >= h.n_upper {", "if false {"), ("if 1 + n_puds + n_pmds != h.n_upper {", "if false {")],
     TI, ["pt_pud_names_no_more_tables_than_exist"], None),
    ("P5", "PUD entries checked (check_upper in PUD tables)", IMG,
     [("self.check_upper(e, upper(1 + n_puds + n_pmds))?;", "let _ = self.check_upper(e, upper(1 + n_puds + n_pmds));")],
     TI, ["pt_pud_entry_present", "pt_pud_entry_flags", "pt_pud_entry_names_next_table"], None),
    ("P6", "every upper table used", IMG, [("if 1 + n_puds + n_pmds != h.n_upper {", "if false {")], TI, ["pt_every_upper_table_used"], None),
    ("P7", "PMD tables name no more leaves than exist", IMG, [("if leaf >= h.n_leaves {", "if false {")],
     TI, ["pt_pmd_names_no_more_leaves_than_exist"], "the final count (P11) refuses the same image"),
    ("P7+P11", "P7 and P11 together", IMG, [("if leaf >= h.n_leaves {", "if false {"), ("if leaf != h.n_leaves {", "if false {")],
     TI, ["pt_pmd_names_no_more_leaves_than_exist"], None),
    ("P8", "PMD entries checked (check_upper for leaves)", IMG,
     [("self.check_upper(e, h.leaves_off + PAGE_SIZE * u64::from(leaf))?;", "let _ = self.check_upper(e, h.leaves_off + PAGE_SIZE * u64::from(leaf));")],
     TI, ["pt_pmd_entry_present", "pt_pmd_entry_flags", "pt_pmd_entry_names_its_leaf"], None),
    ("C1", "check_upper: present", IMG, [("let ok = e & pte::PRESENT != 0", "let ok = true")],
     TI, ["pt_root_entry_present", "pt_pud_entry_present", "pt_pmd_entry_present"], None),
    ("C2", "check_upper: flags", IMG, [("&& e & !pte::PFN_MASK & !UPPER_FLAGS == 0", "&& true")],
     TI, ["pt_root_entry_flags", "pt_pud_entry_flags", "pt_pmd_entry_flags"], None),
    ("C3", "check_upper: names the next table", IMG, [("&& e & pte::PFN_MASK == self.header.base + expect;", "&& true;")],
     TI, ["pt_root_entry_names_next_table", "pt_pud_entry_names_next_table", "pt_pmd_entry_names_its_leaf"], None),
    ("P9", "leaf index address = walk address", IMG, [("if li.vaddr != vaddr || li.mapped", "if li.mapped")], TI, ["pt_leaf_index_address"], None),
    ("P10", "leaf index mapped <= 512", IMG, [("if li.vaddr != vaddr || li.mapped as usize > PT_ENTRIES {", "if li.vaddr != vaddr {")],
     TI, ["pt_leaf_index_mapped_at_most_512"], None),
    ("P11", "every leaf named", IMG, [("if leaf != h.n_leaves {", "if false {")], TI, ["pt_every_leaf_named"], None),
    # validate_leaf
    ("LF1", "leaf buffer is one page", IMG, [("if bytes.len() != PAGE_SIZE as usize || out.len()", "if out.len()")], TI, ["leaf_buffer_one_page"], None),
    ("LF2", "output holds 512 entries", IMG, [("|| out.len() != PT_ENTRIES {", "{")], TI, ["leaf_output_512_entries"], None),
    ("LF3", "leaf CRC", IMG, [("if crc32c(bytes) != li.crc {", "if false {")], TI, ["leaf_checksum"], None),
    ("LF4", "frame not below the data pages", IMG, [("if f < first || f >= end {", "if f >= end {")], TI, ["leaf_frame_not_below_data"], None),
    ("LF5", "frame not past the data pages", IMG, [("if f < first || f >= end {", "if f < first {")], TI, ["leaf_frame_not_past_data", "leaf_frame_not_an_object_page"], None),
    ("LF6", "frame not an object page", IMG, [("let end = first + (h.n_data - h.n_obj_pages);", "let end = first + h.n_data;")], TI, ["leaf_frame_not_an_object_page"], None),
    ("LF7", "unmapped entries zero", IMG, [("} else if v != 0 {", "} else if false {")], TI, ["leaf_unmapped_entry_zero"], None),
    ("LF8", "per-leaf mapped count", IMG, [("if mapped != li.mapped {", "if false {")], TI, ["leaf_mapped_count"], None),

    # --- Superblock::validate and Layout::new
    ("SB1", "superblock magic", POOL, [("if self.magic != SB_MAGIC {", "if false {")], TP, ["sb_magic"], None),
    ("SB2", "superblock version", POOL, [("if self.version != FORMAT_VERSION {", "if false {")], TP, ["sb_version"], None),
    ("SB3", "superblock CRC", POOL, [("if self.checksum != self.compute_checksum() {\n            return Err(FormatError::BadChecksum);\n        }\n        if self.pool_size",
                                      "if false {\n            return Err(FormatError::BadChecksum);\n        }\n        if self.pool_size")], TP, ["sb_checksum"], None),
    ("SB4", "pool size is the attached one", POOL, [("if self.pool_size != pool_size {", "if false {")], TP, ["sb_pool_size_is_the_attached_one"], None),
    ("LY1", "max_hosts != 0", POOL, [("if max_hosts == 0 || max_hosts as usize", "if max_hosts as usize")], TP, ["sb_max_hosts_not_zero"], None),
    ("LY2", "max_hosts <= MAX_HOSTS", POOL, [("|| max_hosts as usize > MAX_HOSTS ||", "||")], TP, ["sb_max_hosts_at_most_max"], None),
    ("LY3", "pool size 2 MiB aligned", POOL, [("|| !pool_size.is_multiple_of(PART_ALIGN) {", "{")], TP, ["sb_pool_size_aligned"], None),
    ("LY4", "pool holds the slot area", POOL, [("pool_size.checked_sub(parts_offset)? /", "pool_size.wrapping_sub(parts_offset) /")], TP, ["sb_pool_holds_the_slots"], None),
    ("LY5", "partitions not empty", POOL, [("if part_size == 0 {", "if false {")], TP, ["sb_partition_not_empty"], None),
    ("SB5", "header_size", POOL, [("let ok = self.header_size as usize == Superblock::SIZE", "let ok = true")], TP, ["sb_header_size"], None),
    ("SB6", "page_size", POOL, [("&& u64::from(self.page_size) == PAGE_SIZE", "&& true")], TP, ["sb_page_size"], None),
    ("SB7", "slots_offset", POOL, [("&& self.slots_offset == layout.slots_offset", "&& true")], TP, ["sb_slots_offset"], None),
    ("SB8", "slot_stride", POOL, [("&& self.slot_stride == layout.slot_stride", "&& true")], TP, ["sb_slot_stride"], None),
    ("SB9", "parts_offset", POOL, [("&& self.parts_offset == layout.parts_offset", "&& true")], TP, ["sb_parts_offset"], None),
    ("SB10", "part_size", POOL, [("&& self.part_size == layout.part_size", "&& true")], TP, ["sb_part_size"], None),
    ("SB11", "superblock reserved zero", POOL, [("&& self.reserved == 0;", "&& true;")], TP, ["sb_reserved_zero"], None),
    # --- HostSlot::validate
    ("HS1", "zero magic: free", POOL, [("if self.magic == [0; 8] {", "if false {")], TP, ["slot_zero_magic_is_free"], None),
    ("HS2", "slot magic", POOL, [("if self.magic != SLOT_MAGIC {", "if false {")], TP, ["slot_magic"], None),
    ("HS3", "slot CRC", POOL, [("return Err(FormatError::BadMagic);\n        }\n        if self.checksum != self.compute_checksum() {",
                                "return Err(FormatError::BadMagic);\n        }\n        if false {")], TP, ["slot_checksum"], None),
    ("HS4", "slot host id", POOL, [("if self.host_id != id || !state_ok", "if !state_ok")], TP, ["slot_host_id"], None),
    ("HS5", "slot state", POOL, [("|| !state_ok ||", "||")], TP, ["slot_state"], None),
    ("HS6", "part_used <= part_size", POOL, [("|| self.part_used > layout.part_size ||", "||")], TP, ["slot_part_used_within_partition"], None),
    ("HS7", "slot reserved zero", POOL, [("|| self.reserved != 0 {\n            return Err(FormatError::BadGeometry);", "{\n            return Err(FormatError::BadGeometry);")],
     TP, ["slot_reserved_zero"], None),
    ("HS8", "nodename NUL-terminated", POOL, [("nodename[NODENAME_LEN - 1] = 0;", "")], TP, ["slot_nodename_terminated"], None),
    # --- DirEntry::validate
    ("D1", "zero magic: free", DIR, [("if self.magic == 0 {", "if false {")], TP, ["dir_zero_magic_is_free"], None),
    ("D2", "entry magic", DIR, [("if self.magic != DIR_MAGIC || self.checksum", "if self.checksum")], TP, ["dir_magic"], None),
    ("D3", "entry CRC", DIR, [("if self.magic != DIR_MAGIC || self.checksum != self.compute_crc() {", "if self.magic != DIR_MAGIC {")], TP, ["dir_checksum"], None),
    ("D4", "entry state", DIR, [(re.compile(r"let ok = matches!\(self\.state, [^)]*\)"), "let ok = true")], TP, ["dir_state"], None),
    ("D5", "id of this host", DIR, [("&& id_host(self.id) == host", "&& true")], TP, ["dir_id_of_this_host"], None),
    ("D6", "extent after the directory", DIR, [("&& self.offset >= start", "&& true")], TP, ["dir_extent_after_the_directory"], None),
    ("D7", "offset aligned", DIR, [("&& self.offset.is_multiple_of(PAGE_SIZE)", "&& true")], TP, ["dir_offset_aligned"], None),
    ("D8", "length not zero (at least header and lease page)", DIR, [("&& self.length >= super::image::META_OFF", "&& true")], TP, ["dir_length_not_zero"], None),
    ("D9", "length aligned", DIR, [("&& self.length.is_multiple_of(PAGE_SIZE)", "&& true")], TP, ["dir_length_aligned"], None),
    ("D10", "offset + length no overflow", DIR, [("&& self.offset.checked_add(self.length).is_some_and(|e| e <= end)",
                                                  "&& self.offset.wrapping_add(self.length) <= end")], TP, ["dir_extent_end_overflow"], None),
    ("D11", "extent inside the partition", DIR, [("&& self.offset.checked_add(self.length).is_some_and(|e| e <= end)", "&& true")],
     TP, ["dir_extent_inside_the_partition"], None),
]


def sh(cmd, cwd, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def scratch(repo, rev):
    """A workspace holding only cxlfork-abi (the working tree's or REV's) and
    the checkout's tests for it."""
    d = tempfile.mkdtemp(prefix="abi-mutants.")
    if rev:
        arch = subprocess.run(["git", "archive", rev, CRATE], cwd=repo, stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", d], input=arch, check=True)
    else:
        shutil.copytree(os.path.join(repo, CRATE), os.path.join(d, CRATE), ignore=shutil.ignore_patterns("target"))
    # The tests are always the checkout's (they are what is being checked).
    shutil.rmtree(os.path.join(d, CRATE, "tests"), ignore_errors=True)
    shutil.copytree(os.path.join(repo, CRATE, "tests"), os.path.join(d, CRATE, "tests"))
    ws = open(os.path.join(repo, "Cargo.toml")).read()
    ws = re.sub(r"members = \[[^]]*\]", 'members = ["%s"]' % CRATE, ws)
    open(os.path.join(d, "Cargo.toml"), "w").write(ws)
    shutil.copy(os.path.join(repo, "Cargo.lock"), d)
    return d


def apply(text, edits):
    for old, new in edits:
        if isinstance(old, re.Pattern):
            n = len(old.findall(text))
            if n != 1:
                return None, f"pattern {old.pattern!r} found {n} times"
            text = old.sub(new, text)
        else:
            n = text.count(old)
            if n != 1:
                return None, f"{old!r} found {n} times"
            text = text.replace(old, new)
    return text, None


def outcome(out, test):
    """What the test said: 'ok', or why it failed."""
    if re.search(r"^test %s \.\.\. ok$" % re.escape(test), out, re.M):
        return "ok"
    m = re.search(r"---- %s stdout ----\n(.*?)(?:\n\n|\Z)" % re.escape(test), out, re.S)
    body = m.group(1) if m else out[-400:]
    left = re.search(r"^\s*left: (.*)$", body, re.M)
    if left:
        v = left.group(1).strip()
        if v.startswith("Ok("):
            return "accepted"
        if v.startswith("Err("):
            return "refused with " + v[4:].split(")")[0] + " instead"
        return "gave " + v[:60]
    pan = re.search(r"panicked at [^\n]*\n(.*)", body)
    return "panic: " + (pan.group(1).strip() if pan else "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", help="mutate this git revision's crate instead of the working tree's")
    ap.add_argument("--only", help="comma-separated mutant ids")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch workspace")
    a = ap.parse_args()
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=os.path.dirname(os.path.abspath(__file__)),
                          stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    d = scratch(repo, a.rev)
    crate = os.path.join(d, CRATE)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(d, "target"), RUST_BACKTRACE="0")
    r = sh(["cargo", "test", "--offline", "-q", "--test", TI, "--test", TP], d, env)
    if r.returncode != 0:
        print(r.stdout[-3000:])
        sys.exit("the unmutated crate does not pass its rule tests")
    only = set(a.only.split(",")) if a.only else None
    bad = 0
    rows = []
    for mid, rule, path, edits, binary, tests, redundant in MUTANTS:
        if only and mid not in only:
            continue
        f = os.path.join(crate, path)
        orig = open(f).read()
        text, err = apply(orig, edits)
        if err:
            rows.append((mid, rule, ", ".join(tests), "EDIT NOT APPLIED: " + err))
            bad += 1
            continue
        open(f, "w").write(text)
        try:
            b = sh(["cargo", "test", "--offline", "--no-run", "--test", binary], d, env)
            if b.returncode != 0:
                rows.append((mid, rule, ", ".join(tests), "MUTANT DOES NOT BUILD"))
                bad += 1
                continue
            res = []
            for t in tests:
                r = sh(["cargo", "test", "--offline", "--test", binary, "--", "--exact", t], d, env)
                res.append((t, outcome(r.stdout, t)))
        finally:
            open(f, "w").write(orig)
        killed = all(o != "ok" for _, o in res)
        if redundant:
            verdict = ("survived (redundant: %s)" % redundant) if not killed else "killed (though marked redundant)"
        else:
            verdict = "killed" if killed else "SURVIVED"
            bad += not killed
        detail = "; ".join(f"{t}: {o}" for t, o in res)
        rows.append((mid, rule, ", ".join(tests), f"{verdict} -- {detail}"))
        print(f"{mid:7} {verdict.split(' ')[0]:9} {rule}", file=sys.stderr)
    if a.markdown:
        print("| id | rule | test(s) | rule removed: |\n|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    else:
        for row in rows:
            print("  ".join(row))
    if a.keep:
        print("scratch:", d, file=sys.stderr)
    else:
        shutil.rmtree(d)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
