//! Who is calling, in the order Sila checks it: header, `created` window,
//! app authentication (authsignature or, where allowed, a bearer token), the
//! user, the user's signing wallet (usersignature). Authentication reads the
//! app and user aggregates from the event store, not the projections, so a
//! removed app key or a deleted wallet stops signing the moment its event is
//! stored, however far behind the read side is.
//!
//! Replay guard (see `auth::replay_guard`): a request that writes records its
//! nonces with its events, a read records them once it has succeeded, and any
//! refusal after the app is authenticated uses up the exact body, so only
//! authenticated requests write nonces and no signed body is answered twice.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};

use super::envelope::{self, Envelope, Header};
use super::errors::SilaApiError;
use crate::api::context::request_id;
use crate::app::App;
use crate::audit::Refusal;
use crate::auth::jwt::SilaToken;
use crate::auth::replay_guard;
use crate::auth::request_signature::signer_of;
use crate::domain::client_app::ClientApp;
use crate::domain::user::SilaUser;
use crate::domain::{Address, Handle, Timestamp};
use crate::service::sila_users::SilaError;
use crate::store::{nonces, CommandMeta, Nonce};

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
    /// An existing user of the app; usersignature optional (checked when
    /// present): Sila's `get_transactions`, which its Python SDK signs with
    /// the app key only.
    User,
}

/// Whether an endpoint changes anything: decides where its nonce is recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Reads,
    Writes,
    /// Moves money. The reference is the movement's idempotency key, not a
    /// once-only nonce: a new signed request with the same reference answers
    /// the first outcome. Only the exact body is once-only, claimed before
    /// the endpoint runs (a movement repeated by reference writes no event
    /// to carry it); after a 503 the client signs again, same reference.
    Moves,
}

pub enum Caller {
    Ecdsa,
    Token(SilaToken),
}

pub struct Accepted {
    pub started: Instant,
    pub env: Envelope,
    pub header: Header,
    pub caller: Caller,
    /// The user as the event store has it (`None` for `Needs::Handle`).
    pub user: Option<SilaUser>,
    /// The user's wallet that made usersignature.
    pub signer: Option<Address>,
    pub meta: CommandMeta,
    effect: Effect,
    /// Used up by any answer: see the module notes.
    body_nonce: Nonce,
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

    /// After the endpoint succeeded: a read records its nonces now (a write's
    /// unit of work has recorded them with its events). `Err` if the request
    /// is a replay after all.
    pub async fn complete(&self, app: &App) -> Result<(), SilaApiError> {
        if self.effect == Effect::Reads && !nonces::admit(&app.db, &self.meta.nonces).await? {
            return Err(SilaError::Replayed.into());
        }
        Ok(())
    }

    /// Answers a refusal; a client error uses the exact body up, so it cannot
    /// be re-sent, here or to another endpoint. Its reference stays free for
    /// a corrected request.
    pub async fn fail(&self, app: &App, mut e: SilaApiError) -> HttpResponse {
        if (400..500).contains(&e.status) {
            // The same request, sent again while this one ran, committed
            // first: this refusal is of its effects, so it is a replay too.
            match nonces::any_live(&app.db, &self.meta.nonces).await {
                Ok(true) => e = SilaError::Replayed.into(),
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "could not look for a replay"),
            }
            burn(app, &self.body_nonce).await;
        }
        e.respond(self.reference())
    }
}

async fn burn(app: &App, nonce: &Nonce) {
    if let Err(e) = nonces::burn(&app.db, nonce).await {
        tracing::warn!(error = %e, "could not record a refused request's nonce");
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
        Ok(mut admitted) if effect == Effect::Moves => {
            match nonces::admit(&app.db, std::slice::from_ref(&admitted.body_nonce)).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(
                        SilaApiError::from(SilaError::Replayed).respond(env.reference.as_deref())
                    )
                }
                Err(e) => return Err(SilaApiError::from(e).respond(env.reference.as_deref())),
            }
            // Claimed: neither recorded again with events nor taken, in a
            // refusal, for a concurrent replay of this very request.
            admitted.meta.nonces.clear();
            Ok(Accepted {
                started,
                env,
                header: admitted.header,
                caller: admitted.caller,
                user: admitted.user,
                signer: admitted.signer,
                meta: admitted.meta,
                effect,
                body_nonce: admitted.body_nonce,
            })
        }
        Ok(admitted) => Ok(Accepted {
            started,
            env,
            header: admitted.header,
            caller: admitted.caller,
            user: admitted.user,
            signer: admitted.signer,
            meta: admitted.meta,
            effect,
            body_nonce: admitted.body_nonce,
        }),
        Err(Refused {
            error: e,
            burn: body_nonce,
        }) => {
            if let Some(nonce) = &body_nonce {
                if (400..500).contains(&e.status) {
                    burn(app, nonce).await;
                }
            }
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
                app.refusals.record(refusal);
            }
            Err(e.respond(env.reference.as_deref()))
        }
    }
}

struct Admitted {
    header: Header,
    caller: Caller,
    user: Option<SilaUser>,
    signer: Option<Address>,
    meta: CommandMeta,
    body_nonce: Nonce,
}

/// A refusal, and the body nonce to use up when the app was authenticated.
struct Refused {
    error: SilaApiError,
    burn: Option<Nonce>,
}

impl<E: Into<SilaApiError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Refused {
            error: e.into(),
            burn: None,
        }
    }
}

async fn admit(
    app: &App,
    req: &HttpRequest,
    env: &Envelope,
    needs: Needs,
    effect: Effect,
) -> Result<Admitted, Refused> {
    let window = app.settings.signature_window;
    let now = chrono::Utc::now().timestamp();
    let header = env.header(true, now, window)?;
    let user_handle = header
        .user
        .clone()
        .ok_or_else(|| SilaApiError::new(401, "header.user_handle is required"))?;
    let caller = authenticate_app(app, req, env, &header, &user_handle, needs).await?;

    // From here on the app is authenticated: whatever the answer, this exact
    // body is used up.
    let body_nonce =
        replay_guard::body_nonce(header.app.as_str(), &env.bytes, header.created, now, window);
    let refuse = |error: SilaApiError| Refused {
        error,
        burn: Some(body_nonce.clone()),
    };
    // A write records these with its events; a read once it succeeded.
    // A movement's reference is its idempotency key (see `Effect::Moves`).
    let once_only_reference = match effect {
        Effect::Moves => None,
        Effect::Reads | Effect::Writes => env.reference.as_deref(),
    };
    let request_nonces = replay_guard::nonces_for(
        header.app.as_str(),
        once_only_reference,
        &env.bytes,
        header.created,
        now,
        window,
    );
    // Looked up before the endpoint decides: re-sent after it committed
    // (here or in another process), a write would otherwise be refused for
    // its own effects ("user handle is already taken"), not as the replay.
    if nonces::any_live(&app.db, &request_nonces).await? {
        return Err(refuse(SilaError::Replayed.into()));
    }
    let user = match needs {
        Needs::Handle => None,
        _ => Some(
            registered_user(app, &user_handle, &header.app)
                .await
                .map_err(refuse)?,
        ),
    };

    let wants_user_signature = match needs {
        Needs::SignedByUser => true,
        Needs::SignedByUserOrToken => matches!(caller, Caller::Ecdsa),
        Needs::User => header_value(req, "usersignature").is_some(),
        Needs::Handle => false,
    };
    let signer = match (&user, wants_user_signature) {
        (Some(user), true) => Some(user_signer(req, env, user).map_err(refuse)?),
        _ => None,
    };

    let (auth_method, role) = match &caller {
        Caller::Ecdsa => ("ecdsa", None),
        Caller::Token(t) => ("jwt", t.role.map(|r| r.as_str().to_string())),
    };
    let meta = CommandMeta {
        actor: format!("app:{}", header.app),
        auth_method: auth_method.to_string(),
        role,
        request_id: request_id(req),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        at: Timestamp::now(),
        idempotency_key: None,
        nonces: request_nonces,
    };
    Ok(Admitted {
        header,
        caller,
        user,
        signer,
        meta,
        body_nonce,
    })
}

/// The app's authsignature, or (where the endpoint allows it) a bearer token
/// issued for the Sila API, for this app and this very user.
async fn authenticate_app(
    app: &App,
    req: &HttpRequest,
    env: &Envelope,
    header: &Header,
    user_handle: &Handle,
    needs: Needs,
) -> Result<Caller, SilaApiError> {
    if let Some(sig) = header_value(req, "authsignature") {
        let signer = signer_of(&env.bytes, sig)
            .map_err(|e| SilaApiError::forbidden(format!("authsignature: {e}")))?;
        if !client_app(app, &header.app)
            .await?
            .addresses()
            .contains(&signer)
        {
            return Err(SilaApiError::forbidden(
                "authsignature does not belong to header.app_handle",
            ));
        }
        return Ok(Caller::Ecdsa);
    }
    let token = match bearer(req) {
        Some(token) if needs == Needs::SignedByUserOrToken => token,
        _ => return Err(SilaApiError::forbidden("authsignature header is required")),
    };
    let verifier = app
        .jwt
        .as_ref()
        .ok_or_else(|| SilaApiError::new(401, "token authentication is not configured"))?;
    let token = verifier
        .verify_sila(token)
        .map_err(|_| SilaApiError::new(401, "invalid or expired token"))?;
    // The token acts for one user: its subject.
    if Handle::parse(&token.subject).ok().as_ref() != Some(user_handle) {
        return Err(SilaApiError::forbidden(
            "the token was not issued for header.user_handle",
        ));
    }
    let claimed = token
        .app_handle
        .as_deref()
        .and_then(|h| Handle::parse(h).ok())
        .ok_or_else(|| SilaApiError::forbidden("the token names no app_handle"))?;
    if claimed != header.app {
        return Err(SilaApiError::forbidden(
            "the token's app_handle does not match header.app_handle",
        ));
    }
    if client_app(app, &claimed).await?.addresses().is_empty() {
        return Err(SilaApiError::forbidden(
            "the token's app_handle is not a registered app",
        ));
    }
    Ok(Caller::Token(token))
}

/// App `handle` as its events leave it (no addresses when it does not exist).
async fn client_app(app: &App, handle: &Handle) -> Result<ClientApp, SilaApiError> {
    let (state, _) = app.apps.load(handle.as_str()).await.map_err(load_failed)?;
    Ok(state)
}

/// User `handle`, which must exist and belong to `app_handle`.
async fn registered_user(
    app: &App,
    handle: &Handle,
    app_handle: &Handle,
) -> Result<SilaUser, SilaApiError> {
    let (user, _) = app.users.load(handle.as_str()).await.map_err(load_failed)?;
    match user.app() {
        None => Err(SilaApiError::new(
            400,
            format!("user_handle {handle} is not registered"),
        )),
        Some(a) if a != app_handle => Err(SilaApiError::forbidden(
            "user_handle was not registered by header.app_handle",
        )),
        Some(_) => Ok(user),
    }
}

/// The user's live wallet that made usersignature.
fn user_signer(
    req: &HttpRequest,
    env: &Envelope,
    user: &SilaUser,
) -> Result<Address, SilaApiError> {
    let sig = header_value(req, "usersignature")
        .ok_or_else(|| SilaApiError::forbidden("usersignature header is required"))?;
    let signer = signer_of(&env.bytes, sig)
        .map_err(|e| SilaApiError::forbidden(format!("usersignature: {e}")))?;
    if user.wallet_by_address(&signer).is_none() {
        return Err(SilaApiError::forbidden(
            "usersignature does not belong to a wallet of header.user_handle",
        ));
    }
    Ok(signer)
}

fn load_failed<E: std::error::Error>(e: crate::store::CommandError<E>) -> SilaApiError {
    SilaApiError::from(SilaError::Unavailable(e.to_string()))
}
