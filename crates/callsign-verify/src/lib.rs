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
//! Revocation is the token service's to decide; this crate checks what the token itself proves.
//!
//! ```no_run
//! # async fn example(token: &str) -> Result<(), callsign_verify::VerifyError> {
//! use callsign_verify::{TokenVerifier, VerifierOptions};
//!
//! let verifier = TokenVerifier::from_endpoint(
//!     "https://callsign.example/",
//!     VerifierOptions::for_resource("d8b0e3f6-6a4f-4b43-9f3a-6a6f1c1c8c2e"),
//! )?;
//! let verified = verifier.verify(token).await?;
//! println!("{} may use {:?} until {}", verified.user.id(), verified.scopes, verified.expires_on);
//! # Ok(())
//! # }
//! ```

mod claims;
mod jwks;
mod verifier;

pub use claims::{Scope, VerifiedToken};
pub use jwks::{JwksError, KeySet};
pub use verifier::{TokenVerifier, VerifierOptions, VerifyError};
