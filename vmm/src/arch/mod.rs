//! Architecture-specific code. Everything above this module is neutral.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
