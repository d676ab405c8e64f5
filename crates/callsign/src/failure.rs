//! How a command fails: one line on stderr, `error: what: why` with every cause once and a hint
//! where one helps, and the exit code (1 for a failure, 2 for a usage error).

use std::process::ExitCode;

/// A failed command.
pub struct Failure {
    kind: Kind,
    error: anyhow::Error,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The command ran and failed (the service, the connection, the storage): exit 1.
    Failed,
    /// Bad arguments or configuration, found before anything was done: exit 2.
    Usage,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            kind: Kind::Usage,
            error: error.into(),
        }
    }

    /// A usage error with this message (exit 2).
    pub fn usage_msg(message: impl std::fmt::Display) -> Self {
        Self::usage(anyhow::anyhow!("{message}"))
    }

    /// A failure (exit 1).
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Self {
            kind: Kind::Failed,
            error: error.into(),
        }
    }

    /// Writes the error on stderr and gives the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", chain(&self.error));
        match self.kind {
            Kind::Failed => ExitCode::FAILURE,
            Kind::Usage => ExitCode::from(2),
        }
    }
}

/// Every error of the binary's `anyhow` code is a failure (exit 1) unless said otherwise.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::failed(error)
    }
}

/// `what: cause: root cause`, each message once: a cause whose text an outer message already
/// contains (libraries that repeat their source in their own message) is left out, and so are
/// the retry wrappers of the HTTP pipeline, which say nothing about the failure itself.
pub fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if message.is_empty() || text.contains(&message) || is_wrapper(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Messages azure_core's retry policy and transport wrap every transport error in.
fn is_wrapper(message: &str) -> bool {
    [
        "retry policy expired",
        "non-transport error occurred which will not be retried",
        "failed to execute `reqwest` request",
    ]
    .iter()
    .any(|wrapper| message.starts_with(wrapper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("binding 127.0.0.1:8080: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let repeated = anyhow::Error::new(Repeats(io())).context("starting the server");
        let text = chain(&repeated);
        assert_eq!(text.matches(&io().to_string()).count(), 1, "{text}");
        assert!(text.starts_with("starting the server: binding 127.0.0.1:8080: "));

        let plain = anyhow::Error::new(io()).context("a").context("b");
        assert_eq!(chain(&plain), format!("b: a: {}", io()));
    }
}
