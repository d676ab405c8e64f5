//! Token scopes and lifetimes: the two inputs of every token request.

use std::fmt;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Full access to chat.
    Chat,
    /// Full access to calling.
    Voip,
    /// Join existing chats only.
    ChatJoin,
    /// Join chats, without adding or removing participants.
    ChatJoinLimited,
    /// Join existing calls only.
    VoipJoin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::Chat,
        Scope::Voip,
        Scope::ChatJoin,
        Scope::ChatJoinLimited,
        Scope::VoipJoin,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Voip => "voip",
            Scope::ChatJoin => "chat.join",
            Scope::ChatJoinLimited => "chat.join.limited",
            Scope::VoipJoin => "voip.join",
        }
    }

    /// The scope with this wire name.
    pub fn from_wire(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the scope is one of the original two, known to every api-version.
    pub fn is_basic(self) -> bool {
        matches!(self, Scope::Chat | Scope::Voip)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty list of distinct scopes, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// The scopes without duplicates; `None` when empty.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Option<Self> {
        let mut distinct = Vec::new();
        for s in scopes {
            if !distinct.contains(&s) {
                distinct.push(s);
            }
        }
        (!distinct.is_empty()).then_some(Self(distinct))
    }

    /// The scopes.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// Comma-joined, as the `acsScope` claim holds them.
    pub fn joined(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A token lifetime in minutes: within 60..=1440 as in ACS, or from a shorter configured minimum
/// (never below [`Minutes::SHORTEST`]) on a server set up to test refresh logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Minutes(u16);

impl Minutes {
    /// The shortest lifetime ACS accepts.
    pub const MIN: Minutes = Minutes(60);
    /// The shortest minimum a server can be configured with (`--min-token-lifetime`).
    pub const SHORTEST: Minutes = Minutes(1);
    /// The longest lifetime, and the default.
    pub const MAX: Minutes = Minutes(1440);

    /// The lifetime, if `value` is within bounds.
    pub fn new(value: i64) -> Option<Self> {
        u16::try_from(value)
            .ok()
            .filter(|v| (Self::MIN.0..=Self::MAX.0).contains(v))
            .map(Self)
    }

    /// The lifetime, if `value` is within `min..=MAX` (`min` itself at least
    /// [`Minutes::SHORTEST`]).
    pub fn at_least(value: i64, min: Minutes) -> Option<Self> {
        let min = min.max(Self::SHORTEST);
        u16::try_from(value)
            .ok()
            .filter(|v| (min.0..=Self::MAX.0).contains(v))
            .map(Self)
    }

    /// The number of minutes.
    pub fn get(self) -> u16 {
        self.0
    }

    /// As a duration.
    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.0))
    }
}

impl Default for Minutes {
    fn default() -> Self {
        Self::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_dedupe() {
        for s in Scope::ALL {
            assert_eq!(Scope::from_wire(s.as_str()), Some(s));
        }
        assert_eq!(Scope::from_wire("Chat"), None);
        let scopes = Scopes::new([Scope::Chat, Scope::Voip, Scope::Chat]).unwrap();
        assert_eq!(scopes.joined(), "chat,voip");
        assert!(Scopes::new([]).is_none());
    }

    #[test]
    fn minutes_bounds() {
        assert!(Minutes::new(59).is_none());
        assert_eq!(Minutes::new(60), Some(Minutes::MIN));
        assert_eq!(Minutes::new(1440), Some(Minutes::MAX));
        assert!(Minutes::new(1441).is_none());
        assert!(Minutes::new(-1).is_none());
        assert_eq!(Minutes::at_least(5, Minutes(5)), Some(Minutes(5)));
        assert!(Minutes::at_least(4, Minutes(5)).is_none());
        assert!(
            Minutes::at_least(0, Minutes(0)).is_none(),
            "never below one minute"
        );
        assert!(Minutes::at_least(1441, Minutes(5)).is_none());
        assert_eq!(Minutes::default().duration(), chrono::Duration::hours(24));
    }
}
