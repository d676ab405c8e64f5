//! What a webhook is configured with (`[[webhooks]]`, docs/webhooks.md).

use crate::audit::EventType;
use std::time::Duration;
use url::Url;

/// The shortest secret accepted: an HMAC key shorter than this is guessable.
pub const MIN_SECRET_BYTES: usize = 16;

/// The first retry's delay unless configured.
pub const DEFAULT_MIN_RETRY: Duration = Duration::from_secs(1);

/// The longest delay between retries unless configured.
pub const DEFAULT_MAX_RETRY: Duration = Duration::from_secs(300);

/// A webhook's signing secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The secret, if it is long enough.
    pub fn new(secret: String) -> Result<Self, WebhookConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WebhookConfigError::ShortSecret);
        }
        Ok(Self(secret))
    }

    /// The HMAC key: the secret's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Which events a webhook receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// Every event stored.
    All,
    /// Only these types.
    Only(Vec<EventType>),
}

impl EventFilter {
    /// `types` as configured: none listed means all.
    pub fn of(types: Vec<EventType>) -> Self {
        if types.is_empty() {
            Self::All
        } else {
            Self::Only(types)
        }
    }

    /// Whether an event of `event_type` is delivered.
    pub fn matches(&self, event_type: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(&event_type),
        }
    }
}

/// One configured webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The URL each event is POSTed to: `http` or `https`; redirects are not followed.
    pub url: Url,
    /// The key of the signatures.
    pub secret: WebhookSecret,
    /// What it receives.
    pub events: EventFilter,
    /// The delay before the first retry of a failed delivery; each next one doubles, jittered.
    pub min_retry: Duration,
    /// The longest delay between retries: a receiver down for hours is tried this often.
    pub max_retry: Duration,
}

impl WebhookConfig {
    /// A webhook for `url` signed with `secret`, receiving `events` (none: all), with the default
    /// retry delays.
    pub fn new(
        url: &str,
        secret: WebhookSecret,
        events: Vec<EventType>,
    ) -> Result<Self, WebhookConfigError> {
        let url = Url::parse(url).map_err(|e| WebhookConfigError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(WebhookConfigError::Url {
                url: url.to_string(),
                reason: "only http and https URLs with a host are delivered to".into(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookConfigError::Url {
                url: url.to_string(),
                reason: "a user name or password in the URL would be sent with every event; \
                         the signature authenticates deliveries"
                    .into(),
            });
        }
        Ok(Self {
            url,
            secret,
            events: EventFilter::of(events),
            min_retry: DEFAULT_MIN_RETRY,
            max_retry: DEFAULT_MAX_RETRY,
        })
    }

    /// The name its progress is stored under: its URL, so that a webhook moved to another URL
    /// starts afresh and one whose events or secret changed carries on.
    pub fn key(&self) -> &str {
        self.url.as_str()
    }
}

/// A webhook's configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    /// The URL cannot be delivered to.
    #[error("the webhook URL {url}: {reason}")]
    Url {
        /// As configured.
        url: String,
        /// Why.
        reason: String,
    },
    /// The secret is too short to be a key.
    #[error("a webhook secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
    /// Two webhooks have the same URL (their progress would be one).
    #[error("two webhooks have the URL {0}")]
    Duplicate(String),
    /// A retry delay is zero, or the shortest is longer than the longest.
    #[error("webhook retry delays must be positive, the shortest no longer than the longest")]
    RetryDelays,
}

/// Checks a whole `[[webhooks]]` list: each URL once, sensible delays.
pub fn check_all(webhooks: &[WebhookConfig]) -> Result<(), WebhookConfigError> {
    for (i, webhook) in webhooks.iter().enumerate() {
        if webhook.min_retry.is_zero() || webhook.min_retry > webhook.max_retry {
            return Err(WebhookConfigError::RetryDelays);
        }
        if webhooks[..i].iter().any(|w| w.url == webhook.url) {
            return Err(WebhookConfigError::Duplicate(webhook.url.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("0123456789abcdef".into()).unwrap()
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(WebhookConfig::new("http://127.0.0.1:9/hook", secret(), vec![]).is_ok());
        assert!(WebhookConfig::new("https://hooks.example/x", secret(), vec![]).is_ok());
        for bad in [
            "ftp://hooks.example/",
            "file:///etc/passwd",
            "not a url",
            "https://user:pw@hooks.example/",
        ] {
            assert!(WebhookConfig::new(bad, secret(), vec![]).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(matches!(
            WebhookSecret::new("short".into()),
            Err(WebhookConfigError::ShortSecret)
        ));
        assert!(!format!("{:?}", secret()).contains("0123"));
    }

    #[test]
    fn no_types_means_every_event() {
        assert!(EventFilter::of(vec![]).matches(EventType::DataReset));
        let only = EventFilter::of(vec![EventType::IdentityTokensRevoked]);
        assert!(only.matches(EventType::IdentityTokensRevoked));
        assert!(!only.matches(EventType::IdentityCreated));
    }

    #[test]
    fn a_url_is_configured_once() {
        let hook = WebhookConfig::new("http://127.0.0.1:9/", secret(), vec![]).unwrap();
        assert!(check_all(std::slice::from_ref(&hook)).is_ok());
        assert!(matches!(
            check_all(&[hook.clone(), hook.clone()]),
            Err(WebhookConfigError::Duplicate(_))
        ));
        let mut slow = hook;
        slow.min_retry = Duration::from_secs(600);
        assert!(matches!(
            check_all(&[slow]),
            Err(WebhookConfigError::RetryDelays)
        ));
    }
}
