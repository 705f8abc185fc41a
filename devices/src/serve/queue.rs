//! Walking virtqueues the guest controls. Everything read from the rings and
//! descriptors is hostile: a bad chain ends that request only, a broken ring
//! stops processing that queue until the next kick, nothing panics, and every
//! guest-caused log line goes through one rate limiter.

use std::fmt;
use std::time::Duration;

use log::warn;
use protocol::ratelimit::RateLimiter;
use vhost_user_backend::{VringRwLock, VringState, VringT};
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{
    GuestAddress, GuestAddressSpace, GuestMemory, GuestMemoryAtomic, GuestMemoryMmap, Permissions,
};

/// Guest memory as a backend sees it.
pub type Mem = GuestMemoryMmap;

/// A descriptor chain the driver made available.
pub type Chain<'a> = DescriptorChain<&'a Mem>;

/// One limiter for every guest-caused line of the process, so a guest
/// cannot flood the log by varying its mistakes.
static GUEST_LOG: RateLimiter = RateLimiter::new(10, Duration::from_secs(10));

/// Logs a warning a guest can trigger, rate-limited.
pub fn guest_warn(args: fmt::Arguments<'_>) {
    match GUEST_LOG.check() {
        Some(0) => warn!("{args}"),
        Some(suppressed) => warn!("{args} ({suppressed} similar lines suppressed)"),
        None => {}
    }
}

/// A queue that cannot be processed now.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("ring outside guest memory")]
    RingOutsideMemory,
    #[error("broken virtqueue")]
    Queue(#[source] virtio_queue::Error),
}

/// A request that is ignored (completed with nothing written).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("empty descriptor chain")]
    Empty,
    #[error("descriptor chain cut short (loop, bad index or too long)")]
    Truncated,
    #[error("read-only descriptor where the device must write")]
    NotWritable,
    #[error("writable descriptor where the device must read")]
    NotReadable,
    #[error("descriptor outside guest memory")]
    Memory(#[source] virtio_queue::Error),
}

/// Which way a chain's buffers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Device-writable buffers only (rng, console receiveq).
    ToGuest,
    /// Device-readable buffers only (console transmitq).
    FromGuest,
}

/// Checks a whole chain before any byte moves: every descriptor goes the
/// way `direction` says, and the chain ends where it says it ends (the
/// iterator stops silently on a loop, a bad next index, a descriptor table
/// outside memory or a chain longer than the queue; the last descriptor
/// then still has NEXT set). Returns the chain's total length.
pub fn check_chain(chain: &Chain<'_>, direction: Direction) -> Result<u64, ChainError> {
    let mut total = 0u64;
    let mut last = None;
    for desc in chain.clone() {
        match (direction, desc.is_write_only()) {
            (Direction::ToGuest, false) => return Err(ChainError::NotWritable),
            (Direction::FromGuest, true) => return Err(ChainError::NotReadable),
            _ => {}
        }
        total = total.saturating_add(u64::from(desc.len()));
        last = Some(desc);
    }
    match last {
        None => Err(ChainError::Empty),
        Some(desc) if desc.has_next() => Err(ChainError::Truncated),
        Some(_) => Ok(total),
    }
}

/// Checks that the queue's three rings lie in guest memory, so the queue
/// library never logs (unlimited) about addresses the guest chose.
fn check_rings(queue: &Queue, mem: &Mem) -> Result<(), QueueError> {
    let size = u64::from(queue.size());
    let rings = [
        (queue.desc_table(), 16 * size, Permissions::Read),
        (queue.avail_ring(), 6 + 2 * size, Permissions::Read),
        (queue.used_ring(), 6 + 8 * size, Permissions::Write),
    ];
    for (addr, len, access) in rings {
        let Ok(len) = usize::try_from(len) else {
            return Err(QueueError::RingOutsideMemory);
        };
        if !GuestMemory::check_range(mem, GuestAddress(addr), len, access) {
            return Err(QueueError::RingOutsideMemory);
        }
    }
    Ok(())
}

/// Whether the driver has made a chain available that is not consumed yet.
pub fn has_available(queue: &Queue, mem: &Mem) -> Result<bool, QueueError> {
    check_rings(queue, mem)?;
    let avail = queue
        .avail_idx(mem, std::sync::atomic::Ordering::Acquire)
        .map_err(QueueError::Queue)?;
    Ok(avail.0 != queue.next_avail())
}

/// The next available chain, if any.
pub fn next_chain<'a>(queue: &mut Queue, mem: &'a Mem) -> Result<Option<Chain<'a>>, QueueError> {
    check_rings(queue, mem)?;
    let mut iter = queue.iter(mem).map_err(QueueError::Queue)?;
    Ok(iter.next())
}

/// Returns chain `head` to the driver with `len` bytes written. A head the
/// guest put out of range cannot be returned: it is logged and dropped.
pub fn add_used(queue: &mut Queue, mem: &Mem, head: u16, len: u32) -> Result<(), QueueError> {
    if head >= queue.size() {
        guest_warn(format_args!("descriptor head {head} out of range"));
        return Ok(());
    }
    queue.add_used(mem, head, len).map_err(QueueError::Queue)
}

/// Re-enables driver notifications (EVENT_IDX-aware); true if the driver
/// made more chains available meanwhile, so processing must go on.
pub fn enable_notification(queue: &mut Queue, mem: &Mem) -> Result<bool, QueueError> {
    queue.enable_notification(mem).map_err(QueueError::Queue)
}

/// Whether the driver wants to hear about the used chains added since the
/// last call (EVENT_IDX-aware).
pub fn needs_notification(queue: &mut Queue, mem: &Mem) -> Result<bool, QueueError> {
    queue.needs_notification(mem).map_err(QueueError::Queue)
}

/// Completes every available chain with `handle`, which returns the used
/// length; driver notifications are off while the ring is drained and back
/// on before returning. Returns whether the driver must be notified.
pub fn drain<'a, F>(queue: &mut Queue, mem: &'a Mem, mut handle: F) -> Result<bool, QueueError>
where
    F: FnMut(Chain<'a>) -> u32,
{
    loop {
        queue.disable_notification(mem).map_err(QueueError::Queue)?;
        while let Some(chain) = next_chain(queue, mem)? {
            let head = chain.head_index();
            let len = handle(chain);
            add_used(queue, mem, head, len)?;
        }
        if !enable_notification(queue, mem)? {
            break;
        }
    }
    needs_notification(queue, mem)
}

/// Runs `process` on a vring's queue with the current guest memory (none
/// before SET_MEM_TABLE: nothing to do), then notifies the driver if
/// `process` says it wants to be, or if the queue broke (`what` names the
/// queue in the rate-limited log line).
pub fn run_queue<F>(
    what: &str,
    mem: Option<&GuestMemoryAtomic<Mem>>,
    vring: &VringRwLock,
    process: F,
) where
    F: FnOnce(&mut Queue, &Mem) -> Result<bool, QueueError>,
{
    let Some(mem) = mem.map(GuestAddressSpace::memory) else {
        return;
    };
    let mut state = vring.get_mut();
    let notify = process(state.get_queue_mut(), &mem).unwrap_or_else(|e| {
        guest_warn(format_args!("{what}: {e}"));
        true
    });
    if notify {
        signal(&state);
    }
}

/// Tells the driver about used chains through the ring's call eventfd.
pub fn signal(vring: &VringState) {
    if let Err(e) = vring.signal_used_queue() {
        guest_warn(format_args!("cannot signal the driver: {e}"));
    }
}
