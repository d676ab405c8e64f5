//! The `callsign serve` configuration file (`FileConfig::parse`, crates/callsign/src/config.rs):
//! TOML in, a configuration or an error out; every `jwks_file` of an accepted file is resolved
//! against the file's directory.

#![no_main]
#![forbid(unsafe_code)]

// The binary crate's module, compiled here as it is there (its tests are cfg(test)).
#[allow(dead_code)]
#[path = "../../crates/callsign/src/config.rs"]
mod config;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/etc/callsign");
    let Ok(config) = config::FileConfig::parse(text, base) else {
        return;
    };
    // Read the same file as plain TOML to see what each issuer's jwks_file said.
    let table: toml::Table = toml::from_str(text).expect("accepted files are TOML");
    let issuers = table.get("trusted_issuers").and_then(|v| v.as_array());
    assert_eq!(issuers.map_or(0, Vec::len), config.trusted_issuers.len());
    for (i, issuer) in config.trusted_issuers.iter().enumerate() {
        let said = issuers.unwrap()[i]
            .get("jwks_file")
            .and_then(|v| v.as_str());
        assert_eq!(issuer.jwks_file, said.map(|file| base.join(file)));
    }
});
