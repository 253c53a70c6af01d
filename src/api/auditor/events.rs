//! `GET /api/admin/events?from=&limit=`: the sealed log in tree order, as
//! `walletd events export` writes it, streamed page by page so a large page
//! costs the server constant memory.

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::jwt_wallets::{authorize, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::transparency::export::page;
use crate::transparency::sealer::latest_checkpoint;

use super::log::tree_error;
use super::schema::{EventsPage, LogErrors};
use crate::api::jwt_wallets::schema::JwtError;

/// Largest page; the default is [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: u64 = 10_000;
const DEFAULT_LIMIT: u64 = 1_000;
/// Leaves read from the store per chunk of the response.
const CHUNK: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    from: Option<String>,
    limit: Option<String>,
}

fn number(name: &str, v: Option<String>, default: u64, max: u64) -> Result<u64, JwtApiError> {
    let Some(v) = v else { return Ok(default) };
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| JwtApiError::new(400, format!("{name} must be an integer from 0 to {max}")))
}

#[utoipa::path(
    get,
    path = "/api/admin/events",
    operation_id = "logEvents",
    tag = "auditors",
    summary = "Sealed events in log order, with leaf index and leaf hash (ADMIN)",
    security(("jwt" = [])),
    params(
        ("from" = Option<u64>, Query, maximum = 9223372036854775807_u64, description = "first log position (leaf index), default 0"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "events in the page, default 1000"),
    ),
    responses(
        (status = 200, description = "A page of the sealed log; `next` is where the next page starts (null at the end)", body = EventsPage),
        (status = 400, description = "Bad query parameter; `from` beyond the sealed log", body = JwtError),
        LogErrors,
    ),
)]
pub async fn events(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let range = async {
        authorize(&app, &req, "log.read", Role::Admin).await?;
        let q: EventsQuery = crate::api::jwt_wallets::query(&req)?;
        let from = number("from", q.from, 0, i64::MAX as u64)?;
        let limit = number("limit", q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        if limit == 0 {
            return Err(JwtApiError::new(400, "limit must be from 1 to 10000"));
        }
        if app.log_signer.is_none() {
            return Err(JwtApiError::new(
                404,
                "the log is not sealed here (WALLETD_LOG_KEY is not set)",
            ));
        }
        let sealed = latest_checkpoint(&app.db)
            .await
            .map_err(tree_error)?
            .map(|c| c.0)
            .unwrap_or(0);
        if from > sealed {
            return Err(JwtApiError::new(
                400,
                format!("from must be at most {sealed} (the sealed log's size), not {from}"),
            ));
        }
        Ok((from, from.saturating_add(limit).min(sealed), sealed))
    }
    .await;
    let (from, to, sealed) = match range {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let next = if to < sealed { Some(to) } else { None };
    let head = format!("{{\"from\":{from},\"treeSize\":{sealed},\"events\":[");
    let tail = format!(
        "],\"next\":{}}}",
        next.map_or("null".to_string(), |n| n.to_string())
    );
    let db = app.db.clone();
    // States: the head, then chunks of leaves from `at`, then the tail.
    let body = futures_util::stream::unfold(
        (Some(head), from, Some(tail)),
        move |(head, at, tail)| {
            let db = db.clone();
            async move {
                if let Some(h) = head {
                    return Some((Ok(Bytes::from(h)), (None, at, tail)));
                }
                if at < to {
                    return match page(&db, at, to, CHUNK).await {
                        Ok(entries) if !entries.is_empty() => {
                            let mut out = Vec::new();
                            for e in &entries {
                                if e.index > from {
                                    out.push(b',');
                                }
                                // A Value always serializes.
                                serde_json::to_writer(&mut out, &e.to_json()).ok();
                            }
                            let next = entries.last().map_or(to, |e| e.index + 1);
                            Some((Ok(Bytes::from(out)), (None, next, tail)))
                        }
                        Ok(_) => {
                            tracing::error!(
                                at,
                                "the sealed log has no leaf where its checkpoint says"
                            );
                            Some((
                                Err(std::io::Error::other("sealed log incomplete")),
                                (None, to, None),
                            ))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reading the sealed log failed mid-response");
                            Some((Err(std::io::Error::other("read failed")), (None, to, None)))
                        }
                    };
                }
                tail.map(|t| (Ok(Bytes::from(t)), (None, at, None)))
            }
        },
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body)
}
