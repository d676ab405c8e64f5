//! What every callsign client and the callsign server share: communication identifiers, connection
//! strings, HMAC request signing, access-token claims, the wire time formats and webhook signatures.
//!
//! Keeping one implementation of each here means the server checks exactly what the clients produce.

pub mod api_version;
pub mod claims;
pub mod clock;
pub mod connection_string;
pub mod credential;
pub mod hmac;
pub mod hmac_policy;
pub mod identifier;
pub mod time_format;
pub mod webhook_signature;

pub use api_version::ApiVersion;
pub use claims::{AccessToken, TokenClaims};
pub use connection_string::{ConnectionString, ConnectionStringError};
pub use credential::{
    CommunicationTokenCredential, CommunicationTokenRefreshOptions, CredentialError, RefreshedToken,
};
pub use hmac::AccessKey;
pub use hmac_policy::HmacAuthenticationPolicy;
pub use identifier::CommunicationIdentifier;
