//! An image's eventfd, epoll and pipe descriptors: what `inspect` shows of
//! them, and how `restore` has cxlfork-restore create them (the kernel
//! cannot: see CXLFORK_RESTORE_PREPARED_FDS in the C header).

use anyhow::{bail, Result};
use cxlfork_abi::image::{file_kind, FileImage, Meta};
use serde_json::{json, Value};

/// The state `inspect` adds to a descriptor of a prepared kind.
pub(crate) fn state(m: &Meta<'_>, f: &FileImage) -> Result<Option<Value>> {
    Ok(match f.kind {
        file_kind::EVENTFD => Some(json!({"object": f.ident, "count": f.value, "semaphore": f.sub != 0})),
        file_kind::PIPE => Some(json!({"object": f.ident, "end": if f.sub == 1 { "write" } else { "read" },
                                       "capacity": f.value, "buffered": f.data_len})),
        file_kind::EPOLL => Some(json!({"object": f.ident, "watches": m.epoll_items(f)?.map(|it| json!({
            "fd": it.tfd, "events": format!("{:#x}", it.events), "data": format!("{:#x}", it.data)})).collect::<Vec<_>>()})),
        _ => None,
    })
}

/// One line of `inspect`'s text output for that state.
pub(crate) fn state_text(v: &Value) -> String {
    if let Some(w) = v.get("watches").and_then(Value::as_array) {
        let ws: Vec<String> = w.iter().map(|x| format!("fd {} events {} data {}", x["fd"], x["events"].as_str().unwrap_or(""), x["data"].as_str().unwrap_or(""))).collect();
        return format!("object {}; watches: {}", v["object"], if ws.is_empty() { "none".into() } else { ws.join(", ") });
    }
    if v.get("count").is_some() {
        return format!("object {}; count {}{}", v["object"], v["count"], if v["semaphore"] == true { " (semaphore)" } else { "" });
    }
    format!("object {}; {} end; capacity {} bytes, {} buffered", v["object"], v["end"].as_str().unwrap_or(""), v["capacity"], v["buffered"])
}

/// cxlfork-restore's `-F` and `-E` arguments creating the image's eventfd,
/// epoll and pipe objects (empty if it has none the restore installs), or
/// why they cannot be restored (the kernel's rules: src/fd_state.rs). With
/// `skip`, those are left out, and so is an epoll watching one of them
/// (the kernel skips them too).
pub(crate) fn stub_args(m: &Meta<'_>, stdio: bool, skip: bool) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for i in 0..m.header.n_files {
        files.push(m.file(i)?);
    }
    let installed = |f: &FileImage| file_kind::prepared(f.kind) && (f.fd > 2 || stdio);
    // Each object's first descriptor holds its state.
    let first = |ident: u32| files.iter().find(|g| file_kind::prepared(g.kind) && g.ident == ident);
    let mut skipped: Vec<u32> = Vec::new();
    loop {
        let mut more = false;
        for f in files.iter().filter(|f| installed(f) && !skipped.contains(&f.ident)) {
            let Some(st) = first(f.ident) else { continue };
            let why = if !installed(st) {
                Some(format!("its first descriptor, fd {}, is the restorer's stdio (--image-stdio restores it)", st.fd))
            } else if f.kind == file_kind::PIPE {
                let ends = |w: u32| files.iter().any(|g| g.kind == file_kind::PIPE && g.ident == f.ident && g.sub == w && installed(g));
                (!(ends(0) && ends(1))).then(|| "its other end is not in the image (another process held it)".to_string())
            } else if f.kind == file_kind::EPOLL {
                m.epoll_items(st)?.find_map(|it| {
                    let t = files.iter().find(|g| g.fd == it.tfd)?;
                    let ok = (installed(t) && !skipped.contains(&t.ident)) || (it.tfd <= 2 && !stdio);
                    (!ok).then(|| {
                        format!("it watches fd {} ({}), which cxlfork cannot re-register (eventfds, pipes, epolls and the restorer's stdio only)", it.tfd, file_kind::name(t.kind))
                    })
                })
            } else {
                None
            };
            if let Some(why) = why {
                if !skip {
                    bail!("fd {} ({}) cannot be restored: {why} (--skip-files leaves it out)", f.fd, file_kind::name(f.kind));
                }
                skipped.push(f.ident);
                more = true;
                break;
            }
        }
        if !more {
            break;
        }
    }
    let mut args = Vec::new();
    for f in files.iter().filter(|f| installed(f) && !skipped.contains(&f.ident)) {
        args.push("-F".to_string());
        args.push(format!("{},{},{},0{:o},{},{},{}", f.fd, file_kind::name(f.kind), f.ident, f.flags, f.cloexec, f.sub, f.value));
    }
    for f in files.iter().filter(|f| f.kind == file_kind::EPOLL && installed(f) && !skipped.contains(&f.ident)) {
        for it in m.epoll_items(f)? {
            args.push("-E".to_string());
            args.push(format!("{},{},{:#x},{:#x}", f.fd, it.tfd, it.events, it.data));
        }
    }
    Ok(args)
}
