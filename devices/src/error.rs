//! Why a backend stopped serving.

use std::io;

use vhost::vhost_user::Error as VhostUserError;
use vhost_user_backend::VhostUserHandlerError;

/// Errors of `start_backend` and `serve`. Only [`DeviceError::Frontend`]
/// belongs to one connection: a standalone backend logs it and accepts the
/// next frontend; everything else ends the process.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot set up the vhost-user handler")]
    Handler(#[source] VhostUserHandlerError),
    #[error("cannot accept a frontend")]
    Accept(#[source] VhostUserError),
    #[error("cannot set up the connection")]
    Setup(#[source] io::Error),
    #[error("frontend connection failed")]
    Frontend(#[source] VhostUserError),
    #[error("cannot start a device thread")]
    Thread(#[source] io::Error),
    #[error("a device thread panicked")]
    Panicked,
    #[error("cannot duplicate a file descriptor")]
    Dup(#[source] io::Error),
}

impl DeviceError {
    /// Whether the error ended one frontend connection only (the frontend
    /// broke the protocol), so a standalone backend may accept the next.
    pub fn is_connection_only(&self) -> bool {
        matches!(self, DeviceError::Frontend(_))
    }

    /// Maps the daemon's error, which implements no `std::error::Error`.
    pub(crate) fn from_daemon(err: vhost_user_backend::Error) -> Self {
        use vhost_user_backend::Error as E;
        match err {
            E::HandleRequest(e) => DeviceError::Frontend(e),
            E::NewVhostUserHandler(e) => DeviceError::Handler(e),
            E::CreateBackendListener(e)
            | E::CreateBackendReqHandler(e)
            | E::CreateVhostUserListener(e) => DeviceError::Accept(e),
            E::StartDaemon(e) => DeviceError::Setup(e),
            E::WaitDaemon(_) => DeviceError::Panicked,
        }
    }

    /// How a connection ended: a frontend that hung up is not an error.
    pub(crate) fn from_connection(
        result: Result<(), vhost_user_backend::Error>,
    ) -> Result<(), Self> {
        use vhost_user_backend::Error as E;
        match result {
            Err(E::HandleRequest(
                VhostUserError::Disconnected
                | VhostUserError::PartialMessage
                | VhostUserError::SocketBroken(_),
            )) => Ok(()),
            result => result.map_err(DeviceError::from_daemon),
        }
    }
}

pub use protocol::error_chain;
