//! `HttpLink`: party 1's [`CosignerLink`] to a `walletd cosigner` process,
//! one HTTP POST per exchange, each body sealed by the Noise channel
//! ([`super::channel`]).
//!
//! awc's client is tied to an actix (single-threaded) runtime and is not
//! `Send`, while `exchange` runs inside `Send` futures on any runtime (the
//! API's workers, the key pool's thread). So the HTTP client lives on one
//! thread of its own running an actix system; `exchange` seals the request
//! where it is called, hands the body to that thread over a channel, and
//! opens the answer when it comes back. The thread ends when the link is
//! dropped.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::channel::{Party1Channel, MAX_BODY};
use super::cpu::{self, Lane};
use super::{CosignerLink, MpcError};

/// How long one exchange may take, connection included. Key generation is
/// the slowest step the cosigner does (about a second of CPU).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The path the cosigner serves the protocol on.
pub const PROTOCOL_PATH: &str = "/mpc/v1";

struct Job {
    body: Vec<u8>,
    answer: oneshot::Sender<Result<(u16, Bytes), String>>,
}

pub struct HttpLink {
    url: String,
    channel: Arc<Party1Channel>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl HttpLink {
    /// `base`: the cosigner's base URL (`WALLETD_COSIGNER_URL`, http://…).
    pub fn new(base: &str, channel: Party1Channel) -> Result<Self, String> {
        let url = format!("{}{PROTOCOL_PATH}", base.trim_end_matches('/'));
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let target = url.clone();
        std::thread::Builder::new()
            .name("mpc-cosigner-link".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let client = awc::Client::builder()
                        .connector(awc::Connector::new().timeout(CONNECT_TIMEOUT))
                        .timeout(EXCHANGE_TIMEOUT)
                        .disable_redirects()
                        .finish();
                    while let Some(job) = queue.recv().await {
                        let (client, url) = (client.clone(), target.clone());
                        actix_web::rt::spawn(async move {
                            let result = post(&client, &url, job.body).await;
                            // The caller may have given up; nothing to do then.
                            let _ = job.answer.send(result);
                        });
                    }
                })
            })
            .map_err(|e| format!("cannot start the cosigner client thread: {e}"))?;
        Ok(Self {
            url,
            channel: Arc::new(channel),
            jobs,
        })
    }
}

async fn post(client: &awc::Client, url: &str, body: Vec<u8>) -> Result<(u16, Bytes), String> {
    let mut response = client
        .post(url)
        .insert_header(("Content-Type", "application/octet-stream"))
        .send_body(body)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response
        .body()
        .limit(MAX_BODY)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((status, bytes))
}

/// The `error` of a JSON error body, or a placeholder.
fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.as_str())
                .map(|e| e.chars().take(200).collect())
        })
        .unwrap_or_else(|| "no error message".into())
}

#[async_trait::async_trait]
impl CosignerLink for HttpLink {
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, MpcError> {
        // Sealing and opening (tens of kilobytes of ChaCha20-Poly1305, two
        // X25519 operations) run on the protocol threads, like the protocol.
        let channel = self.channel.clone();
        let (body, pending) = cpu::run(Lane::Sign, move || channel.seal_request(&request))
            .await?
            .map_err(|e| MpcError::Aborted(e.to_string()))?;
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { body, answer })
            .map_err(|_| MpcError::Unavailable("the cosigner client thread has stopped".into()))?;
        let (status, bytes) = answered
            .await
            .map_err(|_| MpcError::Unavailable("the cosigner client thread has stopped".into()))?
            .map_err(|e| MpcError::Unavailable(format!("cannot reach {}: {e}", self.url)))?;
        match status {
            // 200: the cosigner's answer; 422: its refusal. Both sealed.
            200 | 422 => {
                let channel = self.channel.clone();
                cpu::run(Lane::Sign, move || channel.open_response(pending, &bytes))
                    .await?
                    .map_err(|e| MpcError::Aborted(format!("cosigner answer not accepted: {e}")))?
            }
            // The cosigner did not accept the channel message (wrong keys,
            // clocks apart, overload): unauthenticated, so never more than
            // "unavailable".
            _ => Err(MpcError::Unavailable(format!(
                "the cosigner answered HTTP {status}: {}",
                error_text(&bytes)
            ))),
        }
    }
}
