//! The ACS Identity api-versions and what each one has — one table for the server and the clients.

use std::fmt;
use std::str::FromStr;

/// An ACS Identity api-version that callsign serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// 2020-07-20-preview2, the early preview with its own shapes: create answers 200 with a flat
    /// `{"id"}`, tokens come from `POST /identities/{id}/token`.
    V2020_07_20Preview2,
    /// 2021-03-07, the first stable version.
    V2021_03_07,
    /// 2021-03-31-preview1: the identity operations of 2021-03-07 and a Teams user exchange that
    /// takes the token alone.
    V2021_03_31Preview1,
    /// 2021-10-31-preview: as 2021-03-31-preview1.
    V2021_10_31Preview,
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

/// A string that is not one of the api-versions callsign serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown api-version '{0}'")]
pub struct UnknownApiVersion(pub String);

impl ApiVersion {
    /// Every version callsign serves, oldest first (the 2025 preview last, as the service lists
    /// it).
    pub const ALL: [ApiVersion; 9] = [
        ApiVersion::V2020_07_20Preview2,
        ApiVersion::V2021_03_07,
        ApiVersion::V2021_03_31Preview1,
        ApiVersion::V2021_10_31Preview,
        ApiVersion::V2022_06_01,
        ApiVersion::V2022_10_01,
        ApiVersion::V2023_10_01,
        ApiVersion::V2025_06_30,
        ApiVersion::V2025_03_02Preview,
    ];

    /// The versions of today's shapes (2021-03-07 on, without the early previews): those of the
    /// official clients and of callsign's own.
    pub const CURRENT: [ApiVersion; 6] = [
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
            ApiVersion::V2020_07_20Preview2 => "2020-07-20-preview2",
            ApiVersion::V2021_03_07 => "2021-03-07",
            ApiVersion::V2021_03_31Preview1 => "2021-03-31-preview1",
            ApiVersion::V2021_10_31Preview => "2021-10-31-preview",
            ApiVersion::V2022_06_01 => "2022-06-01",
            ApiVersion::V2022_10_01 => "2022-10-01",
            ApiVersion::V2023_10_01 => "2023-10-01",
            ApiVersion::V2025_06_30 => "2025-06-30",
            ApiVersion::V2025_03_02Preview => "2025-03-02-preview",
        }
    }

    /// Whether this is one of the early previews (2020-07-20-preview2, 2021-03-31-preview1,
    /// 2021-10-31-preview), served for the older SDK releases that still send them.
    pub fn is_early_preview(self) -> bool {
        !Self::CURRENT.contains(&self)
    }

    /// Whether the version has the 2020 shapes: create answers 200 `{"id"}`, tokens are issued by
    /// `POST /identities/{id}/token`, and there are no `:issueAccessToken` and
    /// `:revokeAccessTokens` actions (2020-07-20-preview2).
    pub fn has_legacy_shapes(self) -> bool {
        self == ApiVersion::V2020_07_20Preview2
    }

    /// Whether `expiresInMinutes` exists (2022-10-01 and later).
    pub fn has_token_lifetime(self) -> bool {
        matches!(
            self,
            ApiVersion::V2022_10_01
                | ApiVersion::V2023_10_01
                | ApiVersion::V2025_06_30
                | ApiVersion::V2025_03_02Preview
        )
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

    /// Whether the Teams user exchange exists (2021-03-31-preview1 and later; it takes the token
    /// alone before 2022-06-01, see [`ApiVersion::has_teams_user_ids`]).
    pub fn has_teams_user_exchange(self) -> bool {
        !matches!(
            self,
            ApiVersion::V2020_07_20Preview2 | ApiVersion::V2021_03_07
        )
    }

    /// Whether the Teams user exchange takes `appId` and `userId` and checks them against the
    /// token (2022-06-01 and later).
    pub fn has_teams_user_ids(self) -> bool {
        self.has_teams_user_exchange()
            && !matches!(
                self,
                ApiVersion::V2021_03_31Preview1 | ApiVersion::V2021_10_31Preview
            )
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
        for unknown in [
            "2021-02-22-preview1",
            "2021-11-01",
            "2020-07-20-preview1",
            "2023-10-1",
        ] {
            assert!(unknown.parse::<ApiVersion>().is_err(), "{unknown}");
        }
        assert_eq!(ApiVersion::default(), V2023_10_01);
    }

    #[test]
    fn features_by_version() {
        let with = |f: fn(ApiVersion) -> bool| -> Vec<ApiVersion> {
            ApiVersion::ALL.into_iter().filter(|v| f(*v)).collect()
        };
        assert_eq!(
            with(ApiVersion::is_early_preview),
            [V2020_07_20Preview2, V2021_03_31Preview1, V2021_10_31Preview]
        );
        assert_eq!(with(ApiVersion::has_legacy_shapes), [V2020_07_20Preview2]);
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
        assert_eq!(
            with(ApiVersion::has_teams_user_exchange),
            [
                V2021_03_31Preview1,
                V2021_10_31Preview,
                V2022_06_01,
                V2022_10_01,
                V2023_10_01,
                V2025_06_30,
                V2025_03_02Preview
            ]
        );
        assert_eq!(
            with(ApiVersion::has_teams_user_ids),
            [
                V2022_06_01,
                V2022_10_01,
                V2023_10_01,
                V2025_06_30,
                V2025_03_02Preview
            ]
        );
    }
}
