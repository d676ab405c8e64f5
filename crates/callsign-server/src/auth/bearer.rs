//! Bearer (Entra ID) authentication of management calls (docs/protocol.md §3): a token of a trusted
//! issuer for `https://communication.azure.com` whose `oid` is allow-listed or whose `roles` hold
//! the configured app role authorises the identity operations like an access key does.

use super::entra::{TrustedIssuers, MANAGEMENT_AUDIENCE};
use super::AuthError;
use serde::Deserialize;

/// The `[management]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManagementConfig {
    /// Object ids (`oid`) of callers allowed to manage identities.
    #[serde(default)]
    pub allowed_object_ids: Vec<String>,
    /// An app role (`roles`) that allows managing identities.
    pub required_role: Option<String>,
}

impl ManagementConfig {
    fn allows(&self, oid: Option<&str>, roles: &[String]) -> bool {
        let by_oid = oid.is_some_and(|oid| {
            self.allowed_object_ids
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(oid))
        });
        let by_role = self
            .required_role
            .as_ref()
            .is_some_and(|role| roles.iter().any(|r| r == role));
        by_oid || by_role
    }
}

/// The caller a management bearer token named: what the audit trail records as the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerCaller {
    /// The token's `oid`.
    pub oid: Option<String>,
    /// The token's client application: `appid` (v1 tokens) or `azp` (v2).
    pub appid: Option<String>,
}

/// Checks a management call's bearer token and returns its caller. With no allow-listed oid and
/// no role configured, no bearer token is accepted.
pub async fn authenticate_bearer(
    issuers: &TrustedIssuers,
    policy: &ManagementConfig,
    token: &str,
) -> Result<BearerCaller, AuthError> {
    let claims = issuers
        .verify(token, MANAGEMENT_AUDIENCE)
        .await
        .map_err(AuthError::Bearer)?;
    if policy.allows(claims.oid.as_deref(), &claims.roles) {
        Ok(BearerCaller {
            oid: claims.oid,
            appid: claims.appid.or(claims.azp),
        })
    } else {
        Err(AuthError::NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_or_role_allows() {
        let policy = ManagementConfig {
            allowed_object_ids: vec!["ABC".into()],
            required_role: Some("Identity.Manage".into()),
        };
        assert!(policy.allows(Some("abc"), &[]));
        assert!(policy.allows(None, &["Identity.Manage".into()]));
        assert!(!policy.allows(Some("other"), &["Other".into()]));
        assert!(!ManagementConfig::default().allows(Some("abc"), &["Identity.Manage".into()]));
    }
}
