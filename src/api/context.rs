//! Request plumbing shared by the dialects: request ids, client address,
//! reading a bounded JSON body.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::domain::Timestamp;
use crate::store::CommandMeta;

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

pub fn command_meta(req: &HttpRequest, principal: &Principal) -> CommandMeta {
    CommandMeta {
        actor: principal.actor.clone(),
        auth_method: principal.auth_method.to_string(),
        role: principal.role.map(|r| r.as_str().to_string()),
        request_id: request_id(req),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        at: Timestamp::now(),
        idempotency_key: req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        nonces: Vec::new(),
    }
}

/// Why a body was refused. Each dialect renders these in its own error shape.
#[derive(Debug)]
pub enum BodyError {
    /// 415
    ContentType,
    /// 413
    TooLarge(usize),
    /// 400: not JSON at all.
    Malformed(String),
    /// 422: JSON, but not the expected shape or types.
    Shape(String),
    /// 400: the connection broke while reading.
    Read,
}

impl BodyError {
    pub fn status(&self) -> u16 {
        match self {
            BodyError::ContentType => 415,
            BodyError::TooLarge(_) => 413,
            BodyError::Malformed(_) | BodyError::Read => 400,
            BodyError::Shape(_) => 422,
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::ContentType => "Content-Type must be application/json".into(),
            BodyError::TooLarge(limit) => format!("request body is larger than {limit} bytes"),
            BodyError::Malformed(e) => format!("request body is not valid JSON: {e}"),
            BodyError::Shape(e) => format!("invalid request body: {e}"),
            BodyError::Read => "request body could not be read".into(),
        }
    }
}

/// Reads the whole body, refusing a wrong content type or more than `limit` bytes.
pub async fn read_json_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(BodyError::ContentType);
    }
    read_bounded(req, payload, limit).await
}

/// Like [`read_json_bytes`], but a request that carries no Content-Type at
/// all is read as JSON (the caller still parses it); a Content-Type that is
/// present must be JSON. Sila's Python SDK sends its bodies without one.
pub async fn read_json_bytes_untyped_ok(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    if req.headers().contains_key(CONTENT_TYPE) {
        read_json_bytes(req, payload, limit).await
    } else {
        read_bounded(req, payload, limit).await
    }
}

/// The whole body, refusing more than `limit` bytes.
async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(BodyError::TooLarge(limit));
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Read)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads and drops a body the handler refused before reading (at most
/// `limit` bytes). actix closes a connection whose request body was left
/// unread, so without this a client refused on every request (401 before the
/// body) pays, and makes walletd pay, a new TCP connection each time.
pub async fn discard_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) {
    let too_large = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit);
    if too_large {
        return;
    }
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        seen += chunk.len();
        if seen > limit {
            return;
        }
    }
}

/// Parses a JSON object body. serde would also accept an array for a struct;
/// every walletd request body is an object, so anything else is refused.
/// Like [`read_json_bytes`], but a request with no body at all (and no
/// Content-Type) is an empty body rather than a 415.
pub async fn read_optional_json_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    if req.headers().get(CONTENT_TYPE).is_none() {
        let no_length = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0");
        if no_length {
            let mut payload = payload;
            return match payload.next().await {
                None => Ok(web::Bytes::new()),
                Some(_) => Err(BodyError::ContentType),
            };
        }
    }
    read_json_bytes(req, payload, limit).await
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(BodyError::Shape(
                "request body must be a JSON object".into(),
            )),
            Err(e) => Err(BodyError::Malformed(e.to_string())),
        };
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BodyError::Shape(e.to_string()),
        _ => BodyError::Malformed(e.to_string()),
    })
}
