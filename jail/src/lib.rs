//! cordon's jail. Every process cordon starts applies these layers as the
//! first act of its main, in this order: an empty tmpfs root (pivot_root),
//! closing every fd not on its keep list, rlimits, no_new_privs, dropping
//! every capability, Landlock, and last its role's seccomp filter. Each
//! layer is a function usable on its own, so a test can prove one wall with
//! the others off; [`process::enter`] applies them all, and the spawn helper
//! (`vmm::spawn`) puts each child into its sandbox's namespaces and cgroup
//! before it execs.

pub mod cgroup;
pub mod fds;
pub mod landlock;
pub mod namespaces;
pub mod privileges;
pub mod process;
pub mod rlimits;
pub mod root;
pub mod seccomp;
mod syscall_names;
