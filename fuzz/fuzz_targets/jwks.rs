//! A trusted issuer's JWKS document as fetched from its `jwks_uri` (`auth::jwks::parse_jwks`),
//! and RS256 verification with whatever RSA keys it yields, however odd their `n` and `e`.
//!
//! Input: NUL-separated `document, message, signature`.

#![no_main]
#![forbid(unsafe_code)]

use callsign_fuzz::Fields;
use callsign_server::auth::jwks::parse_jwks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let (document, message, signature) = (f.bytes(), f.bytes(), f.bytes());
    let Ok(keys) = parse_jwks(document) else {
        return;
    };
    for key in keys.values() {
        let _ = key.verify_rs256(message, signature);
    }
});
