//! Verify callsign access tokens in your own services (chat, calling and media backends) without
//! a call to the token service per request.
//!
//! A [`TokenVerifier`] holds the issuer's signing keys — fetched from its JWKS endpoint
//! (`/.well-known/jwks.json`) or given as a JWKS document — and checks a token's signature with
//! the key's own algorithm (RS256, ES256 or EdDSA; anything else is refused), its expiry with a
//! leeway, and the resource that issued it, and returns the claims typed ([`VerifiedToken`]).
//! A token signed with a key it does not know makes it fetch the keys again (at most every
//! [`VerifierOptions::refetch_interval`]): a rotated signing key is picked up by itself.
//!
//! With [`TokenVerifier::follow_revocations`] it is revocation-aware too: it keeps every user's
//! revocation and deletion stamp in memory by following the issuer's change feed, and refuses
//! a token issued at or before its user's revocation within moments of the revoke — exactly as
//! the server decides, without a call per token.
//!
//! A service that receives callsign's signed webhooks instead checks each delivery with
//! [`webhook::verify_delivery`].
//!
//! ```no_run
//! # async fn example(token: &str) -> Result<(), callsign_verify::VerifyError> {
//! use callsign_verify::{TokenVerifier, VerifierOptions};
//!
//! let verifier = TokenVerifier::from_endpoint(
//!     "https://callsign.example/",
//!     VerifierOptions::for_resource("d8b0e3f6-6a4f-4b43-9f3a-6a6f1c1c8c2e"),
//! )?;
//! // Optional: revocation-aware, with an access key of the resource.
//! # let access_key = callsign_common::AccessKey::from_base64("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
//! let verifier = verifier.follow_revocations(access_key)?;
//! verifier.synchronised().await;
//! let verified = verifier.verify(token).await?;
//! println!("{} may use {:?} until {}", verified.user.id(), verified.scopes, verified.expires_on);
//! # Ok(())
//! # }
//! ```

mod claims;
pub mod http;
mod jwks;
mod revocations;
mod verifier;
pub mod webhook;

pub use claims::{Scope, VerifiedToken};
pub use jwks::{JwksError, KeySet};
pub use verifier::{TokenVerifier, VerifierOptions, VerifyError};
