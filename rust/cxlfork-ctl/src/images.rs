//! Image commands: checkpoint, ls, inspect, rm.

use crate::mib;
use anyhow::{anyhow, bail, Context, Result};
use cxlfork::image::{id_string, parse_id, Image};
use cxlfork::{uapi, After, Device, Policy};
use cxlfork_abi::image::{file_kind, procf, pte, vm, vma_kind, PT_ENTRIES, REGS_INTERRUPTED, REGS_RESTART, REGS_SELF, REGS_STOPPED, TaskImage};
use std::io::Write;
use cxlfork_abi::pool::PAGE_SIZE;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::time::Duration;

fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(uapi::cstr_field(b)).into_owned()
}

fn bar(len: u64, what: &str) -> ProgressBar {
    // Only for a person watching: not when output is captured or the
    // terminal cannot redraw (TERM=dumb, as in the QEMU runner's guests).
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if dumb || !std::io::stderr().is_terminal() || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub(crate) fn checkpoint(pid: i32, name: &str, leave_stopped: bool, kill: bool, json: bool) -> Result<()> {
    if pid <= 0 {
        bail!("--pid must be a process id (a process checkpoints itself through the library, not the CLI)");
    }
    let after = if kill {
        After::Kill
    } else if leave_stopped {
        After::LeaveStopped
    } else {
        After::Resume
    };
    let dev = Device::open()?;
    let name_owned = name.to_string();
    let worker = std::thread::spawn(move || Device::open().and_then(|d| d.checkpoint(pid, &name_owned, after)));
    // Progress from the module's counters while the ioctl runs (at a terminal).
    let pb = bar(0, "checkpoint");
    while !worker.is_finished() {
        if let Ok(i) = dev.pool_info() {
            if i.ckpt_pages_total > 0 {
                pb.set_length(i.ckpt_pages_total);
                pb.set_position(i.ckpt_pages_done);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    pb.finish_and_clear();
    let r = worker.join().map_err(|_| anyhow!("checkpoint thread panicked"))?.with_context(|| format!("pid {pid}"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "id": id_string(r.id), "raw_id": r.id, "size": r.size, "pages": r.pages, "duration_ns": r.duration_ns,
            }))?
        );
    } else {
        println!(
            "checkpointed pid {pid} as image {}: {} pages ({}), {} of pool, {:.2} ms",
            id_string(r.id),
            r.pages,
            mib(r.pages * PAGE_SIZE),
            mib(r.size),
            r.duration_ns as f64 / 1e6
        );
    }
    Ok(())
}

fn info_json(i: &uapi::ImageInfo) -> Value {
    json!({
        "id": id_string(i.id), "raw_id": i.id, "valid": i.valid != 0, "owner_host": i.owner_host,
        "name": cstr(&i.name), "comm": cstr(&i.comm), "pid": i.pid, "uid": i.uid, "gid": i.gid,
        "size": i.size, "base": i.base, "pages": i.pages, "anon_pages": i.anon_pages, "file_pages": i.file_pages,
        "accessed_pages": i.accessed_pages, "dirty_pages": i.dirty_pages, "n_vmas": i.n_vmas,
        "n_files": i.n_files, "leases": i.leases, "restores_here": i.restores, "live_clones_here": i.live_clones,
        "created_ns": i.created_ns, "duration_ns": i.duration_ns,
    })
}

pub(crate) fn ls(json: bool) -> Result<()> {
    let dev = Device::open()?;
    let list = dev.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list.iter().map(info_json).collect::<Vec<_>>())?);
        return Ok(());
    }
    println!(
        "{:<8} {:<5} {:<16} {:<16} {:>7} {:>10} {:>8} {:>6} {:>8}  STATUS",
        "ID", "HOST", "NAME", "COMM", "PID", "SIZE", "PAGES", "LEASES", "CLONES"
    );
    for i in &list {
        let status = if i.valid != 0 { "ok" } else { "INVALID (header fails validation)" };
        println!(
            "{:<8} {:<5} {:<16} {:<16} {:>7} {:>10} {:>8} {:>6} {:>8}  {}",
            id_string(i.id),
            i.owner_host,
            cstr(&i.name),
            cstr(&i.comm),
            i.pid,
            mib(i.size),
            i.pages,
            i.leases,
            format!("{}/{}", i.live_clones, i.restores),
            status
        );
    }
    Ok(())
}

fn find(dev: &Device, id: &str) -> Result<uapi::ImageInfo> {
    let raw = parse_id(id).ok_or_else(|| anyhow!("{id}: not an image id (HOST:SEQ)"))?;
    dev.list()?.into_iter().find(|i| i.id == raw).ok_or_else(|| anyhow!("image {id}: no such image"))
}

fn perms(flags: u64) -> String {
    let b = |bit, c| if flags & bit != 0 { c } else { '-' };
    [b(vm::READ, 'r'), b(vm::WRITE, 'w'), b(vm::EXEC, 'x'), if flags & vm::SHARED != 0 { 's' } else { 'p' }].iter().collect()
}

/// What `inspect` prints.
pub(crate) struct InspectMode {
    json: bool,
    pages: bool,
    maps: bool,
    page: Option<u64>,
}

impl InspectMode {
    pub(crate) fn new(json: bool, pages: bool, maps: bool, page: Option<u64>) -> Self {
        Self { json, pages, maps, page }
    }
}

pub(crate) fn inspect(id: &str, mode: InspectMode) -> Result<()> {
    let InspectMode { json, pages, maps, page } = mode;
    let dev = Device::open()?;
    let info = find(&dev, id)?;
    let invalid = || format!("image {id} is INVALID, not trusted");
    let img = Image::open(&dev, &info).with_context(invalid)?;
    let h = &img.header;
    let m = img.meta();
    if let Some(addr) = page {
        let e = img.entry(addr).with_context(invalid)?;
        if e == 0 {
            bail!("image {id}: no page at {addr:#x} (the clone would read it as the parent would: zero or the file)");
        }
        std::io::stdout().write_all(&img.page(e)?)?;
        return Ok(());
    }
    if maps {
        for i in 0..h.n_vmas {
            let vma = m.vma(i)?;
            println!("{:08x}-{:08x} {} {} {}", vma.start, vma.end, perms(vma.vm_flags), vma_kind::name(vma.kind), String::from_utf8_lossy(m.vma_path(&vma)?));
        }
        return Ok(());
    }
    let leaf_vaddrs = (0..h.n_leaves).map(|k| m.leaf(k).map(|l| l.vaddr)).collect::<Result<Vec<_>, _>>()?;
    let pb = bar(u64::from(h.n_leaves), "leaf tables");
    let mut leaves = Vec::new();
    for k in 0..h.n_leaves {
        leaves.extend(img.leaf(k).with_context(invalid)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // Per-VMA Accessed/Dirty counts from the leaves.
    let mut vmas = Vec::new();
    for i in 0..h.n_vmas {
        let vma = m.vma(i)?;
        let (mut a, mut d) = (0u64, 0u64);
        let mut page_list = Vec::new();
        for (k, &vaddr) in leaf_vaddrs.iter().enumerate() {
            for (j, &e) in leaves[k * PT_ENTRIES..(k + 1) * PT_ENTRIES].iter().enumerate() {
                let addr = vaddr + j as u64 * PAGE_SIZE;
                if e == 0 || addr < vma.start || addr >= vma.end {
                    continue;
                }
                a += u64::from(e & pte::ACCESSED != 0);
                d += u64::from(e & pte::DIRTY != 0);
                if pages {
                    let ad = format!("{}{}{}", if e & pte::ACCESSED != 0 { 'A' } else { '-' }, if e & pte::DIRTY != 0 { 'D' } else { '-' }, if e & pte::RW != 0 { 'W' } else { '-' });
                    page_list.push(json!({"addr": format!("{addr:#x}"), "ad": ad, "pte_flags": format!("{:#x}", e & !pte::PFN_MASK), "pool_frame": pte::frame(e)}));
                }
            }
        }
        let path = String::from_utf8_lossy(m.vma_path(&vma)?).into_owned();
        vmas.push((vma, path, a, d, page_list));
    }
    let task = m.task(0)?;
    let proc = m.proc()?;
    let regs = task.regs;
    let origin_of = |o: u64| match o {
        REGS_SELF => "self (returns from the checkpoint call)",
        REGS_STOPPED => "stopped at a user instruction",
        REGS_RESTART => "stopped in a system call (re-issued on restore)",
        REGS_INTERRUPTED => "stopped in a system call already restarted once (returns EINTR on restore)",
        _ => "?",
    };
    let origin = origin_of(regs.origin);
    let threads: Vec<TaskImage> = (0..h.n_tasks).map(|i| m.task(i)).collect::<Result<_, _>>()?;
    let handlers: Vec<Value> = proc
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| a.handler != 0)
        .map(|(i, a)| json!({"signal": i + 1, "handler": format!("{:#x}", a.handler), "flags": format!("{:#x}", a.flags), "mask": format!("{:#x}", a.mask)}))
        .collect();
    let files: Vec<Value> = (0..h.n_files)
        .map(|i| -> Result<Value> {
            let f = m.file(i)?;
            let mut v = json!({"fd": f.fd, "kind": file_kind::name(f.kind), "flags": format!("{:#o}", f.flags), "cloexec": f.cloexec != 0, "pos": f.pos, "path": String::from_utf8_lossy(m.file_path(&f)?)});
            if let Some(st) = crate::fds::state(&m, &f)? {
                v["state"] = st;
            }
            Ok(v)
        })
        .collect::<Result<_>>()?;
    if json {
        let out = json!({
            "id": id_string(h.id), "valid": true, "owner_host": h.owner_host, "name": cstr(&h.name), "comm": cstr(&h.comm),
            "pid": h.pid, "uid": h.uid, "gid": h.gid, "kernel": cstr(&h.kernel), "size": h.size, "base": h.base,
            "pages": h.n_data, "anon_pages": h.anon_pages, "file_pages": h.file_pages,
            "accessed_pages": h.accessed_pages, "dirty_pages": h.dirty_pages,
            "leaf_tables": h.n_leaves, "upper_tables": h.n_upper, "duration_ns": h.duration_ns,
            "leaf_vaddrs": leaf_vaddrs.iter().map(|v| format!("{v:#x}")).collect::<Vec<_>>(),
            "layout": {"vmas_off": h.vmas_off, "leaf_index_off": h.leaf_index_off, "upper_off": h.upper_off, "leaves_off": h.leaves_off, "data_off": h.data_off},
            "mm": {"start_brk": h.mm.start_brk, "brk": h.mm.brk, "start_stack": h.mm.start_stack, "arg_start": h.mm.arg_start, "env_start": h.mm.env_start},
            "regs": {"origin": origin, "ip": format!("{:#x}", regs.ip), "sp": format!("{:#x}", regs.sp), "ax": format!("{:#x}", regs.ax), "orig_ax": format!("{:#x}", regs.orig_ax), "flags": format!("{:#x}", regs.flags), "fs_base": format!("{:#x}", regs.fs_base), "gs_base": format!("{:#x}", regs.gs_base)},
            "fpu_bytes": task.fpu_len, "fpu_xfeatures": format!("{:#x}", task.fpu_xfeatures), "pkru": format!("{:#x}", task.pkru),
            "threads": threads.iter().map(|t| json!({"tid": t.tid, "comm": cstr(&t.comm), "origin": origin_of(t.regs.origin),
                         "ip": format!("{:#x}", t.regs.ip), "sp": format!("{:#x}", t.regs.sp), "fs_base": format!("{:#x}", t.regs.fs_base),
                         "blocked": format!("{:#x}", t.blocked), "fpu_bytes": t.fpu_len,
                         "rseq": format!("{:#x}", t.rseq), "rseq_len": t.rseq_len,
                         "robust_list": format!("{:#x}", t.robust_list), "clear_child_tid": format!("{:#x}", t.clear_child_tid)})).collect::<Vec<_>>(),
            "signals": {"blocked": format!("{:#x}", task.blocked), "altstack_sp": format!("{:#x}", task.ss_sp), "altstack_size": task.ss_size, "handlers": handlers},
            "process": {"cwd": String::from_utf8_lossy(m.string(proc.cwd_off, proc.cwd_len)?), "exe": String::from_utf8_lossy(m.string(proc.exe_off, proc.exe_len)?),
                        "umask": format!("{:#o}", proc.umask), "personality": format!("{:#x}", proc.personality), "mm_flags": format!("{:#x}", proc.mm_flags),
                        "no_new_privs": proc.proc_flags & procf::NO_NEW_PRIVS != 0, "dumpable": proc.dumpable,
                        "monotonic_ns": proc.monotonic_ns, "boottime_ns": proc.boottime_ns, "realtime_ns": proc.realtime_ns},
            "vmas": vmas.iter().map(|(v, p, a, d, pl)| {
                let mut o = json!({"start": format!("{:#x}", v.start), "end": format!("{:#x}", v.end), "perms": perms(v.vm_flags), "pgoff": v.pgoff, "kind": vma_kind::name(v.kind), "path": p, "pages": v.pages, "accessed": a, "dirty": d});
                if pages { o["page_list"] = Value::Array(pl.clone()); }
                o
            }).collect::<Vec<_>>(),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("image {} (valid): \"{}\" pid {} ({}) uid {} host {} kernel {}", id_string(h.id), cstr(&h.name), h.pid, cstr(&h.comm), h.uid, h.owner_host, cstr(&h.kernel));
    println!(
        "  {} in pool at {:#x}; {} pages ({} anon, {} file), {} accessed, {} dirty; {} leaf + {} upper tables; checkpoint {:.2} ms",
        mib(h.size), h.base, h.n_data, h.anon_pages, h.file_pages, h.accessed_pages, h.dirty_pages, h.n_leaves, h.n_upper, h.duration_ns as f64 / 1e6
    );
    println!("  process: exe {} cwd {} umask {:#o}", String::from_utf8_lossy(m.string(proc.exe_off, proc.exe_len)?), String::from_utf8_lossy(m.string(proc.cwd_off, proc.cwd_len)?), proc.umask);
    println!("  {} thread{}:", threads.len(), if threads.len() == 1 { "" } else { "s" });
    for t in &threads {
        let r = t.regs;
        println!(
            "    thread {} ({}): {}: ip {:#x} sp {:#x} ax {:#x} orig_ax {:#x} fs_base {:#x}; fpu {} bytes (xfeatures {:#x}); rseq {:#x}; blocked {:#x}",
            t.tid, cstr(&t.comm), origin_of(r.origin), r.ip, r.sp, r.ax, r.orig_ax, r.fs_base, t.fpu_len, t.fpu_xfeatures, t.rseq, t.blocked
        );
    }
    println!("  signals: {} handlers; main thread's altstack {:#x}+{}", handlers.len(), task.ss_sp, task.ss_size);
    println!("  VMAs (as /proc/PID/maps; then pages checkpointed, Accessed, Dirty):");
    for (v, p, a, d, pl) in &vmas {
        let off = if matches!(v.kind, vma_kind::FILE_PRIVATE | vma_kind::FILE_SHARED) { v.pgoff * PAGE_SIZE } else { 0 };
        println!("    {:012x}-{:012x} {} {:08x} {:<14} {:<40} pages={} A={} D={}", v.start, v.end, perms(v.vm_flags), off, vma_kind::name(v.kind), p, v.pages, a, d);
        for pg in pl {
            println!("      page {} {} frame {}", pg["addr"].as_str().unwrap_or(""), pg["ad"].as_str().unwrap_or(""), pg["pool_frame"]);
        }
    }
    println!("  files:");
    for f in &files {
        println!("    fd {:<3} {:<7} flags {} pos {} {}", f["fd"], f["kind"].as_str().unwrap_or(""), f["flags"].as_str().unwrap_or(""), f["pos"], f["path"].as_str().unwrap_or(""));
        if let Some(st) = f.get("state") {
            println!("           {}", crate::fds::state_text(st));
        }
    }
    Ok(())
}

pub(crate) fn rm(id: &str) -> Result<()> {
    let raw = parse_id(id).ok_or_else(|| anyhow!("{id}: not an image id (HOST:SEQ)"))?;
    Device::open()?.delete(raw).with_context(|| format!("image {id}"))?;
    println!("deleted image {id}");
    Ok(())
}

/// `--policy` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum PolicyArg {
    /// Migrate on write: read from the pool, copy on write; dirty pages copied up front.
    Mow,
    /// Migrate on access: every touched page is copied locally.
    Moa,
    /// Hybrid: pages accessed in the parent are copied on access, the rest stay in the pool.
    Ht,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Mow => Policy::Mow,
            PolicyArg::Moa => Policy::Moa,
            PolicyArg::Ht => Policy::Ht,
        }
    }
}

/// The restore stub, next to this executable or on PATH.
fn stub() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("cxlfork-restore")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "cxlfork-restore".into())
}

#[allow(clippy::too_many_arguments)]
/// What `restore` does.
pub(crate) struct RestoreOpts {
    pub(crate) policy: PolicyArg,
    pub(crate) count: u32,
    pub(crate) wait: bool,
    pub(crate) skip_files: bool,
    pub(crate) image_stdio: bool,
    pub(crate) output: Option<std::path::PathBuf>,
    pub(crate) json: bool,
    pub(crate) dry_run: bool,
}

pub(crate) fn restore(id: &str, o: &RestoreOpts) -> Result<()> {
    let RestoreOpts { policy, count, wait, skip_files, image_stdio, json, .. } = *o;
    let output = o.output.as_deref();
    let dev = Device::open()?;
    let info = find(&dev, id)?;
    let img = Image::open(&dev, &info).with_context(|| format!("image {id} is INVALID, not restored"))?;
    let m = img.meta();
    let proc = m.proc()?;
    let mut args = Vec::new();
    let cwd = m.string(proc.cwd_off, proc.cwd_len)?;
    if !cwd.is_empty() {
        args.extend(["-C".to_string(), String::from_utf8_lossy(cwd).into_owned()]);
    }
    if img.header.n_tasks > 1 {
        args.extend(["-T".to_string(), img.header.n_tasks.to_string()]);
    }
    let mut flags = 0;
    if skip_files {
        flags |= uapi::RESTORE_SKIP_FILES;
    }
    if image_stdio {
        flags |= uapi::RESTORE_IMAGE_STDIO;
    }
    let fd_args = crate::fds::stub_args(&m, image_stdio, skip_files).with_context(|| format!("image {id} is not restorable"))?;
    if !fd_args.is_empty() {
        flags |= uapi::RESTORE_PREPARED_FDS;
        args.extend(fd_args);
    }
    args.extend([info.id.to_string(), Policy::from(policy).abi().to_string()]);
    args.push(flags.to_string());
    for i in 0..img.header.n_vmas {
        let v = m.vma(i)?;
        if matches!(v.kind, vma_kind::VDSO | vma_kind::VVAR | vma_kind::VVAR_VCLOCK) {
            args.extend([vma_kind::name(v.kind).to_string(), format!("{:#x}", v.start), format!("{:#x}", v.end)]);
        }
    }
    let stub = stub();
    if o.dry_run {
        println!("{} {}", stub.display(), args.iter().map(|a| shell_word(a)).collect::<Vec<_>>().join(" "));
        return Ok(());
    }
    let clock_offset = crate::timens::continue_clocks(&proc)?;
    let mut children = Vec::new();
    if let Some(dir) = output {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    for n in 1..=count {
        let mut cmd = std::process::Command::new(&stub);
        cmd.args(&args);
        // A child in another time namespace than its parent cannot share
        // its memory: fork, not vfork (a pre_exec hook rules vfork out).
        // SAFETY: the hook does nothing, so it is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || Ok(()));
        }
        if let Some(dir) = output {
            let path = dir.join(format!("clone-{n}.out"));
            let f = std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
            cmd.stdout(f.try_clone()?).stderr(f).stdin(std::process::Stdio::null());
        }
        children.push(cmd.spawn().with_context(|| format!("starting {}", stub.display()))?);
    }
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    if json {
        println!("{}", serde_json::to_string(&json!({"image": id, "pids": pids, "clock_offset_ns": clock_offset as i64}))?);
    } else {
        eprintln!("restoring image {id} ({:?}) into {} process(es): {}", policy, count, pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "));
        if clock_offset != 0 {
            eprintln!("  in a time namespace: CLOCK_MONOTONIC continues the checkpoint's (offset {:+.3} s)", clock_offset as f64 / 1e9);
        }
    }
    if wait {
        let mut failed = 0;
        for mut c in children {
            let st = c.wait()?;
            if !st.success() {
                failed += 1;
                eprintln!("clone {}: {st}", c.id());
            }
        }
        if failed > 0 {
            bail!("{failed} of {count} clones failed");
        }
    }
    Ok(())
}

/// `s` quoted for a POSIX shell where it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:,=+[]".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn smaps_rollup(pid: i32) -> Vec<(String, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kb = v.trim().strip_suffix(" kB")?.trim().parse().ok()?;
            Some((k.to_string(), kb))
        })
        .collect()
}

pub(crate) fn stat(pid: i32, json: bool) -> Result<()> {
    let s = Device::open()?.clone_stat(pid).with_context(|| format!("pid {pid}"))?;
    let mem = smaps_rollup(pid);
    let kb = |k: &str| mem.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    let policy = match s.policy {
        uapi::POLICY_MOW => "mow",
        uapi::POLICY_MOA => "moa",
        uapi::POLICY_HT => "ht",
        _ => "?",
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "pid": pid, "image": id_string(s.image_id), "policy": policy, "clone_nr": s.clone_nr,
                "restore_ns": s.restore_ns, "pool_pages": s.pool_pages, "local_pages": s.local_pages,
                "prefetched_pages": s.prefetched_pages, "zero_pages": s.zero_pages, "file_pages": s.file_pages,
                "faults": s.faults, "leaves": s.leaves,
                "rss_kb": kb("Rss"), "anon_kb": kb("Anonymous"), "rss_file_kb": kb("Rss") - kb("Anonymous"),
            }))?
        );
    } else {
        println!("pid {pid}: clone #{} of image {} ({policy}), restored in {:.2} ms", s.clone_nr, id_string(s.image_id), s.restore_ns as f64 / 1e6);
        println!("  pages mapped from the pool  {}", s.pool_pages);
        println!("  pages copied local          {} ({} dirty pages migrated by MoW)", s.local_pages, s.prefetched_pages);
        println!("  zero / file pages (faults)  {} / {}", s.zero_pages, s.file_pages);
        println!("  faults {}, leaf tables loaded {}", s.faults, s.leaves);
        // Pool pages mapped zero-copy count in Rss (as file pages) but are
        // not this host's memory.
        println!(
            "  memory: Rss {} kB, anonymous {} kB (Rss includes up to {} kB of pool pages mapped, not local memory)",
            kb("Rss"),
            kb("Anonymous"),
            s.pool_pages * 4
        );
    }
    Ok(())
}

pub(crate) fn clear_refs(pid: i32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "1").with_context(|| format!("/proc/{pid}/clear_refs"))?;
    println!("cleared the Accessed bits of pid {pid}");
    Ok(())
}
