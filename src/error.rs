//! The one error type: what we were doing, and why it failed.
//!
//! Every message has the shape `unable to <what>: <reason>` so that a log line names the operation and
//! the path or value involved. The errno is kept so callers can branch on it (EALREADY, EBUSY, ...).

use std::fmt;

/// Why an operation failed: the kernel said no (an errno), or the input was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Errno(rustix::io::Errno),
    Invalid(String),
}

/// An operation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: String,
    cause: Cause,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A system call failed while doing `what` (e.g. "open /dev/nvme-fabrics").
    pub fn os(what: impl Into<String>, errno: rustix::io::Errno) -> Self {
        Error {
            what: what.into(),
            cause: Cause::Errno(errno),
        }
    }

    /// Input from outside the process was wrong while doing `what`.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error {
            what: what.into(),
            cause: Cause::Invalid(why.into()),
        }
    }

    /// From a std::io::Error (file reads through std), keeping the errno when there is one.
    pub fn io(what: impl Into<String>, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(raw) => Error::os(what, rustix::io::Errno::from_raw_os_error(raw)),
            None => Error::invalid(what, e.to_string()),
        }
    }

    pub fn errno(&self) -> Option<rustix::io::Errno> {
        match self.cause {
            Cause::Errno(e) => Some(e),
            Cause::Invalid(_) => None,
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Errno(e) => {
                let io = std::io::Error::from_raw_os_error(e.raw_os_error());
                // std appends " (os error N)"; keep the text and name the errno symbolically instead.
                let text = io.to_string();
                let text = text.split(" (os error").next().unwrap_or(&text);
                write!(f, "{} (errno {})", text, e.raw_os_error())
            }
            Cause::Invalid(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unable to {}: {}", self.what, self.cause)
    }
}

impl std::error::Error for Error {}

/// Attach "what we were doing" to a rustix or std result.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::os(what(), e))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn message_names_operation_and_errno() {
        let e = Error::os("open /dev/nvme-fabrics", Errno::NOENT);
        assert_eq!(
            e.to_string(),
            "unable to open /dev/nvme-fabrics: No such file or directory (errno 2)"
        );
        assert_eq!(e.errno(), Some(Errno::NOENT));
    }

    #[test]
    fn invalid_input_has_no_errno() {
        let e = Error::invalid("parse /etc/nvme/hostnqn", "empty file");
        assert_eq!(
            e.to_string(),
            "unable to parse /etc/nvme/hostnqn: empty file"
        );
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn std_io_error_keeps_errno() {
        let r: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(13));
        let e = r.context(|| "read x".into()).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ACCESS));
    }
}
