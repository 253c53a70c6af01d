//! Bearer JWT authentication and role checks; every refusal is counted for
//! the security log (written in batches, off the request path).

use actix_web::HttpRequest;

use super::JwtApiError;
use crate::api::context::request_id;
use crate::app::App;
use crate::audit::Refusal;
use crate::auth::jwt::{JwtUser, Rejection};
use crate::auth::roles::Role;

pub(crate) fn refusal(
    req: &HttpRequest,
    action: &'static str,
    status: u16,
    reason: &str,
    user: Option<&JwtUser>,
) -> Refusal {
    Refusal {
        subject: user.map(|u| u.user_id.to_string()),
        role: user.map(|u| u.role.as_str().to_string()),
        auth_method: "jwt",
        action,
        status,
        reason: reason.to_string(),
        path: req.path().to_string(),
        request_id: request_id(req),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

/// The caller, if the token is valid and the role is at least `min`.
pub(crate) async fn authorize(
    app: &App,
    req: &HttpRequest,
    action: &'static str,
    min: Role,
) -> Result<JwtUser, JwtApiError> {
    let verified = match &app.jwt {
        None => Err(Rejection::NotConfigured),
        Some(verifier) => match bearer(req) {
            None => Err(Rejection::Missing),
            Some(token) => verifier.verify(token),
        },
    };
    let user = match verified {
        Ok(u) => u,
        Err(why) => {
            app.refusals
                .record(refusal(req, action, 401, why.as_str(), None));
            return Err(JwtApiError::unauthorized());
        }
    };
    if !user.role.at_least(min) {
        app.refusals
            .record(refusal(req, action, 403, "insufficient_role", Some(&user)));
        return Err(JwtApiError::forbidden());
    }
    Ok(user)
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Records a refusal decided after authentication (403 on behalf, 429).
pub(crate) async fn refuse(
    app: &App,
    req: &HttpRequest,
    action: &'static str,
    user: &JwtUser,
    err: JwtApiError,
    reason: &str,
) -> JwtApiError {
    app.refusals.record(refusal(
        req,
        action,
        err.status.as_u16(),
        reason,
        Some(user),
    ));
    err
}
