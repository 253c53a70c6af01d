//! Reading a Sila request: the raw body (kept byte for byte, since signatures
//! cover it), the JSON object, and the `header` every request carries.

use actix_web::{web, HttpRequest};
use serde_json::{Map, Value};

use super::errors::SilaApiError;
use crate::api::context::read_json_bytes_untyped_ok;
use crate::domain::Handle;

pub struct Envelope {
    pub bytes: web::Bytes,
    pub body: Map<String, Value>,
    /// Echoed in every answer, errors included, once it could be read.
    pub reference: Option<String>,
}

pub struct Header {
    pub created: i64,
    pub app: Handle,
    pub user: Option<Handle>,
}

/// Reads the body; on failure also returns whatever reference could be read.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Envelope, (Option<String>, SilaApiError)> {
    // Sila's Python SDK sends no Content-Type; the body must still be JSON.
    let bytes = read_json_bytes_untyped_ok(req, payload, limit)
        .await
        .map_err(|e| (None, SilaApiError::from(e)))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        (
            None,
            SilaApiError::new(
                400,
                format!("Bad request format: body is not valid JSON: {e}"),
            ),
        )
    })?;
    let Value::Object(body) = value else {
        return Err((
            None,
            SilaApiError::new(400, "Bad request format: body must be a JSON object"),
        ));
    };
    let reference = body
        .get("header")
        .and_then(|h| h.get("reference"))
        .and_then(|r| r.as_str())
        .filter(|r| r.chars().count() <= MAX_REFERENCE)
        .map(str::to_owned);
    Ok(Envelope {
        bytes,
        body,
        reference,
    })
}

const MAX_REFERENCE: usize = 128;

impl Envelope {
    /// Validates `header`. `needs_user`: whether `user_handle` is required.
    /// `now` and `window` bound `created` (epoch seconds).
    pub fn header(&self, needs_user: bool, now: i64, window: u64) -> Result<Header, SilaApiError> {
        let header = match self.body.get("header") {
            Some(Value::Object(h)) => h,
            Some(_) => return Err(SilaApiError::field("header", "must be an object")),
            None => return Err(SilaApiError::field("header", "is required")),
        };
        let app = match header
            .get("app_handle")
            .or_else(|| header.get("auth_handle"))
        {
            None | Some(Value::Null) => {
                return Err(SilaApiError::new(401, "header.app_handle is required"))
            }
            Some(Value::String(s)) => Handle::parse(s)
                .map_err(|e| SilaApiError::field("header.app_handle", e.to_string()))?,
            Some(_) => return Err(SilaApiError::field("header.app_handle", "must be a string")),
        };
        let user = match header.get("user_handle") {
            None | Some(Value::Null) if needs_user => {
                return Err(SilaApiError::new(401, "header.user_handle is required"))
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                Handle::parse(s)
                    .map_err(|e| SilaApiError::field("header.user_handle", e.to_string()))?,
            ),
            Some(_) => {
                return Err(SilaApiError::field(
                    "header.user_handle",
                    "must be a string",
                ))
            }
        };
        let created = match header.get("created") {
            None | Some(Value::Null) => {
                return Err(SilaApiError::field("header.created", "is required"))
            }
            Some(v) => v.as_i64().ok_or_else(|| {
                SilaApiError::field("header.created", "must be an integer (epoch seconds)")
            })?,
        };
        if created.abs_diff(now) > window {
            return Err(SilaApiError::field(
                "header.created",
                format!("must be within {window} seconds of the server time ({now})"),
            ));
        }
        match header.get("version") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == "0.2" || v == "v0.2" => {}
            Some(_) => return Err(SilaApiError::field("header.version", "must be \"0.2\"")),
        }
        match header.get("crypto") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == "ETH" => {}
            Some(_) => return Err(SilaApiError::field("header.crypto", "must be \"ETH\"")),
        }
        match header.get("reference") {
            None | Some(Value::Null) => {}
            Some(Value::String(r)) if r.chars().count() <= MAX_REFERENCE => {}
            Some(_) => {
                return Err(SilaApiError::field(
                    "header.reference",
                    format!("must be a string of at most {MAX_REFERENCE} characters"),
                ))
            }
        }
        Ok(Header { created, app, user })
    }
}

/// Typed access to optional body fields, with the field's path in errors.
pub struct Fields<'a> {
    obj: Option<&'a Map<String, Value>>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    /// The object at `key` of `body` (absent or null: no fields).
    pub fn of(body: &'a Map<String, Value>, key: &'a str) -> Result<Self, SilaApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(Self {
                obj: None,
                prefix: key,
            }),
            Some(Value::Object(m)) => Ok(Self {
                obj: Some(m),
                prefix: key,
            }),
            Some(_) => Err(SilaApiError::field(key, "must be an object")),
        }
    }

    /// The body's own top-level fields.
    pub fn top(body: &'a Map<String, Value>) -> Self {
        Self {
            obj: Some(body),
            prefix: "",
        }
    }

    pub fn present(&self) -> bool {
        self.obj.is_some()
    }

    pub fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// The raw value (absent and null alike: `None`), for fields with
    /// their own checks.
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, SilaApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(SilaApiError::field(&self.path(key), "must be a string")),
        }
    }

    /// A string field Sila accepts under two names (`key`, or its `alias`
    /// as Sila's SDK templates spell it). Answers the value and the path of
    /// the name it came from; both names with different values are refused.
    pub fn str_aliased(
        &self,
        key: &str,
        alias: &str,
    ) -> Result<Option<(&'a str, String)>, SilaApiError> {
        match (self.str(key)?, self.str(alias)?) {
            (Some(a), Some(b)) if a != b => {
                let (path, other) = (self.path(key), self.path(alias));
                let problem = format!("{path} and {other} are one field; they differ");
                Err(SilaApiError {
                    status: 400,
                    message: format!("Bad request format: {problem}"),
                    details: vec![
                        (path.clone(), format!("differs from {other}")),
                        (other, format!("differs from {path}")),
                    ],
                })
            }
            (Some(a), _) => Ok(Some((a, self.path(key)))),
            (None, Some(b)) => Ok(Some((b, self.path(alias)))),
            (None, None) => Ok(None),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, SilaApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(SilaApiError::field(
                &self.path(key),
                "must be true or false",
            )),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, SilaApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| SilaApiError::field(&self.path(key), "must be an integer")),
        }
    }
}
