//! Reading the api-version of a request. The versions themselves and what each one has are
//! [`callsign_common::ApiVersion`], shared with the clients.

use super::error::ApiError;
use super::routes::AcsOperation;
pub use callsign_common::ApiVersion;

/// How api-versions that callsign does not know are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VersionPolicy {
    /// As the service does: 400 `UnsupportedApiVersion`.
    #[default]
    Strict,
    /// An unknown version dated after every known one (`YYYY-MM-DD[-preview]`) is served as the
    /// newest known version of the route, with a `Warning` header; older unknown and malformed
    /// versions are still 400s. For emulator users whose SDK moved on before callsign did.
    Lenient,
}

/// The version a request is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The version whose behaviour the request gets.
    pub version: ApiVersion,
    /// The unknown version asked for, when a lenient server stood in for it.
    pub asked: Option<String>,
}

impl Served {
    /// The `Warning` header telling a client its version was stood in for.
    pub fn warning(&self) -> Option<axum::http::HeaderValue> {
        let asked = self.asked.as_ref()?;
        let text = format!(
            "299 callsign \"api-version {asked} is unknown to this callsign; served as {}\"",
            self.version.as_str()
        );
        axum::http::HeaderValue::from_str(&text).ok()
    }
}

/// Reads the `api-version` query parameter: missing and unknown versions are 400s.
pub fn from_query(query: Option<&str>) -> Result<ApiVersion, ApiError> {
    let value = requested(query)?;
    value
        .parse()
        .map_err(|_| ApiError::unsupported_api_version(&value))
}

/// The version to serve `op` with under `policy`.
pub fn resolve(
    query: Option<&str>,
    op: &AcsOperation,
    policy: VersionPolicy,
) -> Result<Served, ApiError> {
    let value = requested(query)?;
    if let Ok(version) = value.parse() {
        return Ok(Served {
            version,
            asked: None,
        });
    }
    let newest_known = ApiVersion::ALL.into_iter().filter_map(date).max();
    let stand_in = match (policy, date_of(&value), newest_known) {
        (VersionPolicy::Lenient, Some(asked), Some(newest)) if asked > newest => newest_for(op),
        _ => None,
    };
    match stand_in {
        Some(version) => Ok(Served {
            version,
            asked: Some(value),
        }),
        None => Err(ApiError::unsupported_api_version(&value)),
    }
}

fn requested(query: Option<&str>) -> Result<String, ApiError> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(ApiError::missing_api_version)
}

/// The date of `YYYY-MM-DD` or `YYYY-MM-DD-preview`, the forms of future versions.
fn date_of(value: &str) -> Option<chrono::NaiveDate> {
    let day = value.strip_suffix("-preview").unwrap_or(value);
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    // `parse_from_str` accepts `2026-1-5`; versions are always zero-padded.
    (date.format("%Y-%m-%d").to_string() == day).then_some(date)
}

fn date(version: ApiVersion) -> Option<chrono::NaiveDate> {
    date_of(version.as_str().get(..10)?)
}

/// The newest version (by date) that has `op`.
fn newest_for(op: &AcsOperation) -> Option<ApiVersion> {
    ApiVersion::ALL
        .into_iter()
        .filter(|v| op.available_in(*v))
        .max_by_key(|v| date(*v))
}

/// The `api-supported-versions` header value of an operation's route, as the service lists it
/// (docs/protocol.md §1.3): every route under `/identities` lists every version that has identity
/// routes, which is all of them (the service lists the same versions on each, whether or not the
/// version has that very operation: X20, X22, X24, X27); other routes list the versions having the
/// operation (the Teams user exchange, for one, starts at 2021-03-31-preview1).
pub fn supported_by(op: &AcsOperation) -> String {
    let identity_route = op.is_identity_route();
    ApiVersion::ALL
        .into_iter()
        .filter(|v| identity_route || op.available_in(*v))
        .map(ApiVersion::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_fail_as_the_service_does() {
        assert_eq!(
            from_query(Some("api-version=2023-10-01")).unwrap(),
            ApiVersion::V2023_10_01
        );
        assert_eq!(
            from_query(Some("x=1&api-version=2025-03-02-preview")).unwrap(),
            ApiVersion::V2025_03_02Preview
        );
        assert_eq!(
            from_query(None).unwrap_err().code,
            "MissingApiVersionParameter"
        );
        assert_eq!(
            from_query(Some("api-version=2020-07-20-preview2")).unwrap(),
            ApiVersion::V2020_07_20Preview2
        );
        let err = from_query(Some("api-version=2021-02-22-preview1")).unwrap_err();
        assert_eq!(err.code, "UnsupportedApiVersion");
        assert!(err.message.contains("'2021-02-22-preview1'"));
    }

    #[test]
    fn lenient_serves_unknown_newer_versions_as_the_newest_of_the_route() {
        let lenient =
            |query: &str, op: &AcsOperation| resolve(Some(query), op, VersionPolicy::Lenient);
        let create = AcsOperation::CreateIdentity;
        let served = lenient("api-version=2026-01-15", &create).unwrap();
        assert_eq!(served.version, ApiVersion::V2025_06_30);
        assert_eq!(served.asked.as_deref(), Some("2026-01-15"));
        let warning = served.warning().unwrap();
        assert_eq!(
            warning.to_str().unwrap(),
            "299 callsign \"api-version 2026-01-15 is unknown to this callsign; served as 2025-06-30\""
        );
        // A preview-only route's newest is the preview.
        let served = lenient(
            "api-version=2027-02-01-preview",
            &AcsOperation::ListEntraAssignments,
        );
        assert_eq!(served.unwrap().version, ApiVersion::V2025_03_02Preview);
        // Known versions are served as themselves, without a warning.
        let known = lenient("api-version=2023-10-01", &create).unwrap();
        assert_eq!(
            (known.version, known.warning()),
            (ApiVersion::V2023_10_01, None)
        );
        // Older unknown, malformed and (in strict mode) newer ones are refused.
        for refused in ["2024-01-01", "2026-1-15", "2026-01-15-beta", "latest"] {
            let err = lenient(&format!("api-version={refused}"), &create).unwrap_err();
            assert_eq!(err.code, "UnsupportedApiVersion", "{refused}");
        }
        let strict = resolve(
            Some("api-version=2026-01-15"),
            &create,
            VersionPolicy::Strict,
        );
        assert_eq!(strict.unwrap_err().code, "UnsupportedApiVersion");
    }

    #[test]
    fn supported_versions_are_listed_per_route() {
        const ALL: &str = "2020-07-20-preview2, 2021-03-07, 2021-03-31-preview1, 2021-10-31-preview, 2022-06-01, 2022-10-01, 2023-10-01, 2025-06-30, 2025-03-02-preview";
        let id = || "x".to_owned();
        for op in [
            AcsOperation::CreateIdentity,
            AcsOperation::GetIdentity(id()),
            AcsOperation::DeleteIdentity(id()),
            AcsOperation::RevokeTokens(id()),
            AcsOperation::IssueToken(id()),
            AcsOperation::IssueTokenLegacy(id()),
        ] {
            assert_eq!(supported_by(&op), ALL, "{op:?}");
        }
        assert_eq!(
            supported_by(&AcsOperation::TeamsUserExchange),
            "2021-03-31-preview1, 2021-10-31-preview, 2022-06-01, 2022-10-01, 2023-10-01, 2025-06-30, 2025-03-02-preview"
        );
        assert_eq!(
            supported_by(&AcsOperation::TeamsExtensionExchange),
            "2025-06-30, 2025-03-02-preview"
        );
        assert_eq!(
            supported_by(&AcsOperation::ListEntraAssignments),
            "2025-03-02-preview"
        );
    }
}
