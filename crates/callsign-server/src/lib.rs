//! callsign-server: the Communication Identity service as a library.
//!
//! Layers, each depending only on the ones after it: [`http`] (routing, api-versions, error bodies)
//! → [`auth`] and [`domain`] (identities, tokens, revocation) → [`store`] (one backend per
//! deployment: a SQLite data dir, or PostgreSQL for a cluster), with [`keys`] holding the
//! resource id, access keys and signing keys in force, and [`throttling`] holding each operation
//! group to its limit. [`server`] wires them together.

pub mod audit;
pub mod auth;
pub mod clock;
mod connections;
pub mod console;
pub mod domain;
pub mod error_chain;
pub mod export;
pub mod http;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod readiness;
pub mod server;
pub mod store;
pub mod throttling;
pub mod tls;
pub mod webhooks;

pub use server::{Server, ServerConfig, ServerError, TlsMode};
pub use store::{PostgresConfig, StorageConfig};
