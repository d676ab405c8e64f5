//! Reading request bodies the way the service does: unknown fields ignored, each known field
//! checked for its type with an error naming it.

use super::error::ApiError;
use serde_json::{Map, Value};

/// A parsed JSON object body. An empty body counts as `{}` (the JS client sends none on create).
pub struct JsonBody(Map<String, Value>);

/// The state of one field.
#[derive(Debug)]
pub enum Field<'a> {
    /// Not in the body.
    Absent,
    /// Present as `null`.
    Null,
    /// Present with a value.
    Value(&'a Value),
}

/// Shows only the field names: bodies can hold tokens.
impl std::fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl JsonBody {
    /// Parses `bytes` as a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::invalid_body(
                "The request body must be a JSON object.",
            )),
            Err(_) => Err(ApiError::invalid_body(
                "The request body is not valid JSON.",
            )),
        }
    }

    /// Every field, in the body's order (merge-patch bodies are keyed by id).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// The object `value` as a body, or `None` when it is not an object.
    pub fn from_value(value: &Value) -> Option<Self> {
        value.as_object().cloned().map(Self)
    }

    /// The field `name`.
    pub fn field(&self, name: &str) -> Field<'_> {
        match self.0.get(name) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(v) => Field::Value(v),
        }
    }

    /// The field as an array of strings, if present; wrong types are errors.
    pub fn string_array(&self, name: &str) -> Result<Field<'_>, ApiError> {
        let field = self.field(name);
        if let Field::Value(v) = field {
            let ok = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(wrong_type(name, "an array of strings"));
            }
        }
        Ok(field)
    }

    /// The field as an integer, if present and not null; wrong types are errors.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.field(name) {
            Field::Absent | Field::Null => Ok(None),
            Field::Value(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "an integer")),
        }
    }

    /// The field as a string, if present and not null; wrong types are errors.
    pub fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.field(name) {
            Field::Absent | Field::Null => Ok(None),
            Field::Value(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "a string")),
        }
    }
}

fn wrong_type(name: &str, expected: &str) -> ApiError {
    ApiError::validation(format!("The field '{name}' must be {expected}."), name)
}

/// The strings of an array field (call after [`JsonBody::string_array`] accepted it).
pub fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_are_empty_objects() {
        assert!(matches!(
            JsonBody::parse(b"").unwrap().field("x"),
            Field::Absent
        ));
        assert!(matches!(
            JsonBody::parse(b"  ").unwrap().field("x"),
            Field::Absent
        ));
    }

    #[test]
    fn bad_bodies_and_types_name_the_problem() {
        assert_eq!(JsonBody::parse(b"{").unwrap_err().code, "ValidationError");
        assert_eq!(JsonBody::parse(b"[]").unwrap_err().code, "ValidationError");
        let body = JsonBody::parse(br#"{"a":"x","b":1.5,"c":[1],"d":null}"#).unwrap();
        assert_eq!(body.integer("a").unwrap_err().target.as_deref(), Some("a"));
        assert_eq!(body.integer("b").unwrap_err().target.as_deref(), Some("b"));
        assert_eq!(
            body.string_array("c").unwrap_err().target.as_deref(),
            Some("c")
        );
        assert!(matches!(body.string_array("d").unwrap(), Field::Null));
        assert_eq!(body.string("a").unwrap(), Some("x"));
        assert_eq!(body.integer("d").unwrap(), None);
    }
}
