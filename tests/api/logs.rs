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
