//! A request the domain refuses, in the domain's words: every invalid field, each with what is
//! wrong with it, collected so the caller hears about all of them at once. HTTP answers it as
//! 422 problem+json with `errors: [{field, message}]` (`error.rs`).

use std::fmt;

use serde_json::Value;

/// One invalid field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// Every invalid field of one request, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invalid {
    pub fields: Vec<FieldProblem>,
}

impl Invalid {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut invalid = Self::default();
        invalid.push(field, message);
        invalid
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.fields.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", problem.field, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// A string field of a request body: trimmed and non-empty. Absent and `null` are the same; a
/// required field missing, an empty string and any other JSON type are problems of the field.
pub fn string(value: Option<Value>, key: &str, required: bool, invalid: &mut Invalid) -> Option<String> {
    match value {
        None | Some(Value::Null) => {
            if required {
                invalid.push(key, "is required");
            }
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::String(_)) => {
            invalid.push(key, "must not be empty");
            None
        }
        Some(_) => {
            invalid.push(key, "must be a string");
            None
        }
    }
}
