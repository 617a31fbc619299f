//! The C header and the Rust mirror agree on every size, offset and constant.

use cxlfork_abi::uapi::{self, HostInfo, PoolAttach, PoolInfo};
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
}
