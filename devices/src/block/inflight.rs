//! The place where inflight tracking plugs in (see README.md in this
//! directory). Today nothing is recorded; the supervisor issue maps the
//! frontend's inflight region (VHOST_USER_GET/SET_INFLIGHT_FD, the layout of
//! QEMU's docs/interop/vhost-user.rst "Inflight I/O tracking") behind this
//! trait.

/// Records a request's life so a restarted backend can resubmit what was
/// popped but never completed, and nothing that was.
pub trait InflightLog {
    /// `head` was popped from the avail ring; called before the request
    /// touches the image or guest memory.
    fn begin(&mut self, head: u16);

    /// `head` is in the used ring and `used_idx` was published; called
    /// before the guest is notified.
    fn complete(&mut self, head: u16, used_idx: u16);
}

/// No tracking: a restarted backend starts from the used index.
pub struct NoInflight;

impl InflightLog for NoInflight {
    fn begin(&mut self, _head: u16) {}
    fn complete(&mut self, _head: u16, _used_idx: u16) {}
}
