//! `/api/admin/log/…`: the signed checkpoint and proofs.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde::Deserialize;
use tlog_tiles::tlog::Hash;

use super::schema::{ConsistencyProof, InclusionProof, LogErrors, SignedCheckpoint};
use crate::api::jwt_wallets::schema::JwtError;
use crate::api::jwt_wallets::{authorize, JwtApiError};
use crate::app::App;
use crate::auth::roles::Role;
use crate::service::ServiceError;
use crate::transparency::hashes::TreeError;
use crate::transparency::proofs::{self, ProofError};
use crate::transparency::sealer::latest_checkpoint;

fn b64(h: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

fn refusal(e: ProofError) -> JwtApiError {
    match e {
        ProofError::Range(m) => JwtApiError::new(400, m),
        ProofError::Empty => JwtApiError::new(404, "the log has no signed checkpoint yet"),
        ProofError::Tree(e) => tree_error(e),
    }
}

pub(super) fn tree_error(e: TreeError) -> JwtApiError {
    match e {
        TreeError::Storage(e) => ServiceError::from(e).into(),
        other => {
            tracing::error!(error = %other, "the transparency log is inconsistent");
            JwtApiError::new(500, "Internal error")
        }
    }
}

fn answer(r: Result<impl serde::Serialize, JwtApiError>) -> HttpResponse {
    match r {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

/// Query numbers as the JWT API reads them: a clear 400 for anything else.
fn number(name: &str, v: Option<String>) -> Result<u64, JwtApiError> {
    let v = v.ok_or_else(|| JwtApiError::new(400, format!("{name} is required")))?;
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| JwtApiError::new(400, format!("{name} must be a non-negative integer")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

#[utoipa::path(
    get,
    path = "/api/admin/log/checkpoint",
    operation_id = "logCheckpoint",
    tag = "auditors",
    summary = "The transparency log's latest signed checkpoint (ADMIN)",
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The latest checkpoint", body = SignedCheckpoint),
        (status = 400, description = "A query parameter (it takes none)", body = JwtError),
        (status = 401, description = "Missing or invalid token (`WWW-Authenticate: Bearer`)", body = JwtError, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Not ADMIN", body = JwtError),
        (status = 404, description = "Nothing sealed yet, or no log key configured (`WALLETD_LOG_KEY`)", body = JwtError),
        (status = 500, description = "Internal error", body = JwtError),
        (status = 503, description = "Store unavailable; retry", body = JwtError),
    ),
)]
pub async fn checkpoint(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    answer(
        async {
            authorize(&app, &req, "log.read", Role::Admin).await?;
            let _: NoQuery = crate::api::jwt_wallets::query(&req)?;
            let signer = app.log_signer.as_ref().ok_or_else(|| {
                JwtApiError::new(
                    404,
                    "the log is not sealed here (WALLETD_LOG_KEY is not set)",
                )
            })?;
            let (size, root, note) = latest_checkpoint(&app.db)
                .await
                .map_err(tree_error)?
                .ok_or_else(|| JwtApiError::new(404, "the log has no signed checkpoint yet"))?;
            Ok(SignedCheckpoint {
                size,
                root: b64(&root),
                checkpoint: note,
                origin: signer.origin().to_string(),
                verifier_key: signer.verifier_key().to_string(),
            })
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    position: Option<String>,
    size: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/log/proof/inclusion",
    operation_id = "logInclusionProof",
    tag = "auditors",
    summary = "Proof that the leaf at a position is in the tree of a size (ADMIN)",
    security(("jwt" = [])),
    params(
        ("position" = u64, Query, description = "the leaf's index, from 0"),
        ("size" = u64, Query, minimum = 1, description = "a tree size up to the latest checkpoint's"),
    ),
    responses(
        (status = 200, description = "The audit path", body = InclusionProof),
        (status = 400, description = "Missing or bad query parameter; position or size out of range", body = JwtError),
        LogErrors,
    ),
)]
pub async fn inclusion(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    answer(
        async {
            authorize(&app, &req, "log.read", Role::Admin).await?;
            let q: InclusionQuery = crate::api::jwt_wallets::query(&req)?;
            let (position, size) = (number("position", q.position)?, number("size", q.size)?);
            let p = proofs::inclusion(&app.db, position, size)
                .await
                .map_err(refusal)?;
            Ok(InclusionProof {
                position: p.index,
                tree_size: p.size,
                event_position: p.event_position,
                leaf_hash: b64(&p.leaf_hash),
                proof: p.proof.iter().map(b64).collect(),
            })
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/log/proof/consistency",
    operation_id = "logConsistencyProof",
    tag = "auditors",
    summary = "Proof that the tree of size `to` extends the tree of size `from` (ADMIN)",
    security(("jwt" = [])),
    params(
        ("from" = u64, Query, minimum = 1, description = "the older tree's size"),
        ("to" = u64, Query, minimum = 1, description = "the newer tree's size, up to the latest checkpoint's"),
    ),
    responses(
        (status = 200, description = "The consistency proof", body = ConsistencyProof),
        (status = 400, description = "Missing or bad query parameter; sizes out of range", body = JwtError),
        LogErrors,
    ),
)]
pub async fn consistency(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    answer(
        async {
            authorize(&app, &req, "log.read", Role::Admin).await?;
            let q: ConsistencyQuery = crate::api::jwt_wallets::query(&req)?;
            let (from, to) = (number("from", q.from)?, number("to", q.to)?);
            let proof = proofs::consistency(&app.db, from, to)
                .await
                .map_err(refusal)?;
            Ok(ConsistencyProof {
                from,
                to,
                proof: proof.iter().map(b64).collect(),
            })
        }
        .await,
    )
}
