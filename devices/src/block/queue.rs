//! Draining a virtqueue: pop a chain, record it inflight, parse, execute,
//! write the status, publish it in the used ring, clear it. No vhost-user
//! here, so tests drive it with MockSplitQueue and the future cordon-owned
//! request handler (README.md) can reuse it as it is.

use std::fmt;
use std::time::Duration;

use protocol::ratelimit::RateLimiter;
use virtio_bindings::virtio_blk::VIRTIO_BLK_S_IOERR;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use super::disk::Disk;
use super::execute::{execute, status_of};
use super::inflight::InflightLog;
use super::request::{parse, Kind, Parsed};

/// Every log line a guest can cause goes through here.
static GUEST_LOG: RateLimiter = RateLimiter::new(10, Duration::from_secs(10));

pub(crate) fn guest_warn(args: fmt::Arguments<'_>) {
    match GUEST_LOG.check() {
        Some(0) => log::warn!("block: {args}"),
        Some(n) => log::warn!("block: {args} ({n} similar lines suppressed)"),
        None => {}
    }
}

/// Processes every available chain of `queue`, re-checking after enabling
/// notifications so a chain added meanwhile is not missed (with EVENT_IDX
/// this publishes avail_event; without it, clears VRING_USED_F_NO_NOTIFY).
/// Returns whether the driver wants an interrupt for what was used.
pub fn process_queue<M: GuestMemory>(
    queue: &mut Queue,
    mem: &M,
    disk: &Disk,
    inflight: &mut impl InflightLog,
) -> bool {
    if !rings_inside(queue, mem) {
        guest_warn(format_args!(
            "queue rings misaligned or outside guest memory"
        ));
        return false;
    }
    let mut used = false;
    loop {
        if let Err(e) = queue.disable_notification(mem) {
            guest_warn(format_args!("cannot disable notifications: {e}"));
            break;
        }
        let (any, broken) = drain(queue, mem, disk, inflight);
        used |= any;
        if broken {
            break;
        }
        match queue.enable_notification(mem) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                guest_warn(format_args!("cannot enable notifications: {e}"));
                break;
            }
        }
    }
    used && queue.needs_notification(mem).unwrap_or(true)
}

/// Like virtio-queue's `is_valid`, which logs without a rate limit.
fn rings_inside<M: GuestMemory>(queue: &Queue, mem: &M) -> bool {
    let n = u64::from(queue.size());
    let rings = [
        (queue.desc_table(), 16 * n, 16, Permissions::Read),
        (queue.avail_ring(), 6 + 2 * n, 2, Permissions::Read),
        (queue.used_ring(), 6 + 8 * n, 4, Permissions::Write),
    ];
    queue.ready()
        && rings.iter().all(|&(addr, len, align, access)| {
            addr % align == 0 && mem.check_range(GuestAddress(addr), len as usize, access)
        })
}

/// Returns whether anything was used, and whether the queue is unusable
/// (a bad avail index: nothing can be trusted until the driver resets it).
fn drain<M: GuestMemory>(
    queue: &mut Queue,
    mem: &M,
    disk: &Disk,
    inflight: &mut impl InflightLog,
) -> (bool, bool) {
    let mut used = false;
    loop {
        let chain = match queue.iter(mem) {
            Ok(mut avail) => avail.next(),
            Err(e) => {
                guest_warn(format_args!("queue unusable: {e}"));
                return (used, true);
            }
        };
        let Some(chain) = chain else {
            return (used, false);
        };
        let head = chain.head_index();
        if head >= queue.size() {
            guest_warn(format_args!(
                "head index {head} outside a queue of {}",
                queue.size()
            ));
            continue;
        }
        inflight.begin(head);
        let len = handle_chain(chain, mem, disk);
        // Failing here means the used ring is outside memory: the
        // request stays inflight, as after a crash.
        if let Err(e) = queue.add_used(mem, head, len) {
            guest_warn(format_args!("cannot add to the used ring: {e}"));
            continue;
        }
        inflight.complete(head, queue.next_used());
        used = true;
    }
}

/// Runs one chain to its end and returns the used length (bytes written
/// into device-writable buffers, status included).
fn handle_chain<M: GuestMemory>(
    chain: virtio_queue::DescriptorChain<&M>,
    mem: &M,
    disk: &Disk,
) -> u32 {
    let (status_addr, status, len) = match parse(chain) {
        Parsed::Request(req) => {
            let result = execute(&req, disk, mem);
            if let Err(e) = &result {
                if !matches!(req.kind, Kind::Unsupported(_)) {
                    guest_warn(format_args!("{:?} at sector {}: {e}", req.kind, req.sector));
                }
            }
            let len = result.as_ref().map_or(0, |n| *n);
            (req.status, status_of(&result), len)
        }
        Parsed::Failed(status, e) => {
            guest_warn(format_args!("bad request: {e}"));
            (status, VIRTIO_BLK_S_IOERR as u8, 0)
        }
        Parsed::NoStatus(e) => {
            guest_warn(format_args!("bad chain, returned unanswered: {e}"));
            return 0;
        }
    };
    // The status goes in only after execute() returned, which for FLUSH
    // means after fdatasync (see execute).
    if let Err(e) = mem.write_obj(status, status_addr) {
        guest_warn(format_args!("cannot write status: {e}"));
        return 0;
    }
    len + 1
}
