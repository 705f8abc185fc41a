//! The binary's logger: one line per record on stderr, naming the process
//! role, so lines from the supervisor and the vm process can be told apart.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    role: &'static str,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_lowercase();
            // Nothing sensible is left to do if stderr is gone.
            let _ = writeln!(
                std::io::stderr().lock(),
                "cordon[{}] {level}: {}",
                self.role,
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once for this process.
pub fn init(role: &'static str, level: LevelFilter) {
    let logger = Box::leak(Box::new(StderrLogger { role }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
