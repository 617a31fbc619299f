//! eventfd, epoll and pipe descriptors: their state recorded at
//! checkpoint, and at restore checked on the objects the restorer prepared
//! at the image's numbers, then filled.
//!
//! A module can neither create these objects (eventfd(), epoll_create1()
//! and pipe2() have no exported kernel entry) nor register a descriptor in
//! an epoll (no exported epoll_ctl). So, as CRIU does, the restorer creates
//! them: with `CXLFORK_RESTORE_PREPARED_FDS`, cxlfork-restore puts each
//! object at the image's descriptor numbers (dups included), with its
//! flags, close-on-exec, a pipe's capacity and an epoll's registrations.
//! Before its point of no return the restore checks every one against the
//! image (an object per image object, kinds, flags, an eventfd's counter,
//! an empty pipe, the registrations as the image has them), then writes a
//! pipe's buffered bytes into it; afterwards it keeps them where they are.
//!
//! What is refused (`EOPNOTSUPP`): a pipe whose other end the image does
//! not hold (another process has it: a clone cannot share it), a pipe in
//! packet mode holding bytes, an epoll watching a descriptor the kernel
//! reopens (files, ttys) or one the checkpoint could not record faithfully
//! (recorded as `file_kind::OTHER`).

use crate::abi::image::{self, file_kind, EpollItem, FileImage, Meta};
use crate::file_ref::FileRef;
use crate::kernel_util;
use crate::target::Target;
use kernel::prelude::*;

const O_ACCMODE: u32 = 0o3;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECT: u32 = 0o40000;
/// `f_flags` a prepared descriptor must share with the image's.
const COMPARED_FLAGS: u32 = O_ACCMODE | O_NONBLOCK | O_DIRECT;
/// Largest fdinfo text read (an epoll of ~200,000 registrations).
const MAX_FDINFO: usize = 16 << 20;

/// What identifies an object among descriptors: a pipe's inode, an
/// eventfd's or epoll's open file (dups share it).
fn key(file: &FileRef, kind: u32) -> u64 {
    if kind == file_kind::PIPE {
        file.inode_key()
    } else {
        file.as_ptr() as u64
    }
}

/// The file's fdinfo text (growing the buffer as needed).
fn fdinfo(file: &FileRef) -> Result<KVVec<u8>> {
    let mut len = 4096;
    loop {
        let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        match file.fdinfo(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e == EOVERFLOW && len < MAX_FDINFO => len *= 4,
            Err(e) => return Err(e),
        }
    }
}

/// An eventfd's (counter, EFD_SEMAPHORE).
fn eventfd_state(file: &FileRef) -> Result<(u64, u32)> {
    let mut buf = [0u8; 256];
    let n = file.fdinfo(&mut buf)?;
    let count = image::fdinfo_value(&buf[..n], b"eventfd-count:", 16).ok_or(EINVAL)?;
    let sem = image::fdinfo_value(&buf[..n], b"eventfd-semaphore:", 10).ok_or(EINVAL)?;
    Ok((count, u32::from(sem != 0)))
}

/// An epoll's registrations by increasing descriptor, each with its
/// target's inode number.
fn epoll_items(file: &FileRef) -> Result<KVVec<(EpollItem, u64)>> {
    let text = fdinfo(file)?;
    let mut items = KVVec::new();
    for line in text.split(|&c| c == b'\n').filter(|l| l.starts_with(b"tfd:")) {
        items.push(EpollItem::parse_fdinfo(line).ok_or(EINVAL)?, GFP_KERNEL)?;
    }
    kernel_util::sort(&mut items);
    Ok(items)
}

/// Checkpoint side: numbers the objects met in descriptor order.
///
/// # Invariants
///
/// `keys` is sorted by key; `count` objects are numbered 1..=count.
pub(crate) struct Recorder {
    keys: KVVec<(u64, u32)>,
    count: u32,
    scratch: KVVec<u8>,
}

impl Recorder {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self { keys: KVVec::new(), count: 0, scratch: KVVec::from_elem(0u8, 4096, GFP_KERNEL)? })
    }

    /// Records the state of descriptor `f` (of a `file_kind::prepared`
    /// kind) of `t`: its object's number, and on its first descriptor the
    /// bytes (a pipe's) or registrations (an epoll's), appended to
    /// `strings`. A pipe or an epoll that cannot be recorded faithfully
    /// becomes `FIFO` or `OTHER`, which a restore refuses.
    pub(crate) fn record(&mut self, t: &Target, file: &FileRef, f: &mut FileImage, strings: &mut KVVec<u8>) -> Result {
        let k = key(file, f.kind);
        let slot = self.keys.binary_search_by_key(&k, |&(x, _)| x);
        let known = slot.ok().map(|i| self.keys[i].1);
        let mut data: KVVec<u8> = KVVec::new();
        match f.kind {
            file_kind::EVENTFD => (f.value, f.sub) = eventfd_state(file)?,
            file_kind::PIPE => {
                let (cap, packet, n) = file.pipe_peek(None)?;
                // Bytes over the capacity (spliced from a socket) or in
                // packets would not come back as they were.
                let room = strings.len() + if known.is_none() { n } else { 0 } <= image::MAX_STRINGS as usize;
                if cap > image::MAX_PIPE || n as u64 > cap || packet || !room {
                    pr_info!("checkpoint: fd {}: a pipe of {} bytes holding {}{}: recorded as unsupported\n", f.fd, cap, n, if packet { " in packets" } else { "" });
                    f.kind = file_kind::FIFO;
                    return Ok(());
                }
                (f.value, f.sub) = (cap, u32::from(file.writable()));
                if known.is_none() && n > 0 {
                    // Threads are parked; only another process holding the
                    // pipe can change it meanwhile: then try again.
                    data = KVVec::from_elem(0u8, n, GFP_KERNEL)?;
                    let (_, _, got) = file.pipe_peek(Some(&mut data)).map_err(|e| if e == EOVERFLOW { EAGAIN } else { e })?;
                    data.truncate(got);
                }
            }
            _ if known.is_some() => {}
            _ => {
                let items = epoll_items(file)?;
                if let Some(why) = self.unfaithful(t, f.fd, &items)? {
                    pr_info!("checkpoint: fd {}: an epoll {}: recorded as unsupported\n", f.fd, why);
                    f.kind = file_kind::OTHER;
                    return Ok(());
                }
                for (it, _) in items.iter() {
                    data.extend_from_slice(&it.to_bytes(), GFP_KERNEL)?;
                }
            }
        }
        f.ident = match slot {
            Ok(i) => self.keys[i].1,
            Err(at) => {
                self.count += 1;
                self.keys.reserve(1, GFP_KERNEL)?;
                // INVARIANT: `at` keeps the keys sorted; numbers go up by one.
                self.keys.insert_within_capacity(at, (k, self.count)).map_err(|_| ENOMEM)?;
                self.count
            }
        };
        if !data.is_empty() {
            f.data_off = u32::try_from(strings.len()).map_err(|_| E2BIG)?;
            f.data_len = data.len() as u32;
            strings.extend_from_slice(&data, GFP_KERNEL)?;
            if strings.len() > image::MAX_STRINGS as usize {
                return Err(E2BIG);
            }
        }
        Ok(())
    }

    /// Why epoll `epfd`'s registrations cannot be restored as they are,
    /// if so: one descriptor number registered twice (a file closed after
    /// EPOLL_CTL_ADD, its number reused), or a registration whose file is
    /// no longer at its descriptor (closed, kept open by a dup).
    fn unfaithful(&mut self, t: &Target, epfd: u32, items: &[(EpollItem, u64)]) -> Result<Option<&'static str>> {
        for (i, (it, ino)) in items.iter().enumerate() {
            if i > 0 && items[i - 1].0.tfd == it.tfd {
                return Ok(Some("watches two files under one descriptor number"));
            }
            if it.tfd == epfd || it.events & !image::EPOLL_EVENTS != 0 {
                return Ok(Some("holds a registration the format does not know"));
            }
            match t.file_next(it.tfd, &mut self.scratch)? {
                Some((g, _, gf)) if g.fd == it.tfd && gf.ino() == *ino => {}
                _ => return Ok(Some("watches a file no longer at its descriptor")),
            }
        }
        Ok(None)
    }
}

/// One of the image's eventfd, epoll or pipe objects, as the restore
/// finds it.
struct Object {
    /// Its identity in the restorer (0: not met yet).
    key: u64,
    /// A descriptor of it failed (skipped with SKIP_FILES): so do the others.
    failed: bool,
    /// The image descriptor holding its state (its first: an epoll's
    /// registrations, a pipe's bytes).
    state: Option<FileImage>,
    /// Image descriptors of its read end (pipes) and write end, installed.
    read_fd: Option<u32>,
    write_fd: Option<u32>,
}

/// A pipe's bytes to write just before the point of no return (every
/// descriptor checked): its write end and where the bytes lie in the
/// strings.
pub(crate) struct PipeFill {
    w: FileRef,
    off: u32,
    len: u32,
}

impl PipeFill {
    /// Writes the bytes (`m` the image they were checked against).
    pub(crate) fn write(&self, m: &Meta<'_>) -> Result {
        self.w.write_all(m.string(self.off, self.len).map_err(|_| EBADMSG)?)
    }
}

/// Restore side: adopts the restorer's prepared descriptors.
pub(crate) struct Adopter<'a> {
    m: &'a Meta<'a>,
    stdio: bool,
    objs: KVVec<Object>,
    fills: KVVec<PipeFill>,
}

impl<'a> Adopter<'a> {
    /// `stdio`: descriptors 0-2 come from the image too (else they stay
    /// the restorer's).
    pub(crate) fn new(m: &'a Meta<'a>, stdio: bool) -> Result<Self> {
        let mut objs = KVVec::new();
        for i in 0..m.header.n_files {
            let f = m.file(i).map_err(|_| EBADMSG)?;
            if !file_kind::prepared(f.kind) {
                continue;
            }
            // Objects are numbered in order of first descriptor (validated).
            let at = f.ident as usize - 1;
            while objs.len() <= at {
                objs.push(Object { key: 0, failed: false, state: None, read_fd: None, write_fd: None }, GFP_KERNEL)?;
            }
            let o = objs.get_mut(at).ok_or(EBADMSG)?;
            o.state.get_or_insert(f);
            if f.fd <= 2 && !stdio {
                continue;
            }
            let end = if f.kind == file_kind::PIPE && f.sub == 1 { &mut o.write_fd } else { &mut o.read_fd };
            end.get_or_insert(f.fd);
        }
        Ok(Self { m, stdio, objs, fills: KVVec::new() })
    }

    /// Checks the restorer's descriptor at `f.fd` against image descriptor
    /// `f` and, on the object's first descriptor, its state. Errors:
    /// `EBADF` (no descriptor there), `EINVAL` (not what the image has),
    /// `EOPNOTSUPP` (not restorable, see the module's doc). Once one of an
    /// object's descriptors failed, every other one fails too.
    pub(crate) fn adopt(&mut self, f: &FileImage) -> Result {
        let i = f.ident as usize - 1;
        if self.objs.get(i).ok_or(EBADMSG)?.failed {
            return Err(EOPNOTSUPP);
        }
        let r = self.adopt_one(f, i);
        if r.is_err() {
            self.objs[i].failed = true;
        }
        r
    }

    fn adopt_one(&mut self, f: &FileImage, i: usize) -> Result {
        let state = self.objs[i].state.ok_or(EBADMSG)?;
        if state.fd <= 2 && !self.stdio {
            pr_info!("restore: fd {}: its object's first descriptor, {}, is the restorer's stdio\n", f.fd, state.fd);
            return Err(EOPNOTSUPP);
        }
        let file = FileRef::current_fd(f.fd).ok_or(EBADF)?;
        // SAFETY: no preconditions (reads current's table).
        let cloexec = unsafe { crate::ffi::cxlfork_current_fd_cloexec(f.fd) };
        if file.kind() != f.kind || (file.flags() ^ f.flags) & COMPARED_FLAGS != 0 || cloexec != (f.cloexec != 0) {
            return Err(EINVAL);
        }
        let k = key(&file, f.kind);
        // The first descriptor met is the object's state descriptor (in
        // fd order; any failure fails the object). Every other one is on
        // the same restorer object (and no restorer object stands for two
        // image objects: `finish`).
        let first = self.objs[i].key == 0;
        if first != (f.fd == state.fd) || (!first && self.objs[i].key != k) {
            return Err(EINVAL);
        }
        match f.kind {
            file_kind::EVENTFD => {
                // The restorer set the counter (eventfd has no write_iter
                // for kernel_write); a dup may have been written to since.
                let (count, sem) = eventfd_state(&file)?;
                if sem != f.sub || (first && count != f.value) {
                    return Err(EINVAL);
                }
            }
            file_kind::PIPE => {
                let o = &self.objs[i];
                let (Some(_), Some(wfd)) = (o.read_fd, o.write_fd) else {
                    pr_info!("restore: fd {}: the pipe's other end is not in the image (another process holds it)\n", f.fd);
                    return Err(EOPNOTSUPP);
                };
                let (cap, _, n) = file.pipe_peek(None)?;
                if file.writable() != (f.sub == 1) || cap != f.value || (first && n != 0) {
                    return Err(EINVAL);
                }
                if first && f.data_len != 0 {
                    let w = FileRef::current_fd(wfd).ok_or(EBADF)?;
                    if w.kind() != file_kind::PIPE || !w.writable() || w.inode_key() != k {
                        return Err(EINVAL);
                    }
                    if w.flags() & O_DIRECT != 0 {
                        pr_info!("restore: fd {}: a packet-mode pipe holding bytes\n", f.fd);
                        return Err(EOPNOTSUPP);
                    }
                    self.fills.push(PipeFill { w, off: f.data_off, len: f.data_len }, GFP_KERNEL)?;
                }
            }
            _ if first => self.check_epoll(f, &file)?,
            // A dup: the same file (checked above) holds the same registrations.
            _ => {}
        }
        self.objs[i].key = k;
        Ok(())
    }

    /// After every descriptor is adopted: no restorer object stands for
    /// two image objects (`EINVAL`). Returns the pipes' bytes to write,
    /// the restore's last fallible step before its point of no return.
    pub(crate) fn finish(self) -> Result<KVVec<PipeFill>> {
        let mut keys = KVVec::with_capacity(self.objs.len(), GFP_KERNEL)?;
        for o in self.objs.iter().filter(|o| o.key != 0 && !o.failed) {
            keys.push(o.key, GFP_KERNEL)?;
        }
        kernel_util::sort(&mut keys);
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(EINVAL);
        }
        Ok(self.fills)
    }

    /// The restorer's epoll holds exactly the image's registrations, each
    /// on the file now at its descriptor.
    fn check_epoll(&self, f: &FileImage, file: &FileRef) -> Result {
        let want = self.m.epoll_items(f).map_err(|_| EBADMSG)?;
        for it in self.m.epoll_items(f).map_err(|_| EBADMSG)? {
            let target = self.m.file_at(it.tfd).map_err(|_| EBADMSG)?.ok_or(EBADMSG)?;
            if !(file_kind::prepared(target.kind) || (it.tfd <= 2 && !self.stdio)) {
                pr_info!("restore: fd {}: an epoll watching fd {} ({}), which only the kernel reopens\n", f.fd, it.tfd, file_kind::name(target.kind));
                return Err(EOPNOTSUPP);
            }
        }
        let have = epoll_items(file)?;
        let mut n = 0usize;
        for it in want {
            let Some((h, ino)) = have.get(n) else { return Err(EINVAL) };
            let on = FileRef::current_fd(it.tfd).ok_or(EINVAL)?;
            if h.tfd != it.tfd || h.data != it.data || h.normalized_events() != it.normalized_events() || on.ino() != *ino {
                return Err(EINVAL);
            }
            n += 1;
        }
        if n != have.len() {
            return Err(EINVAL);
        }
        Ok(())
    }
}
