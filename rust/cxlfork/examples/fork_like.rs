//! cxlfork's fork-like API from Rust: initialise, checkpoint yourself, and
//! tell the original from its clones by the result, as with `fork()`.
//!
//! ```text
//! fork_like_rs                                # "original", publishes the image
//! cxlfork-ctl restore ID --count 3 --wait     # each clone prints "clone N"
//! ```

use cxlfork::{image::id_string, Device, Forked};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The warm state every clone starts from.
    let table: Vec<u64> = (0..1 << 16).map(|i| i * i).collect();
    let dev = Device::open()?;
    match dev.checkpoint_self("fork-like-rs")? {
        Forked::Parent(image) => {
            println!("original: image {} published ({} pages)", id_string(image.id), image.pages);
        }
        Forked::Clone(n) => {
            let sum: u64 = table.iter().sum();
            println!("clone {n}: pid {}, state sum {sum}", std::process::id());
        }
    }
    Ok(())
}
