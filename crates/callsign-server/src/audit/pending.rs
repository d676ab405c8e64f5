//! The events a change is stored with: drafted by the HTTP layer, which knows who asked and from
//! where; completed by the domain, which alone knows a new identity's id; appended by the store in
//! the change's own transaction, so that a change is never durable without its event, nor an
//! event without its change (docs/protocol.md §9).

use super::{AuditEvent, EventType};
use crate::store::AuditRecord;

/// Drafted events for one change; empty when nothing is recorded (admin tools, tests).
#[derive(Debug, Clone, Default)]
pub struct PendingEvents(Vec<AuditEvent>);

impl PendingEvents {
    /// No events: the change is stored alone.
    pub fn none() -> Self {
        Self::default()
    }

    /// The drafted `events`, in the order they are to be stored.
    pub fn new(events: Vec<AuditEvent>) -> Self {
        Self(events)
    }

    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The events as stored, about `subject` where a draft names none yet (a created identity's
    /// id). `token.issued` drafts are kept only when `token_issued`: a create issues a token
    /// only when asked to.
    pub fn records(&self, subject: &str, token_issued: bool) -> Vec<AuditRecord> {
        self.0
            .iter()
            .filter(|event| token_issued || event.event_type != EventType::TokenIssued)
            .map(|event| {
                let mut event = event.clone();
                event.subject.get_or_insert_with(|| subject.to_owned());
                event.to_record()
            })
            .collect()
    }

    /// The events as stored, as drafted.
    pub fn as_drafted(&self) -> Vec<AuditRecord> {
        self.0.iter().map(AuditEvent::to_record).collect()
    }
}
