//! The C header and the Rust mirror agree on every size, offset and constant.

use cxlfork_abi::uapi::{
    self, Checkpoint, CloneStat, Delete, HostInfo, ImageInfo, List, PoolAttach, PoolInfo, Read, Restore, RestoreThread, Stat,
};
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

/// (C expression, Rust value) pairs checked against each other.
fn expectations() -> Vec<(&'static str, u64)> {
    macro_rules! off {
        ($c:literal, $t:ty, $f:ident) => {
            (concat!("offsetof(struct ", $c, ", ", stringify!($f), ")"), offset_of!($t, $f) as u64)
        };
    }
    vec![
        ("sizeof(struct cxlfork_pool_attach)", size_of::<PoolAttach>() as u64),
        off!("cxlfork_pool_attach", PoolAttach, size),
        off!("cxlfork_pool_attach", PoolAttach, flags),
        off!("cxlfork_pool_attach", PoolAttach, phys_base),
        off!("cxlfork_pool_attach", PoolAttach, phys_size),
        off!("cxlfork_pool_attach", PoolAttach, host_id),
        off!("cxlfork_pool_attach", PoolAttach, max_hosts),
        ("sizeof(struct cxlfork_host_info)", size_of::<HostInfo>() as u64),
        off!("cxlfork_host_info", HostInfo, state),
        off!("cxlfork_host_info", HostInfo, host_id),
        off!("cxlfork_host_info", HostInfo, generation),
        off!("cxlfork_host_info", HostInfo, attach_time_ns),
        off!("cxlfork_host_info", HostInfo, part_used),
        off!("cxlfork_host_info", HostInfo, nodename),
        ("sizeof(struct cxlfork_pool_info)", size_of::<PoolInfo>() as u64),
        off!("cxlfork_pool_info", PoolInfo, size),
        off!("cxlfork_pool_info", PoolInfo, abi_version),
        off!("cxlfork_pool_info", PoolInfo, uuid),
        off!("cxlfork_pool_info", PoolInfo, phys_base),
        off!("cxlfork_pool_info", PoolInfo, pool_size),
        off!("cxlfork_pool_info", PoolInfo, free_bytes),
        off!("cxlfork_pool_info", PoolInfo, part_size),
        off!("cxlfork_pool_info", PoolInfo, part_free),
        off!("cxlfork_pool_info", PoolInfo, host_id),
        off!("cxlfork_pool_info", PoolInfo, max_hosts),
        off!("cxlfork_pool_info", PoolInfo, format_version),
        off!("cxlfork_pool_info", PoolInfo, hosts_in_use),
        off!("cxlfork_pool_info", PoolInfo, hosts),
        off!("cxlfork_pool_info", PoolInfo, images),
        off!("cxlfork_pool_info", PoolInfo, ckpt_active),
        off!("cxlfork_pool_info", PoolInfo, ckpt_pages_done),
        off!("cxlfork_pool_info", PoolInfo, ckpt_pages_total),
        ("sizeof(struct cxlfork_checkpoint)", size_of::<Checkpoint>() as u64),
        off!("cxlfork_checkpoint", Checkpoint, flags),
        off!("cxlfork_checkpoint", Checkpoint, pid),
        ("offsetof(struct cxlfork_checkpoint, mem_fd)", offset_of!(Checkpoint, mem_fd) as u64),
        off!("cxlfork_checkpoint", Checkpoint, name),
        off!("cxlfork_checkpoint", Checkpoint, image_id),
        off!("cxlfork_checkpoint", Checkpoint, image_size),
        off!("cxlfork_checkpoint", Checkpoint, pages),
        off!("cxlfork_checkpoint", Checkpoint, duration_ns),
        ("sizeof(struct cxlfork_image_info)", size_of::<ImageInfo>() as u64),
        off!("cxlfork_image_info", ImageInfo, id),
        off!("cxlfork_image_info", ImageInfo, base),
        off!("cxlfork_image_info", ImageInfo, size),
        off!("cxlfork_image_info", ImageInfo, created_ns),
        off!("cxlfork_image_info", ImageInfo, owner_host),
        off!("cxlfork_image_info", ImageInfo, uid),
        off!("cxlfork_image_info", ImageInfo, gid),
        off!("cxlfork_image_info", ImageInfo, pid),
        off!("cxlfork_image_info", ImageInfo, valid),
        off!("cxlfork_image_info", ImageInfo, leases),
        off!("cxlfork_image_info", ImageInfo, n_vmas),
        off!("cxlfork_image_info", ImageInfo, n_files),
        off!("cxlfork_image_info", ImageInfo, pages),
        off!("cxlfork_image_info", ImageInfo, anon_pages),
        off!("cxlfork_image_info", ImageInfo, file_pages),
        off!("cxlfork_image_info", ImageInfo, accessed_pages),
        off!("cxlfork_image_info", ImageInfo, dirty_pages),
        off!("cxlfork_image_info", ImageInfo, duration_ns),
        off!("cxlfork_image_info", ImageInfo, restores),
        off!("cxlfork_image_info", ImageInfo, live_clones),
        off!("cxlfork_image_info", ImageInfo, name),
        off!("cxlfork_image_info", ImageInfo, comm),
        ("sizeof(struct cxlfork_list)", size_of::<List>() as u64),
        off!("cxlfork_list", List, count),
        off!("cxlfork_list", List, total),
        off!("cxlfork_list", List, images),
        ("sizeof(struct cxlfork_stat)", size_of::<Stat>() as u64),
        off!("cxlfork_stat", Stat, id),
        off!("cxlfork_stat", Stat, info),
        ("sizeof(struct cxlfork_read)", size_of::<Read>() as u64),
        off!("cxlfork_read", Read, id),
        off!("cxlfork_read", Read, offset),
        off!("cxlfork_read", Read, length),
        off!("cxlfork_read", Read, buf),
        ("sizeof(struct cxlfork_delete)", size_of::<Delete>() as u64),
        off!("cxlfork_delete", Delete, id),
        ("sizeof(struct cxlfork_restore)", size_of::<Restore>() as u64),
        off!("cxlfork_restore", Restore, flags),
        off!("cxlfork_restore", Restore, id),
        off!("cxlfork_restore", Restore, policy),
        ("sizeof(struct cxlfork_restore_thread)", size_of::<RestoreThread>() as u64),
        off!("cxlfork_restore_thread", RestoreThread, flags),
        off!("cxlfork_restore_thread", RestoreThread, id),
        ("CXLFORK_IOC_RESTORE_THREAD", uapi::IOC_RESTORE_THREAD.into()),
        ("CXLFORK_CKPT_THIS_THREAD", uapi::CKPT_THIS_THREAD.into()),
        ("sizeof(struct cxlfork_clone_stat)", size_of::<CloneStat>() as u64),
        off!("cxlfork_clone_stat", CloneStat, pid),
        off!("cxlfork_clone_stat", CloneStat, image_id),
        off!("cxlfork_clone_stat", CloneStat, policy),
        off!("cxlfork_clone_stat", CloneStat, clone_nr),
        off!("cxlfork_clone_stat", CloneStat, restore_ns),
        off!("cxlfork_clone_stat", CloneStat, pool_pages),
        off!("cxlfork_clone_stat", CloneStat, local_pages),
        off!("cxlfork_clone_stat", CloneStat, prefetched_pages),
        off!("cxlfork_clone_stat", CloneStat, zero_pages),
        off!("cxlfork_clone_stat", CloneStat, file_pages),
        off!("cxlfork_clone_stat", CloneStat, faults),
        off!("cxlfork_clone_stat", CloneStat, leaves),
        ("CXLFORK_POLICY_MOW", uapi::POLICY_MOW.into()),
        ("CXLFORK_POLICY_MOA", uapi::POLICY_MOA.into()),
        ("CXLFORK_POLICY_HT", uapi::POLICY_HT.into()),
        ("CXLFORK_RESTORE_SKIP_FILES", uapi::RESTORE_SKIP_FILES.into()),
        ("CXLFORK_RESTORE_IMAGE_STDIO", uapi::RESTORE_IMAGE_STDIO.into()),
        ("CXLFORK_RESTORE_PREPARED_FDS", uapi::RESTORE_PREPARED_FDS.into()),
        ("CXLFORK_RESTORE_FLAGS", uapi::RESTORE_FLAGS.into()),
        ("CXLFORK_IOC_RESTORE", uapi::IOC_RESTORE.into()),
        ("CXLFORK_IOC_CLONE_STAT", uapi::IOC_CLONE_STAT.into()),
        ("CXLFORK_NAME_LEN", uapi::NAME_LEN as u64),
        ("CXLFORK_CKPT_LEAVE_STOPPED", uapi::CKPT_LEAVE_STOPPED.into()),
        ("CXLFORK_CKPT_KILL", uapi::CKPT_KILL.into()),
        ("CXLFORK_CKPT_FLAGS", uapi::CKPT_FLAGS.into()),
        ("CXLFORK_IOC_CHECKPOINT", uapi::IOC_CHECKPOINT.into()),
        ("CXLFORK_IOC_LIST", uapi::IOC_LIST.into()),
        ("CXLFORK_IOC_STAT", uapi::IOC_STAT.into()),
        ("CXLFORK_IOC_READ", uapi::IOC_READ_IMAGE.into()),
        ("CXLFORK_IOC_DELETE", uapi::IOC_DELETE.into()),
        ("CXLFORK_ABI_VERSION", uapi::ABI_VERSION.into()),
        ("CXLFORK_IOC_MAGIC", uapi::IOC_MAGIC.into()),
        ("CXLFORK_MAX_HOSTS", uapi::MAX_HOSTS as u64),
        ("CXLFORK_DEFAULT_HOSTS", uapi::DEFAULT_HOSTS.into()),
        ("CXLFORK_NODENAME_LEN", uapi::NODENAME_LEN as u64),
        ("CXLFORK_ATTACH_FORMAT", uapi::ATTACH_FORMAT.into()),
        ("CXLFORK_ATTACH_TAKEOVER", uapi::ATTACH_TAKEOVER.into()),
        ("CXLFORK_ATTACH_FLAGS", uapi::ATTACH_FLAGS.into()),
        ("CXLFORK_SLOT_FREE", uapi::SLOT_FREE.into()),
        ("CXLFORK_SLOT_ATTACHED", uapi::SLOT_ATTACHED.into()),
        ("CXLFORK_SLOT_DETACHED", uapi::SLOT_DETACHED.into()),
        ("CXLFORK_SLOT_INVALID", uapi::SLOT_INVALID.into()),
        ("CXLFORK_IOC_POOL_ATTACH", uapi::IOC_POOL_ATTACH.into()),
        ("CXLFORK_IOC_POOL_INFO", uapi::IOC_POOL_INFO.into()),
        ("CXLFORK_IOC_POOL_DETACH", uapi::IOC_POOL_DETACH.into()),
    ]
}

#[test]
fn c_header_matches_rust_mirror() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exp = expectations();
    let mut src = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/cxlfork.h>\nint main(void) {\n",
    );
    for (expr, _) in &exp {
        src += &format!("  printf(\"%s=%llu\\n\", \"{expr}\", (unsigned long long)({expr}));\n");
    }
    src += "  return 0;\n}\n";
    let c = out.join("abi_check.c");
    let bin = out.join("abi_check");
    std::fs::write(&c, src).unwrap();
    let cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Werror", "-pedantic", "-I"])
        .arg(root.join("include/uapi"))
        .arg(&c)
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run cc");
    assert!(cc.success(), "the C header does not compile with plain cc");
    let run = Command::new(&bin).output().unwrap();
    assert!(run.status.success());
    let got: BTreeMap<String, u64> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    for (expr, want) in exp {
        assert_eq!(got[expr], want, "C `{expr}` disagrees with the Rust mirror");
    }
}

#[test]
fn min_sizes_are_v1_sizes() {
    assert_eq!(uapi::min_size::POOL_ATTACH, size_of::<PoolAttach>());
    assert_eq!(uapi::min_size::POOL_INFO, size_of::<PoolInfo>());
    assert_eq!(uapi::min_size::CHECKPOINT, size_of::<Checkpoint>());
    assert_eq!(uapi::min_size::LIST, size_of::<List>());
    assert_eq!(uapi::min_size::STAT, size_of::<Stat>());
    assert_eq!(uapi::min_size::READ, size_of::<Read>());
    assert_eq!(uapi::min_size::DELETE, size_of::<Delete>());
    assert_eq!(uapi::min_size::RESTORE, size_of::<Restore>());
    assert_eq!(uapi::min_size::CLONE_STAT, size_of::<CloneStat>());
    assert_eq!(uapi::min_size::RESTORE_THREAD, size_of::<RestoreThread>());
}
