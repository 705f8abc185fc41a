//! What `vmm` and `devices` share without depending on each other: the
//! configuration a device process receives, rate limiting for log lines a
//! guest can trigger, and one-line error reports.

pub mod device;
pub mod ratelimit;

/// An error and its sources, joined by ": ", for one-line reports.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}
