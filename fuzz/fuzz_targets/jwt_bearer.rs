//! JWTs given to the bearer exchanges and to bearer-authenticated management calls:
//! `TrustedIssuers::verify` (RS256 against the issuer's JWKS, issuer, tenant, expiry, not-before,
//! audience) and `authenticate_bearer` (allow-listed oid or app role).
//!
//! Input: NUL-separated `mode, audience, token` (raw) or `mode, audience, key, header, payload,
//! tamper` (signed with the trusted issuers' key, or with a key they do not publish when `key`
//! says so; `$KID`, `$ISS`, `$ISS2`, `$TID`, `$NOW`, `$EXP` and `$AUD` are filled in).
//! Whatever verifies must satisfy every check; a foreign key or any change must be refused.

#![no_main]
#![forbid(unsafe_code)]

use callsign_fuzz::{
    issuer_key, resource_keys, runtime, sign_jws, trusted_issuers, Fields, ISSUER,
    ISSUER_ANY_TENANT, NOW_SECS, TENANT,
};
use callsign_server::auth::entra::{ENTRA_CLIENTS_AUDIENCE, MANAGEMENT_AUDIENCE, TEAMS_AUDIENCE};
use callsign_server::auth::{authenticate_bearer, AuthError, ManagementConfig, TrustedIssuers};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ALLOWED_OID: &str = "0b5f3bb4-8b0a-4a50-8d4e-3a0c2e1f9d21";
const ROLE: &str = "Identity.Manage";

struct State {
    runtime: tokio::runtime::Runtime,
    issuers: TrustedIssuers,
    policy: ManagementConfig,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| State {
        runtime: runtime(),
        issuers: trusted_issuers(),
        policy: ManagementConfig {
            allowed_object_ids: vec![ALLOWED_OID.to_owned()],
            required_role: Some(ROLE.to_owned()),
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let mode = f.byte();
    let audience = match f.byte() % 3 {
        0 => MANAGEMENT_AUDIENCE,
        1 => TEAMS_AUDIENCE,
        _ => ENTRA_CLIENTS_AUDIENCE,
    };
    if mode & 1 == 0 {
        check(&f.text(), audience);
        return;
    }
    let foreign = f.byte() & 1 == 1;
    let key = if foreign {
        &resource_keys().ring.current
    } else {
        issuer_key()
    };
    let (header, payload, tamper) = (f.text(), f.text(), f.bytes());
    let fill = |template: &str| {
        template
            .replace("$KID", key.kid())
            .replace("$ISS2", ISSUER_ANY_TENANT)
            .replace("$ISS", ISSUER)
            .replace("$TID", TENANT)
            .replace("$NOW", &NOW_SECS.to_string())
            .replace("$EXP", &(NOW_SECS + 3600).to_string())
            .replace("$AUD", audience)
    };
    let token = sign_jws(key, fill(&header).as_bytes(), fill(&payload).as_bytes());
    let mut tampered = token.clone().into_bytes();
    if let [at, xor, ..] = tamper {
        let i = usize::from(*at) * tampered.len() / 256;
        tampered[i] ^= xor;
    }
    let tampered = String::from_utf8_lossy(&tampered).into_owned();
    let accepted = check(&tampered, audience);
    if callsign_fuzz::debug() {
        eprintln!(
            "signed, foreign key: {foreign}, tampered: {}, accepted: {accepted}",
            tampered != token
        );
    }
    if foreign || tampered != token {
        assert!(!accepted, "accepted a token the issuer did not sign");
    }
});

/// Verifies `token` for `audience` and checks what an accepted one says; whether it was accepted.
fn check(token: &str, audience: &str) -> bool {
    let s = state();
    let verified = s.runtime.block_on(s.issuers.verify(token, audience));
    let management = s
        .runtime
        .block_on(authenticate_bearer(&s.issuers, &s.policy, token));
    let Ok(claims) = verified else {
        if audience == MANAGEMENT_AUDIENCE {
            assert!(management.is_err());
        }
        return false;
    };
    assert!(
        (claims.iss == ISSUER && claims.tid.as_deref() == Some(TENANT))
            || claims.iss == ISSUER_ANY_TENANT,
        "accepted an untrusted issuer or tenant"
    );
    assert!(claims.exp > NOW_SECS, "accepted an expired token");
    assert!(claims.nbf.is_none_or(|nbf| nbf <= NOW_SECS + 300));
    let audiences = audience_of(token);
    let matches = |a: &serde_json::Value| {
        a.as_str()
            .is_some_and(|a| a.trim_end_matches('/') == audience.trim_end_matches('/'))
    };
    assert!(
        matches(&audiences)
            || audiences
                .as_array()
                .is_some_and(|all| all.iter().any(matches)),
        "accepted a token for another audience"
    );
    if audience == MANAGEMENT_AUDIENCE {
        let allowed = claims
            .oid
            .as_deref()
            .is_some_and(|oid| oid.eq_ignore_ascii_case(ALLOWED_OID))
            || claims.roles.iter().any(|r| r == ROLE);
        match management {
            Ok(_) => assert!(allowed),
            Err(e) => assert!(!allowed && e == AuthError::NotAllowed, "{e:?}"),
        }
    }
    true
}

/// The `aud` claim as the token says it, read independently of the verifier.
fn audience_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .map(|claims| claims["aud"].clone())
        .unwrap_or(serde_json::Value::Null)
}
