//! Issue 12, operators: structured logs. The real binary with its stderr in a
//! file, as under a service manager or in a container.

use serde_json::{json, Value};

use crate::helpers::{into_resp, random_master_key, BinaryServer, TestDb};

/// Every line is a JSON object, and every line logged while a request was
/// handled carries the id the response gave back in `X-Request-Id`: the
/// access line and a line logged deep inside the handler alike.
#[actix_web::test]
async fn json_lines_carry_the_request_id() {
    let Some(tdb) = TestDb::new(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let log_path = tdb.dir.path().join("server.log");
    let api_key = "json-log-key";
    let mut server = BinaryServer::start_with(
        &tdb.url,
        Some(&random_master_key()),
        api_key,
        &[("WALLETD_LOG_FORMAT", "json")],
        &log_path,
    );
    let client = awc::Client::default();
    let res = client
        .post(format!("{}/api/wallets", server.base))
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .insert_header(("X-Request-Id", "trace-me-0042"))
        .send_json(&json!({"userId": "json-log-user"}))
        .await
        .unwrap();
    let created = into_resp(res).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        created.headers.get("x-request-id").unwrap(),
        "trace-me-0042"
    );
    // Without one the server makes one up, and logs it the same way.
    let res = client
        .get(format!("{}/api/wallets/json-log-user", server.base))
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .send()
        .await
        .unwrap();
    let got = into_resp(res).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let generated = got
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!generated.is_empty());
    server.kill();

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
    }
    let of = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let create = of("trace-me-0042");
    let access = create
        .iter()
        .find(|l| l["message"] == "request")
        .unwrap_or_else(|| panic!("no access line for the create:\n{log}"));
    assert_eq!(access["method"], "POST");
    assert_eq!(access["path"], "/api/wallets");
    assert_eq!(access["status"], 200);
    assert!(
        create.iter().any(|l| l["message"] == "key generated"),
        "a line logged inside the handler carries the request id:\n{log}"
    );
    let get = of(&generated);
    assert!(
        get.iter()
            .any(|l| l["message"] == "request" && l["method"] == "GET" && l["status"] == 200),
        "no access line for {generated}:\n{log}"
    );
    // Lines outside any request (start-up, background work) carry none.
    assert!(lines
        .iter()
        .any(|l| l["span"].is_null() && l["message"] != "request"));
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, request spans reach the OTLP
/// collector there: a span named `request` whose `request_id` attribute is
/// the response's `X-Request-Id`, from service `walletd`. The collector is
/// an actix server in the test that keeps what it is sent.
#[actix_web::test]
async fn request_spans_reach_an_otlp_collector() {
    use std::sync::{Arc, Mutex};

    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    let Some(tdb) = TestDb::new(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;
    let received: Received = Arc::default();
    let kept = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let kept = kept.clone();
            async move {
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                kept.lock()
                    .unwrap()
                    .push((req.path().to_string(), content_type, body.to_vec()));
                HttpResponse::Ok()
                    .content_type("application/x-protobuf")
                    .body(Vec::new())
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let collector_handle = server.handle();
    actix_web::rt::spawn(server);

    let log_path = tdb.dir.path().join("server.log");
    let api_key = "otel-key";
    let endpoint = format!("http://{collector}");
    let mut walletd = BinaryServer::start_with(
        &tdb.url,
        Some(&random_master_key()),
        api_key,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            // Export within a fraction of a second instead of 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        &log_path,
    );
    let res = awc::Client::default()
        .post(format!("{}/api/wallets", walletd.base))
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .insert_header(("X-Request-Id", "otel-trace-77"))
        .send_json(&json!({"userId": "otel-user"}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ours = loop {
        let posts = received.lock().unwrap().clone();
        let found = posts.iter().find_map(|(path, content_type, body)| {
            exported_spans(body)
                .into_iter()
                .find(|span| {
                    span.name == "request"
                        && span
                            .attributes
                            .iter()
                            .any(|(k, v)| k == "request_id" && v == "otel-trace-77")
                })
                .map(|span| (format!("{path} {content_type}"), span))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request span exported within 20 s; received {} posts; log:\n{}",
            posts.len(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (target, span) = ours;
    assert_eq!(target, "/v1/traces application/x-protobuf");
    assert_eq!(span.service, "walletd");
    walletd.kill();
    collector_handle.stop(true).await;
}

/// One span of an OTLP export: its service, name and string attributes.
struct ExportedSpan {
    service: String,
    name: String,
    attributes: Vec<(String, String)>,
}

/// The spans of an OTLP/HTTP protobuf trace export.
fn exported_spans(body: &[u8]) -> Vec<ExportedSpan> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use prost::Message;

    let text = |a: &KeyValue| match a.value.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => Some((a.key.clone(), s.clone())),
        _ => None,
    };
    let export = ExportTraceServiceRequest::decode(body)
        .unwrap_or_else(|e| panic!("not an OTLP trace export ({e})"));
    let mut spans = Vec::new();
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter().filter_map(text))
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(ExportedSpan {
                service: service.clone(),
                name: span.name,
                attributes: span.attributes.iter().filter_map(text).collect(),
            });
        }
    }
    spans
}
