//! Who is calling, in the order Sila checks it: header, `created` window,
//! app authentication (authsignature or, where allowed, a bearer token), the
//! user, the user's signing wallet (usersignature), and finally the replay
//! guard — so only authenticated requests consume a reference.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use walletd_projections::sila_queries::{self, SilaUserRow};

use super::envelope::{self, Envelope, Header};
use super::errors::SilaApiError;
use crate::api::context::request_id;
use crate::app::App;
use crate::audit::{Refusal, SecurityLog};
use crate::auth::jwt::JwtUser;
use crate::auth::replay_guard;
use crate::auth::request_signature::signer_of;
use crate::domain::{Address, Handle, Timestamp};
use crate::service::sila_users::SilaError;
use crate::store::{nonces, CommandMeta};

/// What an endpoint needs of the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `user_handle` named, need not exist (check_handle, register).
    Handle,
    /// An existing user and a usersignature by one of its wallets.
    SignedByUser,
    /// Like `SignedByUser`, but a bearer token may stand in for both
    /// signatures (register_wallet's token mode).
    SignedByUserOrToken,
}

/// Whether an endpoint changes anything: decides where its nonce is recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Reads,
    Writes,
}

pub enum Caller {
    Ecdsa,
    Token(JwtUser),
}

pub struct Accepted {
    pub started: Instant,
    pub env: Envelope,
    pub header: Header,
    pub caller: Caller,
    pub user: Option<SilaUserRow>,
    /// The user's wallet that made usersignature.
    pub signer: Option<Address>,
    pub meta: CommandMeta,
}

impl Accepted {
    pub fn reference(&self) -> Option<&str> {
        self.env.reference.as_deref()
    }

    /// `header.user_handle`, which `accept` has required for every endpoint.
    pub fn handle(&self) -> Result<&Handle, SilaApiError> {
        self.header
            .user
            .as_ref()
            .ok_or_else(|| SilaApiError::new(401, "header.user_handle is required"))
    }

    pub fn fail(&self, e: SilaApiError) -> HttpResponse {
        e.respond(self.reference())
    }
}

fn header_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = header_value(req, "authorization")?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates and admits a request, or answers it with the error.
pub async fn accept(
    app: &App,
    req: &HttpRequest,
    payload: web::Payload,
    action: &'static str,
    needs: Needs,
    effect: Effect,
) -> Result<Accepted, HttpResponse> {
    let started = Instant::now();
    let env = envelope::read(req, payload, app.settings.max_body)
        .await
        .map_err(|(reference, e)| e.respond(reference.as_deref()))?;
    match admit(app, req, &env, needs, effect).await {
        Ok((header, caller, user, signer, meta)) => Ok(Accepted {
            started,
            env,
            header,
            caller,
            user,
            signer,
            meta,
        }),
        Err(e) => {
            if matches!(e.status, 401 | 403) {
                let refusal = Refusal {
                    subject: None,
                    role: None,
                    auth_method: "ecdsa",
                    action,
                    status: e.status,
                    reason: e.message.clone(),
                    path: req.path().to_string(),
                    request_id: request_id(req),
                    client_addr: req.peer_addr().map(|a| a.ip().to_string()),
                };
                SecurityLog::record(&app.db, &refusal).await;
            }
            Err(e.respond(env.reference.as_deref()))
        }
    }
}

type Admitted = (
    Header,
    Caller,
    Option<SilaUserRow>,
    Option<Address>,
    CommandMeta,
);

async fn admit(
    app: &App,
    req: &HttpRequest,
    env: &Envelope,
    needs: Needs,
    effect: Effect,
) -> Result<Admitted, SilaApiError> {
    let window = app.settings.signature_window;
    let now = chrono::Utc::now().timestamp();
    let header = env.header(true, now, window)?;
    let user_handle = header
        .user
        .clone()
        .ok_or_else(|| SilaApiError::new(401, "header.user_handle is required"))?;

    let caller = match header_value(req, "authsignature") {
        Some(sig) => {
            let signer = signer_of(&env.bytes, sig)
                .map_err(|e| SilaApiError::forbidden(format!("authsignature: {e}")))?;
            if !sila_queries::app_has_address(&app.db, header.app.as_str(), &signer.to_lower_hex())
                .await?
            {
                return Err(SilaApiError::forbidden(
                    "authsignature does not belong to header.app_handle",
                ));
            }
            Caller::Ecdsa
        }
        None => match bearer(req) {
            Some(token) if needs == Needs::SignedByUserOrToken => {
                let verifier = app.jwt.as_ref().ok_or_else(|| {
                    SilaApiError::new(401, "token authentication is not configured")
                })?;
                let user = verifier
                    .verify(token)
                    .map_err(|_| SilaApiError::new(401, "invalid or expired token"))?;
                let claimed = user
                    .app_handle
                    .as_deref()
                    .and_then(|h| Handle::parse(h).ok())
                    .ok_or_else(|| SilaApiError::forbidden("the token names no app_handle"))?;
                if claimed != header.app {
                    return Err(SilaApiError::forbidden(
                        "the token's app_handle does not match header.app_handle",
                    ));
                }
                if !sila_queries::app_exists(&app.db, claimed.as_str()).await? {
                    return Err(SilaApiError::forbidden(
                        "the token's app_handle is not a registered app",
                    ));
                }
                Caller::Token(user)
            }
            _ => return Err(SilaApiError::forbidden("authsignature header is required")),
        },
    };

    let user = match needs {
        Needs::Handle => None,
        _ => {
            let row = sila_queries::sila_user(&app.db, user_handle.as_str())
                .await?
                .ok_or_else(|| {
                    SilaApiError::new(400, format!("user_handle {user_handle} is not registered"))
                })?;
            if row.app_handle != header.app.as_str() {
                return Err(SilaApiError::forbidden(
                    "user_handle was not registered by header.app_handle",
                ));
            }
            Some(row)
        }
    };

    let wants_user_signature = match needs {
        Needs::SignedByUser => true,
        Needs::SignedByUserOrToken => matches!(caller, Caller::Ecdsa),
        Needs::Handle => false,
    };
    let signer = if wants_user_signature {
        let sig = header_value(req, "usersignature")
            .ok_or_else(|| SilaApiError::forbidden("usersignature header is required"))?;
        let signer = signer_of(&env.bytes, sig)
            .map_err(|e| SilaApiError::forbidden(format!("usersignature: {e}")))?;
        let wallet = sila_queries::sila_wallet_by_address(&app.db, &signer.to_lower_hex()).await?;
        if wallet.is_none_or(|w| w.handle != user_handle.as_str()) {
            return Err(SilaApiError::forbidden(
                "usersignature does not belong to a wallet of header.user_handle",
            ));
        }
        Some(signer)
    } else {
        None
    };

    let nonce = replay_guard::nonce_for(
        header.app.as_str(),
        env.reference.as_deref(),
        &env.bytes,
        header.created,
        now,
        window,
    );
    // A request that writes records its nonce with its events (see
    // `UnitOfWork::for_request`); any other records it now.
    let nonce = match effect {
        Effect::Writes => Some(nonce),
        Effect::Reads => {
            if !nonces::admit(&app.db, &nonce).await? {
                return Err(SilaError::Replayed.into());
            }
            None
        }
    };

    let (auth_method, role) = match &caller {
        Caller::Ecdsa => ("ecdsa", None),
        Caller::Token(u) => ("jwt", Some(u.role.as_str().to_string())),
    };
    let meta = CommandMeta {
        actor: format!("app:{}", header.app),
        auth_method: auth_method.to_string(),
        role,
        request_id: request_id(req),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        at: Timestamp::now(),
        idempotency_key: None,
        nonce,
    };
    Ok((header, caller, user, signer, meta))
}
