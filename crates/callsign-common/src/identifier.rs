//! Communication identifiers: who takes part in a call or chat.
//!
//! Azure Communication Services names every participant with a *raw id*, a string such as
//! `8:acs:<resource>_<user>` or `4:+14255550123`. The official "Communication Common" SDKs turn raw
//! ids into typed identifiers and back; this module is the Rust counterpart, so that callsign's
//! server and clients agree with them (and with each other) on what every raw id means.
//!
//! Two guarantees hold for every identifier:
//!
//! - **Round trip**: [`CommunicationIdentifier::from_raw_id`] never fails, and the parsed identifier's
//!   [`raw_id`](CommunicationIdentifier::raw_id) is exactly the string it was parsed from. Raw ids are
//!   used as database keys, so rewriting one would silently create a second identity.
//! - **Equality**: two identifiers are equal when they have the same kind and the same raw id, whatever
//!   their other fields say (as in the official SDKs).
//!
//! Identifiers serialize to the `CommunicationIdentifierModel` that the ACS REST APIs use (see
//! [`CommunicationIdentifier`]'s serde implementations).

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PHONE_NUMBER_PREFIX: &str = "4:";
const PHONE_NUMBER_ANONYMOUS: &str = "anonymous";

const ACS_USER_PREFIX: &str = "8:acs:";
const ACS_USER_DOD_PREFIX: &str = "8:dod-acs:";
const ACS_USER_GCCH_PREFIX: &str = "8:gcch-acs:";
const SPOOL_USER_PREFIX: &str = "8:spool:";

const TEAMS_USER_ANONYMOUS_PREFIX: &str = "8:teamsvisitor:";
const TEAMS_USER_PUBLIC_PREFIX: &str = "8:orgid:";
const TEAMS_USER_DOD_PREFIX: &str = "8:dod:";
const TEAMS_USER_GCCH_PREFIX: &str = "8:gcch:";

const TEAMS_APP_PUBLIC_PREFIX: &str = "28:orgid:";
const TEAMS_APP_DOD_PREFIX: &str = "28:dod:";
const TEAMS_APP_GCCH_PREFIX: &str = "28:gcch:";

/// The Microsoft cloud an identifier lives in.
///
/// Government clouds use their own raw-id prefixes, so the cloud is part of an identity: the same
/// user id in the public cloud and in GCC High names two different users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommunicationCloudEnvironment {
    /// The public (commercial) cloud; the default when a model does not say.
    #[default]
    Public,
    /// The US Department of Defense cloud.
    Dod,
    /// The US Government Community Cloud High.
    Gcch,
}

impl CommunicationCloudEnvironment {
    /// The value used on the wire (`public`, `dod` or `gcch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Dod => "dod",
            Self::Gcch => "gcch",
        }
    }
}

/// Which kind of participant an identifier names, without its data.
///
/// Useful to branch on the kind without matching the whole [`CommunicationIdentifier`], and part of
/// identifier equality (same kind and same raw id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    /// A user created by a Communication Services resource ([`CommunicationUserIdentifier`]).
    CommunicationUser,
    /// A phone number ([`PhoneNumberIdentifier`]).
    PhoneNumber,
    /// A Microsoft Teams user ([`MicrosoftTeamsUserIdentifier`]).
    MicrosoftTeamsUser,
    /// A Microsoft Teams application ([`MicrosoftTeamsAppIdentifier`]).
    MicrosoftTeamsApp,
    /// A Teams Phone user extended through a Communication Services resource
    /// ([`TeamsExtensionUserIdentifier`]).
    TeamsExtensionUser,
    /// A raw id this implementation does not recognize ([`UnknownIdentifier`]).
    Unknown,
}

impl IdentifierKind {
    /// The `kind` value of the REST wire model (`communicationUser`, `phoneNumber`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommunicationUser => "communicationUser",
            Self::PhoneNumber => "phoneNumber",
            Self::MicrosoftTeamsUser => "microsoftTeamsUser",
            Self::MicrosoftTeamsApp => "microsoftTeamsApp",
            Self::TeamsExtensionUser => "teamsExtensionUser",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a wire `kind` value; `None` for kinds this implementation does not know.
    fn from_wire(kind: &str) -> Option<Self> {
        [
            Self::CommunicationUser,
            Self::PhoneNumber,
            Self::MicrosoftTeamsUser,
            Self::MicrosoftTeamsApp,
            Self::TeamsExtensionUser,
            Self::Unknown,
        ]
        .into_iter()
        .find(|known| known.as_str() == kind)
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A participant in Azure Communication Services: the typed form of a raw id.
///
/// Build one from a stored raw id with [`from_raw_id`](Self::from_raw_id), or from its parts with
/// the constructors of the variant types (for example [`PhoneNumberIdentifier::new`]) and `into()`.
///
/// # Wire format
///
/// Serializes to the REST `CommunicationIdentifierModel`, always with `kind` and `rawId`, e.g.
/// `{"kind":"communicationUser","rawId":"8:acs:…","communicationUser":{"id":"8:acs:…"}}`. When
/// deserializing, `kind` may be absent (older services send only the sub-object), and a model with only
/// a `rawId` is parsed with [`from_raw_id`](Self::from_raw_id). An unrecognized `kind` becomes
/// [`Unknown`](Self::Unknown) so that newer services do not break older clients.
#[derive(Debug, Clone)]
pub enum CommunicationIdentifier {
    /// A user created by a Communication Services resource.
    CommunicationUser(CommunicationUserIdentifier),
    /// A phone number.
    PhoneNumber(PhoneNumberIdentifier),
    /// A Microsoft Teams user.
    MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier),
    /// A Microsoft Teams application.
    MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier),
    /// A Teams Phone user extended through a Communication Services resource.
    TeamsExtensionUser(TeamsExtensionUserIdentifier),
    /// A raw id that none of the other kinds recognizes.
    Unknown(UnknownIdentifier),
}

impl CommunicationIdentifier {
    /// Restores the identifier encoded in a raw id.
    ///
    /// Never fails: anything unrecognized becomes [`Unknown`](Self::Unknown), and the result's
    /// [`raw_id`](Self::raw_id) is always exactly `raw_id`. The rules are those of the official SDKs:
    ///
    /// - `4:<phone>` is a phone number (`4:anonymous` is anonymous; text after the last `_` is the
    ///   asserted id);
    /// - otherwise the raw id must have exactly three `:`-separated segments, and the first two select
    ///   the kind: `8:acs:`, `8:dod-acs:`, `8:gcch-acs:` and `8:spool:` are communication users, except
    ///   that an `acs` suffix splitting on `_` into exactly three parts is a Teams extension user
    ///   (`resourceId_tenantId_userId`); `8:orgid:`, `8:dod:`, `8:gcch:` are Teams users and
    ///   `8:teamsvisitor:` an anonymous Teams user; `28:orgid:`, `28:dod:`, `28:gcch:` are Teams apps.
    ///
    /// ```
    /// use callsign_common::CommunicationIdentifier;
    ///
    /// let raw = "8:acs:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_45ab2481-1c1c-4005-be24-0ffb879b1130_207ffef6-9444-41fb-92ab-20eacaae2768";
    /// let CommunicationIdentifier::TeamsExtensionUser(user) = CommunicationIdentifier::from_raw_id(raw)
    /// else {
    ///     panic!("three parts after 8:acs: are a Teams extension user");
    /// };
    /// assert_eq!(user.tenant_id(), "45ab2481-1c1c-4005-be24-0ffb879b1130");
    ///
    /// // Nothing is lost, whatever the input.
    /// let odd = CommunicationIdentifier::from_raw_id("28:gcch-global:x");
    /// assert!(matches!(odd, CommunicationIdentifier::Unknown(_)));
    /// assert_eq!(odd.raw_id(), "28:gcch-global:x");
    /// ```
    pub fn from_raw_id(raw_id: &str) -> Self {
        if raw_id.starts_with(PHONE_NUMBER_PREFIX) {
            return Self::PhoneNumber(PhoneNumberIdentifier::parse(raw_id));
        }

        let mut segments = raw_id.split(':');
        let (Some(first), Some(second), Some(suffix), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Self::Unknown(UnknownIdentifier::new(raw_id));
        };
        // The prefix is everything but the suffix, colons included.
        let prefix = &raw_id[..first.len() + second.len() + 2];
        let owned = || raw_id.to_owned();

        use CommunicationCloudEnvironment::{Dod, Gcch, Public};
        let teams_user = |is_anonymous, cloud| {
            Self::MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier {
                user_id: suffix.to_owned(),
                is_anonymous,
                cloud,
                raw_id: owned(),
            })
        };
        let teams_app = |cloud| {
            Self::MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier {
                app_id: suffix.to_owned(),
                cloud,
                raw_id: owned(),
            })
        };
        let acs_user = |cloud| {
            TeamsExtensionUserIdentifier::parse(suffix, cloud, raw_id).map_or_else(
                || Self::CommunicationUser(CommunicationUserIdentifier::new(raw_id)),
                Self::TeamsExtensionUser,
            )
        };

        match prefix {
            TEAMS_USER_ANONYMOUS_PREFIX => teams_user(true, Public),
            TEAMS_USER_PUBLIC_PREFIX => teams_user(false, Public),
            TEAMS_USER_DOD_PREFIX => teams_user(false, Dod),
            TEAMS_USER_GCCH_PREFIX => teams_user(false, Gcch),
            TEAMS_APP_PUBLIC_PREFIX => teams_app(Public),
            TEAMS_APP_DOD_PREFIX => teams_app(Dod),
            TEAMS_APP_GCCH_PREFIX => teams_app(Gcch),
            ACS_USER_PREFIX => acs_user(Public),
            ACS_USER_DOD_PREFIX => acs_user(Dod),
            ACS_USER_GCCH_PREFIX => acs_user(Gcch),
            SPOOL_USER_PREFIX => Self::CommunicationUser(CommunicationUserIdentifier::new(raw_id)),
            _ => Self::Unknown(UnknownIdentifier::new(raw_id)),
        }
    }

    /// The raw id: the canonical string form, suitable as a database key.
    pub fn raw_id(&self) -> &str {
        match self {
            Self::CommunicationUser(id) => id.raw_id(),
            Self::PhoneNumber(id) => id.raw_id(),
            Self::MicrosoftTeamsUser(id) => id.raw_id(),
            Self::MicrosoftTeamsApp(id) => id.raw_id(),
            Self::TeamsExtensionUser(id) => id.raw_id(),
            Self::Unknown(id) => id.raw_id(),
        }
    }

    /// Which kind of participant this is.
    pub fn kind(&self) -> IdentifierKind {
        match self {
            Self::CommunicationUser(_) => IdentifierKind::CommunicationUser,
            Self::PhoneNumber(_) => IdentifierKind::PhoneNumber,
            Self::MicrosoftTeamsUser(_) => IdentifierKind::MicrosoftTeamsUser,
            Self::MicrosoftTeamsApp(_) => IdentifierKind::MicrosoftTeamsApp,
            Self::TeamsExtensionUser(_) => IdentifierKind::TeamsExtensionUser,
            Self::Unknown(_) => IdentifierKind::Unknown,
        }
    }
}

/// Same kind and same raw id, as in the official SDKs; other fields are not compared.
impl PartialEq for CommunicationIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.raw_id() == other.raw_id()
    }
}

impl Eq for CommunicationIdentifier {}

/// Hashes exactly what equality compares: the kind and the raw id.
impl Hash for CommunicationIdentifier {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind().hash(state);
        self.raw_id().hash(state);
    }
}

/// Displays the raw id.
impl fmt::Display for CommunicationIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw_id())
    }
}

/// A user created by a Communication Services resource (`8:acs:…`, `8:spool:`, …).
///
/// Its id *is* its raw id, as returned by the identity API's create-user operation.
#[derive(Debug, Clone)]
pub struct CommunicationUserIdentifier {
    id: String,
}

impl CommunicationUserIdentifier {
    /// An identifier for the user with this id (which is also its raw id).
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The user's id, as returned by the identity API.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw id, which for communication users is the id itself.
    pub fn raw_id(&self) -> &str {
        &self.id
    }
}

/// A phone number (`4:<number>`).
#[derive(Debug, Clone)]
pub struct PhoneNumberIdentifier {
    phone_number: String,
    is_anonymous: bool,
    asserted_id: Option<String>,
    raw_id: String,
}

impl PhoneNumberIdentifier {
    /// An identifier for a phone number, normally in E.164 form (`+14255550123`).
    ///
    /// The raw id is `4:` followed by the number unchanged (validation is the service's job, as in
    /// the official SDKs). Anonymity and the asserted id are derived exactly as
    /// [`CommunicationIdentifier::from_raw_id`] derives them, so both ways of building an identifier
    /// agree field by field.
    pub fn new(phone_number: impl Into<String>) -> Self {
        let phone_number = phone_number.into();
        Self::parse(&format!("{PHONE_NUMBER_PREFIX}{phone_number}"))
    }

    /// Parses a raw id that starts with `4:`.
    fn parse(raw_id: &str) -> Self {
        let phone_number = raw_id
            .strip_prefix(PHONE_NUMBER_PREFIX)
            .unwrap_or(raw_id)
            .to_owned();
        let is_anonymous = phone_number == PHONE_NUMBER_ANONYMOUS;
        // The asserted id is the non-empty text after the last `_` of a non-anonymous number.
        let asserted_id = if is_anonymous {
            None
        } else {
            phone_number
                .rsplit_once('_')
                .map(|(_, asserted)| asserted)
                .filter(|asserted| !asserted.is_empty())
                .map(str::to_owned)
        };
        Self {
            phone_number,
            is_anonymous,
            asserted_id,
            raw_id: raw_id.to_owned(),
        }
    }

    /// The phone number: everything after `4:`, asserted id included (as in the official SDKs).
    pub fn phone_number(&self) -> &str {
        &self.phone_number
    }

    /// Whether this is an anonymous caller (`4:anonymous`), e.g. a hidden caller id.
    pub fn is_anonymous(&self) -> bool {
        self.is_anonymous
    }

    /// The asserted id that tells apart several connections through the same number, if any.
    pub fn asserted_id(&self) -> Option<&str> {
        self.asserted_id.as_deref()
    }

    /// The raw id.
    pub fn raw_id(&self) -> &str {
        &self.raw_id
    }
}

/// A Microsoft Teams user (`8:orgid:`, `8:dod:`, `8:gcch:`), or an anonymous meeting guest
/// (`8:teamsvisitor:`).
#[derive(Debug, Clone)]
pub struct MicrosoftTeamsUserIdentifier {
    user_id: String,
    is_anonymous: bool,
    cloud: CommunicationCloudEnvironment,
    raw_id: String,
}

impl MicrosoftTeamsUserIdentifier {
    /// An identifier for a Teams user: for a non-anonymous user, `user_id` is the Entra object id.
    ///
    /// The raw id is `8:teamsvisitor:<id>` for anonymous users (whatever the cloud), otherwise
    /// `8:orgid:`, `8:dod:` or `8:gcch:` followed by the id, depending on the cloud.
    pub fn new(
        user_id: impl Into<String>,
        is_anonymous: bool,
        cloud: CommunicationCloudEnvironment,
    ) -> Self {
        let user_id = user_id.into();
        let prefix = if is_anonymous {
            TEAMS_USER_ANONYMOUS_PREFIX
        } else {
            match cloud {
                CommunicationCloudEnvironment::Public => TEAMS_USER_PUBLIC_PREFIX,
                CommunicationCloudEnvironment::Dod => TEAMS_USER_DOD_PREFIX,
                CommunicationCloudEnvironment::Gcch => TEAMS_USER_GCCH_PREFIX,
            }
        };
        Self {
            raw_id: format!("{prefix}{user_id}"),
            user_id,
            is_anonymous,
            cloud,
        }
    }

    /// The user's id: the Entra object id unless the user is anonymous.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Whether the user is an anonymous guest, e.g. one who joined a meeting through a link.
    pub fn is_anonymous(&self) -> bool {
        self.is_anonymous
    }

    /// The cloud the user belongs to.
    pub fn cloud(&self) -> CommunicationCloudEnvironment {
        self.cloud
    }

    /// The raw id.
    pub fn raw_id(&self) -> &str {
        &self.raw_id
    }
}

/// A Microsoft Teams application, such as a bot or a voice app (`28:orgid:`, `28:dod:`, `28:gcch:`).
#[derive(Debug, Clone)]
pub struct MicrosoftTeamsAppIdentifier {
    app_id: String,
    cloud: CommunicationCloudEnvironment,
    raw_id: String,
}

impl MicrosoftTeamsAppIdentifier {
    /// An identifier for a Teams application; the raw id is `28:orgid:`, `28:dod:` or `28:gcch:`
    /// followed by the app id, depending on the cloud.
    pub fn new(app_id: impl Into<String>, cloud: CommunicationCloudEnvironment) -> Self {
        let app_id = app_id.into();
        let prefix = match cloud {
            CommunicationCloudEnvironment::Public => TEAMS_APP_PUBLIC_PREFIX,
            CommunicationCloudEnvironment::Dod => TEAMS_APP_DOD_PREFIX,
            CommunicationCloudEnvironment::Gcch => TEAMS_APP_GCCH_PREFIX,
        };
        Self {
            raw_id: format!("{prefix}{app_id}"),
            app_id,
            cloud,
        }
    }

    /// The application's id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The cloud the application belongs to.
    pub fn cloud(&self) -> CommunicationCloudEnvironment {
        self.cloud
    }

    /// The raw id.
    pub fn raw_id(&self) -> &str {
        &self.raw_id
    }
}

/// A Teams Phone user who uses a Communication Services resource to extend their Teams Phone setup
/// (`8:acs:<resourceId>_<tenantId>_<userId>`, or `8:dod-acs:` / `8:gcch-acs:`).
#[derive(Debug, Clone)]
pub struct TeamsExtensionUserIdentifier {
    user_id: String,
    tenant_id: String,
    resource_id: String,
    cloud: CommunicationCloudEnvironment,
    raw_id: String,
}

impl TeamsExtensionUserIdentifier {
    /// An identifier for a Teams extension user; the raw id is
    /// `<prefix><resource_id>_<tenant_id>_<user_id>`, the prefix being `8:acs:`, `8:dod-acs:` or
    /// `8:gcch-acs:` depending on the cloud.
    pub fn new(
        user_id: impl Into<String>,
        tenant_id: impl Into<String>,
        resource_id: impl Into<String>,
        cloud: CommunicationCloudEnvironment,
    ) -> Self {
        let (user_id, tenant_id, resource_id) =
            (user_id.into(), tenant_id.into(), resource_id.into());
        let prefix = match cloud {
            CommunicationCloudEnvironment::Public => ACS_USER_PREFIX,
            CommunicationCloudEnvironment::Dod => ACS_USER_DOD_PREFIX,
            CommunicationCloudEnvironment::Gcch => ACS_USER_GCCH_PREFIX,
        };
        Self {
            raw_id: format!("{prefix}{resource_id}_{tenant_id}_{user_id}"),
            user_id,
            tenant_id,
            resource_id,
            cloud,
        }
    }

    /// Splits an `acs` suffix into `resource_tenant_user`; `None` unless there are exactly three parts.
    fn parse(suffix: &str, cloud: CommunicationCloudEnvironment, raw_id: &str) -> Option<Self> {
        let mut parts = suffix.split('_');
        let (Some(resource_id), Some(tenant_id), Some(user_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            user_id: user_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            resource_id: resource_id.to_owned(),
            cloud,
            raw_id: raw_id.to_owned(),
        })
    }

    /// The user's Entra object id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user's Entra tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The id of the Communication Services resource the user goes through.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// The cloud the user belongs to.
    pub fn cloud(&self) -> CommunicationCloudEnvironment {
        self.cloud
    }

    /// The raw id.
    pub fn raw_id(&self) -> &str {
        &self.raw_id
    }
}

/// A raw id that none of the known kinds recognizes, kept verbatim.
///
/// New kinds of participants appear over time; keeping their raw ids intact lets callsign pass them
/// along without understanding them.
#[derive(Debug, Clone)]
pub struct UnknownIdentifier {
    id: String,
}

impl UnknownIdentifier {
    /// An identifier holding this raw id as is.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The id, which is also the raw id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw id.
    pub fn raw_id(&self) -> &str {
        &self.id
    }
}

/// Per-type equality and hashing by raw id, matching [`CommunicationIdentifier`]'s.
macro_rules! equal_by_raw_id {
    ($($ty:ty),+ $(,)?) => {$(
        /// Equal when the raw ids are equal; other fields are not compared.
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.raw_id() == other.raw_id()
            }
        }

        impl Eq for $ty {}

        /// Hashes the raw id, which is what equality compares.
        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.raw_id().hash(state);
            }
        }
    )+};
}

equal_by_raw_id!(
    CommunicationUserIdentifier,
    PhoneNumberIdentifier,
    MicrosoftTeamsUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
);

macro_rules! into_identifier {
    ($($variant:ident($ty:ty)),+ $(,)?) => {$(
        /// Wraps the typed identifier in the [`CommunicationIdentifier`] enum.
        impl From<$ty> for CommunicationIdentifier {
            fn from(identifier: $ty) -> Self {
                Self::$variant(identifier)
            }
        }
    )+};
}

into_identifier!(
    CommunicationUser(CommunicationUserIdentifier),
    PhoneNumber(PhoneNumberIdentifier),
    MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier),
    MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier),
    TeamsExtensionUser(TeamsExtensionUserIdentifier),
    Unknown(UnknownIdentifier),
);

// ---------------------------------------------------------------------------------------------
// Wire model
// ---------------------------------------------------------------------------------------------

/// The REST `CommunicationIdentifierModel`: a union of optional sub-objects plus `kind` and `rawId`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentifierModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    communication_user: Option<CommunicationUserModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone_number: Option<PhoneNumberModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    microsoft_teams_user: Option<MicrosoftTeamsUserModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    microsoft_teams_app: Option<MicrosoftTeamsAppModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    teams_extension_user: Option<TeamsExtensionUserModel>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CommunicationUserModel {
    id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneNumberModel {
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_anonymous: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    asserted_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MicrosoftTeamsUserModel {
    user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_anonymous: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cloud: Option<CommunicationCloudEnvironment>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MicrosoftTeamsAppModel {
    app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cloud: Option<CommunicationCloudEnvironment>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamsExtensionUserModel {
    user_id: String,
    tenant_id: String,
    resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cloud: Option<CommunicationCloudEnvironment>,
}

/// Why a wire model does not describe an identifier.
#[derive(Debug, thiserror::Error)]
enum InvalidIdentifierModel {
    #[error(
        "an identifier model holds at most one of communicationUser, phoneNumber, \
         microsoftTeamsUser, microsoftTeamsApp and teamsExtensionUser"
    )]
    SeveralSubObjects,
    #[error("an identifier of kind `{0}` needs the `{0}` property")]
    MissingSubObject(IdentifierKind),
    #[error("an identifier of kind `{0}` needs the `rawId` property")]
    MissingRawId(String),
    #[error("an identifier model needs a `kind`, a `rawId` or an identifier property")]
    Empty,
}

impl From<&CommunicationIdentifier> for IdentifierModel {
    fn from(identifier: &CommunicationIdentifier) -> Self {
        let mut model = IdentifierModel {
            kind: Some(identifier.kind().as_str().to_owned()),
            raw_id: Some(identifier.raw_id().to_owned()),
            ..IdentifierModel::default()
        };
        match identifier {
            CommunicationIdentifier::CommunicationUser(user) => {
                model.communication_user = Some(CommunicationUserModel {
                    id: user.id.clone(),
                });
            }
            CommunicationIdentifier::PhoneNumber(phone) => {
                model.phone_number = Some(PhoneNumberModel {
                    value: phone.phone_number.clone(),
                    is_anonymous: Some(phone.is_anonymous),
                    asserted_id: phone.asserted_id.clone(),
                });
            }
            CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                model.microsoft_teams_user = Some(MicrosoftTeamsUserModel {
                    user_id: user.user_id.clone(),
                    is_anonymous: Some(user.is_anonymous),
                    cloud: Some(user.cloud),
                });
            }
            CommunicationIdentifier::MicrosoftTeamsApp(app) => {
                model.microsoft_teams_app = Some(MicrosoftTeamsAppModel {
                    app_id: app.app_id.clone(),
                    cloud: Some(app.cloud),
                });
            }
            CommunicationIdentifier::TeamsExtensionUser(user) => {
                model.teams_extension_user = Some(TeamsExtensionUserModel {
                    user_id: user.user_id.clone(),
                    tenant_id: user.tenant_id.clone(),
                    resource_id: user.resource_id.clone(),
                    cloud: Some(user.cloud),
                });
            }
            CommunicationIdentifier::Unknown(_) => {}
        }
        model
    }
}

impl IdentifierModel {
    /// The kinds of the sub-objects that are present.
    fn present_sub_objects(&self) -> Vec<IdentifierKind> {
        [
            (
                self.communication_user.is_some(),
                IdentifierKind::CommunicationUser,
            ),
            (self.phone_number.is_some(), IdentifierKind::PhoneNumber),
            (
                self.microsoft_teams_user.is_some(),
                IdentifierKind::MicrosoftTeamsUser,
            ),
            (
                self.microsoft_teams_app.is_some(),
                IdentifierKind::MicrosoftTeamsApp,
            ),
            (
                self.teams_extension_user.is_some(),
                IdentifierKind::TeamsExtensionUser,
            ),
        ]
        .into_iter()
        .filter_map(|(present, kind)| present.then_some(kind))
        .collect()
    }
}

impl TryFrom<IdentifierModel> for CommunicationIdentifier {
    type Error = InvalidIdentifierModel;

    fn try_from(model: IdentifierModel) -> Result<Self, Self::Error> {
        let present = model.present_sub_objects();
        let kind = match model.kind.as_deref() {
            // A known kind with data: the model must carry that kind's sub-object and no other.
            Some(wire) => match IdentifierKind::from_wire(wire) {
                Some(kind) if kind != IdentifierKind::Unknown => kind,
                // `unknown`, or a kind newer than this implementation: keep the raw id verbatim.
                _ => {
                    let raw_id = model
                        .raw_id
                        .ok_or_else(|| InvalidIdentifierModel::MissingRawId(wire.to_owned()))?;
                    return Ok(Self::Unknown(UnknownIdentifier::new(raw_id)));
                }
            },
            // No kind (older services): the single sub-object says it, or else the raw id.
            None => match present.as_slice() {
                [] => {
                    let raw_id = model.raw_id.ok_or(InvalidIdentifierModel::Empty)?;
                    return Ok(Self::from_raw_id(&raw_id));
                }
                [kind] => *kind,
                _ => return Err(InvalidIdentifierModel::SeveralSubObjects),
            },
        };
        if present.len() > 1 {
            return Err(InvalidIdentifierModel::SeveralSubObjects);
        }

        let missing = || InvalidIdentifierModel::MissingSubObject(kind);
        // Optional fields the model leaves out default to what the raw id says, when it parses to the
        // same kind (older services omit `cloud` and `isAnonymous`), and otherwise to the SDK defaults.
        let raw_id = model.raw_id;
        let parsed = raw_id.as_deref().map(Self::from_raw_id);
        let identifier = match kind {
            IdentifierKind::CommunicationUser => {
                let user = model.communication_user.ok_or_else(missing)?;
                // A communication user's id is its raw id, as in the official SDKs.
                Self::CommunicationUser(CommunicationUserIdentifier::new(user.id))
            }
            IdentifierKind::PhoneNumber => {
                let phone = model.phone_number.ok_or_else(missing)?;
                let raw_id =
                    raw_id.unwrap_or_else(|| format!("{PHONE_NUMBER_PREFIX}{}", phone.value));
                let derived = PhoneNumberIdentifier::parse(&raw_id);
                Self::PhoneNumber(PhoneNumberIdentifier {
                    phone_number: phone.value,
                    is_anonymous: phone.is_anonymous.unwrap_or(derived.is_anonymous),
                    asserted_id: phone.asserted_id.or(derived.asserted_id),
                    raw_id,
                })
            }
            IdentifierKind::MicrosoftTeamsUser => {
                let user = model.microsoft_teams_user.ok_or_else(missing)?;
                let (is_anonymous, cloud) = match parsed {
                    Some(Self::MicrosoftTeamsUser(parsed)) => (parsed.is_anonymous, parsed.cloud),
                    _ => (false, CommunicationCloudEnvironment::default()),
                };
                let mut built = MicrosoftTeamsUserIdentifier::new(
                    user.user_id,
                    user.is_anonymous.unwrap_or(is_anonymous),
                    user.cloud.unwrap_or(cloud),
                );
                if let Some(raw_id) = raw_id {
                    built.raw_id = raw_id;
                }
                Self::MicrosoftTeamsUser(built)
            }
            IdentifierKind::MicrosoftTeamsApp => {
                let app = model.microsoft_teams_app.ok_or_else(missing)?;
                let cloud = match parsed {
                    Some(Self::MicrosoftTeamsApp(parsed)) => parsed.cloud,
                    _ => CommunicationCloudEnvironment::default(),
                };
                let mut built =
                    MicrosoftTeamsAppIdentifier::new(app.app_id, app.cloud.unwrap_or(cloud));
                if let Some(raw_id) = raw_id {
                    built.raw_id = raw_id;
                }
                Self::MicrosoftTeamsApp(built)
            }
            IdentifierKind::TeamsExtensionUser => {
                let user = model.teams_extension_user.ok_or_else(missing)?;
                let cloud = match parsed {
                    Some(Self::TeamsExtensionUser(parsed)) => parsed.cloud,
                    _ => CommunicationCloudEnvironment::default(),
                };
                let mut built = TeamsExtensionUserIdentifier::new(
                    user.user_id,
                    user.tenant_id,
                    user.resource_id,
                    user.cloud.unwrap_or(cloud),
                );
                if let Some(raw_id) = raw_id {
                    built.raw_id = raw_id;
                }
                Self::TeamsExtensionUser(built)
            }
            IdentifierKind::Unknown => unreachable!("unknown kinds returned early"),
        };
        Ok(identifier)
    }
}

/// Serializes to the REST `CommunicationIdentifierModel`, always with `kind` and `rawId`.
impl Serialize for CommunicationIdentifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IdentifierModel::from(self).serialize(serializer)
    }
}

/// Deserializes a REST `CommunicationIdentifierModel`, current or older form (see the type's docs).
impl<'de> Deserialize<'de> for CommunicationIdentifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let model = IdentifierModel::deserialize(deserializer)?;
        Self::try_from(model).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;
    use CommunicationCloudEnvironment::{Dod, Gcch, Public};

    const A: &str = "bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd";
    const B: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";
    const C: &str = "207ffef6-9444-41fb-92ab-20eacaae2768";

    fn parse(raw_id: &str) -> CommunicationIdentifier {
        let identifier = CommunicationIdentifier::from_raw_id(raw_id);
        assert_eq!(identifier.raw_id(), raw_id, "raw id must round-trip");
        identifier
    }

    fn round_trip_json(identifier: &CommunicationIdentifier) -> CommunicationIdentifier {
        let json = serde_json::to_string(identifier).unwrap();
        serde_json::from_str(&json).unwrap()
    }

    // --- docs/protocol.md §5 vectors ---------------------------------------------------------------

    #[test]
    fn vector_acs_user() {
        let raw = format!("8:acs:{A}_{B}");
        match parse(&raw) {
            CommunicationIdentifier::CommunicationUser(user) => assert_eq!(user.id(), raw),
            other => panic!("expected a communication user, got {other:?}"),
        }
    }

    #[test]
    fn vector_teams_extension_user() {
        let raw = format!("8:acs:{A}_{B}_{C}");
        match parse(&raw) {
            CommunicationIdentifier::TeamsExtensionUser(user) => {
                assert_eq!(user.resource_id(), A);
                assert_eq!(user.tenant_id(), B);
                assert_eq!(user.user_id(), C);
                assert_eq!(user.cloud(), Public);
            }
            other => panic!("expected a Teams extension user, got {other:?}"),
        }
    }

    #[test]
    fn vector_gcch_teams_user() {
        match parse(&format!("8:gcch:{B}")) {
            CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                assert_eq!(user.user_id(), B);
                assert!(!user.is_anonymous());
                assert_eq!(user.cloud(), Gcch);
            }
            other => panic!("expected a Teams user, got {other:?}"),
        }
    }

    #[test]
    fn vector_anonymous_teams_user() {
        match parse(&format!("8:teamsvisitor:{B}")) {
            CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                assert_eq!(user.user_id(), B);
                assert!(user.is_anonymous());
                assert_eq!(user.cloud(), Public);
            }
            other => panic!("expected a Teams user, got {other:?}"),
        }
    }

    #[test]
    fn vector_dod_teams_app() {
        match parse(&format!("28:dod:{B}")) {
            CommunicationIdentifier::MicrosoftTeamsApp(app) => {
                assert_eq!(app.app_id(), B);
                assert_eq!(app.cloud(), Dod);
            }
            other => panic!("expected a Teams app, got {other:?}"),
        }
    }

    #[test]
    fn vector_phone_with_asserted_id() {
        match parse(&format!("4:+112345556789_{C}")) {
            CommunicationIdentifier::PhoneNumber(phone) => {
                assert_eq!(phone.phone_number(), format!("+112345556789_{C}"));
                assert_eq!(phone.asserted_id(), Some(C));
                assert!(!phone.is_anonymous());
            }
            other => panic!("expected a phone number, got {other:?}"),
        }
    }

    #[test]
    fn vector_unknowns() {
        for raw in [
            format!("28:{B}"),
            format!("48:{B}"),
            format!("28:gcch-global:{B}"),
            format!("8:gcch-acs:segment4:{A}_{B}"),
        ] {
            assert_eq!(parse(&raw).kind(), IdentifierKind::Unknown, "{raw}");
        }
    }

    // --- further parsing rules ----------------------------------------------------------------

    #[test]
    fn every_acs_prefix_is_a_communication_user() {
        for prefix in ["8:acs:", "8:dod-acs:", "8:gcch-acs:", "8:spool:"] {
            let raw = format!("{prefix}{A}_{B}");
            assert_eq!(
                parse(&raw).kind(),
                IdentifierKind::CommunicationUser,
                "{raw}"
            );
        }
    }

    #[test]
    fn teams_extension_user_clouds_and_part_counts() {
        for (prefix, cloud) in [
            ("8:acs:", Public),
            ("8:dod-acs:", Dod),
            ("8:gcch-acs:", Gcch),
        ] {
            match parse(&format!("{prefix}{A}_{B}_{C}")) {
                CommunicationIdentifier::TeamsExtensionUser(user) => {
                    assert_eq!(user.cloud(), cloud)
                }
                other => panic!("expected a Teams extension user, got {other:?}"),
            }
        }
        // Spool users never split into Teams extension users.
        assert_eq!(
            parse(&format!("8:spool:{A}_{B}_{C}")).kind(),
            IdentifierKind::CommunicationUser
        );
        // Exactly three parts: one, two or four parts stay communication users.
        for suffix in [A.to_owned(), format!("{A}_{B}"), format!("{A}_{B}_{C}_{A}")] {
            assert_eq!(
                parse(&format!("8:acs:{suffix}")).kind(),
                IdentifierKind::CommunicationUser
            );
        }
    }

    #[test]
    fn teams_user_and_app_clouds() {
        for (prefix, cloud) in [("8:orgid:", Public), ("8:dod:", Dod), ("8:gcch:", Gcch)] {
            match parse(&format!("{prefix}{A}")) {
                CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                    assert_eq!(user.cloud(), cloud);
                    assert!(!user.is_anonymous());
                }
                other => panic!("expected a Teams user, got {other:?}"),
            }
        }
        for (prefix, cloud) in [("28:orgid:", Public), ("28:dod:", Dod), ("28:gcch:", Gcch)] {
            match parse(&format!("{prefix}{A}")) {
                CommunicationIdentifier::MicrosoftTeamsApp(app) => assert_eq!(app.cloud(), cloud),
                other => panic!("expected a Teams app, got {other:?}"),
            }
        }
    }

    #[test]
    fn phone_numbers() {
        match parse("4:anonymous") {
            CommunicationIdentifier::PhoneNumber(phone) => {
                assert!(phone.is_anonymous());
                assert_eq!(phone.asserted_id(), None);
                assert_eq!(phone.phone_number(), "anonymous");
            }
            other => panic!("expected a phone number, got {other:?}"),
        }
        let cases = [
            ("4:+14255550123", None),
            ("4:14255550123", None),
            ("4:+1_", None),
            ("4:+1_a_b", Some("b")),
            ("4:_x", Some("x")),
            ("4:", None),
            // Colons do not matter for phone numbers.
            ("4:+1:2:3", None),
        ];
        for (raw, asserted) in cases {
            match parse(raw) {
                CommunicationIdentifier::PhoneNumber(phone) => {
                    assert!(!phone.is_anonymous(), "{raw}");
                    assert_eq!(phone.asserted_id(), asserted, "{raw}");
                    assert_eq!(phone.phone_number(), &raw[2..]);
                }
                other => panic!("expected a phone number for {raw}, got {other:?}"),
            }
        }
    }

    #[test]
    fn segment_counts_and_unknown_prefixes() {
        for raw in [
            "",
            "8",
            "8:acs",
            "8:acs:a:b",
            "8:orgid:a:b",
            "28:orgid",
            "8:ACS:x",
            "3:acs:x",
            "8:teams:x",
            " 8:acs:x",
            "anonymous",
        ] {
            assert_eq!(parse(raw).kind(), IdentifierKind::Unknown, "{raw:?}");
        }
        // Three segments with an empty suffix still follow the prefix (as the official SDKs do).
        assert_eq!(parse("8:acs:").kind(), IdentifierKind::CommunicationUser);
        assert_eq!(parse("8:orgid:").kind(), IdentifierKind::MicrosoftTeamsUser);
    }

    // --- constructors -------------------------------------------------------------------------

    #[test]
    fn constructor_raw_ids() {
        assert_eq!(
            CommunicationUserIdentifier::new(format!("8:acs:{A}_{B}")).raw_id(),
            format!("8:acs:{A}_{B}")
        );
        assert_eq!(
            PhoneNumberIdentifier::new("+14255550123").raw_id(),
            "4:+14255550123"
        );
        assert_eq!(
            MicrosoftTeamsUserIdentifier::new(B, false, Public).raw_id(),
            format!("8:orgid:{B}")
        );
        assert_eq!(
            MicrosoftTeamsUserIdentifier::new(B, false, Dod).raw_id(),
            format!("8:dod:{B}")
        );
        assert_eq!(
            MicrosoftTeamsUserIdentifier::new(B, false, Gcch).raw_id(),
            format!("8:gcch:{B}")
        );
        for cloud in [Public, Dod, Gcch] {
            assert_eq!(
                MicrosoftTeamsUserIdentifier::new(B, true, cloud).raw_id(),
                format!("8:teamsvisitor:{B}")
            );
        }
        assert_eq!(
            MicrosoftTeamsAppIdentifier::new(B, Public).raw_id(),
            format!("28:orgid:{B}")
        );
        assert_eq!(
            MicrosoftTeamsAppIdentifier::new(B, Dod).raw_id(),
            format!("28:dod:{B}")
        );
        assert_eq!(
            MicrosoftTeamsAppIdentifier::new(B, Gcch).raw_id(),
            format!("28:gcch:{B}")
        );
        assert_eq!(
            TeamsExtensionUserIdentifier::new(C, B, A, Public).raw_id(),
            format!("8:acs:{A}_{B}_{C}")
        );
        assert_eq!(
            TeamsExtensionUserIdentifier::new(C, B, A, Dod).raw_id(),
            format!("8:dod-acs:{A}_{B}_{C}")
        );
        assert_eq!(
            TeamsExtensionUserIdentifier::new(C, B, A, Gcch).raw_id(),
            format!("8:gcch-acs:{A}_{B}_{C}")
        );
        assert_eq!(
            UnknownIdentifier::new(format!("48:{B}")).raw_id(),
            format!("48:{B}")
        );
    }

    #[test]
    fn phone_constructor_agrees_with_parsing() {
        let built = PhoneNumberIdentifier::new(format!("+112345556789_{C}"));
        assert_eq!(built.asserted_id(), Some(C));
        assert!(PhoneNumberIdentifier::new("anonymous").is_anonymous());
        let parsed = CommunicationIdentifier::from_raw_id(built.raw_id());
        assert_eq!(parsed, built.into());
    }

    #[test]
    fn constructed_identifiers_parse_back_to_the_same_parts() {
        let built = TeamsExtensionUserIdentifier::new(C, B, A, Gcch);
        match CommunicationIdentifier::from_raw_id(built.raw_id()) {
            CommunicationIdentifier::TeamsExtensionUser(parsed) => {
                assert_eq!(
                    (
                        parsed.user_id(),
                        parsed.tenant_id(),
                        parsed.resource_id(),
                        parsed.cloud()
                    ),
                    (C, B, A, Gcch)
                );
            }
            other => panic!("expected a Teams extension user, got {other:?}"),
        }
        let built = MicrosoftTeamsAppIdentifier::new(B, Dod);
        assert_eq!(
            CommunicationIdentifier::from_raw_id(built.raw_id()),
            built.clone().into()
        );
    }

    // --- equality -----------------------------------------------------------------------------

    #[test]
    fn equality_is_kind_and_raw_id() {
        let raw = format!("8:acs:{A}_{B}");
        assert_eq!(
            parse(&raw),
            CommunicationUserIdentifier::new(raw.clone()).into()
        );
        // Same raw id, different kind: not equal.
        let unknown: CommunicationIdentifier = UnknownIdentifier::new(raw.clone()).into();
        assert_ne!(parse(&raw), unknown);
        // Different raw ids of the same kind: not equal.
        assert_ne!(
            CommunicationIdentifier::from(MicrosoftTeamsUserIdentifier::new(B, false, Public)),
            CommunicationIdentifier::from(MicrosoftTeamsUserIdentifier::new(B, false, Gcch)),
        );
        // Fields that the raw id does not encode do not matter.
        assert_eq!(
            MicrosoftTeamsUserIdentifier::new(B, true, Public),
            MicrosoftTeamsUserIdentifier::new(B, true, Dod)
        );

        let set: HashSet<CommunicationIdentifier> = [
            parse(&raw),
            CommunicationUserIdentifier::new(raw.clone()).into(),
            unknown,
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn display_and_kind_names() {
        let id = parse(&format!("28:dod:{B}"));
        assert_eq!(id.to_string(), format!("28:dod:{B}"));
        assert_eq!(id.kind().to_string(), "microsoftTeamsApp");
        assert_eq!(Gcch.as_str(), "gcch");
    }

    // --- serde --------------------------------------------------------------------------------

    #[test]
    fn serializes_the_rest_model() {
        let user = parse(&format!("8:acs:{A}_{B}"));
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            json!({
                "kind": "communicationUser",
                "rawId": format!("8:acs:{A}_{B}"),
                "communicationUser": { "id": format!("8:acs:{A}_{B}") },
            })
        );
        assert_eq!(
            serde_json::to_value(parse(&format!("4:+112345556789_{C}"))).unwrap(),
            json!({
                "kind": "phoneNumber",
                "rawId": format!("4:+112345556789_{C}"),
                "phoneNumber": {
                    "value": format!("+112345556789_{C}"),
                    "isAnonymous": false,
                    "assertedId": C,
                },
            })
        );
        assert_eq!(
            serde_json::to_value(parse(&format!("8:teamsvisitor:{B}"))).unwrap(),
            json!({
                "kind": "microsoftTeamsUser",
                "rawId": format!("8:teamsvisitor:{B}"),
                "microsoftTeamsUser": { "userId": B, "isAnonymous": true, "cloud": "public" },
            })
        );
        assert_eq!(
            serde_json::to_value(parse(&format!("28:dod:{B}"))).unwrap(),
            json!({
                "kind": "microsoftTeamsApp",
                "rawId": format!("28:dod:{B}"),
                "microsoftTeamsApp": { "appId": B, "cloud": "dod" },
            })
        );
        assert_eq!(
            serde_json::to_value(parse(&format!("8:gcch-acs:{A}_{B}_{C}"))).unwrap(),
            json!({
                "kind": "teamsExtensionUser",
                "rawId": format!("8:gcch-acs:{A}_{B}_{C}"),
                "teamsExtensionUser": {
                    "userId": C, "tenantId": B, "resourceId": A, "cloud": "gcch",
                },
            })
        );
        assert_eq!(
            serde_json::to_value(parse(&format!("48:{B}"))).unwrap(),
            json!({ "kind": "unknown", "rawId": format!("48:{B}") })
        );
    }

    #[test]
    fn serde_round_trips_keep_kind_fields_and_raw_id() {
        let identifiers: Vec<CommunicationIdentifier> = vec![
            parse(&format!("8:acs:{A}_{B}")),
            parse(&format!("8:spool:{A}")),
            parse(&format!("8:acs:{A}_{B}_{C}")),
            parse(&format!("8:dod-acs:{A}_{B}_{C}")),
            parse(&format!("8:gcch:{B}")),
            parse(&format!("8:teamsvisitor:{B}")),
            parse(&format!("28:dod:{B}")),
            parse(&format!("4:+112345556789_{C}")),
            parse("4:anonymous"),
            parse(&format!("28:{B}")),
            parse(&format!("8:gcch-acs:segment4:{A}_{B}")),
            // An unknown identifier whose raw id would parse as something else stays unknown.
            UnknownIdentifier::new(format!("8:acs:{A}_{B}")).into(),
            PhoneNumberIdentifier::new("+14255550123").into(),
        ];
        for identifier in identifiers {
            let back = round_trip_json(&identifier);
            assert_eq!(back, identifier);
            assert_eq!(back.kind(), identifier.kind());
            assert_eq!(back.raw_id(), identifier.raw_id());
            assert_eq!(format!("{back:?}"), format!("{identifier:?}"));
        }
    }

    #[test]
    fn deserializes_models_without_kind() {
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "communicationUser": { "id": format!("8:acs:{A}_{B}") }
        }))
        .unwrap();
        assert_eq!(id, parse(&format!("8:acs:{A}_{B}")));

        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("8:gcch:{B}"),
            "microsoftTeamsUser": { "userId": B, "cloud": "gcch" }
        }))
        .unwrap();
        assert_eq!(id, parse(&format!("8:gcch:{B}")));

        // Without rawId the raw id is computed from the parts; absent cloud means public.
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "microsoftTeamsUser": { "userId": B }
        }))
        .unwrap();
        assert_eq!(id.raw_id(), format!("8:orgid:{B}"));

        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "phoneNumber": { "value": "+14255550123" }
        }))
        .unwrap();
        assert_eq!(id.raw_id(), "4:+14255550123");

        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "microsoftTeamsApp": { "appId": B }
        }))
        .unwrap();
        assert_eq!(id.raw_id(), format!("28:orgid:{B}"));

        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "teamsExtensionUser": { "userId": C, "tenantId": B, "resourceId": A }
        }))
        .unwrap();
        assert_eq!(id, parse(&format!("8:acs:{A}_{B}_{C}")));
    }

    #[test]
    fn absent_optional_fields_default_from_the_raw_id() {
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("8:dod:{B}"),
            "microsoftTeamsUser": { "userId": B }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::MicrosoftTeamsUser(user) => assert_eq!(user.cloud(), Dod),
            other => panic!("expected a Teams user, got {other:?}"),
        }
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("8:teamsvisitor:{B}"),
            "microsoftTeamsUser": { "userId": B }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::MicrosoftTeamsUser(user) => assert!(user.is_anonymous()),
            other => panic!("expected a Teams user, got {other:?}"),
        }
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("28:gcch:{B}"),
            "microsoftTeamsApp": { "appId": B }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::MicrosoftTeamsApp(app) => assert_eq!(app.cloud(), Gcch),
            other => panic!("expected a Teams app, got {other:?}"),
        }
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("8:dod-acs:{A}_{B}_{C}"),
            "teamsExtensionUser": { "userId": C, "tenantId": B, "resourceId": A }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::TeamsExtensionUser(user) => assert_eq!(user.cloud(), Dod),
            other => panic!("expected a Teams extension user, got {other:?}"),
        }
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "kind": "phoneNumber",
            "rawId": "4:anonymous",
            "phoneNumber": { "value": "anonymous" }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::PhoneNumber(phone) => assert!(phone.is_anonymous()),
            other => panic!("expected a phone number, got {other:?}"),
        }
        // Explicit fields win over the raw id.
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "rawId": format!("8:dod:{B}"),
            "microsoftTeamsUser": { "userId": B, "cloud": "gcch" }
        }))
        .unwrap();
        match id {
            CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                assert_eq!(user.cloud(), Gcch);
                assert_eq!(user.raw_id(), format!("8:dod:{B}"));
            }
            other => panic!("expected a Teams user, got {other:?}"),
        }
    }

    #[test]
    fn deserializes_a_lone_raw_id_by_parsing_it() {
        for raw in [
            format!("8:acs:{A}_{B}_{C}"),
            format!("28:dod:{B}"),
            format!("4:+112345556789_{C}"),
            format!("48:{B}"),
        ] {
            let id: CommunicationIdentifier =
                serde_json::from_value(json!({ "rawId": raw })).unwrap();
            assert_eq!(id, parse(&raw));
        }
    }

    #[test]
    fn deserialized_raw_id_is_kept_verbatim() {
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "kind": "phoneNumber",
            "rawId": "4:+14255550123_custom",
            "phoneNumber": { "value": "+14255550123", "assertedId": "custom" }
        }))
        .unwrap();
        assert_eq!(id.raw_id(), "4:+14255550123_custom");
        match id {
            CommunicationIdentifier::PhoneNumber(phone) => {
                assert_eq!(phone.phone_number(), "+14255550123");
                assert_eq!(phone.asserted_id(), Some("custom"));
            }
            other => panic!("expected a phone number, got {other:?}"),
        }
    }

    #[test]
    fn unrecognized_kinds_become_unknown() {
        let id: CommunicationIdentifier = serde_json::from_value(json!({
            "kind": "microsoftTeamsRobot",
            "rawId": "99:robot:1",
            "microsoftTeamsRobot": { "robotId": "1" }
        }))
        .unwrap();
        assert_eq!(id, UnknownIdentifier::new("99:robot:1").into());
    }

    #[test]
    fn rejects_invalid_models() {
        let invalid = [
            json!({}),
            json!({ "kind": "unknown" }),
            json!({ "kind": "somethingNew" }),
            json!({ "kind": "phoneNumber", "rawId": "4:+1" }),
            json!({ "kind": "phoneNumber", "communicationUser": { "id": "8:acs:x" } }),
            json!({
                "communicationUser": { "id": "8:acs:x" },
                "phoneNumber": { "value": "+1" }
            }),
            json!({
                "kind": "communicationUser",
                "communicationUser": { "id": "8:acs:x" },
                "phoneNumber": { "value": "+1" }
            }),
            json!({ "communicationUser": {} }),
            json!({ "microsoftTeamsUser": { "userId": B, "cloud": "mooncake" } }),
            json!({ "teamsExtensionUser": { "userId": C, "tenantId": B } }),
            json!("8:acs:x"),
        ];
        for model in invalid {
            let result = serde_json::from_value::<CommunicationIdentifier>(model.clone());
            assert!(result.is_err(), "{model} should be rejected");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let err = serde_json::from_value::<CommunicationIdentifier>(json!({
            "kind": "teamsExtensionUser", "rawId": "8:acs:a_b_c"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("teamsExtensionUser"), "{err}");
    }

    // --- properties ---------------------------------------------------------------------------

    /// Strings built from the pieces the parser cares about, to reach every branch often.
    fn raw_id_like() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec![
            "",
            "4:",
            "8:acs:",
            "8:dod-acs:",
            "8:gcch-acs:",
            "8:spool:",
            "8:orgid:",
            "8:dod:",
            "8:gcch:",
            "8:teamsvisitor:",
            "28:orgid:",
            "28:dod:",
            "28:gcch:",
            "28:",
            "48:",
        ]);
        (prefix, "[a-z0-9_:+-]{0,24}").prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
    }

    proptest! {
        #[test]
        fn any_string_round_trips(s in any::<String>()) {
            let id = CommunicationIdentifier::from_raw_id(&s);
            prop_assert_eq!(id.raw_id(), s.as_str());
        }

        #[test]
        fn raw_id_like_strings_round_trip_through_raw_ids_and_json(s in raw_id_like()) {
            let id = CommunicationIdentifier::from_raw_id(&s);
            prop_assert_eq!(id.raw_id(), s.as_str());
            let back = round_trip_json(&id);
            prop_assert_eq!(back.kind(), id.kind());
            prop_assert_eq!(back.raw_id(), s.as_str());
            prop_assert_eq!(format!("{back:?}"), format!("{id:?}"));
        }

        #[test]
        fn teams_extension_parts_round_trip(
            user in "[a-z0-9-]{0,12}",
            tenant in "[a-z0-9-]{0,12}",
            resource in "[a-z0-9-]{0,12}",
            cloud in prop::sample::select(vec![Public, Dod, Gcch]),
        ) {
            let built = TeamsExtensionUserIdentifier::new(&*user, &*tenant, &*resource, cloud);
            match CommunicationIdentifier::from_raw_id(built.raw_id()) {
                CommunicationIdentifier::TeamsExtensionUser(parsed) => {
                    prop_assert_eq!(parsed.user_id(), user.as_str());
                    prop_assert_eq!(parsed.tenant_id(), tenant.as_str());
                    prop_assert_eq!(parsed.resource_id(), resource.as_str());
                    prop_assert_eq!(parsed.cloud(), cloud);
                }
                other => prop_assert!(false, "expected a Teams extension user, got {:?}", other),
            }
        }
    }
}
