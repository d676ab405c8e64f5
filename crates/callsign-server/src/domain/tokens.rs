//! Minting and verifying ACS access tokens (docs/protocol.md §4).

use super::ids::IdentityId;
use super::scope::{Minutes, Scopes};
use crate::keys::{ResourceKeys, SigningAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callsign_common::claims::{decode_claims, TokenClaims};
use chrono::{DateTime, Utc};

/// The `scp` value the real service puts in every identity token.
const SCP: u32 = 1792;
/// Region and data location the tokens name; callsign runs wherever it is started.
const REGION: &str = "amer";
const LOCATION: &str = "unitedstates";
/// The longest base64url signature of the algorithms (RS256 with a 2048-bit key: 256 bytes).
const MAX_SIGNATURE_CHARS: usize = 342;

/// A freshly minted token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Its `exp`.
    pub expires_on: DateTime<Utc>,
    /// The algorithm that signed it (counted by the metrics).
    pub alg: SigningAlg,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// Mints a token for `id`, signed with the current key (RS256 unless configured otherwise), stamped `stamp_us` (microseconds since the epoch).
///
/// The JWT is assembled here and signed with the crypto library's RSA primitive, because the payload
/// must be encoded in a form a generic JWT encoder cannot guarantee (see
/// [`TokenClaims::to_payload_segment`]).
pub fn mint(
    keys: &ResourceKeys,
    id: &IdentityId,
    scopes: &Scopes,
    lifetime: Minutes,
    stamp_us: i64,
) -> IssuedToken {
    let issued_at = DateTime::from_timestamp_micros(stamp_us).expect("stamp in range");
    let exp = issued_at.timestamp() + lifetime.duration().num_seconds();
    mint_until(keys, id.skype_id(), scopes, stamp_us, exp)
}

/// Mints an RS256 token for the raw id `8:<skype_id>` that expires at `exp` (seconds) — for
/// exchanged tokens, whose expiry is the exchanged token's.
pub fn mint_until(
    keys: &ResourceKeys,
    skype_id: &str,
    scopes: &Scopes,
    stamp_us: i64,
    exp: i64,
) -> IssuedToken {
    let issued_at = DateTime::from_timestamp_micros(stamp_us).expect("stamp in range");
    let iat = issued_at.timestamp();
    let claims = TokenClaims {
        skypeid: skype_id.to_owned(),
        scp: SCP,
        csi: iat.to_string(),
        exp,
        rgn: Some(REGION.to_owned()),
        acs_scope: scopes.joined(),
        resource_id: keys.resource_id.to_string(),
        resource_location: Some(LOCATION.to_owned()),
        iat,
        jti: Some(token_id()),
        iat_micros: Some(stamp_us),
    };
    let signer = &keys.ring.current;
    let payload = claims.to_payload_segment();
    // One buffer for the whole token: header and payload, then the signature over them.
    let header = signer.jwt_header();
    let mut token = String::with_capacity(header.len() + payload.len() + 2 + MAX_SIGNATURE_CHARS);
    token.push_str(header);
    token.push('.');
    token.push_str(&payload);
    let signature = signer.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    IssuedToken {
        token,
        expires_on: DateTime::from_timestamp(exp, 0).expect("exp in range"),
        alg: signer.alg(),
    }
}

/// A new random token id (`jti`): a version 4 UUID from aws-lc's generator, which, unlike
/// `Uuid::new_v4` (a `getrandom` system call each), draws from a per-thread DRBG.
fn token_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("the random generator works");
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .to_string()
}

/// Why a token does not verify (docs/protocol.md §7.2): introspection reports it as `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT of three base64url parts with a JSON header and claims.
    Malformed,
    /// Its claims name this resource, but its `kid` no key this resource publishes.
    UnknownKey,
    /// Its `kid` is known, but the signature does not match (or names another algorithm).
    BadSignature,
    /// Issued by another resource (its claims name another resource id).
    OtherResource,
    /// Verified, but its `exp` has passed.
    Expired,
}

/// The claims of a token this resource signed and that has not expired at `now`, or why not.
///
/// Revocation is not checked here: that needs the store.
pub fn verify(
    keys: &ResourceKeys,
    token: &str,
    now: DateTime<Utc>,
) -> Result<TokenClaims, Rejection> {
    #[derive(serde::Deserialize)]
    struct Header {
        alg: String,
        kid: String,
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
    let (header, _) = signing_input.split_once('.').ok_or(Rejection::Malformed)?;
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Rejection::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejection::Malformed)?;
    // Read before the signature is checked only to say *why* a token is refused.
    let claims = decode_claims(token).map_err(|_| Rejection::Malformed)?;
    if claims.resource_id != keys.resource_id.to_string() {
        return Err(Rejection::OtherResource);
    }
    let key = keys.ring.find(&header.kid).ok_or(Rejection::UnknownKey)?;
    if header.alg != key.alg().jws_name() || !key.verify(signing_input.as_bytes(), &signature) {
        return Err(Rejection::BadSignature);
    }
    if claims.exp <= now.timestamp() {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;
    use crate::keys::DataDir;

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let keys = DataDir::new(dir.path()).init(None, now, false).unwrap();
        let id = IdentityId::generate(keys.resource_id);
        let scopes = Scopes::new([Scope::Chat, Scope::Voip]).unwrap();
        let stamp = now.timestamp_micros();
        let issued = mint(&keys, &id, &scopes, Minutes::MIN, stamp);
        assert_eq!(issued.expires_on.timestamp(), now.timestamp() + 3600);

        let claims = verify(&keys, &issued.token, now).unwrap();
        assert_eq!(claims.raw_id(), id.as_str());
        assert_eq!(claims.acs_scope, "chat,voip");
        assert_eq!(claims.iat_micros, Some(stamp));
        assert_eq!(claims.csi, claims.iat.to_string());
        let jti = uuid::Uuid::try_parse(claims.jti.as_deref().unwrap()).unwrap();
        assert_eq!(jti.get_version(), Some(uuid::Version::Random));
        let again = verify(
            &keys,
            &mint(&keys, &id, &scopes, Minutes::MIN, stamp).token,
            now,
        );
        assert_ne!(again.unwrap().jti, claims.jti, "a new id for each token");
        assert_eq!(
            verify(&keys, &issued.token, issued.expires_on).unwrap_err(),
            Rejection::Expired
        );

        let mut tampered = issued.token.clone();
        tampered.push('A');
        assert_eq!(
            verify(&keys, &tampered, now).unwrap_err(),
            Rejection::BadSignature
        );
        assert_eq!(
            verify(&keys, "a.b.c", now).unwrap_err(),
            Rejection::Malformed
        );
        // The same claims under a kid this resource never had.
        let (_, rest) = issued.token.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"nobody","typ":"JWT"}"#);
        assert_eq!(
            verify(&keys, &format!("{header}.{rest}"), now).unwrap_err(),
            Rejection::UnknownKey
        );

        let other = DataDir::new(dir.path().join("other"))
            .init(None, now, false)
            .unwrap();
        assert_eq!(
            verify(&other, &issued.token, now).unwrap_err(),
            Rejection::OtherResource
        );
    }

    #[test]
    fn es256_and_eddsa_tokens_verify_and_name_their_algorithm() {
        use crate::keys::SigningAlg;
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
            let dir = tempfile::tempdir().unwrap();
            let now = Utc::now();
            let data = DataDir::new(dir.path());
            data.init(None, now, false).unwrap();
            let keys = data.ensure_signing_alg(alg, now).unwrap();
            let id = IdentityId::generate(keys.resource_id);
            let scopes = Scopes::new([Scope::Chat]).unwrap();
            let issued = mint(&keys, &id, &scopes, Minutes::MIN, now.timestamp_micros());
            let header = issued.token.split('.').next().unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
            assert_eq!(header["alg"], alg.jws_name());
            assert_eq!(header["kid"], keys.ring.current.kid());
            assert_eq!(header["x5t"], keys.ring.current.x5t());
            assert_eq!(header["typ"], "JWT");
            assert!(verify(&keys, &issued.token, now).is_ok());
            let mut tampered = issued.token.clone();
            tampered.insert(tampered.len() - 5, 'A');
            assert_eq!(
                verify(&keys, &tampered, now).unwrap_err(),
                Rejection::BadSignature
            );
        }
    }
}
