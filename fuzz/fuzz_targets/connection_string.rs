//! Connection strings (`ConnectionString::parse`, callsign-common): refused with an error that
//! never repeats the access key, or parsed into an endpoint and key that, written back as
//! `endpoint=…;accesskey=…`, parse to the same connection string.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::ConnectionString;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match ConnectionString::parse(&text) {
        Ok(parsed) => {
            let written = format!(
                "endpoint={};accesskey={}",
                parsed.endpoint(),
                parsed.access_key().to_base64()
            );
            assert_eq!(ConnectionString::parse(&written).as_ref(), Ok(&parsed));
            // Debug shows the endpoint and never the key.
            assert_eq!(
                format!("{parsed:?}"),
                format!(
                    "ConnectionString {{ endpoint: {:?}, access_key: <redacted> }}",
                    parsed.endpoint().as_str()
                )
            );
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            // Values long and odd enough not to be words of the messages themselves.
            for segment in text.split(';') {
                let Some((_, value)) = segment.split_once('=') else {
                    continue;
                };
                let value = value.trim();
                if value.len() >= 12 && value.contains(['+', '/']) {
                    assert!(!shown.contains(value), "an error repeats a value: {shown}");
                }
            }
        }
    }
});
