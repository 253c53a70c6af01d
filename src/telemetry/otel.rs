//! OpenTelemetry trace export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, every
//! tracing span (each HTTP request's `request` span, with its `request_id`
//! and the lines logged in it as span events) goes to that OTLP collector
//! over HTTP (protobuf, `<endpoint>/v1/traces`). The standard `OTEL_*`
//! variables apply (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_BSP_SCHEDULE_DELAY`, …).
//!
//! The HTTP client is awc, which walletd already has, on a thread of its
//! own: the exporter's batch thread blocks on each export, and awc needs an
//! actix runtime. Plain http only (awc is built without TLS here): a
//! collector beside the process (an agent, a sidecar) is the usual set-up.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tokio::sync::{mpsc, oneshot};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::TelemetryError;

pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// How long one export may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Collectors answer an export with a few bytes; anything larger is not one.
const MAX_RESPONSE: usize = 1024 * 1024;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The collector `OTEL_EXPORTER_OTLP_ENDPOINT` names, if set. Errors do not
/// repeat the value: a URL can carry credentials.
pub fn endpoint() -> Result<Option<actix_web::http::Uri>, TelemetryError> {
    let value = match std::env::var(ENDPOINT_VAR) {
        Ok(v) if v.trim().is_empty() => return Ok(None),
        Ok(v) => v.trim().to_string(),
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(TelemetryError::Otel("not UTF-8".into()))
        }
    };
    let not_http = || {
        TelemetryError::Otel(
            "not an http:// URL with a host (e.g. http://127.0.0.1:4318, the collector's OTLP/HTTP port)"
                .into(),
        )
    };
    let uri: actix_web::http::Uri = value.parse().map_err(|_| not_http())?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(Some(uri)),
        Some("https") => Err(TelemetryError::Otel(
            "https is not supported; export over http to a collector beside walletd \
             (e.g. http://127.0.0.1:4318)"
                .into(),
        )),
        _ => Err(not_http()),
    }
}

/// The endpoint as `config check` shows it: without any user or password.
pub fn shown_endpoint() -> String {
    match endpoint() {
        Ok(Some(uri)) => {
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "http://{host}{port}{} (spans exported over OTLP/HTTP)",
                uri.path().trim_end_matches('/')
            )
        }
        Ok(None) => "(not set: no trace export)".into(),
        Err(e) => e.to_string(),
    }
}

/// The layer that hands spans to the exporter, when an endpoint is set.
pub fn layer<S>() -> Result<Option<impl Layer<S>>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if endpoint()?.is_none() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(AwcBridge::start().map_err(|e| TelemetryError::Otel(e.to_string()))?)
        .build()
        .map_err(|e| TelemetryError::Otel(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("walletd");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("walletd");
    let _ = PROVIDER.set(provider);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Exports the spans still queued; called once before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

type Job = (
    Request<Bytes>,
    oneshot::Sender<Result<Response<Bytes>, HttpError>>,
);

/// An [`HttpClient`] whose requests awc sends on a thread of its own.
#[derive(Debug)]
struct AwcBridge {
    jobs: mpsc::UnboundedSender<Job>,
}

impl AwcBridge {
    fn start() -> std::io::Result<AwcBridge> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("otlp-http".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let client = awc::Client::builder().timeout(EXPORT_TIMEOUT).finish();
                    while let Some((request, reply)) = queue.recv().await {
                        let _ = reply.send(send(&client, request).await);
                    }
                })
            })?;
        Ok(AwcBridge { jobs })
    }
}

#[async_trait::async_trait]
impl HttpClient for AwcBridge {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((request, reply))
            .map_err(|_| "the OTLP HTTP thread has stopped")?;
        answer
            .await
            .map_err(|_| "the OTLP HTTP thread has stopped")?
    }
}

/// One request through awc (whose `http` types are another major version
/// than the exporter's: converted by their text and bytes).
async fn send(client: &awc::Client, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = request.into_parts();
    let method = awc::http::Method::from_bytes(parts.method.as_str().as_bytes())?;
    let mut outgoing = client.request(method, parts.uri.to_string());
    for (name, value) in &parts.headers {
        outgoing = outgoing.insert_header((name.as_str(), value.as_bytes()));
    }
    // Errors are described without the request: its headers may carry a
    // collector's credentials (OTEL_EXPORTER_OTLP_HEADERS).
    let mut answer = outgoing
        .send_body(body.to_vec())
        .await
        .map_err(|e| format!("OTLP export: {e}"))?;
    let status = answer.status().as_u16();
    let body = answer
        .body()
        .limit(MAX_RESPONSE)
        .await
        .map_err(|e| format!("OTLP export response: {e}"))?;
    Ok(Response::builder()
        .status(status)
        .body(Bytes::from(body.to_vec()))?)
}
