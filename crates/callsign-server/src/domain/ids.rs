//! Resource and identity ids.

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

const PREFIXES: [&str; 3] = ["8:acs:", "8:dod-acs:", "8:gcch-acs:"];

impl IdentityId {
    /// A new random identity of `resource`.
    pub fn generate(resource: ResourceId) -> Self {
        Self(format!("8:acs:{resource}_{}", Uuid::new_v4().hyphenated()))
    }

    /// Reads an id from a request and checks that it belongs to `resource`.
    pub fn parse(raw: &str, resource: ResourceId) -> Result<Self, IdentityIdError> {
        let (prefix, rest) = PREFIXES
            .iter()
            .find_map(|p| raw.strip_prefix(p).map(|rest| (*p, rest)))
            .ok_or(IdentityIdError::Malformed)?;
        let (owner, suffix) = rest.split_once('_').ok_or(IdentityIdError::Malformed)?;
        let owner: ResourceId = owner.parse().map_err(|_| IdentityIdError::Malformed)?;
        if !is_guid_shaped(suffix) {
            return Err(IdentityIdError::Malformed);
        }
        if prefix != "8:acs:" || owner != resource {
            return Err(IdentityIdError::NotOwned);
        }
        Ok(Self(format!(
            "8:acs:{owner}_{}",
            suffix.to_ascii_lowercase()
        )))
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

/// 8-4-4-4-12 hex digits, the shape of every ACS user suffix.
/// Whether `s` is a GUID in its 8-4-4-4-12 hex form.
pub(crate) fn is_guid_shaped(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
