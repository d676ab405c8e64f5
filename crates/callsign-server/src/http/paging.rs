//! The page size of the lists callsign serves (Entra assignments, identities): `maxpagesize`.

use super::error::ApiError;

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
