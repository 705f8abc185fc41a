//! Architecture-specific code. Everything above this module is neutral.

pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
