//! Paging of the lists callsign serves: the page size (`maxpagesize`; Entra assignments,
//! identities, revocations) and, for callsign's own lists, the opaque `continuationToken` that
//! names the id a page continues after.

use super::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Page size when `maxpagesize` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page size served.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Reads a `maxpagesize` value: 1 to [`MAX_PAGE_SIZE`], a 400 naming the interval otherwise.
pub fn page_size(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| {
            ApiError::validation(
                format!("maxpagesize must be within the [1, {MAX_PAGE_SIZE}] interval."),
                "maxpagesize",
            )
        })
}

/// The `continuationToken` of a page that ends with the id `last`: opaque to clients.
pub fn continuation_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The id a `continuationToken` continues after; a 400 naming it when it is not one of ours.
pub fn continued_after(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::validation(
                "Provided continuationToken is not valid.",
                "continuationToken",
            )
        })
}
