//! Errors written out with their causes, for log lines: error types here keep each cause out of
//! their own message (the CLI prints the chain once), so a log line that showed only the outer
//! message would lose the reason.

use std::fmt::Write;

/// `outer: cause: root cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let error = crate::keys::KeyError::io("reading", std::path::Path::new("/x/k"), io);
        assert_eq!(error_chain(&error), "reading /x/k: gone");
    }
}
