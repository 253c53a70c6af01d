//! `GET /metrics`: the Prometheus text walletd exports, parsed and checked.
//!
//! Exact counts come from a `walletd serve` of its own (a separate process,
//! so that its recorder sees only this test's requests); the in-process
//! servers share one recorder with every other test running at the same
//! time, so there only lower bounds and the presence of series are checked.
//! The Grafana dashboard is checked against the series walletd exports.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use walletd::metrics::{Kind, CATALOG};

use crate::backend_tests;
use crate::helpers::{random_master_key, spawn_app_with, Backend, BinaryServer, TestDb};

backend_tests!(
    counts_are_exact_in_a_process_of_its_own,
    in_process_servers_share_one_recorder,
);

/// One sample line: `name{label="value",…} value`.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape: its samples and the `# TYPE` of each family.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut types = HashMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                types.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            samples.push(parse_sample(line));
        }
        Scrape {
            text: text.to_string(),
            samples,
            types,
        }
    }

    /// The samples of `name` carrying every label in `with`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum over the matching samples (0 when there is none).
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).map(|s| s.value).sum()
    }

    /// The one matching sample's value; fails when there is none or several.
    fn one(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, with).collect();
        assert_eq!(found.len(), 1, "{name} {with:?}: {found:?}");
        found[0].value
    }
}

fn parse_sample(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').expect("sample line");
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
    let (name, labels) = match head.split_once('{') {
        None => (head.to_string(), BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').expect("closing brace");
            (name.to_string(), parse_labels(body))
        }
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// `k="v",k2="v2"` with the text format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} of {body}");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape in {body}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

#[test]
fn the_parser_reads_the_text_format() {
    let s = Scrape::parse(
        "# HELP x_total help\n# TYPE x_total counter\n\
         x_total{route=\"/a/{id}\",q=\"say \\\"hi\\\"\\\\\"} 3\nplain 1.5\n",
    );
    assert_eq!(s.types["x_total"], "counter");
    assert_eq!(s.one("x_total", &[("route", "/a/{id}")]), 3.0);
    assert_eq!(
        s.samples[0].labels["q"], "say \"hi\"\\",
        "{:?}",
        s.samples[0]
    );
    assert_eq!(s.one("plain", &[]), 1.5);
}

/// The catalog entry a sample or family name belongs to (a histogram's
/// `_bucket`, `_sum` and `_count` are its own).
fn family(name: &str) -> Option<(&'static str, Kind)> {
    CATALOG.iter().find_map(|&(n, kind, ..)| {
        let own = name == n
            || (kind == Kind::Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(n)));
        own.then_some((n, kind))
    })
}

/// Every walletd family in the scrape is in the catalog, with its kind.
fn check_against_catalog(scrape: &Scrape) {
    for (name, kind) in &scrape.types {
        if !name.starts_with("walletd_") {
            continue;
        }
        let (_, expected) = family(name).unwrap_or_else(|| panic!("{name} is not in CATALOG"));
        let expected = match expected {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        assert_eq!(kind, expected, "{name}");
    }
    for s in &scrape.samples {
        assert!(
            family(&s.name).is_some(),
            "{} is exported but not in CATALOG",
            s.name
        );
    }
}

/// A histogram's buckets rise with `le` and end in `+Inf` equal to its count.
fn check_histogram(scrape: &Scrape, name: &str, with: &[(&str, &str)], count: f64) {
    assert_eq!(scrape.one(&format!("{name}_count"), with), count, "{name}");
    let mut buckets: Vec<(f64, f64)> = scrape
        .matching(&format!("{name}_bucket"), with)
        .map(|s| {
            let le = &s.labels["le"];
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le")
            };
            (bound, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5, "{name}: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));
    assert_eq!(buckets.last().map(|b| b.1), Some(count), "{name}");
    if count > 0.0 {
        assert!(scrape.one(&format!("{name}_sum"), with) > 0.0, "{name}");
    }
}

struct Client {
    base: String,
    api_key: String,
    http: awc::Client,
}

impl Client {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "DELETE" => self.http.delete(url),
            other => panic!("method {other}"),
        }
        .insert_header(("Authorization", format!("Bearer {}", self.api_key)));
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("request sent");
        let bytes = res.body().limit(8 << 20).await.expect("body");
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.send(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn scrape(&self) -> Scrape {
        let mut res = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("scrape sent");
        assert_eq!(res.status().as_u16(), 200);
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(content_type, "text/plain; version=0.0.4");
        let bytes = res.body().limit(8 << 20).await.expect("body");
        Scrape::parse(&String::from_utf8_lossy(&bytes))
    }
}

fn projection_names() -> Vec<&'static str> {
    walletd::projections::views::all()
        .iter()
        .map(|p| p.name())
        .collect()
}

/// A server of its own with MPC server wallets: every count is this test's.
async fn counts_are_exact_in_a_process_of_its_own(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let master = random_master_key();
    let cosigner = random_master_key();
    let api_key = format!("test-key-{}", uuid::Uuid::new_v4().simple());
    let log = db.dir.path().join("walletd.log");
    let server = BinaryServer::start_with(
        &db.url,
        Some(&master),
        &api_key,
        &[
            ("WALLETD_SERVER_WALLET_CUSTODY", "mpc"),
            ("WALLETD_COSIGNER_MASTER_KEY", &cosigner),
            ("WALLETD_MPC_KEY_POOL", "2"),
            ("RUST_LOG", "info"),
        ],
        &log,
    );
    let client = Client {
        base: server.base.clone(),
        api_key: api_key.clone(),
        http: awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish(),
    };
    // Nothing but this scrape has been answered yet.
    let first = client.scrape().await;
    check_against_catalog(&first);
    assert_eq!(first.sum("walletd_http_requests_total", &[]), 0.0);

    let mut private = vec![api_key.clone()];
    let mut wallets = Vec::new();
    for user in ["metrics-user-a", "metrics-user-b"] {
        let (status, body) = client
            .json("POST", "/api/wallets", Some(json!({ "userId": user })))
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["walletId"].as_str().unwrap().to_string();
        private.extend([
            user.to_string(),
            id.clone(),
            body["address"].as_str().unwrap().to_string(),
        ]);
        wallets.push(id);
    }
    for (i, message) in ["one", "two", "three"].iter().enumerate() {
        let id = &wallets[i % 2];
        let (status, body) = client
            .json(
                "POST",
                &format!("/api/wallets/{id}/sign"),
                Some(json!({ "message": message })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    private.push(unknown.clone());
    let (status, _) = client
        .send("GET", &format!("/api/wallets/{unknown}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = client.send("DELETE", "/api/wallets", None).await;
    assert_eq!(status, 405);
    let (status, _) = client.send("GET", "/no/such/path/4711", None).await;
    assert_eq!(status, 404);

    let s = client.scrape().await;
    check_against_catalog(&s);
    let requests = "walletd_http_requests_total";
    let req = |method: &'static str, route: &'static str, status: &'static str| {
        s.sum(
            requests,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    // By route pattern, method and status; the scrape before counts once.
    assert_eq!(req("POST", "/api/wallets", "200"), 2.0);
    assert_eq!(req("POST", "/api/wallets/{id}/sign", "200"), 3.0);
    assert_eq!(req("GET", "/api/wallets/{id}", "404"), 1.0);
    assert_eq!(req("DELETE", "/api/wallets", "405"), 1.0);
    assert_eq!(req("GET", "unmatched", "404"), 1.0);
    assert_eq!(req("GET", "/metrics", "200"), 1.0);
    assert_eq!(s.sum(requests, &[]), 9.0);
    check_histogram(
        &s,
        "walletd_http_request_duration_seconds",
        &[("method", "POST"), ("route", "/api/wallets")],
        2.0,
    );
    check_histogram(
        &s,
        "walletd_http_request_duration_seconds",
        &[("method", "POST"), ("route", "/api/wallets/{id}/sign")],
        3.0,
    );
    // No path, id, address or key in any label: only patterns and fixed words.
    for secret in &private {
        assert!(!s.text.contains(secret.as_str()), "{secret} in /metrics");
    }
    assert!(!s.text.contains("/no/such/path"), "a raw path in a label");

    // Commands by aggregate, name and outcome; no race was lost.
    let commands = "walletd_commands_total";
    let wallet_cmd = |command: &'static str| {
        s.sum(
            commands,
            &[
                ("aggregate", "wallet"),
                ("command", command),
                ("outcome", "ok"),
            ],
        )
    };
    assert_eq!(wallet_cmd("create"), 2.0);
    assert_eq!(wallet_cmd("record_signature"), 3.0);
    assert_eq!(s.sum(commands, &[]), 5.0);
    assert_eq!(s.sum("walletd_concurrency_retries_total", &[]), 0.0);

    // Signing through MPC: two round trips per signature.
    assert_eq!(
        s.one(
            "walletd_signatures_total",
            &[("custody", "mpc"), ("outcome", "ok")]
        ),
        3.0
    );
    check_histogram(
        &s,
        "walletd_signing_duration_seconds",
        &[("custody", "mpc")],
        3.0,
    );
    let trips = "walletd_cosigner_round_trips_total";
    for step in ["sign_start", "sign_finish"] {
        assert_eq!(s.one(trips, &[("step", step), ("outcome", "ok")]), 3.0);
    }
    check_histogram(
        &s,
        "walletd_cosigner_round_trip_duration_seconds",
        &[("step", "sign_start")],
        3.0,
    );

    // The MPC key pool: its target, keys it made (at least the two the
    // creates took), each after a key-generation round trip.
    let mpc = [("custody", "mpc")];
    assert_eq!(s.one("walletd_key_pool_target", &mpc), 2.0);
    let ready = s.one("walletd_key_pool_ready", &mpc);
    assert!((0.0..=2.0).contains(&ready), "{ready}");
    assert_eq!(s.one("walletd_key_pool_waiters", &mpc), 0.0);
    let generated = s.sum(
        "walletd_key_pool_keys_added_total",
        &[("custody", "mpc"), ("source", "generated")],
    );
    assert!(generated >= 2.0, "{generated}");
    for step in ["dkg_start", "dkg_finish"] {
        let n = s.sum(trips, &[("step", step), ("outcome", "ok")]);
        assert!(n >= 2.0, "{step}: {n}");
    }
    check_histogram(
        &s,
        "walletd_create_key_duration_seconds",
        &[("custody", "mpc")],
        2.0,
    );
    // Single-key custody has its pool too (WALLETD_KEY_POOL=0 here).
    assert_eq!(
        s.one("walletd_key_pool_target", &[("custody", "local")]),
        0.0
    );

    // Every projection's lag, read from the database: commands answer only
    // once their events are projected, so none waits.
    for name in projection_names() {
        let p = [("projection", name)];
        assert_eq!(s.one("walletd_projection_lag_events", &p), 0.0, "{name}");
        assert_eq!(s.one("walletd_projection_lag_seconds", &p), 0.0, "{name}");
    }
    assert_eq!(s.one("walletd_projector_stalled", &[]), 0.0);
    // Five commands, one event each, all projected by this process's passes.
    assert_eq!(s.one("walletd_projector_events_total", &[]), 5.0);

    // Database-wide levels and this process's connection pool.
    assert_eq!(s.one("walletd_store_up", &[]), 1.0);
    assert_eq!(s.one("walletd_whitelist_queued", &[]), 0.0);
    assert_eq!(s.one("walletd_whitelist_due", &[]), 0.0);
    assert_eq!(s.one("walletd_whitelist_oldest_due_seconds", &[]), 0.0);
    assert_eq!(s.one("walletd_db_pool_max_connections", &[]), 8.0);
    let open = s.one("walletd_db_pool_connections", &[]);
    let idle = s.one("walletd_db_pool_idle_connections", &[]);
    assert!(open >= 1.0 && idle <= open, "open {open}, idle {idle}");
    assert_eq!(
        s.one(
            "walletd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // The help text comes from the catalog.
    assert!(
        s.text
            .contains("# HELP walletd_commands_total Commands answered"),
        "{}",
        s.text
    );

    // The whitelist queue is the database's: wallets queued by another
    // process (a one-shot app, which records nothing) show in this one's
    // scrape, and its scheduler completes the one that is due at once.
    let settings = crate::helpers::settings(&db, Some(master.clone()), &api_key);
    let other = walletd::app::App::build_one_shot(settings)
        .await
        .expect("one-shot app");
    let meta = walletd::store::CommandMeta::system("metrics-test");
    let now = walletd::domain::Timestamp::now();
    for (id, delay_secs) in [(&wallets[0], 0), (&wallets[1], 3600)] {
        other
            .wallets
            .execute(
                walletd::domain::WalletId::parse(id).unwrap(),
                walletd::domain::wallet::WalletCommand::QueueWhitelist {
                    at: now,
                    delay_secs,
                },
                &meta,
            )
            .await
            .expect("queued");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = client.scrape().await;
        if s.sum("walletd_whitelist_completed_total", &[]) >= 1.0 {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the due wallet was not whitelisted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    check_against_catalog(&s);
    assert_eq!(s.one("walletd_whitelist_completed_total", &[]), 1.0);
    assert_eq!(wallet_cmd_in(&s, "complete_whitelist"), 1.0);
    // Queued by the other process: not counted by this one.
    assert_eq!(wallet_cmd_in(&s, "queue_whitelist"), 0.0);
    assert_eq!(s.one("walletd_whitelist_queued", &[]), 1.0);
    assert_eq!(s.one("walletd_whitelist_due", &[]), 0.0);
    assert_eq!(s.one("walletd_whitelist_oldest_due_seconds", &[]), 0.0);
    // Two hours on, the one left is due, and has been for about an hour.
    let later = now.plus_seconds(7200);
    let stats = walletd::projections::queries::whitelist_queue_stats(&other.db, &later.to_text())
        .await
        .unwrap();
    assert_eq!((stats.queued, stats.due), (1, 1));
    assert_eq!(
        stats.oldest_due.as_deref(),
        Some(now.plus_seconds(3600).to_text().as_str())
    );
    walletd::app::App::finish(other).await;
}

/// Commands on wallets named `command` that answered ok.
fn wallet_cmd_in(s: &Scrape, command: &str) -> f64 {
    s.sum(
        "walletd_commands_total",
        &[
            ("aggregate", "wallet"),
            ("command", command),
            ("outcome", "ok"),
        ],
    )
}

/// Servers in one process share its recorder: each serves /metrics, and
/// what one counted shows in the other's scrape.
async fn in_process_servers_share_one_recorder(b: Backend) {
    let Some(first) = spawn_app_with(b, |_| {}).await else {
        return;
    };
    let Some(second) = spawn_app_with(b, |s| s.key_pool = 3).await else {
        return;
    };
    let created = first.create_wallet("metrics-in-process").await;
    let id = created["walletId"].as_str().unwrap().to_string();
    let r = first
        .post_json(
            &format!("/api/wallets/{id}/sign"),
            &json!({ "message": "in process" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for app in [&first, &second] {
        let client = Client {
            base: app.base.clone(),
            api_key: app.api_key.clone(),
            http: app.client.clone(),
        };
        let s = client.scrape().await;
        check_against_catalog(&s);
        // Other tests run in this process too: at least this test's.
        let created = s.sum(
            "walletd_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/wallets"),
                ("status", "200"),
            ],
        );
        assert!(created >= 1.0, "{created}");
        let signed = s.sum(
            "walletd_signatures_total",
            &[("custody", "local"), ("outcome", "ok")],
        );
        assert!(signed >= 1.0, "{signed}");
        for name in projection_names() {
            s.one("walletd_projection_lag_events", &[("projection", name)]);
        }
        for secret in [&id, &app.api_key, &"metrics-in-process".to_string()] {
            assert!(!s.text.contains(secret.as_str()), "{secret} in /metrics");
        }
    }
    // Levels sampled at the scrape: the scraped server's pools.
    let client = Client {
        base: second.base.clone(),
        api_key: second.api_key.clone(),
        http: second.client.clone(),
    };
    let s = client.scrape().await;
    s.one("walletd_key_pool_ready", &[("custody", "local")]);
    assert_eq!(s.one("walletd_store_up", &[]), 1.0);
}

#[actix_web::test]
async fn metrics_can_be_turned_off() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.metrics = walletd::config::MetricsMode::Off;
    })
    .await
    else {
        return;
    };
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["success"], false);
}

/// Every series the dashboard queries is one walletd exports, and it shows
/// every series walletd exports (the build info aside).
#[test]
fn the_grafana_dashboard_queries_exported_series() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana-walletd.json");
    let text = std::fs::read_to_string(path).expect("dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    // The Prometheus datasource is a variable, so it can be pointed anywhere.
    let templating = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        templating
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = std::collections::BTreeSet::new();
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("walletd_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let (family, _) =
                family(name).unwrap_or_else(|| panic!("{name} in {expr:?} is not exported"));
            used.insert(family);
            rest = &tail[end..];
        }
    }
    for &(name, ..) in CATALOG {
        if name != walletd::metrics::BUILD_INFO {
            assert!(used.contains(name), "the dashboard does not show {name}");
        }
    }
    // Every panel's datasource is the variable.
    let mut datasources = Vec::new();
    collect_key(&dashboard["panels"], "datasource", &mut datasources);
    for ds in datasources {
        assert_eq!(ds["uid"], "${datasource}", "{ds}");
    }
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

fn collect_key(v: &Value, key: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key {
                    out.push(child.clone());
                } else {
                    collect_key(child, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_key(i, key, out)),
        _ => {}
    }
}
