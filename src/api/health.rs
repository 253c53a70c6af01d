//! Liveness and readiness.
//!
//! `/readyz` answers without authentication, so it names each failing check
//! with a fixed phrase and never carries error text from the database (which
//! can name hosts, users and schema); the detail goes to the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use walletd_projections::lag;

use crate::app::App;

/// How long events must have waited, while the projector's passes fail, before
/// the failure makes the instance not ready.
const FAILING_FOR: Duration = Duration::from_secs(5);

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store answers, the projector runs and is not far behind, and custody
/// can work. Each failing check is named.
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    let mut problems: Vec<String> = Vec::new();
    let projector = app.wallets.projector();
    let at = projector.position();
    let mut projections = json!({
        "projectedThrough": at.position,
        "stalled": projector.stalled_for().is_some(),
    });
    let measured = lag::measure(&app.db, at).await;
    let store_answers = measured.is_ok();
    let oldest_waiting = measured.as_ref().map_or(f64::INFINITY, |l| l.seconds);
    match measured {
        Err(e) => {
            static LAST: Mutex<Option<Instant>> = Mutex::new(None);
            log_detail(&LAST, "store unreachable", &e.to_string());
            problems.push("store unreachable".into());
        }
        Ok(lag) => {
            projections["lagEvents"] = json!(lag.events);
            projections["lagSeconds"] = json!((lag.seconds * 1000.0).round() / 1000.0);
            if !lag.is_zero() {
                projector.nudge();
            }
            problems.extend(lag_problem(
                &lag,
                app.settings.ready_max_lag_events,
                app.settings.ready_max_lag_seconds,
            ));
        }
    }
    if !projector.is_running() {
        problems.push("projector stopped".into());
    }
    if let Some(e) = projector.last_error() {
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        log_detail(&LAST, "projector failing", &e);
        // One failed pass under load (the next one, half a second later,
        // usually succeeds) is no reason to leave rotation; passes that keep
        // failing while events wait are.
        if oldest_waiting >= FAILING_FOR.as_secs_f64() {
            problems.push("projector failing".into());
        }
    }
    // Fixed sentences about configuration, not error text.
    if let Err(e) = app.custody.readiness() {
        problems.push(format!("custody: {e}"));
    }
    if let Err(e) = app.server_custody.readiness() {
        problems.push(format!("server-wallet custody: {e}"));
    }
    // Round trips (vault canary, cosigner), cached for a few seconds; with
    // the store gone they would only wait out its connection timeout again.
    if store_answers {
        for problem in app.readiness.problems(&app).await {
            problems.push(problem.phrase().into());
        }
    }
    let mut body: Value = if problems.is_empty() {
        json!({ "status": "ready" })
    } else {
        json!({ "status": "not ready", "problems": problems })
    };
    // Kept at the top level too, where it has always been.
    body["projectedThrough"] = json!(at.position);
    body["projections"] = projections;
    if problems.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Projections further behind the log than `WALLETD_READY_MAX_LAG_SECONDS`
/// (default 60) or `WALLETD_READY_MAX_LAG_EVENTS` (default 100,000) make the
/// instance not ready. Below them the instance serves: writes commit and
/// answer at once (a stalled projector cuts the read-your-writes wait short),
/// and reads are at most that stale. Any lag at all is no reason: under load a
/// few events are always in flight, and a probe that answered 503 for them
/// would take healthy instances out of rotation. Past the bounds reads are
/// too stale to trust and someone has to act (end the transaction holding the
/// horizon back). The lag is a property of the database, so every instance on
/// it turns not ready together; the body shows the lag from the first second,
/// for alerting long before this.
fn lag_problem(lag: &lag::Lag, max_events: u64, max_seconds: u64) -> Option<String> {
    if lag.seconds > max_seconds as f64 {
        Some(format!(
            "projections more than {max_seconds} s behind the event log"
        ))
    } else if u64::try_from(lag.events).unwrap_or(0) > max_events {
        Some(format!(
            "projections more than {max_events} events behind the event log"
        ))
    } else {
        None
    }
}

/// Logs why a check failed, at most every few seconds: a probe polls this
/// endpoint often, and an outage is one event, not one line per poll.
fn log_detail(last: &Mutex<Option<Instant>>, check: &str, detail: &str) {
    let due = match last.lock() {
        Ok(mut last) => match *last {
            Some(t) if t.elapsed() < Duration::from_secs(10) => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        },
        Err(_) => true,
    };
    if due {
        tracing::warn!(check, error = %detail, "readiness check failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(events: i64, seconds: f64) -> lag::Lag {
        lag::Lag { events, seconds }
    }

    #[test]
    fn only_a_lag_past_a_bound_is_a_problem() {
        // What probes see under load: a few events in flight, for moments.
        assert_eq!(lag_problem(&lag(0, 0.0), 100_000, 60), None);
        assert_eq!(lag_problem(&lag(40, 0.3), 100_000, 60), None);
        assert_eq!(lag_problem(&lag(100_000, 59.0), 100_000, 60), None);
        assert_eq!(
            lag_problem(&lag(3, 61.0), 100_000, 60).as_deref(),
            Some("projections more than 60 s behind the event log")
        );
        assert_eq!(
            lag_problem(&lag(100_001, 1.0), 100_000, 60).as_deref(),
            Some("projections more than 100000 events behind the event log")
        );
    }
}
