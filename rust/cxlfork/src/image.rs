//! Reading an image out of the pool through `CXLFORK_IOC_READ` and validating
//! it with the shared validator, as `cxlfork-ctl inspect` does (like CRIU's
//! crit). Like a restore, it reads only what it needs: header and metadata
//! up front, each leaf table and data page when asked for.

use crate::device::Device;
use crate::error::{Error, Result};
use cxlfork_abi::image::{pte, ImageError, ImageHeader, Meta, META_OFF, PT_ENTRIES};
use cxlfork_abi::pod::Pod;
use cxlfork_abi::pool::PAGE_SIZE;
use cxlfork_abi::uapi::ImageInfo;

/// Formats an image id as `HOST:SEQ`.
pub fn id_string(id: u64) -> String {
    format!("{}:{}", cxlfork_abi::dir::id_host(id), id & ((1 << cxlfork_abi::dir::ID_SEQ_BITS) - 1))
}

/// Parses `HOST:SEQ` or a plain number.
pub fn parse_id(s: &str) -> Option<u64> {
    match s.split_once(':') {
        Some((h, q)) => Some(cxlfork_abi::dir::image_id(h.parse().ok()?, q.parse().ok()?)),
        None => s.parse().ok(),
    }
}

/// An image whose header and metadata passed validation.
pub struct Image<'d> {
    dev: &'d Device,
    /// Image id.
    pub id: u64,
    /// The validated header.
    pub header: ImageHeader,
    meta: Vec<u8>,
}

impl<'d> Image<'d> {
    fn invalid(&self, e: ImageError) -> Error {
        Error::Invalid { id: self.id, reason: e.as_str() }
    }

    /// Reads and validates the header and metadata of the image `info` names.
    pub fn open(dev: &'d Device, info: &ImageInfo) -> Result<Self> {
        let bad = |e: ImageError| Error::Invalid { id: info.id, reason: e.as_str() };
        let mut header = ImageHeader::zeroed();
        dev.read_image(info.id, 0, header.as_bytes_mut())?;
        header.validate(info.base, info.size).map_err(bad)?;
        let mut meta = vec![0u8; (header.leaves_off - META_OFF) as usize];
        dev.read_image(info.id, META_OFF, &mut meta)?;
        Meta::validate(&header, &meta).map_err(bad)?;
        Ok(Self { dev, id: info.id, header, meta })
    }

    /// The metadata accessors.
    pub fn meta(&self) -> Meta<'_> {
        Meta { header: &self.header, bytes: &self.meta }
    }

    /// Leaf table `k`, validated (every entry maps one of the image's own pages).
    pub fn leaf(&self, k: u32) -> Result<Vec<u64>> {
        let mut bytes = vec![0u8; PAGE_SIZE as usize];
        self.dev.read_image(self.id, self.header.leaves_off + u64::from(k) * PAGE_SIZE, &mut bytes)?;
        let mut out = vec![0u64; PT_ENTRIES];
        self.meta().validate_leaf(k, &bytes, &mut out).map_err(|e| self.invalid(e))?;
        Ok(out)
    }

    /// Every leaf, validated, `PT_ENTRIES` entries each.
    pub fn leaves(&self) -> Result<Vec<u64>> {
        let mut all = Vec::with_capacity(self.header.n_leaves as usize * PT_ENTRIES);
        for k in 0..self.header.n_leaves {
            all.extend(self.leaf(k)?);
        }
        Ok(all)
    }

    /// The leaf entry for `addr`, 0 if the image has no page there.
    pub fn entry(&self, addr: u64) -> Result<u64> {
        let m = self.meta();
        let block = addr & !((PT_ENTRIES as u64 * PAGE_SIZE) - 1);
        for k in 0..self.header.n_leaves {
            if m.leaf(k).map_err(|e| self.invalid(e))?.vaddr == block {
                return Ok(self.leaf(k)?[((addr / PAGE_SIZE) % PT_ENTRIES as u64) as usize]);
            }
        }
        Ok(0)
    }

    /// The 4 KiB data page a validated leaf entry maps.
    pub fn page(&self, entry: u64) -> Result<Vec<u8>> {
        let off = pte::frame(entry) * PAGE_SIZE - self.header.base;
        let mut page = vec![0u8; PAGE_SIZE as usize];
        self.dev.read_image(self.id, off, &mut page)?;
        Ok(page)
    }
}
