//! Reading the api-version of a request. The versions themselves and what each one has are
//! [`callsign_common::ApiVersion`], shared with the clients.

use super::error::ApiError;
use super::routes::AcsOperation;
pub use callsign_common::ApiVersion;

/// Reads the `api-version` query parameter: missing and unknown versions are 400s.
pub fn from_query(query: Option<&str>) -> Result<ApiVersion, ApiError> {
    let value = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(ApiError::missing_api_version)?;
    value
        .parse()
        .map_err(|_| ApiError::unsupported_api_version(&value))
}

/// The `api-supported-versions` header value of an operation's path: the versions that have it,
/// as the service lists them per path (the Teams exchange, for one, starts at 2022-06-01).
pub fn supported_by(op: &AcsOperation) -> String {
    // GET /identities/{id} (preview only) shares its path with DELETE, which every version has, and
    // the service lists the path's versions (X20, X22).
    let whole_path = matches!(op, AcsOperation::GetIdentity(_));
    ApiVersion::ALL
        .into_iter()
        .filter(|v| whole_path || op.available_in(*v))
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
        let err = from_query(Some("api-version=2020-07-20-preview2")).unwrap_err();
        assert_eq!(err.code, "UnsupportedApiVersion");
        assert!(err.message.contains("'2020-07-20-preview2'"));
    }

    #[test]
    fn supported_versions_are_listed_per_operation() {
        assert_eq!(
            supported_by(&AcsOperation::CreateIdentity),
            "2021-03-07, 2022-06-01, 2022-10-01, 2023-10-01, 2025-06-30, 2025-03-02-preview"
        );
        assert_eq!(
            supported_by(&AcsOperation::TeamsUserExchange),
            "2022-06-01, 2022-10-01, 2023-10-01, 2025-06-30, 2025-03-02-preview"
        );
        assert_eq!(
            supported_by(&AcsOperation::GetIdentity("x".into())),
            supported_by(&AcsOperation::CreateIdentity)
        );
        assert_eq!(
            supported_by(&AcsOperation::ListEntraAssignments),
            "2025-03-02-preview"
        );
    }
}
