//! The export file: a deployment's data (and, on request, its keys) as JSON Lines, one record a
//! line, for `callsign export`, `callsign import` and `serve --seed`. The format is documented
//! in `docs/export.md`; its first line names the format version and the resource.

use crate::domain::ResourceId;
use crate::keys::{AccessKeys, SigningKeyPem, TransferredKeys};
use crate::store::assignments::PrincipalType;
use crate::store::{EntraAssignment, IdentityRecord, Snapshot, TeamsExtensionAssignment};
use callsign_common::AccessKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The format version this build writes and reads.
pub const FORMAT: u32 = 1;

/// A whole export: the resource, its data and, when included, its keys.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// The resource the identities belong to.
    pub resource_id: ResourceId,
    /// Access and signing keys (`--include-keys`): with them, issued tokens stay valid and
    /// clients keep their connection string.
    pub keys: Option<TransferredKeys>,
    /// Identities and assignments.
    pub data: Snapshot,
}

/// Why an export file could not be read. Messages name the line, never key material.
#[derive(Debug, thiserror::Error)]
pub enum ExportFileError {
    /// Reading failed.
    #[error("reading line {line}")]
    Io {
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a record of this format.
    #[error("line {line}: {reason}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One line of the file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Line {
    #[serde(rename_all = "camelCase")]
    Resource {
        format: u32,
        resource_id: String,
        /// RFC 3339; informational.
        exported_at: String,
    },
    AccessKeys {
        primary: String,
        secondary: String,
    },
    #[serde(rename_all = "camelCase")]
    SigningKey {
        kid: String,
        private_key: String,
        certificate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retired_at_us: Option<i64>,
    },
    #[serde(rename_all = "camelCase")]
    Identity {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_id: Option<String>,
        created_at_us: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_token_issued_at_us: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revoked_before_us: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted_at_us: Option<i64>,
    },
    #[serde(rename_all = "camelCase")]
    TeamsExtensionAssignment {
        tenant_id: String,
        object_id: String,
        principal_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ids: Option<Vec<String>>,
    },
    #[serde(rename_all = "camelCase")]
    EntraAssignment {
        object_id: String,
        tenant_id: String,
        principal_type: String,
        client_ids: Vec<String>,
    },
}

impl ExportFile {
    /// Writes the file, one JSON object a line.
    pub fn write(&self, out: &mut impl Write, now: DateTime<Utc>) -> std::io::Result<()> {
        let mut line = |line: Line| {
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")
        };
        line(Line::Resource {
            format: FORMAT,
            resource_id: self.resource_id.to_string(),
            exported_at: now.to_rfc3339(),
        })?;
        if let Some(keys) = &self.keys {
            for line_of_keys in key_lines(keys) {
                line(line_of_keys)?;
            }
        }
        for r in &self.data.identities {
            line(Line::Identity {
                id: r.id.clone(),
                custom_id: r.custom_id.clone(),
                created_at_us: r.created_at_us,
                last_token_issued_at_us: r.last_token_issued_at_us,
                revoked_before_us: r.revoked_before_us,
                deleted_at_us: r.deleted_at_us,
            })?;
        }
        for a in &self.data.teams_extension {
            line(Line::TeamsExtensionAssignment {
                tenant_id: a.tenant_id.clone(),
                object_id: a.object_id.clone(),
                principal_type: a.principal_type.as_str().to_owned(),
                client_ids: a.client_ids.clone(),
            })?;
        }
        for a in &self.data.entra {
            line(Line::EntraAssignment {
                object_id: a.object_id.clone(),
                tenant_id: a.tenant_id.clone(),
                principal_type: a.principal_type.as_str().to_owned(),
                client_ids: a.client_ids.clone(),
            })?;
        }
        out.flush()
    }

    /// Reads a file written by [`ExportFile::write`] (blank lines are skipped).
    pub fn read(input: impl BufRead) -> Result<Self, ExportFileError> {
        let mut reader = Reader::default();
        for (i, text) in input.lines().enumerate() {
            let line = i + 1;
            let text = text.map_err(|source| ExportFileError::Io { line, source })?;
            if text.trim().is_empty() {
                continue;
            }
            let record: Line = serde_json::from_str(&text).map_err(|e| invalid(line, e))?;
            reader
                .take(record)
                .map_err(|reason| ExportFileError::Invalid { line, reason })?;
        }
        reader.finish()
    }
}

fn invalid(line: usize, e: serde_json::Error) -> ExportFileError {
    // serde_json's messages name fields and types, never values.
    ExportFileError::Invalid {
        line,
        reason: format!("not a record of this format ({})", e.classify_name()),
    }
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            serde_json::error::Category::Data => "an unknown type or a missing or mistyped field",
        }
    }
}

fn key_lines(keys: &TransferredKeys) -> Vec<Line> {
    let signing = |pem: &SigningKeyPem, retired_at: Option<DateTime<Utc>>| {
        let kid = crate::keys::SigningKey::from_pem(pem)
            .map(|k| k.kid().to_owned())
            .unwrap_or_default();
        Line::SigningKey {
            kid,
            private_key: pem.private_key.clone(),
            certificate: pem.certificate.clone(),
            retired_at_us: retired_at.map(|at| at.timestamp_micros()),
        }
    };
    let mut lines = vec![
        Line::AccessKeys {
            primary: keys.access.primary.to_base64(),
            secondary: keys.access.secondary.to_base64(),
        },
        signing(&keys.current, None),
    ];
    lines.extend(keys.retired.iter().map(|(pem, at)| signing(pem, Some(*at))));
    lines
}

/// What has been read so far.
#[derive(Default)]
struct Reader {
    resource_id: Option<ResourceId>,
    access: Option<AccessKeys>,
    current: Option<SigningKeyPem>,
    retired: Vec<(SigningKeyPem, DateTime<Utc>)>,
    data: Snapshot,
}

impl Reader {
    fn take(&mut self, record: Line) -> Result<(), String> {
        let first = self.resource_id.is_none();
        match record {
            Line::Resource {
                format,
                resource_id,
                ..
            } if first => {
                if format != FORMAT {
                    return Err(format!(
                        "format {format}; this callsign reads format {FORMAT}"
                    ));
                }
                let id = resource_id.parse().map_err(|_| "a malformed resource id")?;
                self.resource_id = Some(id);
            }
            _ if first => return Err("the first record must be the resource".into()),
            Line::Resource { .. } => return Err("a second resource record".into()),
            Line::AccessKeys { primary, secondary } => {
                let key = |k: &str| AccessKey::from_base64(k).map_err(|_| "a malformed access key");
                self.access = Some(AccessKeys {
                    primary: key(&primary)?,
                    secondary: key(&secondary)?,
                });
            }
            Line::SigningKey {
                private_key,
                certificate,
                retired_at_us,
                ..
            } => {
                let retired_at = match retired_at_us {
                    Some(us) => {
                        Some(DateTime::from_timestamp_micros(us).ok_or("a malformed retiredAtUs")?)
                    }
                    None => None,
                };
                let pem = SigningKeyPem {
                    private_key,
                    certificate,
                };
                crate::keys::SigningKey::from_pem(&pem).map_err(|_| "an unreadable signing key")?;
                match retired_at {
                    Some(at) => self.retired.push((pem, at)),
                    None if self.current.is_some() => {
                        return Err("a second current signing key".into())
                    }
                    None => self.current = Some(pem),
                }
            }
            Line::Identity {
                id,
                custom_id,
                created_at_us,
                last_token_issued_at_us,
                revoked_before_us,
                deleted_at_us,
            } => self.data.identities.push(IdentityRecord {
                id,
                custom_id,
                created_at_us,
                last_token_issued_at_us,
                revoked_before_us,
                deleted_at_us,
            }),
            Line::TeamsExtensionAssignment {
                tenant_id,
                object_id,
                principal_type,
                client_ids,
            } => self.data.teams_extension.push(TeamsExtensionAssignment {
                tenant_id,
                object_id,
                principal_type: PrincipalType::parse(&principal_type),
                client_ids,
            }),
            Line::EntraAssignment {
                object_id,
                tenant_id,
                principal_type,
                client_ids,
            } => self.data.entra.push(EntraAssignment {
                object_id,
                tenant_id,
                principal_type: PrincipalType::parse(&principal_type),
                client_ids,
            }),
        }
        Ok(())
    }

    fn finish(self) -> Result<ExportFile, ExportFileError> {
        let invalid = |reason: &str| ExportFileError::Invalid {
            line: 0,
            reason: reason.to_owned(),
        };
        let resource_id = self
            .resource_id
            .ok_or_else(|| invalid("the file is empty"))?;
        let keys = match (self.access, self.current) {
            (Some(access), Some(current)) => Some(TransferredKeys {
                access,
                current,
                retired: self.retired,
            }),
            (None, None) if self.retired.is_empty() => None,
            _ => return Err(invalid(
                "keys are incomplete: an accessKeys record and a current signingKey go together",
            )),
        };
        Ok(ExportFile {
            resource_id,
            keys,
            data: self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::access::random_key;
    use crate::keys::SigningKey;

    fn sample(with_keys: bool) -> ExportFile {
        let (current, _) = SigningKey::generate_with(crate::keys::SigningAlg::EdDsa).unwrap();
        ExportFile {
            resource_id: ResourceId::random(),
            keys: with_keys.then(|| TransferredKeys {
                access: AccessKeys {
                    primary: random_key(),
                    secondary: random_key(),
                },
                current: current.pem().clone(),
                retired: Vec::new(),
            }),
            data: Snapshot {
                identities: vec![IdentityRecord {
                    revoked_before_us: Some(7),
                    ..IdentityRecord::new("8:acs:x_y".into(), Some("zoe".into()), 5)
                }],
                teams_extension: vec![],
                entra: vec![EntraAssignment {
                    object_id: "o".into(),
                    tenant_id: "t".into(),
                    principal_type: PrincipalType::Tenant,
                    client_ids: vec!["c".into()],
                }],
            },
        }
    }

    fn round_trip(file: &ExportFile) -> (String, ExportFile) {
        let mut out = Vec::new();
        file.write(&mut out, Utc::now()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let back = ExportFile::read(text.as_bytes()).unwrap();
        (text, back)
    }

    #[test]
    fn files_round_trip_with_and_without_keys() {
        for with_keys in [false, true] {
            let file = sample(with_keys);
            let (text, back) = round_trip(&file);
            assert_eq!(back.resource_id, file.resource_id);
            assert_eq!(back.data, file.data);
            assert_eq!(back.keys.is_some(), with_keys);
            assert_eq!(text.contains("PRIVATE KEY"), with_keys, "{text}");
            assert!(text.starts_with("{\"type\":\"resource\",\"format\":1,"));
        }
    }

    #[test]
    fn bad_files_name_the_line_and_no_secret() {
        let (text, _) = round_trip(&sample(true));
        let mut lines: Vec<&str> = text.lines().collect();
        let secret = lines[1].to_owned();
        lines[1] = r#"{"type":"accessKeys","primary":"%%%","secondary":"x"}"#;
        let err = ExportFile::read(lines.join("\n").as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "line 2: a malformed access key");
        assert!(!err.to_string().contains(&secret));
        for (bad, expected) in [
            ("", "line 0: the file is empty"),
            (
                r#"{"type":"identity","id":"x","createdAtUs":1}"#,
                "line 1: the first record must be the resource",
            ),
            ("{", "line 1: not a record of this format (not valid JSON)"),
            (
                r#"{"type":"resource","format":2,"resourceId":"x","exportedAt":"2026-01-01T00:00:00Z"}"#,
                "line 1: format 2; this callsign reads format 1",
            ),
        ] {
            let err = ExportFile::read(bad.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
    }
}
