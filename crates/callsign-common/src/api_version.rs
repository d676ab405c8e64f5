//! The ACS Identity api-versions and what each one has — one table for the server and the clients.

use std::fmt;
use std::str::FromStr;

/// An ACS Identity api-version that callsign speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// 2021-03-07, the first stable version.
    V2021_03_07,
    /// 2022-06-01: Teams user exchange with appId/userId.
    V2022_06_01,
    /// 2022-10-01: `expiresInMinutes`.
    V2022_10_01,
    /// 2023-10-01: join scopes; the official clients' default.
    #[default]
    V2023_10_01,
    /// 2025-06-30: Teams extension.
    V2025_06_30,
    /// 2025-03-02-preview: customId, GET identity, Entra exchange.
    V2025_03_02Preview,
}

/// A string that is not one of the api-versions callsign speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown api-version '{0}'")]
pub struct UnknownApiVersion(pub String);

impl ApiVersion {
    /// Every version, oldest first (the preview last, as the service lists it).
    pub const ALL: [ApiVersion; 6] = [
        ApiVersion::V2021_03_07,
        ApiVersion::V2022_06_01,
        ApiVersion::V2022_10_01,
        ApiVersion::V2023_10_01,
        ApiVersion::V2025_06_30,
        ApiVersion::V2025_03_02Preview,
    ];

    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2021_03_07 => "2021-03-07",
            ApiVersion::V2022_06_01 => "2022-06-01",
            ApiVersion::V2022_10_01 => "2022-10-01",
            ApiVersion::V2023_10_01 => "2023-10-01",
            ApiVersion::V2025_06_30 => "2025-06-30",
            ApiVersion::V2025_03_02Preview => "2025-03-02-preview",
        }
    }

    /// Whether `expiresInMinutes` exists (2022-10-01 and later).
    pub fn has_token_lifetime(self) -> bool {
        !matches!(self, ApiVersion::V2021_03_07 | ApiVersion::V2022_06_01)
    }

    /// Whether the join scopes exist (2023-10-01 and later).
    pub fn has_join_scopes(self) -> bool {
        self.has_token_lifetime() && self != ApiVersion::V2022_10_01
    }

    /// Whether the Entra exchange and Entra assignments exist (the preview).
    pub fn has_entra(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }

    /// Whether identities have `customId` and can be read (the preview).
    pub fn has_custom_ids(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }

    /// Whether the Teams user exchange takes `appId` and `userId` (2022-06-01 and later).
    pub fn has_teams_user_exchange(self) -> bool {
        self != ApiVersion::V2021_03_07
    }

    /// Whether the Teams extension exchange and assignments exist (2025-06-30 and the preview).
    pub fn has_teams_extension(self) -> bool {
        matches!(
            self,
            ApiVersion::V2025_06_30 | ApiVersion::V2025_03_02Preview
        )
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = UnknownApiVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownApiVersion(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiVersion::*;

    #[test]
    fn parses_every_version_and_nothing_else() {
        for v in ApiVersion::ALL {
            assert_eq!(v.as_str().parse::<ApiVersion>(), Ok(v));
        }
        assert!("2020-07-20-preview2".parse::<ApiVersion>().is_err());
        assert_eq!(ApiVersion::default(), V2023_10_01);
    }

    #[test]
    fn features_by_version() {
        let with = |f: fn(ApiVersion) -> bool| -> Vec<ApiVersion> {
            ApiVersion::ALL.into_iter().filter(|v| f(*v)).collect()
        };
        assert_eq!(
            with(ApiVersion::has_token_lifetime),
            [V2022_10_01, V2023_10_01, V2025_06_30, V2025_03_02Preview]
        );
        assert_eq!(
            with(ApiVersion::has_join_scopes),
            [V2023_10_01, V2025_06_30, V2025_03_02Preview]
        );
        assert_eq!(with(ApiVersion::has_custom_ids), [V2025_03_02Preview]);
        assert_eq!(
            with(ApiVersion::has_teams_extension),
            [V2025_06_30, V2025_03_02Preview]
        );
        assert!(!V2021_03_07.has_teams_user_exchange() && V2022_06_01.has_teams_user_exchange());
    }
}
