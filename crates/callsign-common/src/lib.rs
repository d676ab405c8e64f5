//! What every callsign client and the callsign server share: communication identifiers, connection
//! strings, HMAC request signing, access-token claims and the wire time formats.
//!
//! Keeping one implementation of each here means the server checks exactly what the clients produce.

pub mod claims;
pub mod connection_string;
pub mod hmac;
pub mod identifier;
pub mod time_format;

pub use claims::{AccessToken, TokenClaims};
pub use connection_string::{ConnectionString, ConnectionStringError};
pub use hmac::AccessKey;
pub use identifier::CommunicationIdentifier;
