//! Resolving a device-dax node (`/dev/daxX.Y`) to its physical range.

use crate::error::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// The physical range of a DAX device, read from sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaxRange {
    /// Physical base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Reads `/sys/bus/dax/devices/<name>/{resource,size}` for `dev` (a path
/// like `/dev/dax0.0` or a bare name like `dax0.0`), under `sysfs` root.
pub fn dax_range_in(sysfs: &Path, dev: &Path) -> Result<DaxRange> {
    let name = dev
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.starts_with("dax"))
        .ok_or_else(|| Error::Dax(format!("{}: not a device-dax node (expected /dev/daxX.Y)", dev.display())))?;
    let dir: PathBuf = sysfs.join("bus/dax/devices").join(name);
    let read = |attr: &str| -> Result<u64> {
        let p = dir.join(attr);
        let s = fs::read_to_string(&p).map_err(|e| {
            Error::Dax(format!("{}: {e} (is {name} a device-dax device bound to a CXL region?)", p.display()))
        })?;
        parse_num(&s).ok_or_else(|| Error::Dax(format!("{}: cannot parse {:?}", p.display(), s.trim())))
    };
    let base = read("resource")?;
    let size = read("size")?;
    if size == 0 {
        return Err(Error::Dax(format!("{name}: size is 0 (region not committed?)")));
    }
    Ok(DaxRange { base, size })
}

/// [`dax_range_in`] with the real `/sys`.
pub fn dax_range(dev: &Path) -> Result<DaxRange> {
    dax_range_in(Path::new("/sys"), dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fake_sysfs() {
        let root = std::env::temp_dir().join(format!("cxlfork-dax-{}", std::process::id()));
        let d = root.join("bus/dax/devices/dax0.0");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("resource"), "0x110000000\n").unwrap();
        fs::write(d.join("size"), "268435456\n").unwrap();
        let r = dax_range_in(&root, Path::new("/dev/dax0.0")).unwrap();
        assert_eq!(r, DaxRange { base: 0x1_1000_0000, size: 256 << 20 });
        assert!(dax_range_in(&root, Path::new("/dev/dax9.9")).is_err());
        assert!(dax_range_in(&root, Path::new("/dev/null")).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
