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
