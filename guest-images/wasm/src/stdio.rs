//! The module's stdin, stdout and stderr, and its entropy: the sandbox's
//! virtio consoles (console 0: stdout and stdin, console 1: stderr) and
//! virtio-rng when cordon attached them, else the debug console for output,
//! end of file for input and no entropy.

use guest_virtio::{id, Console, Device, Devices, Rng};

/// The devices behind fds 0, 1 and 2 and `random_get`.
pub struct Stdio {
    console0: Option<Console>,
    /// Set up on the first write to fd 2: most modules never write there,
    /// and setting a console up costs a few dozen MMIO exits.
    console1: Option<Console>,
    console1_device: Option<Device>,
    rng: Option<Rng>,
}

/// A device stopped working; the call fails with EIO.
pub struct Broken;

impl Stdio {
    pub fn new(devices: &Devices) -> Stdio {
        let console = |nth| {
            devices
                .find(id::CONSOLE, nth)
                .and_then(|d| Console::new(&d).ok())
        };
        Stdio {
            console0: console(0),
            console1: None,
            console1_device: devices.find(id::CONSOLE, 1),
            rng: devices.find(id::RNG, 0).and_then(|d| Rng::new(&d).ok()),
        }
    }

    /// Writes `bytes` to fd 1 or 2.
    pub fn write(&mut self, fd: i32, bytes: &[u8]) -> Result<(), Broken> {
        let console = if fd == 1 {
            self.console0.as_mut()
        } else {
            if self.console1.is_none() {
                self.console1 = self
                    .console1_device
                    .take()
                    .and_then(|d| Console::new(&d).ok());
            }
            self.console1.as_mut()
        };
        match console {
            Some(c) => c.write(bytes).map_err(|_| Broken),
            None => {
                guest_rt::console::write(bytes);
                Ok(())
            }
        }
    }

    /// Reads from fd 0, waiting for at least one byte; 0 is end of file.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Broken> {
        match self.console0.as_mut() {
            Some(c) => c.read(out).map_err(|_| Broken),
            None => Ok(0),
        }
    }

    /// Fills `out` with random bytes; None without an rng device.
    pub fn random(&mut self, out: &mut [u8]) -> Option<Result<(), Broken>> {
        let rng = self.rng.as_mut()?;
        Some(rng.fill(out).map_err(|_| Broken))
    }
}
