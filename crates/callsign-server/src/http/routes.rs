//! Which operation a method and path name. ACS action paths (`/:issueAccessToken`) do not fit a
//! pattern router, so the handful of routes is matched here, by segment.

use super::api_version::ApiVersion;
use super::error::ApiError;
use crate::throttling::OperationGroup;
use axum::http::Method;
use percent_encoding::percent_decode_str;

/// An ACS operation, with the identity id from its path (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsOperation {
    /// `POST /identities`
    CreateIdentity,
    /// `GET /identities/{id}`
    GetIdentity(String),
    /// `DELETE /identities/{id}`
    DeleteIdentity(String),
    /// `POST /identities/{id}/:revokeAccessTokens`
    RevokeTokens(String),
    /// `POST /identities/{id}/:issueAccessToken`
    IssueToken(String),
    /// `POST /identities/{id}/token` (2020-07-20-preview2)
    IssueTokenLegacy(String),
    /// `POST /teamsUser/:exchangeAccessToken`
    TeamsUserExchange,
    /// `POST /access/teamsExtension/:exchangeAccessToken`
    TeamsExtensionExchange,
    /// `GET /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
    GetTeamsExtensionAssignment(String, String),
    /// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
    PutTeamsExtensionAssignment(String, String),
    /// `DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
    DeleteTeamsExtensionAssignment(String, String),
    /// `POST /access/entra/:exchangeAccessToken` (preview)
    EntraExchange,
    /// `GET /access/entra/assignments` (preview)
    ListEntraAssignments,
    /// `PATCH /access/entra/assignments` (preview, merge-patch)
    UpdateEntraAssignments,
    /// `GET /access/entra/assignments/{objectId}` (preview)
    GetEntraAssignment(String),
    /// `PUT /access/entra/assignments/{objectId}` (preview)
    PutEntraAssignment(String),
    /// `DELETE /access/entra/assignments/{objectId}` (preview)
    DeleteEntraAssignment(String),
}

impl AcsOperation {
    /// Whether `version` has this operation.
    pub fn available_in(&self, version: ApiVersion) -> bool {
        match self {
            AcsOperation::GetIdentity(_) => version.has_custom_ids(),
            AcsOperation::IssueToken(_) | AcsOperation::RevokeTokens(_) => {
                !version.has_legacy_shapes()
            }
            AcsOperation::IssueTokenLegacy(_) => version.has_legacy_shapes(),
            AcsOperation::TeamsUserExchange => version.has_teams_user_exchange(),
            AcsOperation::TeamsExtensionExchange
            | AcsOperation::GetTeamsExtensionAssignment(..)
            | AcsOperation::PutTeamsExtensionAssignment(..)
            | AcsOperation::DeleteTeamsExtensionAssignment(..) => version.has_teams_extension(),
            AcsOperation::EntraExchange
            | AcsOperation::ListEntraAssignments
            | AcsOperation::UpdateEntraAssignments
            | AcsOperation::GetEntraAssignment(_)
            | AcsOperation::PutEntraAssignment(_)
            | AcsOperation::DeleteEntraAssignment(_) => version.has_entra(),
            _ => true,
        }
    }

    /// The route's path template, for logs: ids are never logged.
    pub fn template(&self) -> &'static str {
        match self {
            AcsOperation::CreateIdentity => "/identities",
            AcsOperation::GetIdentity(_) | AcsOperation::DeleteIdentity(_) => "/identities/{id}",
            AcsOperation::RevokeTokens(_) => "/identities/{id}/:revokeAccessTokens",
            AcsOperation::IssueToken(_) => "/identities/{id}/:issueAccessToken",
            AcsOperation::IssueTokenLegacy(_) => "/identities/{id}/token",
            AcsOperation::TeamsUserExchange => "/teamsUser/:exchangeAccessToken",
            AcsOperation::TeamsExtensionExchange => "/access/teamsExtension/:exchangeAccessToken",
            AcsOperation::GetTeamsExtensionAssignment(..)
            | AcsOperation::PutTeamsExtensionAssignment(..)
            | AcsOperation::DeleteTeamsExtensionAssignment(..) => {
                "/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}"
            }
            AcsOperation::EntraExchange => "/access/entra/:exchangeAccessToken",
            AcsOperation::ListEntraAssignments | AcsOperation::UpdateEntraAssignments => {
                "/access/entra/assignments"
            }
            AcsOperation::GetEntraAssignment(_)
            | AcsOperation::PutEntraAssignment(_)
            | AcsOperation::DeleteEntraAssignment(_) => "/access/entra/assignments/{objectId}",
        }
    }

    /// The ACS operation's name, for metrics (the operation ids of the ACS REST API, without
    /// their `CommunicationIdentity_` prefix where they have one).
    pub fn name(&self) -> &'static str {
        match self {
            AcsOperation::CreateIdentity => "CreateIdentity",
            AcsOperation::GetIdentity(_) => "GetIdentity",
            AcsOperation::DeleteIdentity(_) => "DeleteIdentity",
            AcsOperation::RevokeTokens(_) => "RevokeAccessTokens",
            // The same operation in the 2020-07-20-preview2 shape.
            AcsOperation::IssueToken(_) | AcsOperation::IssueTokenLegacy(_) => "IssueAccessToken",
            AcsOperation::TeamsUserExchange => "ExchangeTeamsUserAccessToken",
            AcsOperation::TeamsExtensionExchange => "ExchangeTeamsExtensionAccessToken",
            AcsOperation::GetTeamsExtensionAssignment(..) => "GetTeamsExtensionAssignment",
            AcsOperation::PutTeamsExtensionAssignment(..) => "PutTeamsExtensionAssignment",
            AcsOperation::DeleteTeamsExtensionAssignment(..) => "DeleteTeamsExtensionAssignment",
            AcsOperation::EntraExchange => "ExchangeEntraAccessToken",
            AcsOperation::ListEntraAssignments => "ListEntraAssignments",
            AcsOperation::UpdateEntraAssignments => "UpdateEntraAssignments",
            AcsOperation::GetEntraAssignment(_) => "GetEntraAssignment",
            AcsOperation::PutEntraAssignment(_) => "PutEntraAssignment",
            AcsOperation::DeleteEntraAssignment(_) => "DeleteEntraAssignment",
        }
    }

    /// The group whose limit the operation counts against, if it is throttled at all (ACS
    /// documents limits for these operations only).
    pub fn throttling_group(&self) -> Option<OperationGroup> {
        match self {
            AcsOperation::CreateIdentity
            | AcsOperation::IssueToken(_)
            | AcsOperation::IssueTokenLegacy(_) => Some(OperationGroup::Issue),
            AcsOperation::DeleteIdentity(_) | AcsOperation::RevokeTokens(_) => {
                Some(OperationGroup::Revoke)
            }
            AcsOperation::TeamsUserExchange
            | AcsOperation::TeamsExtensionExchange
            | AcsOperation::EntraExchange => Some(OperationGroup::Exchange),
            _ => None,
        }
    }

    /// Whether the operation is one of the identity routes (every path under `/identities`).
    pub fn is_identity_route(&self) -> bool {
        matches!(
            self,
            AcsOperation::CreateIdentity
                | AcsOperation::GetIdentity(_)
                | AcsOperation::DeleteIdentity(_)
                | AcsOperation::RevokeTokens(_)
                | AcsOperation::IssueToken(_)
                | AcsOperation::IssueTokenLegacy(_)
        )
    }
}

/// A resolved route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An ACS Identity operation (takes an api-version).
    Acs(AcsOperation),
    /// `POST /callsign/tokens/:introspect`
    Introspect,
    /// `GET /callsign/identities`
    ListIdentities,
    /// `POST /callsign/:reset` (only when the server allows it)
    Reset,
    /// `GET /callsign/events` (the change feed)
    Events,
    /// `GET /callsign/revocations` (the change feed's snapshot)
    Revocations,
    /// `GET /metrics` (Prometheus; authenticated as management calls are)
    Metrics,
}

impl Route {
    /// The route's path template, for logs.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Acs(op) => op.template(),
            Route::Introspect => "/callsign/tokens/:introspect",
            Route::ListIdentities => "/callsign/identities",
            Route::Reset => "/callsign/:reset",
            Route::Events => "/callsign/events",
            Route::Revocations => "/callsign/revocations",
            Route::Metrics => "/metrics",
        }
    }
}

impl Route {
    /// The operation's name, for metrics: the ACS operation's, or callsign's own.
    pub fn operation_name(&self) -> &'static str {
        match self {
            Route::Acs(op) => op.name(),
            Route::Introspect => "IntrospectToken",
            Route::ListIdentities => "ListIdentities",
            Route::Reset => "Reset",
            Route::Events => "ReadEvents",
            Route::Revocations => "ListRevocations",
            Route::Metrics => "Metrics",
        }
    }
}

/// The operation name of a request for metrics: its route's, `Healthz`, `Readyz`, `Jwks`, or `Unknown`
/// for a path or method that names no operation (never the path itself, which may hold ids).
pub fn operation_of(method: &Method, path: &str) -> &'static str {
    match path {
        "/healthz" => "Healthz",
        "/readyz" => "Readyz",
        "/.well-known/jwks.json" => "Jwks",
        _ if is_console(path) => "Console",
        _ => resolve(method, path).map_or("Unknown", |route| route.operation_name()),
    }
}

/// The path template of a request for logs: its route's, the fixed path of `/healthz`, `/readyz`
/// and the JWKS, or `-` for anything else (never the path itself, which may hold ids).
pub fn template_of(method: &Method, path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/.well-known/jwks.json" => "/.well-known/jwks.json",
        _ if is_console(path) => "/console",
        _ => resolve(method, path).map_or("-", |route| route.template()),
    }
}

/// Whether `path` is one of the web console's (`/console` and below): logged and counted as
/// the console, never by its path.
fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Resolves a request path (still percent-encoded) and method.
pub fn resolve(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let only = |allowed: Method, route: Route| {
        if *method == allowed {
            Ok(route)
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segments.as_slice() {
        ["identities"] => only(Method::POST, Route::Acs(AcsOperation::CreateIdentity)),
        ["identities", id] if !id.is_empty() => {
            let id = decode_id(id)?;
            match *method {
                Method::GET => Ok(Route::Acs(AcsOperation::GetIdentity(id))),
                Method::DELETE => Ok(Route::Acs(AcsOperation::DeleteIdentity(id))),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        ["identities", id, ":revokeAccessTokens"] if !id.is_empty() => only(
            Method::POST,
            Route::Acs(AcsOperation::RevokeTokens(decode_id(id)?)),
        ),
        ["identities", id, ":issueAccessToken"] if !id.is_empty() => only(
            Method::POST,
            Route::Acs(AcsOperation::IssueToken(decode_id(id)?)),
        ),
        ["identities", id, "token"] if !id.is_empty() => only(
            Method::POST,
            Route::Acs(AcsOperation::IssueTokenLegacy(decode_id(id)?)),
        ),
        ["teamsUser", ":exchangeAccessToken"] => {
            only(Method::POST, Route::Acs(AcsOperation::TeamsUserExchange))
        }
        ["access", "teamsExtension", ":exchangeAccessToken"] => only(
            Method::POST,
            Route::Acs(AcsOperation::TeamsExtensionExchange),
        ),
        ["access", "entra", ":exchangeAccessToken"] => {
            only(Method::POST, Route::Acs(AcsOperation::EntraExchange))
        }
        ["access", "teamsExtension", "tenants", tenant, "assignments", object]
            if !tenant.is_empty() && !object.is_empty() =>
        {
            let (tenant, object) = (decode_id(tenant)?, decode_id(object)?);
            match *method {
                Method::GET => Ok(Route::Acs(AcsOperation::GetTeamsExtensionAssignment(
                    tenant, object,
                ))),
                Method::PUT => Ok(Route::Acs(AcsOperation::PutTeamsExtensionAssignment(
                    tenant, object,
                ))),
                Method::DELETE => Ok(Route::Acs(AcsOperation::DeleteTeamsExtensionAssignment(
                    tenant, object,
                ))),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        ["access", "entra", "assignments"] => match *method {
            Method::GET => Ok(Route::Acs(AcsOperation::ListEntraAssignments)),
            Method::PATCH => Ok(Route::Acs(AcsOperation::UpdateEntraAssignments)),
            _ => Err(ApiError::method_not_allowed()),
        },
        ["access", "entra", "assignments", object] if !object.is_empty() => {
            let object = decode_id(object)?;
            match *method {
                Method::GET => Ok(Route::Acs(AcsOperation::GetEntraAssignment(object))),
                Method::PUT => Ok(Route::Acs(AcsOperation::PutEntraAssignment(object))),
                Method::DELETE => Ok(Route::Acs(AcsOperation::DeleteEntraAssignment(object))),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        ["callsign", "tokens", ":introspect"] => only(Method::POST, Route::Introspect),
        ["callsign", "identities"] => only(Method::GET, Route::ListIdentities),
        ["callsign", ":reset"] => only(Method::POST, Route::Reset),
        ["callsign", "events"] => only(Method::GET, Route::Events),
        ["callsign", "revocations"] => only(Method::GET, Route::Revocations),
        ["metrics"] => only(Method::GET, Route::Metrics),
        _ => Err(ApiError::not_found()),
    }
}

fn decode_id(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::malformed_identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_arrive_encoded_or_not() {
        let encoded =
            resolve(&Method::POST, "/identities/8%3Aacs%3Ax_y/:issueAccessToken").unwrap();
        let plain = resolve(&Method::POST, "/identities/8:acs:x_y/:issueAccessToken").unwrap();
        assert_eq!(encoded, plain);
        assert_eq!(
            plain,
            Route::Acs(AcsOperation::IssueToken("8:acs:x_y".into()))
        );
        assert_eq!(
            resolve(&Method::POST, "/identities/8%3Aacs%3Ax_y/token").unwrap(),
            Route::Acs(AcsOperation::IssueTokenLegacy("8:acs:x_y".into()))
        );
    }

    #[test]
    fn the_2020_preview_has_its_own_token_route_and_no_actions() {
        let legacy = ApiVersion::V2020_07_20Preview2;
        let id = || "8:acs:x_y".to_owned();
        assert!(AcsOperation::IssueTokenLegacy(id()).available_in(legacy));
        assert!(!AcsOperation::IssueToken(id()).available_in(legacy));
        assert!(!AcsOperation::RevokeTokens(id()).available_in(legacy));
        assert!(!AcsOperation::TeamsUserExchange.available_in(legacy));
        assert!(AcsOperation::CreateIdentity.available_in(legacy));
        assert!(AcsOperation::DeleteIdentity(id()).available_in(legacy));
        for version in ApiVersion::ALL.into_iter().filter(|v| *v != legacy) {
            assert!(!AcsOperation::IssueTokenLegacy(id()).available_in(version));
            assert!(AcsOperation::IssueToken(id()).available_in(version));
        }
    }

    #[test]
    fn throttling_groups_follow_the_documented_limits() {
        let id = || "8:acs:x_y".to_owned();
        let group = |method: Method, path: &str| match resolve(&method, path).unwrap() {
            Route::Acs(op) => op.throttling_group(),
            other => panic!("{other:?}"),
        };
        let issue = Some(OperationGroup::Issue);
        let revoke = Some(OperationGroup::Revoke);
        let exchange = Some(OperationGroup::Exchange);
        assert_eq!(group(Method::POST, "/identities"), issue);
        assert_eq!(
            group(Method::POST, "/identities/x/:issueAccessToken"),
            issue
        );
        assert_eq!(group(Method::POST, "/identities/x/token"), issue);
        assert_eq!(group(Method::DELETE, "/identities/x"), revoke);
        assert_eq!(
            group(Method::POST, "/identities/x/:revokeAccessTokens"),
            revoke
        );
        assert_eq!(
            group(Method::POST, "/teamsUser/:exchangeAccessToken"),
            exchange
        );
        assert_eq!(
            group(Method::POST, "/access/teamsExtension/:exchangeAccessToken"),
            exchange
        );
        assert_eq!(
            group(Method::POST, "/access/entra/:exchangeAccessToken"),
            exchange
        );
        assert_eq!(group(Method::GET, "/identities/x"), None);
        assert_eq!(group(Method::GET, "/access/entra/assignments"), None);
        assert_eq!(
            AcsOperation::GetEntraAssignment(id()).throttling_group(),
            None
        );
    }

    #[test]
    fn unknown_routes_and_methods() {
        assert_eq!(resolve(&Method::GET, "/nope").unwrap_err().code, "NotFound");
        assert_eq!(
            resolve(&Method::GET, "/identities").unwrap_err().code,
            "MethodNotAllowed"
        );
        assert_eq!(
            resolve(&Method::PUT, "/identities/x").unwrap_err().code,
            "MethodNotAllowed"
        );
        assert_eq!(
            resolve(&Method::POST, "/identities/x/:other")
                .unwrap_err()
                .code,
            "NotFound"
        );
        assert_eq!(
            resolve(&Method::POST, "/identities//:issueAccessToken")
                .unwrap_err()
                .code,
            "NotFound"
        );
        assert_eq!(
            resolve(&Method::GET, "/identities/x/token")
                .unwrap_err()
                .code,
            "MethodNotAllowed"
        );
        assert_eq!(
            resolve(&Method::GET, "/callsign/tokens/:introspect")
                .unwrap_err()
                .code,
            "MethodNotAllowed"
        );
    }
}
