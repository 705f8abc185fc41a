//! Reading the guest's image and module from the fds the supervisor
//! passed, on every architecture.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::error::BootError;

/// The image file, at most `limit` bytes (guest memory).
pub fn read_image(file: &mut File, limit: u64) -> Result<Vec<u8>, BootError> {
    read_bounded(file, limit)
        .map_err(BootError::ReadImage)?
        .map_err(|size| BootError::ImageTooLarge { size, limit })
}

/// All of `file` from its start, if it holds at most `limit` bytes; else
/// its size. The buffer is sized up front from the file's length.
pub fn read_bounded(file: &mut File, limit: u64) -> std::io::Result<Result<Vec<u8>, u64>> {
    let size = file.metadata()?.len();
    if size > limit {
        return Ok(Err(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // From the start: the offset is shared with the supervisor's copy.
    file.seek(SeekFrom::Start(0))?;
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Err(bytes.len() as u64));
    }
    Ok(Ok(bytes))
}
