//! Boot: the image reader, the memory layout and the boot-info writer.

pub mod bootinfo;
pub mod elf;
pub mod layout;
