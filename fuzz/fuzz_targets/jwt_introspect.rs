//! JWTs given to introspection (`POST /callsign/tokens/:introspect`): `domain::tokens::verify`,
//! which checks an ACS token's header, signature (RS256, ES256 or EdDSA key of the ring),
//! resource and expiry, and the unverified claim readers clients use (`claims::decode_claims`,
//! `decode_expiry`), and the encoding of minted claims (`TokenClaims::to_payload_segment`).
//!
//! Input: NUL-separated `mode, token` (raw) or `mode, key, header, payload, tamper` (signed: the
//! header and payload templates are signed with one of the ring's keys, or with a foreign key when
//! `key` says so; `$KID`, `$ALG`, `$RID`, `$NOW` and `$EXP` are filled in). Whatever verifies must
//! be of this resource and unexpired, and its claims must be what the clients read; a foreign key
//! or any change to a signed token must be refused.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::claims::{decode_claims, decode_expiry, TokenClaims};
use callsign_fuzz::{
    issuer_key, now, resource_keys, ring_keys, sign_jws, Fields, NOW_SECS, RESOURCE_ID,
};
use callsign_server::domain::tokens::verify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let mode = f.byte();
    if mode & 1 == 0 {
        let token = f.text();
        check(&token);
        payload_segment(&token);
        return;
    }
    let which = f.byte();
    let (header, payload, tamper) = (f.text(), f.text(), f.bytes());
    let ring = ring_keys();
    let foreign = usize::from(which) % (ring.len() + 1) == ring.len();
    let key = if foreign {
        issuer_key()
    } else {
        &ring[usize::from(which) % ring.len()]
    };
    let fill = |template: &str| {
        template
            .replace("$KID", key.kid())
            .replace("$ALG", key.alg().jws_name())
            .replace("$RID", RESOURCE_ID)
            .replace("$NOW", &NOW_SECS.to_string())
            .replace("$EXP", &(NOW_SECS + 3600).to_string())
    };
    let token = sign_jws(key, fill(&header).as_bytes(), fill(&payload).as_bytes());
    let mut tampered = token.clone().into_bytes();
    if let [at, xor, ..] = tamper {
        let i = usize::from(*at) * tampered.len() / 256;
        tampered[i] ^= xor;
    }
    let tampered = String::from_utf8_lossy(&tampered).into_owned();
    let accepted = check(&tampered);
    if callsign_fuzz::debug() {
        eprintln!(
            "signed, foreign key: {foreign}, tampered: {}, accepted: {accepted}",
            tampered != token
        );
    }
    if foreign || tampered != token {
        assert!(!accepted, "accepted a token the ring did not sign");
    }
});

/// Verifies `token` and checks what an accepted one says; whether it was accepted.
fn check(token: &str) -> bool {
    let keys = resource_keys();
    let decoded = decode_claims(token);
    let _ = decode_expiry(token);
    let Ok(claims) = verify(keys, token, now()) else {
        return false;
    };
    assert_eq!(claims.resource_id, RESOURCE_ID);
    assert!(claims.exp > NOW_SECS);
    assert_eq!(decoded, Ok(claims.clone()), "clients read other claims");
    if chrono::DateTime::from_timestamp(claims.exp, 0).is_some() {
        assert_eq!(decode_expiry(token).map(|e| e.timestamp()), Ok(claims.exp));
    }
    true
}

/// Minted tokens put ids from requests (and from exchanged tokens) into `skypeid`: whatever it
/// holds, the payload segment must decode the same with the standard and the URL-safe base64
/// alphabets (the Python client uses the former) and read back as the same claims.
fn payload_segment(skypeid: &str) {
    let claims = TokenClaims {
        skypeid: skypeid.to_owned(),
        scp: 1792,
        csi: NOW_SECS.to_string(),
        exp: NOW_SECS + 3600,
        rgn: Some(skypeid.chars().rev().collect()),
        acs_scope: "chat,voip".to_owned(),
        resource_id: RESOURCE_ID.to_owned(),
        resource_location: None,
        iat: NOW_SECS,
        jti: Some(skypeid.to_uppercase()),
        iat_micros: Some(NOW_SECS * 1_000_000),
    };
    let segment = claims.to_payload_segment();
    assert!(!segment.contains(['-', '_']), "{segment}");
    assert_eq!(decode_claims(&format!("e30.{segment}.c2ln")), Ok(claims));
}
