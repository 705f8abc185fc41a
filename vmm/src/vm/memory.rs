//! Guest memory in the vm process: the supervisor's memfd, mapped shared and
//! registered with KVM as one slot per RAM range.

use std::fs::File;

use guest_abi::MemRange;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot duplicate the guest memory fd")]
    Dup(#[source] std::io::Error),
    #[error("cannot map guest memory")]
    Map(#[from] vm_memory::mmap::FromRangesError),
    #[error("KVM refused memory slot {slot}")]
    Slot {
        slot: u32,
        source: kvm_ioctls::Error,
    },
}

/// Maps `memfd` as the guest's RAM ranges (in file order).
pub fn map(memfd: &File, ram: &[MemRange]) -> Result<GuestMemoryMmap, MemoryError> {
    let mut offset = 0;
    let mut ranges = Vec::with_capacity(ram.len());
    for r in ram {
        let file = memfd.try_clone().map_err(MemoryError::Dup)?;
        ranges.push((
            GuestAddress(r.base),
            r.size as usize,
            Some(FileOffset::new(file, offset)),
        ));
        offset += r.size;
    }
    Ok(GuestMemoryMmap::from_ranges_with_files(ranges)?)
}

/// Registers every region of `mem` with KVM.
pub fn register(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for (slot, region) in mem.iter().enumerate() {
        let slot = slot as u32;
        let host = mem
            .get_host_address(region.start_addr())
            .map_err(|_| MemoryError::Slot {
                slot,
                source: kvm_ioctls::Error::new(libc::EFAULT),
            })?;
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live shared mapping owned by `mem`, which the
        // caller keeps alive for as long as the VM exists (the vm process
        // holds both until it exits), and slots do not overlap.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|source| MemoryError::Slot { slot, source })?;
    }
    Ok(())
}
