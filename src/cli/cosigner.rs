//! `walletd cosigner`: party 2 of the 2-of-2 MPC wallets as a process of its
//! own, with its own store and master key, answering party 1 over the Noise
//! channel (`custody::mpc::channel`). It runs nothing else of walletd: no
//! projector, no API.
//!
//! `walletd mpc-keygen`: prints a new static channel key pair.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, App as ActixApp, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde_json::json;

use super::CliResult;
use crate::app::{load_master_keys, KeySource};
use crate::config::{Secret, Settings};
use crate::custody::mpc::channel::{
    ChannelError, ChannelKey, CosignerChannel, PublicKey, MAX_BODY,
};
use crate::custody::mpc::cpu::{self, Lane};
use crate::custody::mpc::{Cosigner, PayloadPolicy, ShareVault, PROTOCOL_PATH};

struct State {
    cosigner: Cosigner,
    channel: CosignerChannel,
    db: walletd_projections::Db,
}

/// What `walletd cosigner` needs before it opens anything: its settings and
/// both channel keys (`walletd config check --cosigner` runs this alone).
pub fn check(settings: &Settings) -> Result<(ChannelKey, PublicKey), Box<dyn std::error::Error>> {
    crate::config::validate_cosigner(settings)?;
    let own = ChannelKey::parse(
        settings
            .cosigner_channel_key
            .as_ref()
            .map(Secret::expose)
            .ok_or(
                "WALLETD_COSIGNER_CHANNEL_KEY is not set (`walletd mpc-keygen` makes a key pair)",
            )?,
    )
    .map_err(|e| format!("WALLETD_COSIGNER_CHANNEL_KEY: {e}"))?;
    let peer =
        PublicKey::parse(settings.cosigner_peer_key.as_deref().ok_or(
            "WALLETD_COSIGNER_PEER_KEY is not set (the public channel key of walletd serve)",
        )?)
        .map_err(|e| format!("WALLETD_COSIGNER_PEER_KEY: {e}"))?;
    Ok((own, peer))
}

pub async fn run(settings: Settings) -> CliResult {
    let (own, peer) = check(&settings)?;
    let listener = TcpListener::bind(&settings.cosigner_bind)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.cosigner_bind))?;
    let addr = listener.local_addr()?;
    let db = crate::store::connect(&settings.database_url, settings.db_pool).await?;
    crate::store::migrate::run(&db).await?;
    let (keys, source) = load_master_keys(&settings)?;
    match &source {
        KeySource::File { path, created } => tracing::warn!(
            path = %path.display(),
            created,
            "NO WALLETD_MASTER_KEY SET: the cosigner's shares are sealed under the key file \
             beside its database. Fine for development; in production set WALLETD_MASTER_KEY \
             from a secret store."
        ),
        KeySource::Missing => {
            return Err("WALLETD_MASTER_KEY is not set: the cosigner cannot seal its shares".into())
        }
        KeySource::Environment => {}
    }
    let state = web::Data::new(State {
        cosigner: Cosigner::new(
            Arc::new(ShareVault::new(db.clone(), keys, 2)),
            Arc::new(PayloadPolicy),
        ),
        channel: CosignerChannel::new(own, peer),
        db: db.clone(),
    });
    tracing::info!(
        channel_key = %state.channel.public_hex(),
        peer_key = %peer.to_hex(),
        "cosigner channel keys"
    );
    let workers = settings.workers.unwrap_or(2);
    let server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(state.clone())
            .route(PROTOCOL_PATH, web::post().to(exchange))
            .route("/healthz", web::get().to(healthz))
            .default_service(web::to(|| async {
                error(StatusCode::NOT_FOUND, "no such endpoint")
            }))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    println!("walletd cosigner listening on http://{addr}");
    server.await?;
    db.close().await;
    Ok(())
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Healthy when the cosigner's own database answers: without it, it can
/// neither open a share nor log a signature.
async fn healthz(state: web::Data<State>) -> HttpResponse {
    let reachable = walletd_projections::with_db!(&state.db, pool => {
        sqlx::query("SELECT 1").execute(pool).await.is_ok()
    });
    if reachable {
        HttpResponse::Ok().json(json!({ "status": "ok" }))
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cosigner's database is unreachable",
        )
    }
}

/// One protocol exchange: open the channel message, answer it, seal the
/// answer. Channel failures are answered in the clear (JSON); protocol
/// outcomes only inside the channel: 200 for an answer, 422 for a refusal.
async fn exchange(state: web::Data<State>, mut payload: web::Payload) -> HttpResponse {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return error(StatusCode::BAD_REQUEST, "cannot read the request body");
        };
        if body.len() + chunk.len() > MAX_BODY {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "channel message too large");
        }
        body.extend_from_slice(&chunk);
    }
    // The channel's crypto and the protocol run on the protocol threads
    // (`custody::mpc::cpu`), never on this worker: it stays free to take
    // other exchanges and health checks while they run.
    let shared = state.clone().into_inner();
    let opened = cpu::run(Lane::Sign, move || shared.channel.open_request(&body)).await;
    let (request, reply) = match opened {
        Ok(Ok(opened)) => opened,
        Err(e) => {
            tracing::error!(error = %e, "cosigner: cannot open the channel message");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot open the message");
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cosigner: channel message refused");
            return error(channel_status(&e), &e.to_string());
        }
    };
    let outcome = state.cosigner.handle(&request).await;
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, "cosigner: protocol request refused");
    }
    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let shared = state.clone().into_inner();
    let sealed = cpu::run(Lane::Sign, move || {
        shared.channel.seal_response(reply, &outcome)
    })
    .await
    .map_err(|e| ChannelError::Internal(e.to_string()))
    .and_then(|sealed| sealed);
    match sealed {
        Ok(sealed) => HttpResponse::build(status)
            .content_type("application/octet-stream")
            .body(sealed),
        Err(e) => {
            tracing::error!(error = %e, "cosigner: cannot seal the answer");
            error(StatusCode::INTERNAL_SERVER_ERROR, "cannot seal the answer")
        }
    }
}

fn channel_status(e: &ChannelError) -> StatusCode {
    match e {
        ChannelError::Malformed(_) => StatusCode::BAD_REQUEST,
        ChannelError::Authentication | ChannelError::Stale => StatusCode::UNAUTHORIZED,
        ChannelError::Replayed => StatusCode::CONFLICT,
        ChannelError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ChannelError::BadKey(_) | ChannelError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Prints a new static channel key pair: the private key once, then the
/// public key to pin on the other side.
pub fn keygen() -> CliResult {
    let key = ChannelKey::generate().map_err(|e| e.to_string())?;
    println!("private {}", key.private_hex().as_str());
    println!("public {}", key.public_hex());
    eprintln!(
        "keep the private key secret (WALLETD_MPC_CHANNEL_KEY of walletd serve, or \
         WALLETD_COSIGNER_CHANNEL_KEY of the cosigner); pin the public key on the other side"
    );
    Ok(())
}
