//! The Communication Identity domain: identities, tokens, revocation and introspection, independent
//! of HTTP and of the database behind [`crate::store::Backend`].

pub mod access;
pub mod entra;
pub mod exchange;
pub mod identities;
pub mod ids;
pub mod scope;
pub mod tokens;

pub use exchange::{TeamsExchangeError, TeamsUserIds};
pub use identities::{IdentityService, IdentityView, InactiveReason, Introspection};
pub use ids::{IdentityId, IdentityIdError, ResourceId};
pub use scope::{Minutes, Scope, Scopes};
pub use tokens::IssuedToken;

use crate::store::StoreError;

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The id is not a communication user id.
    #[error("the identity id is malformed")]
    MalformedId,
    /// The id belongs to another resource.
    #[error("the identity belongs to another resource")]
    NotOwned,
    /// No live identity has this id.
    #[error("the identity does not exist")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IdentityIdError> for DomainError {
    fn from(e: IdentityIdError) -> Self {
        match e {
            IdentityIdError::Malformed => DomainError::MalformedId,
            IdentityIdError::NotOwned => DomainError::NotOwned,
        }
    }
}
