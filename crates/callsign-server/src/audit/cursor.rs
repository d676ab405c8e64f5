//! Cursors: a [`LogPosition`] as readers of the log (the change feed, webhook receivers) see it —
//! opaque text they hand back to continue after an event.

use crate::store::LogPosition;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A reader's place in the log. Version 1 is a version byte and the position's two numbers,
/// 17 bytes big-endian, in URL-safe base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub LogPosition);

impl Cursor {
    /// The cursor's text.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 17];
        bytes[0] = 1;
        bytes[1..9].copy_from_slice(&self.0.commit.to_be_bytes());
        bytes[9..].copy_from_slice(&self.0.id.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor this server made; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let bytes: [u8; 17] = bytes.try_into().ok()?;
        if bytes[0] != 1 {
            return None;
        }
        let commit = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let id = i64::from_be_bytes(bytes[9..].try_into().expect("8 bytes"));
        Some(Self(LogPosition { commit, id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_this_server_did_not_make() {
        let position = LogPosition {
            commit: 123_456_789,
            id: 42,
        };
        let text = Cursor(position).encode();
        assert_eq!(Cursor::decode(&text).unwrap().0, position);
        for bad in ["", "x", "AAAA", &URL_SAFE_NO_PAD.encode([2u8; 17])] {
            assert!(Cursor::decode(bad).is_none(), "{bad}");
        }
    }
}
