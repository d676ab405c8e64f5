//! Connection strings: `endpoint=https://host/;accesskey=<base64>`.
//!
//! A connection string is how ACS hands a resource's endpoint and access key to an application. It
//! carries a secret, so nothing in this module ever prints the key, or the whole string (which
//! contains the key): not [`ConnectionString`]'s `Debug`, and not any [`ConnectionStringError`]
//! message. There is deliberately no `Display` either, so a connection string cannot be formatted into
//! a log line by accident.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::hmac::{AccessKey, InvalidAccessKey};

/// The key naming the resource endpoint.
const ENDPOINT: &str = "endpoint";
/// The key naming the access key.
const ACCESS_KEY: &str = "accesskey";

/// A parsed connection string: the resource endpoint and its access key.
///
/// Parse one with [`ConnectionString::parse`] or [`str::parse`]. The rules follow the official SDKs:
/// the string is split on `;` (empty segments, such as after a trailing `;`, are skipped), and each
/// segment at its *first* `=`, so base64 padding in the key survives. Keys are case-insensitive,
/// whitespace around keys and values is trimmed, and unknown keys are ignored. The endpoint must be an
/// absolute `http` or `https` URL with a host, and the access key valid base64.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    endpoint: Url,
    access_key: AccessKey,
}

/// Why a connection string was rejected.
///
/// Messages name the offending key or segment position, never a value: a value could be the access
/// key (or the key pasted into the wrong field).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionStringError {
    /// A non-empty segment has no `=`.
    #[error("segment {position} of the connection string has no `=` (expected `key=value`)")]
    MissingEquals {
        /// The 1-based position of the segment among the `;`-separated segments.
        position: usize,
    },
    /// A key (`endpoint` or `accesskey`) appears more than once.
    #[error("the connection string has more than one `{key}`")]
    DuplicateKey {
        /// The key, lowercase.
        key: &'static str,
    },
    /// A required key is absent.
    #[error("the connection string has no `{key}`")]
    MissingKey {
        /// The key, lowercase.
        key: &'static str,
    },
    /// A required key is present with an empty value.
    #[error("the connection string's `{key}` is empty")]
    EmptyValue {
        /// The key, lowercase.
        key: &'static str,
    },
    /// The endpoint is not a URL at all.
    #[error("the connection string's endpoint is not a valid URL")]
    EndpointNotUrl(#[source] url::ParseError),
    /// The endpoint is a URL, but not `http` or `https`.
    #[error("the connection string's endpoint must be an http or https URL")]
    EndpointScheme,
    /// The endpoint URL has no host.
    #[error("the connection string's endpoint has no host")]
    EndpointWithoutHost,
    /// The endpoint holds a `;` once parsed: URL parsing maps look-alikes in a host name, such as
    /// the Greek question mark `;` (U+037E) or the full-width `；`, to the `;` that separates a
    /// connection string's segments, so the endpoint could not be written back into one.
    #[error("the connection string's endpoint host holds a character that becomes `;`")]
    EndpointSemicolon,
    /// The access key is not valid base64.
    #[error("the connection string's access key is invalid")]
    InvalidAccessKey(#[source] InvalidAccessKey),
}

impl ConnectionString {
    /// Parses a connection string (see the type's documentation for the rules).
    ///
    /// ```
    /// use callsign_common::ConnectionString;
    ///
    /// // Keys in any order and case; the key's base64 padding survives the split at the first `=`.
    /// let parsed = ConnectionString::parse(" AccessKey=c2VjcmV0IQ== ; endpoint=https://example.com/").unwrap();
    /// assert_eq!(parsed.endpoint().as_str(), "https://example.com/");
    /// assert_eq!(parsed.access_key().as_bytes(), b"secret!");
    ///
    /// // Errors never repeat the key.
    /// let err = ConnectionString::parse("endpoint=https://example.com/;accesskey=").unwrap_err();
    /// assert!(!err.to_string().contains("c2VjcmV0"));
    /// ```
    pub fn parse(connection_string: &str) -> Result<Self, ConnectionStringError> {
        let mut endpoint = None;
        let mut access_key = None;

        let segments = connection_string
            .split(';')
            .enumerate()
            .filter(|(_, segment)| !segment.trim().is_empty());
        for (index, segment) in segments {
            let (key, value) =
                segment
                    .split_once('=')
                    .ok_or(ConnectionStringError::MissingEquals {
                        position: index + 1,
                    })?;
            let key = key.trim();
            let (name, slot) = if key.eq_ignore_ascii_case(ENDPOINT) {
                (ENDPOINT, &mut endpoint)
            } else if key.eq_ignore_ascii_case(ACCESS_KEY) {
                (ACCESS_KEY, &mut access_key)
            } else {
                continue;
            };
            if slot.is_some() {
                return Err(ConnectionStringError::DuplicateKey { key: name });
            }
            let value = value.trim();
            if value.is_empty() {
                return Err(ConnectionStringError::EmptyValue { key: name });
            }
            *slot = Some(value);
        }

        let endpoint = endpoint.ok_or(ConnectionStringError::MissingKey { key: ENDPOINT })?;
        let access_key = access_key.ok_or(ConnectionStringError::MissingKey { key: ACCESS_KEY })?;
        Ok(Self {
            endpoint: parse_endpoint(endpoint)?,
            access_key: AccessKey::from_base64(access_key)
                .map_err(ConnectionStringError::InvalidAccessKey)?,
        })
    }

    /// The resource endpoint, e.g. `https://contoso.communication.azure.com/`.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The access key that signs requests to the endpoint.
    pub fn access_key(&self) -> &AccessKey {
        &self.access_key
    }

    /// Splits the connection string into its endpoint and access key, e.g. to move the key into a
    /// credential without copying it.
    pub fn into_parts(self) -> (Url, AccessKey) {
        (self.endpoint, self.access_key)
    }
}

/// Checks that the endpoint is an absolute http(s) URL with a host.
fn parse_endpoint(endpoint: &str) -> Result<Url, ConnectionStringError> {
    let url = Url::parse(endpoint).map_err(ConnectionStringError::EndpointNotUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConnectionStringError::EndpointScheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConnectionStringError::EndpointWithoutHost);
    }
    if url.as_str().contains(';') {
        return Err(ConnectionStringError::EndpointSemicolon);
    }
    Ok(url)
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;

    fn from_str(connection_string: &str) -> Result<Self, Self::Err> {
        Self::parse(connection_string)
    }
}

/// Shows the endpoint; the access key is always redacted.
impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A key that must never appear in any output (base64 of "callsign-test-secret-key-material!").
    const SECRET: &str = "Y2FsbHNpZ24tdGVzdC1zZWNyZXQta2V5LW1hdGVyaWFsIQ==";
    const SECRET_BYTES: &[u8] = b"callsign-test-secret-key-material!";

    fn parse(s: &str) -> Result<ConnectionString, ConnectionStringError> {
        s.parse()
    }

    #[test]
    fn parses_the_canonical_form() {
        let cs = parse(&format!(
            "endpoint=https://contoso.communication.azure.com/;accesskey={SECRET}"
        ))
        .unwrap();
        assert_eq!(
            cs.endpoint().as_str(),
            "https://contoso.communication.azure.com/"
        );
        assert_eq!(cs.access_key().as_bytes(), SECRET_BYTES);
        assert_eq!(
            ConnectionString::parse(&format!(
                "endpoint=https://contoso.communication.azure.com/;accesskey={SECRET}"
            )),
            Ok(cs)
        );
    }

    #[test]
    fn keys_are_case_insensitive_and_whitespace_is_trimmed() {
        for s in [
            format!("ENDPOINT=https://h.example/;AccessKey={SECRET}"),
            format!("  Endpoint = https://h.example/ ;  accessKEY =  {SECRET}  "),
            format!("\tendpoint\t=\thttps://h.example/\n;\naccesskey={SECRET}\n"),
        ] {
            let cs = parse(&s).unwrap();
            assert_eq!(cs.endpoint().as_str(), "https://h.example/");
            assert_eq!(cs.access_key().as_bytes(), SECRET_BYTES);
        }
    }

    #[test]
    fn order_empty_segments_and_unknown_keys_do_not_matter() {
        for s in [
            format!("accesskey={SECRET};endpoint=https://h.example/"),
            format!("endpoint=https://h.example/;accesskey={SECRET};"),
            format!(";;endpoint=https://h.example/;; ;accesskey={SECRET};;"),
            format!("endpoint=https://h.example/;region=westus;accesskey={SECRET};foo=a=b"),
            format!("endpoint=https://h.example/;accesskey={SECRET};other="),
            // A padded key pasted without `accesskey=` reads as an unknown key and is ignored.
            format!("endpoint=https://h.example/;accesskey={SECRET};{SECRET}"),
        ] {
            let cs = parse(&s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cs.endpoint().as_str(), "https://h.example/");
            assert_eq!(cs.access_key().as_bytes(), SECRET_BYTES);
        }
    }

    #[test]
    fn splits_at_the_first_equals_so_padding_survives() {
        // The key's `==` padding stays part of the value.
        let cs = parse(&format!("endpoint=https://h.example/;accesskey={SECRET}")).unwrap();
        assert_eq!(cs.access_key().as_bytes(), SECRET_BYTES);
        // An endpoint containing `=` (in its query) is kept whole.
        let cs = parse(&format!(
            "endpoint=https://h.example/?a=b;accesskey={SECRET}"
        ))
        .unwrap();
        assert_eq!(cs.endpoint().query(), Some("a=b"));
    }

    #[test]
    fn accepts_http_and_ports() {
        let cs = parse(&format!(
            "endpoint=http://127.0.0.1:8443;accesskey={SECRET}"
        ))
        .unwrap();
        assert_eq!(cs.endpoint().scheme(), "http");
        assert_eq!(cs.endpoint().port(), Some(8443));
        assert_eq!(cs.endpoint().as_str(), "http://127.0.0.1:8443/");
        let cs = parse(&format!("endpoint=HTTPS://[::1]:9/;accesskey={SECRET}")).unwrap();
        assert_eq!(cs.endpoint().scheme(), "https");
        assert_eq!(cs.endpoint().host_str(), Some("[::1]"));
    }

    #[test]
    fn into_parts_hands_over_both_parts() {
        let (endpoint, key) = parse(&format!("endpoint=https://h.example/;accesskey={SECRET}"))
            .unwrap()
            .into_parts();
        assert_eq!(endpoint.as_str(), "https://h.example/");
        assert_eq!(key.as_bytes(), SECRET_BYTES);
    }

    /// Every rejected input, with the error it must produce.
    fn invalid_cases() -> Vec<(String, ConnectionStringError)> {
        use ConnectionStringError as E;
        let ep = "endpoint=https://h.example/";
        vec![
            (String::new(), E::MissingKey { key: ENDPOINT }),
            (";;".into(), E::MissingKey { key: ENDPOINT }),
            (
                format!("accesskey={SECRET}"),
                E::MissingKey { key: ENDPOINT },
            ),
            (ep.into(), E::MissingKey { key: ACCESS_KEY }),
            (
                format!("{ep};accesskey={SECRET};accesskey={SECRET}"),
                E::DuplicateKey { key: ACCESS_KEY },
            ),
            (
                format!("{ep};accesskey={SECRET};ENDPOINT=https://other.example/"),
                E::DuplicateKey { key: ENDPOINT },
            ),
            (
                format!("{ep};accesskey="),
                E::EmptyValue { key: ACCESS_KEY },
            ),
            (
                format!("{ep};accesskey=   "),
                E::EmptyValue { key: ACCESS_KEY },
            ),
            (
                format!("endpoint=;accesskey={SECRET}"),
                E::EmptyValue { key: ENDPOINT },
            ),
            // The bare key without its padding has no `=` at all.
            (
                format!("{ep};{}", SECRET.trim_end_matches('=')),
                E::MissingEquals { position: 2 },
            ),
            (format!("{ep};;accesskey"), E::MissingEquals { position: 3 }),
            (
                format!("endpoint=h.example;accesskey={SECRET}"),
                E::EndpointNotUrl(url::ParseError::RelativeUrlWithoutBase),
            ),
            (
                format!("endpoint=/relative/path;accesskey={SECRET}"),
                E::EndpointNotUrl(url::ParseError::RelativeUrlWithoutBase),
            ),
            (
                format!("endpoint=https://;accesskey={SECRET}"),
                E::EndpointNotUrl(url::ParseError::EmptyHost),
            ),
            (
                format!("endpoint=ftp://h.example/;accesskey={SECRET}"),
                E::EndpointScheme,
            ),
            (
                format!("endpoint=mailto:someone@h.example;accesskey={SECRET}"),
                E::EndpointScheme,
            ),
            (
                format!("endpoint=file:///etc/passwd;accesskey={SECRET}"),
                E::EndpointScheme,
            ),
            // Found by fuzzing (fuzz/corpus/connection_string/crash-greek-question-mark): the
            // host name's U+037E is mapped to `;`, which a connection string cannot hold.
            (
                format!("endpoint=https://h\u{37e}evil.example/;accesskey={SECRET}"),
                E::EndpointSemicolon,
            ),
            (
                format!("endpoint=https://h\u{ff1b}evil.example/;accesskey={SECRET}"),
                E::EndpointSemicolon,
            ),
            (
                format!("{ep};accesskey={}", &SECRET[..SECRET.len() - 1]),
                E::InvalidAccessKey(InvalidAccessKey),
            ),
            (
                format!("{ep};accesskey=not base64!{SECRET}"),
                E::InvalidAccessKey(InvalidAccessKey),
            ),
            (
                format!("{ep};accesskey={}", SECRET.replace('2', "-")),
                E::InvalidAccessKey(InvalidAccessKey),
            ),
        ]
    }

    /// What is accepted can be written back as `endpoint=…;accesskey=…` and parses the same
    /// (the fuzz target `connection_string` checks this for any input).
    #[test]
    fn accepted_strings_round_trip() {
        for input in [
            format!("endpoint=https://h.example/;accesskey={SECRET}"),
            format!("endpoint=https://h.example:8443/a%3Bb?c=d;accesskey={SECRET}"),
            format!("endpoint=https://\u{ff48}.example/p\u{37e};accesskey={SECRET}"),
        ] {
            let parsed = parse(&input).unwrap();
            let written = format!(
                "endpoint={};accesskey={}",
                parsed.endpoint(),
                parsed.access_key().to_base64()
            );
            assert_eq!(parse(&written), Ok(parsed), "{input:?}");
        }
    }

    #[test]
    fn rejects_invalid_connection_strings() {
        for (input, expected) in invalid_cases() {
            assert_eq!(parse(&input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn errors_never_contain_the_key_or_the_string() {
        // Fragments of the secret long enough to identify it.
        let fragments: Vec<&str> = SECRET
            .as_bytes()
            .windows(8)
            .map(|w| std::str::from_utf8(w).unwrap())
            .collect();
        // Also put the secret where a value is expected to be echoed back (a bad endpoint).
        let mut cases = invalid_cases();
        cases.push((
            format!("endpoint={SECRET};accesskey={SECRET}"),
            ConnectionStringError::EndpointNotUrl(url::ParseError::RelativeUrlWithoutBase),
        ));
        for (input, _) in cases {
            let err = parse(&input).unwrap_err();
            let mut rendered = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
            let mut source = err.source();
            while let Some(inner) = source {
                rendered.push(inner.to_string());
                rendered.push(format!("{inner:?}"));
                source = inner.source();
            }
            for text in rendered {
                assert!(!text.contains(&input) || input.is_empty(), "{text}");
                for fragment in &fragments {
                    assert!(!text.contains(fragment), "{text:?} leaks the key");
                }
            }
        }
    }

    #[test]
    fn debug_redacts_the_key() {
        let cs = parse(&format!("endpoint=https://h.example/;accesskey={SECRET}")).unwrap();
        for text in [format!("{cs:?}"), format!("{cs:#?}")] {
            assert!(text.contains("https://h.example/"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains("callsign-test-secret"), "{text}");
            assert!(!text.contains("99, 97, 108"), "{text}"); // the key's bytes as a list
        }
    }

    #[test]
    fn error_messages_are_readable() {
        let err = parse("endpoint=https://h.example/").unwrap_err();
        assert_eq!(err.to_string(), "the connection string has no `accesskey`");
        let err = parse(&format!("endpoint=ftp://h/;accesskey={SECRET}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the connection string's endpoint must be an http or https URL"
        );
        let err = parse("endpoint=https://h/;accesskey=%%").unwrap_err();
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("the access key is not valid base64")
        );
    }
}
