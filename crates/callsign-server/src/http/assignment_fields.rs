//! What the Teams extension and Entra assignment routes read alike: GUIDs in the path and the
//! body, the principal type, the client ids. Each refusal is the service's `ValidationError`.

use super::body::{strings, Field, JsonBody};
use super::error::ApiError;
use crate::domain::ids::{Guid, PrincipalType};

/// `value` as a GUID, or `Provided <field> has invalid format.`
pub fn guid(value: &str, field: &str) -> Result<Guid, ApiError> {
    Guid::parse(value)
        .ok_or_else(|| ApiError::validation(format!("Provided {field} has invalid format."), field))
}

/// The body's `principalType`, one of `allowed` (in any case); missing is `PrincipalType`
/// required.
pub fn principal_type(
    body: &JsonBody,
    allowed: &[PrincipalType],
) -> Result<PrincipalType, ApiError> {
    let text = body
        .string("principalType")?
        .ok_or_else(|| ApiError::required("PrincipalType"))?;
    let principal_type = PrincipalType::parse(text);
    if allowed.contains(&principal_type) {
        Ok(principal_type)
    } else {
        Err(ApiError::validation(
            format!("Principal type '{text}' is not supported."),
            "principalType",
        ))
    }
}

/// The body's `clientIds`: `None` when absent or null, else every one a GUID (kept in canonical
/// form).
pub fn client_ids(body: &JsonBody) -> Result<Option<Vec<String>>, ApiError> {
    match body.string_array("clientIds")? {
        Field::Absent | Field::Null => Ok(None),
        Field::Value(v) => strings(v)
            .map(|id| {
                Guid::parse(id).map(Guid::into_string).ok_or_else(|| {
                    ApiError::validation(
                        format!(
                            "Client id '{}' has invalid format.",
                            id.to_ascii_lowercase()
                        ),
                        "clientIds",
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Some),
    }
}
