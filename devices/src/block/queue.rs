//! Draining the request queue: pop a chain, record it inflight, parse,
//! execute, write the status, publish it in the used ring, clear it. No
//! vhost-user here, so tests drive it with MockSplitQueue and the future
//! cordon-owned request handler (README.md) can reuse it as it is.

use virtio_bindings::virtio_blk::VIRTIO_BLK_S_IOERR;
use virtio_queue::{Queue, QueueT};
use vm_memory::Bytes;

use super::disk::Disk;
use super::execute::{execute, status_of};
use super::inflight::InflightLog;
use super::request::{parse, Kind, Parsed};
use crate::serve::queue::{
    add_used, enable_notification, guest_warn, needs_notification, next_chain, Chain, Mem,
    QueueError,
};

/// Processes every available chain of `queue`, with driver notifications
/// off while draining and re-checked after turning them back on (with
/// EVENT_IDX that publishes avail_event). Returns whether the driver wants
/// an interrupt for what was used. An error means the rings cannot be
/// used (outside memory, bad avail index); requests already popped stay
/// inflight, as after a crash.
pub fn process_queue(
    queue: &mut Queue,
    mem: &Mem,
    disk: &Disk,
    inflight: &mut impl InflightLog,
) -> Result<bool, QueueError> {
    loop {
        queue.disable_notification(mem).map_err(QueueError::Queue)?;
        while let Some(chain) = next_chain(queue, mem)? {
            let head = chain.head_index();
            if head >= queue.size() {
                // Cannot be returned, so it is never inflight either.
                guest_warn(format_args!("block: descriptor head {head} out of range"));
                continue;
            }
            inflight.begin(head);
            let len = handle_chain(chain, mem, disk);
            add_used(queue, mem, head, len)?;
            inflight.complete(head, queue.next_used());
        }
        if !enable_notification(queue, mem)? {
            break;
        }
    }
    needs_notification(queue, mem)
}

/// Runs one chain to its end and returns the used length (bytes written
/// into device-writable buffers, status included).
fn handle_chain(chain: Chain<'_>, mem: &Mem, disk: &Disk) -> u32 {
    let (status_addr, status, len) = match parse(chain) {
        Parsed::Request(req) => {
            let result = execute(&req, disk, mem);
            if let Err(e) = &result {
                if !matches!(req.kind, Kind::Unsupported(_)) {
                    guest_warn(format_args!(
                        "block: {:?} at sector {}: {e}",
                        req.kind, req.sector
                    ));
                }
            }
            let len = result.as_ref().map_or(0, |n| *n);
            (req.status, status_of(&result), len)
        }
        Parsed::Failed(status, e) => {
            guest_warn(format_args!("block: bad request: {e}"));
            (status, VIRTIO_BLK_S_IOERR as u8, 0)
        }
        Parsed::NoStatus(e) => {
            guest_warn(format_args!("block: bad chain, returned unanswered: {e}"));
            return 0;
        }
    };
    // Written only after execute() returned, which for FLUSH means after
    // fdatasync on the image (see execute): the guest cannot see a flush
    // complete before the data is on the disk.
    if let Err(e) = mem.write_obj(status, status_addr) {
        guest_warn(format_args!("block: cannot write status: {e}"));
        return 0;
    }
    len + 1
}
