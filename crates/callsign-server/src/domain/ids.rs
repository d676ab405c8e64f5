//! Resource, identity and principal ids, and the raw ids of exchanged tokens. Raw ids are built
//! and read with the identifier types of `callsign-common` (what the clients produce), and the
//! Entra GUIDs of requests are normalised here, once.

use callsign_common::identifier::{
    CommunicationCloudEnvironment, CommunicationIdentifier, CommunicationUserIdentifier,
    MicrosoftTeamsUserIdentifier, TeamsExtensionUserIdentifier,
};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The GUID of a Communication Services resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceId(Uuid);

impl ResourceId {
    /// A new random resource id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ResourceId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(Uuid::try_parse(s)?))
    }
}

/// The raw id of a communication user of this resource: `8:acs:<resource>_<8-4-4-4-12 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityId(String);

/// Why a raw id from a request cannot name an identity of this resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityIdError {
    /// Not a communication user id at all.
    Malformed,
    /// A well-formed id of another resource (or cloud).
    NotOwned,
}

impl IdentityId {
    /// A new random identity of `resource`.
    pub fn generate(resource: ResourceId) -> Self {
        let user = CommunicationUserIdentifier::new(format!("8:acs:{resource}_{}", Uuid::new_v4()));
        Self(user.raw_id().to_owned())
    }

    /// Reads an id from a request and checks that it belongs to `resource`: a communication user
    /// (as the clients read raw ids) of the public cloud, `<resource>_<GUID>`.
    pub fn parse(raw: &str, resource: ResourceId) -> Result<Self, IdentityIdError> {
        let CommunicationIdentifier::CommunicationUser(user) =
            CommunicationIdentifier::from_raw_id(raw)
        else {
            return Err(IdentityIdError::Malformed);
        };
        // Public, DoD and GCCH users all have an `<owner>_<GUID>` suffix; spool users do not.
        let (cloud, rest) = [
            (CommunicationCloudEnvironment::Public, "8:acs:"),
            (CommunicationCloudEnvironment::Dod, "8:dod-acs:"),
            (CommunicationCloudEnvironment::Gcch, "8:gcch-acs:"),
        ]
        .into_iter()
        .find_map(|(cloud, prefix)| user.raw_id().strip_prefix(prefix).map(|rest| (cloud, rest)))
        .ok_or(IdentityIdError::Malformed)?;
        let (owner, suffix) = rest.split_once('_').ok_or(IdentityIdError::Malformed)?;
        let owner: ResourceId = owner.parse().map_err(|_| IdentityIdError::Malformed)?;
        let suffix = Guid::parse(suffix).ok_or(IdentityIdError::Malformed)?;
        if cloud != CommunicationCloudEnvironment::Public || owner != resource {
            return Err(IdentityIdError::NotOwned);
        }
        Ok(Self(format!("8:acs:{owner}_{suffix}")))
    }

    /// The raw id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The raw id without `8:`, as the token's `skypeid` claim holds it.
    pub fn skype_id(&self) -> &str {
        &self.0[2..]
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GUID (tenant, object, client or app id) in canonical form: lowercase 8-4-4-4-12 hex.
/// Entra sends GUIDs in either case; they are compared and stored in this form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(String);

impl Guid {
    /// `text` if it is a GUID in its 8-4-4-4-12 hex form, lowercased.
    pub fn parse(text: &str) -> Option<Self> {
        is_guid_shaped(text).then(|| Self(text.to_ascii_lowercase()))
    }

    /// The lowercase text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 8-4-4-4-12 hex digits, the shape of every ACS user suffix and Entra id.
fn is_guid_shaped(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// What an assignment names: one enum for the Teams extension (`user`, `resourceAccount`) and
/// Entra (`user`, `group`, `tenant`) assignments; a value neither knows is kept as it was
/// written (a newer release's, read from storage), never silently changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// One user.
    User,
    /// A Teams resource account (call queue, auto attendant).
    ResourceAccount,
    /// The members of an Entra group.
    Group,
    /// Every user of an Entra tenant.
    Tenant,
    /// Any other value, verbatim.
    Unknown(String),
}

impl PrincipalType {
    /// What a Teams extension assignment may name.
    pub const TEAMS_EXTENSION: [PrincipalType; 2] =
        [PrincipalType::User, PrincipalType::ResourceAccount];
    /// What an Entra assignment may name.
    pub const ENTRA: [PrincipalType; 3] = [
        PrincipalType::User,
        PrincipalType::Group,
        PrincipalType::Tenant,
    ];

    /// Reads a wire or stored value; known values in any case.
    pub fn parse(text: &str) -> Self {
        [
            PrincipalType::User,
            PrincipalType::ResourceAccount,
            PrincipalType::Group,
            PrincipalType::Tenant,
        ]
        .into_iter()
        .find(|known| known.as_str().eq_ignore_ascii_case(text))
        .unwrap_or_else(|| PrincipalType::Unknown(text.to_owned()))
    }

    /// The wire and stored value (`user`, `resourceAccount`, …).
    pub fn as_str(&self) -> &str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::ResourceAccount => "resourceAccount",
            PrincipalType::Group => "group",
            PrincipalType::Tenant => "tenant",
            PrincipalType::Unknown(text) => text,
        }
    }
}

impl From<&str> for PrincipalType {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl fmt::Display for PrincipalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The raw id of a Teams extension user of `resource`:
/// `8:acs:<resourceId>_<tenantId>_<objectId>`.
pub fn teams_extension_user(
    resource: ResourceId,
    tenant: &Guid,
    object: &Guid,
) -> TeamsExtensionUserIdentifier {
    TeamsExtensionUserIdentifier::new(
        object.as_str(),
        tenant.as_str(),
        resource.to_string(),
        CommunicationCloudEnvironment::Public,
    )
}

/// The raw id of an Entra user of `resource` (preview): `8:acs:<resourceId>_wf_<tenantId>_<objectId>`.
/// The clients read it as a communication user (its suffix is not three parts).
pub fn entra_user(
    resource: ResourceId,
    tenant: &Guid,
    object: &Guid,
) -> CommunicationUserIdentifier {
    CommunicationUserIdentifier::new(format!("8:acs:{resource}_wf_{tenant}_{object}"))
}

/// The raw id of a Teams user: `8:orgid:<objectId>`.
pub fn teams_user(object: &Guid) -> MicrosoftTeamsUserIdentifier {
    MicrosoftTeamsUserIdentifier::new(
        object.as_str(),
        false,
        CommunicationCloudEnvironment::Public,
    )
}

/// Whether `raw` names a user of an exchanged token (a Teams user, or a Teams extension or Entra
/// user of `resource`): no identity of the store, so nothing can revoke its tokens.
pub fn is_exchanged_user(raw: &str, resource: ResourceId) -> bool {
    let guids =
        |tenant: &str, object: &str| Guid::parse(tenant).is_some() && Guid::parse(object).is_some();
    match CommunicationIdentifier::from_raw_id(raw) {
        CommunicationIdentifier::MicrosoftTeamsUser(user) => {
            !user.is_anonymous() && user.cloud() == CommunicationCloudEnvironment::Public
        }
        CommunicationIdentifier::TeamsExtensionUser(user) => {
            user.cloud() == CommunicationCloudEnvironment::Public
                && user.resource_id() == resource.to_string()
                && guids(user.tenant_id(), user.user_id())
        }
        CommunicationIdentifier::CommunicationUser(user) => user
            .raw_id()
            .strip_prefix(&format!("8:acs:{resource}_wf_"))
            .and_then(|rest| rest.split_once('_'))
            .is_some_and(|(tenant, object)| guids(tenant, object)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanged_users_are_built_and_recognised_with_the_shared_identifiers() {
        let resource = ResourceId::random();
        let tenant = Guid::parse("45AB2481-1C1C-4005-BE24-0FFB879B1130").unwrap();
        let object = Guid::parse("207ffef6-9444-41fb-92ab-20eacaae2768").unwrap();
        assert_eq!(tenant.as_str(), "45ab2481-1c1c-4005-be24-0ffb879b1130");
        let extension = teams_extension_user(resource, &tenant, &object);
        assert_eq!(
            extension.raw_id(),
            format!("8:acs:{resource}_{tenant}_{object}")
        );
        let entra = entra_user(resource, &tenant, &object);
        assert_eq!(
            entra.raw_id(),
            format!("8:acs:{resource}_wf_{tenant}_{object}")
        );
        let teams = teams_user(&object);
        assert_eq!(teams.raw_id(), format!("8:orgid:{object}"));
        for raw in [extension.raw_id(), entra.raw_id(), teams.raw_id()] {
            assert!(is_exchanged_user(raw, resource), "{raw}");
            assert!(!is_exchanged_user(raw, ResourceId::random()) || raw.starts_with("8:orgid:"));
        }
        let identity = IdentityId::generate(resource);
        assert!(!is_exchanged_user(identity.as_str(), resource));
        assert!(!is_exchanged_user("8:teamsvisitor:x", resource));
    }

    #[test]
    fn principal_types_read_any_case_and_keep_unknown_values() {
        assert_eq!(
            PrincipalType::parse("RESOURCEACCOUNT"),
            PrincipalType::ResourceAccount
        );
        assert_eq!(PrincipalType::parse("group").as_str(), "group");
        let unknown = PrincipalType::parse("servicePrincipal");
        assert_eq!(unknown, PrincipalType::Unknown("servicePrincipal".into()));
        assert_eq!(unknown.as_str(), "servicePrincipal");
        assert!(!PrincipalType::ENTRA.contains(&PrincipalType::ResourceAccount));
    }

    #[test]
    fn generated_ids_parse_back() {
        let resource = ResourceId::random();
        let id = IdentityId::generate(resource);
        assert_eq!(id.as_str().len(), 79);
        assert_eq!(IdentityId::parse(id.as_str(), resource), Ok(id.clone()));
        assert!(id.skype_id().starts_with("acs:"));
    }

    #[test]
    fn foreign_and_malformed_ids_are_told_apart() {
        let resource = ResourceId::random();
        let zero =
            "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000";
        assert_eq!(
            IdentityId::parse(zero, resource),
            Err(IdentityIdError::NotOwned)
        );
        let gcch = format!("8:gcch-acs:{resource}_00000000-0000-0000-0000-000000000000");
        assert_eq!(
            IdentityId::parse(&gcch, resource),
            Err(IdentityIdError::NotOwned)
        );
        for bad in [
            "",
            "sanitized",
            "8:acs:",
            "8:acs:nope_x",
            "4:+1555",
            &format!("8:acs:{resource}_xyz"),
        ] {
            assert_eq!(
                IdentityId::parse(bad, resource),
                Err(IdentityIdError::Malformed),
                "{bad}"
            );
        }
    }
}
