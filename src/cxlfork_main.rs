//! cxlfork: remote fork over a shared CXL memory pool.
//!
//! A process is checkpointed into a CXL memory pool shared by several hosts;
//! any host attached to the pool restores it by mapping those pages.
//! User space reaches the module through ioctls on `/dev/cxlfork`
//! (`include/uapi/linux/cxlfork.h`).
//!
//! Files: `device` (misc device, ioctl dispatch), `uaccess` (versioned struct
//! copies), `pool` (attach, superblock, host slots, directory, allocation),
//! `pool_map` (the pool's kernel mapping), `checkpoint` (CHECKPOINT),
//! `images` (LIST, STAT, READ, DELETE), `target` (a stopped process, over
//! `shim_task.c`), `abi` (the shared ABI and on-pool format), `kernel_util`
//! and `ffi` (thin wrappers over the C shims).
//!
//! `restore` (RESTORE: becoming a clone), `restore_group` (RESTORE_THREAD:
//! the threads of a restore, over `shim_rgroup.c`), `clone` (a clone's
//! context and fault handler, over `shim_restore.c`), `tiering` (one file
//! per policy). The other threads of a process being checkpointed are held
//! by `shim_park.c`.
//!
//! Lock order: `POOL` -> a task's `mmap_lock` -> `CloneCtx::leaves` ->
//! `Pool::state`. `POOL` is held only to take or replace the `Arc<Pool>`,
//! never across a checkpoint or restore. The thread registries' mutexes
//! (`park_registry_lock`, `rgroup_lock`) are taken with none of these held
//! and never nest with each other; under them only `sighand->siglock` (and
//! a park's spinlock) may be taken, and nothing sleeps under those.

use kernel::miscdevice::{MiscDeviceOptions, MiscDeviceRegistration};
use kernel::prelude::*;

mod abi;
mod checkpoint;
mod clone;
mod device;
mod fd_state;
mod ffi;
mod file_ref;
mod images;
mod kernel_util;
mod pool;
mod pool_map;
mod restore;
mod restore_group;
mod target;
mod tiering;
mod uaccess;

module! {
    type: CxlforkModule,
    name: "cxlfork",
    authors: ["cxlfork developers"],
    description: "Remote fork over a shared CXL memory pool",
    license: "GPL",
}

kernel::sync::global_lock! {
    // SAFETY: initialised in `CxlforkModule::init` before the device exists,
    // hence before any use.
    unsafe(uninit) static POOL: Mutex<Option<kernel::sync::Arc<pool::Pool>>> = None;
}

#[pin_data(PinnedDrop)]
struct CxlforkModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<device::CxlforkDevice>,
}

impl kernel::InPlaceModule for CxlforkModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called exactly once, before the device (the only user) is registered.
        unsafe { POOL.init() };
        try_pin_init!(Self {
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"cxlfork" }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for CxlforkModule {
    fn drop(self: Pin<&mut Self>) {
        // No file of the device is open (each holds a module reference), so no
        // ioctl can run: detach cleanly so the slot reads "detached" to other hosts.
        if let Some(pool) = POOL.lock().take() {
            let _ = pool.detach();
        }
    }
}
