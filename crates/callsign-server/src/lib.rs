//! callsign-server: the Communication Identity service as a library.
//!
//! Layers, each depending only on the ones after it: [`http`] (routing, api-versions, error bodies)
//! → [`auth`] and [`domain`] (identities, tokens, revocation) → [`store`] (SQLite, or PostgreSQL for a cluster), with [`keys`]
//! managing the resource id, access keys and signing keys. [`server`] wires them together.

pub mod auth;
pub mod clock;
pub mod domain;
pub mod http;
pub mod keys;
pub mod server;
pub mod store;
pub mod tls;

pub use server::{PostgresConfig, Server, ServerConfig, ServerError, TlsMode};
