//! `cxlfork-ctl`: command-line control of cxlfork.

mod fds;
mod images;
mod timens;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cxlfork::{dax, uapi, AttachOptions, Device};
use serde_json::json;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cxlfork-ctl", version, about = "Remote fork over a shared CXL memory pool")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach, inspect and detach this host's CXL pool.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Checkpoint a running process into the pool.
    Checkpoint {
        /// The process to checkpoint.
        #[arg(long)]
        pid: i32,
        /// A label for the image.
        #[arg(long, default_value = "")]
        name: String,
        /// Leave the process stopped afterwards (default: resume it).
        #[arg(long, conflicts_with = "kill")]
        leave_stopped: bool,
        /// Kill the process afterwards.
        #[arg(long)]
        kill: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the pool's images (every host's).
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Decode and validate an image from the pool (VMAs, pages, registers...).
    Inspect {
        /// Image id (HOST:SEQ as `ls` prints it).
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also list every checkpointed page (address, flags, pool frame).
        #[arg(long)]
        pages: bool,
        /// Print only the VMAs, one `start-end perms kind path` line each.
        #[arg(long, conflicts_with_all = ["json", "pages", "page"])]
        maps: bool,
        /// Write the checkpointed bytes of the page at this address to stdout.
        #[arg(long, value_parser = parse_addr, conflicts_with_all = ["json", "pages"])]
        page: Option<u64>,
    },
    /// Delete an image (owner host only).
    Rm {
        /// Image id (HOST:SEQ).
        id: String,
    },
    /// Remote fork: start N processes that each become a clone of the image.
    Restore {
        /// Image id (HOST:SEQ).
        id: String,
        /// Tiering policy.
        #[arg(long, value_enum, default_value_t = images::PolicyArg::Mow)]
        policy: images::PolicyArg,
        /// Number of clones.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Wait for the clones to exit and report their status.
        #[arg(long)]
        wait: bool,
        /// Skip open files that cannot be reopened (pipes, sockets, missing files).
        #[arg(long)]
        skip_files: bool,
        /// Also restore fds 0-2 from the image (default: the clones inherit ours).
        #[arg(long, conflicts_with = "output")]
        image_stdio: bool,
        /// Give each clone DIR/clone-N.out as stdout and stderr (default: ours).
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Print the restorer's command line (cxlfork-restore and its
        /// arguments) instead of running it: for a restorer of your own.
        #[arg(long, conflicts_with_all = ["wait", "output", "json"])]
        dry_run: bool,
    },
    /// Tiering statistics of a clone, and its local memory.
    Stat {
        /// The clone's pid.
        pid: i32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Clear a process's Accessed bits (before a checkpoint, so that HT sees
    /// only what the function touches afterwards).
    ClearRefs {
        /// The process.
        pid: i32,
    },
}

#[derive(Subcommand)]
enum PoolCmd {
    /// Attach this host to the pool on a device-dax node (needs CAP_SYS_ADMIN).
    Attach {
        /// The CXL region's device-dax node, e.g. /dev/dax0.0.
        #[arg(long)]
        dax: PathBuf,
        /// This host's slot in the pool (0..max hosts).
        #[arg(long)]
        host_id: u32,
        /// Write a new superblock: DESTROYS every image in the pool.
        #[arg(long)]
        format: bool,
        /// With --format: number of host slots (default 8, at most 16).
        #[arg(long, requires = "format")]
        max_hosts: Option<u32>,
        /// Claim the slot even if it is marked attached (only if its host is gone).
        #[arg(long)]
        takeover: bool,
    },
    /// Show the attached pool.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Detach this host from the pool (needs CAP_SYS_ADMIN).
    Detach,
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

fn state_name(s: u32) -> &'static str {
    match s {
        uapi::SLOT_FREE => "free",
        uapi::SLOT_ATTACHED => "attached",
        uapi::SLOT_DETACHED => "detached",
        uapi::SLOT_INVALID => "INVALID",
        _ => "unknown",
    }
}

fn uuid_string(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

pub(crate) fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
}

fn pool(cmd: PoolCmd) -> Result<()> {
    let dev = Device::open()?;
    match cmd {
        PoolCmd::Attach { dax: path, host_id, format, max_hosts, takeover } => {
            let r = dax::dax_range(&path)?;
            let opts = AttachOptions {
                phys_base: r.base,
                phys_size: r.size,
                host_id,
                format,
                max_hosts: max_hosts.unwrap_or(0),
                takeover,
            };
            dev.attach(&opts)
                .with_context(|| format!("{} [{:#x}, +{:#x}) as host {host_id}", path.display(), r.base, r.size))?;
            let info = dev.pool_info()?;
            println!(
                "attached {} as host {}: pool {} ({}), {}",
                path.display(),
                info.host_id,
                uuid_string(&info.uuid),
                mib(info.pool_size),
                if format { "formatted" } else { "existing superblock" }
            );
        }
        PoolCmd::Status { json } => {
            let i = dev.pool_info()?;
            let hosts: Vec<_> = i.hosts[..i.max_hosts as usize].iter().filter(|h| h.state != uapi::SLOT_FREE).collect();
            if json {
                let hosts: Vec<_> = hosts
                    .iter()
                    .map(|h| {
                        json!({
                            "host_id": h.host_id,
                            "state": state_name(h.state),
                            "generation": h.generation,
                            "attach_time_ns": h.attach_time_ns,
                            "part_used": h.part_used,
                            "nodename": String::from_utf8_lossy(uapi::cstr_field(&h.nodename)),
                        })
                    })
                    .collect();
                let v = json!({
                    "uuid": uuid_string(&i.uuid),
                    "phys_base": i.phys_base,
                    "pool_size": i.pool_size,
                    "free_bytes": i.free_bytes,
                    "part_size": i.part_size,
                    "part_free": i.part_free,
                    "host_id": i.host_id,
                    "max_hosts": i.max_hosts,
                    "hosts_in_use": i.hosts_in_use,
                    "format_version": i.format_version,
                    "abi_version": i.abi_version,
                    "hosts": hosts,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("pool       {}", uuid_string(&i.uuid));
                println!("range      {:#x} + {:#x} ({})", i.phys_base, i.pool_size, mib(i.pool_size));
                println!("free       {} of {}", mib(i.free_bytes), mib(i.pool_size));
                println!("this host  {} (partition {}, {} free)", i.host_id, mib(i.part_size), mib(i.part_free));
                println!("hosts      {} attached of {} slots (format v{})", i.hosts_in_use, i.max_hosts, i.format_version);
                for h in hosts {
                    println!(
                        "  slot {:2}  {:9} gen {:<3} used {:>10}  {}",
                        h.host_id,
                        state_name(h.state),
                        h.generation,
                        mib(h.part_used),
                        String::from_utf8_lossy(uapi::cstr_field(&h.nodename))
                    );
                }
            }
        }
        PoolCmd::Detach => {
            dev.detach()?;
            println!("detached");
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Pool(c) => pool(c),
        Cmd::Checkpoint { pid, name, leave_stopped, kill, json } => images::checkpoint(pid, &name, leave_stopped, kill, json),
        Cmd::Ls { json } => images::ls(json),
        Cmd::Inspect { id, json, pages, maps, page } => images::inspect(&id, images::InspectMode::new(json, pages, maps, page)),
        Cmd::Rm { id } => images::rm(&id),
        Cmd::Restore { id, policy, count, wait, skip_files, image_stdio, output, json, dry_run } => {
            images::restore(&id, &images::RestoreOpts { policy, count, wait, skip_files, image_stdio, output, json, dry_run })
        }
        Cmd::Stat { pid, json } => images::stat(pid, json),
        Cmd::ClearRefs { pid } => images::clear_refs(pid),
    };
    if let Err(e) = r {
        eprintln!("cxlfork-ctl: {e:#}");
        std::process::exit(1);
    }
}
