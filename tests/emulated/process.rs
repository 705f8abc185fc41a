//! Child processes in a process group of their own, killed as a group.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A child leading its own process group; dropping it SIGKILLs the group.
pub struct Group {
    child: Child,
    name: String,
}

impl Group {
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<Group> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        Ok(Group {
            child,
            name: name.to_owned(),
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Kills every process of the group and reaps the leader.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            self.signal_group();
            return Ok(status);
        }
        self.signal_group();
        self.child.wait()
    }

    /// Waits until `path` exists (a backend's socket, say); fails if the
    /// process ends first or `limit` passes.
    pub fn wait_for_path(&mut self, path: &Path, limit: Duration) -> io::Result<()> {
        let start = Instant::now();
        while !path.exists() {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited ({status}) before creating {}",
                    self.name,
                    path.display()
                )));
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "{} did not create {} within {limit:?}",
                    self.name,
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn signal_group(&self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes no pointers; -pgid names the group this
        // child leads (process_group(0)), so only our processes are hit.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
