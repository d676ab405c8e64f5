//! The `Authorization` header and the HMAC inputs: `parse_authorization` (callsign-common) and
//! `authenticate_hmac` (callsign-server), as a request's headers, host and body reach them.
//!
//! Input: NUL-separated fields `mode, method, path, host, body, a, b, c`.
//! - raw (`mode` even): `a` is the Authorization value, `b` the date, `c` the content hash, all
//!   sent as given. Whatever is accepted must carry the right signature, recomputed here.
//! - signed (`mode` odd): the request is signed properly (with the primary, the secondary or a
//!   stranger's key, `a` = clock offset in seconds), then `b` tampers with one part of it. Correctly
//!   signed requests within the skew must pass; a stranger's key or any real change must not.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::hmac::{parse_authorization, sign_request, string_to_sign};
use callsign_common::AccessKey;
use callsign_fuzz::{access_keys, now, stranger_key, Fields};
use callsign_server::auth::{authenticate_hmac, AuthError, HmacRequest};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const MAX_SKEW_SECS: i64 = 300;

fuzz_target!(|data: &[u8]| {
    let mut f = Fields::new(data);
    let mode = f.byte();
    let method = f.text();
    let path = f.text();
    let host = f.text();
    let body = f.bytes().to_vec();
    let (a, b, c) = (f.bytes(), f.bytes(), f.bytes());
    let date_name = if mode & 2 == 0 { "x-ms-date" } else { "date" };
    if mode & 1 == 0 {
        raw(date_name, &method, &path, &host, &body, a, b, c);
    } else {
        signed(mode, date_name, &method, &path, &host, &body, a, b);
    }
});

fn check(
    method: &str,
    path: &str,
    host: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), AuthError> {
    let request = HmacRequest {
        method,
        path_and_query: path,
        host: Some(host),
        headers,
        body,
    };
    authenticate_hmac(
        &access_keys(),
        &request,
        now(),
        chrono::Duration::seconds(MAX_SKEW_SECS),
    )
    // Which key matched is the audit trail's concern; here only acceptance is.
    .map(drop)
}

#[allow(clippy::too_many_arguments)]
fn raw(
    date_name: &'static str,
    method: &str,
    path: &str,
    host: &str,
    body: &[u8],
    a: &[u8],
    b: &[u8],
    c: &[u8],
) {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("authorization", a),
        (date_name, b),
        ("x-ms-content-sha256", c),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    if let Ok(text) = std::str::from_utf8(a) {
        if let Some((names, signature)) = parse_authorization(text) {
            assert!(text.contains(signature));
            assert!(names.iter().all(|n| text.contains(n)));
        }
    }
    let result = check(method, path, host, &headers, body);
    if callsign_fuzz::debug() {
        eprintln!("raw, result: {result:?}");
    }
    if result.is_ok() {
        // Accepted: the signature must really be an access key's over what was sent.
        let value = |name: &str| headers.get(name).unwrap().to_str().unwrap();
        let (_, signature) = parse_authorization(value("authorization")).unwrap();
        let (date, hash) = (value(date_name), value("x-ms-content-sha256"));
        let keys = access_keys();
        let genuine = acceptable_hosts(host).iter().any(|h| {
            let sts = string_to_sign(method, path, date, h, hash);
            keys.both().iter().any(|k| k.sign(&sts) == signature)
        });
        assert!(genuine, "accepted a signature no access key made");
    }
}

/// The hosts a client may have signed for a request that arrived for `host`: the host as sent,
/// without its port (the Java SDK) and with a trailing `/` (the Python SDK given such an endpoint).
fn acceptable_hosts(host: &str) -> Vec<String> {
    let mut hosts = vec![host.to_owned(), format!("{host}/")];
    if let Some((name, port)) = host.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() && !name.ends_with(':') {
            hosts.push(name.to_owned());
        }
    }
    hosts
}

#[allow(clippy::too_many_arguments)]
fn signed(
    mode: u8,
    date_name: &'static str,
    method: &str,
    path: &str,
    host: &str,
    body: &[u8],
    a: &[u8],
    tamper: &[u8],
) {
    let keys = access_keys();
    let stranger = stranger_key();
    let key: &AccessKey = match (mode >> 2) % 3 {
        0 => &keys.primary,
        1 => &keys.secondary,
        _ => &stranger,
    };
    let offset = i64::from(i16::from_le_bytes([
        a.first().copied().unwrap_or(0),
        a.get(1).copied().unwrap_or(0),
    ]));
    let sent_at = now() + chrono::Duration::seconds(offset);
    let signed = sign_request(key, method, path, host, body, sent_at);

    let (mut method, mut path, mut host, mut body) = (
        method.to_owned(),
        path.to_owned(),
        host.to_owned(),
        body.to_vec(),
    );
    let mut authorization = signed.authorization.clone();
    if date_name == "date" {
        authorization = authorization.replacen("x-ms-date", "date", 1);
    }
    let mut date = signed.date.clone();
    let mut changed = false;
    if let Some((&what, edit)) = tamper.split_first() {
        changed = match what % 6 {
            0 => {
                // Names are compared without case and both names and signature are trimmed:
                // only a change of what the server reads counts.
                let read = |value: &str| {
                    parse_authorization(value).map(|(names, signature)| {
                        let names: Vec<String> =
                            names.iter().map(|n| n.to_ascii_lowercase()).collect();
                        (names, signature.to_owned())
                    })
                };
                let before = read(&authorization);
                edit_text(&mut authorization, edit);
                // A header that is not visible ASCII cannot be read at all.
                let readable = authorization
                    .bytes()
                    .all(|b| b == b'\t' || (32..127).contains(&b));
                read(&authorization) != before || !readable
            }
            1 => edit_text(&mut path, edit),
            2 => edit_bytes(&mut body, edit),
            3 => {
                let before = method.to_ascii_uppercase();
                edit_text(&mut method, edit);
                method.to_ascii_uppercase() != before
            }
            4 => {
                let before = host.clone();
                edit_text(&mut host, edit) && !acceptable_hosts(&host).contains(&before)
            }
            _ => edit_text(&mut date, edit),
        };
    }
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("authorization", &authorization),
        (date_name, &date),
        ("x-ms-content-sha256", &signed.content_hash),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    let result = check(&method, &path, &host, &headers, &body);
    if callsign_fuzz::debug() {
        eprintln!("signed, offset {offset}, changed: {changed}, result: {result:?}");
    }
    let genuine_key = !std::ptr::eq(key, &stranger);
    if changed || !genuine_key {
        assert!(result.is_err(), "accepted a tampered or foreign signature");
    } else if offset.abs() <= MAX_SKEW_SECS {
        assert_eq!(result, Ok(()), "refused a correctly signed request");
    } else {
        assert_eq!(result, Err(AuthError::Date));
    }
}

/// Edits `bytes` as `edit` says: `[position, xor]` flips bits of one byte, `[position]` alone cuts
/// the text there, more bytes insert `edit[1..]` at the position. Whether anything changed.
fn edit_bytes(bytes: &mut Vec<u8>, edit: &[u8]) -> bool {
    let before = bytes.clone();
    let at = |len: usize| edit.first().map_or(0, |p| usize::from(*p) % (len + 1));
    match edit {
        [] => {}
        [_] => bytes.truncate(at(bytes.len())),
        [_, xor] => {
            if !bytes.is_empty() {
                let i = at(bytes.len() - 1);
                bytes[i] ^= xor;
            }
        }
        [_, insert @ ..] => {
            let i = at(bytes.len());
            bytes.splice(i..i, insert.iter().copied());
        }
    }
    *bytes != before
}

/// [`edit_bytes`] on text; an edit that breaks UTF-8 is made lossily.
fn edit_text(text: &mut String, edit: &[u8]) -> bool {
    let mut bytes = text.as_bytes().to_vec();
    edit_bytes(&mut bytes, edit);
    let edited = String::from_utf8_lossy(&bytes).into_owned();
    let changed = edited != *text;
    *text = edited;
    changed
}
