//! Both parties in one process, talking only through encoded messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::domain::eth;

#[derive(Default)]
struct MemoryStore {
    shares: Mutex<HashMap<String, Vec<u8>>>,
    log: Mutex<Vec<CosignRecord>>,
}

#[async_trait::async_trait]
impl ShareStore for MemoryStore {
    async fn put(&self, key_id: &str, share: &KeyShare) -> Result<(), MpcError> {
        let bytes = share.to_bytes()?.to_vec();
        self.shares.lock().unwrap().insert(key_id.into(), bytes);
        Ok(())
    }
    async fn get(&self, key_id: &str) -> Result<Option<KeyShare>, MpcError> {
        let bytes = self.shares.lock().unwrap().get(key_id).cloned();
        bytes.map(|b| KeyShare::from_bytes(&b)).transpose()
    }
    async fn seen(&self, sign_id: &str) -> Result<bool, MpcError> {
        Ok(self
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.sign_id == sign_id))
    }
    async fn record(&self, entry: &CosignRecord) -> Result<(), MpcError> {
        self.log.lock().unwrap().push(entry.clone());
        Ok(())
    }
    async fn freeze(&self, key_id: &str, _reason: &str) -> Result<(), MpcError> {
        self.shares.lock().unwrap().remove(key_id);
        Ok(())
    }
    async fn release(&self, key_id: &str) -> Result<(), MpcError> {
        self.shares.lock().unwrap().remove(key_id);
        Ok(())
    }
}

/// The test policy: the digest is keccak256 of the payload bytes.
struct Keccak;

impl DigestPolicy for Keccak {
    fn digest(&self, _wallet_id: &str, payload: &[u8]) -> Result<[u8; 32], String> {
        if payload.is_empty() {
            return Err("empty payload".into());
        }
        Ok(eth::keccak256(payload))
    }
}

/// Carries messages to the cosigner; can flip one bit of the n-th request.
struct Link {
    cosigner: Arc<Cosigner>,
    sent: AtomicUsize,
    tamper: Option<(usize, usize)>,
    last: Mutex<Vec<Vec<u8>>>,
}

impl Link {
    fn new(cosigner: Arc<Cosigner>) -> Self {
        Self {
            cosigner,
            sent: AtomicUsize::new(0),
            tamper: None,
            last: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl CosignerLink for Link {
    async fn exchange(&self, mut request: Vec<u8>) -> Result<Vec<u8>, MpcError> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        if let Some((which, at)) = self.tamper {
            if which == n {
                let i = at.min(request.len() - 1);
                request[i] ^= 0x01;
            }
        }
        self.last.lock().unwrap().push(request.clone());
        self.cosigner.handle(&request).await
    }
}

fn setup() -> (Arc<MemoryStore>, Arc<Cosigner>) {
    let store = Arc::new(MemoryStore::default());
    let cosigner = Arc::new(Cosigner::new(store.clone(), Arc::new(Keccak)));
    (store, cosigner)
}

fn request(payload: &[u8]) -> SignRequest {
    SignRequest {
        key_id: "k1".into(),
        wallet_id: "w1".into(),
        requested_by: "test".into(),
        payload: payload.to_vec(),
        digest: eth::keccak256(payload),
    }
}

#[tokio::test]
async fn keys_are_generated_jointly_and_sign() {
    let (store, cosigner) = setup();
    let link = Link::new(cosigner);
    let share = generate_key(&link, "k1").await.unwrap();
    assert_eq!(share.index(), 1);
    let theirs = store.get("k1").await.unwrap().unwrap();
    assert_eq!(theirs.index(), 2);
    assert_eq!(theirs.address(), share.address());
    let public = share.public_key().unwrap();
    assert_eq!(
        crate::domain::Address::from_uncompressed_pubkey(&public),
        share.address()
    );

    // A share survives its serialized form.
    let share = KeyShare::from_bytes(&share.to_bytes().unwrap()).unwrap();
    for payload in [b"first".as_slice(), b"second"] {
        let signature = sign(&link, &share, request(payload)).await.unwrap();
        let digest = eth::keccak256(payload);
        assert_eq!(
            eth::recover_address(&digest, &signature),
            Some(share.address())
        );
        assert!(matches!(signature.v(), 27 | 28));
    }
    let log = store.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].wallet_id, "w1");
    assert_eq!(log[0].requested_by, "test");
    assert_eq!(log[0].signature.len(), 132, "{}", log[0].signature);
}

#[tokio::test]
async fn the_cosigner_refuses_a_digest_that_is_not_the_payloads() {
    let (store, cosigner) = setup();
    let link = Link::new(cosigner);
    let share = generate_key(&link, "k1").await.unwrap();
    let mut req = request(b"pay 1 ETH");
    req.digest = eth::keccak256(b"pay 100 ETH");
    let err = sign(&link, &share, req).await.unwrap_err();
    assert!(matches!(err, MpcError::Refused(_)), "{err}");
    // The policy's own refusal, too.
    let err = sign(&link, &share, request(b"")).await.unwrap_err();
    assert!(matches!(err, MpcError::Refused(_)), "{err}");
    assert!(store.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tampered_and_replayed_messages_abort_cleanly() {
    let (store, cosigner) = setup();
    let share = generate_key(&Link::new(cosigner.clone()), "k1")
        .await
        .unwrap();
    // A flipped bit in either signing request: the run fails, nothing panics,
    // nothing is logged as cosigned.
    for (which, at) in [(0, 5), (0, 200), (1, 40), (1, 20_000)] {
        let mut link = Link::new(cosigner.clone());
        link.tamper = Some((which, at));
        assert!(sign(&link, &share, request(b"x")).await.is_err());
    }
    assert!(store.log.lock().unwrap().is_empty());

    // A replayed request is refused; signing itself still works. (On a fresh
    // key: a flipped bit in the OT data above is cheating, and the cosigner
    // froze k1 for it.)
    let share = generate_key(&Link::new(cosigner.clone()), "k2")
        .await
        .unwrap();
    let link = Link::new(cosigner.clone());
    sign(&link, &share, request_for("k2", b"once"))
        .await
        .unwrap();
    let sent = link.last.lock().unwrap().clone();
    for message in sent {
        assert!(cosigner.handle(&message).await.is_err());
    }
    sign(&link, &share, request_for("k2", b"again"))
        .await
        .unwrap();
    assert_eq!(store.log.lock().unwrap().len(), 2);
    // Garbage and unknown versions.
    for bad in [vec![], vec![9, 1, 2], vec![1, 0xff, 0xff]] {
        assert!(cosigner.handle(&bad).await.is_err());
    }
}

/// Corrupts the OT data of the first signing request, as a compromised
/// party 1 could; everything else is carried honestly.
struct CorruptOt {
    cosigner: Arc<Cosigner>,
}

#[async_trait::async_trait]
impl CosignerLink for CorruptOt {
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, MpcError> {
        use super::wire::{decode, encode, Request};
        let request = match decode::<Request>(&request)? {
            Request::SignStart {
                key_id,
                sign_id,
                wallet_id,
                requested_by,
                payload,
                digest,
                mut m1,
            } => {
                m1[0].mul_transmit.u[0][0] ^= 1;
                encode(&Request::SignStart {
                    key_id,
                    sign_id,
                    wallet_id,
                    requested_by,
                    payload,
                    digest,
                    m1,
                })?
            }
            _ => request,
        };
        self.cosigner.handle(&request).await
    }
}

/// A throwaway migrated database: SQLite, and PostgreSQL when it is
/// reachable at TEST_DATABASE_URL (required with WALLETD_REQUIRE_POSTGRES).
async fn databases() -> Vec<(walletd_projections::Db, Option<String>, tempfile::TempDir)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cosigner.db").display());
    let db = crate::store::connect(&url, 4).await.unwrap();
    crate::store::migrate::run(&db).await.unwrap();
    out.push((db, None, dir));
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let required = std::env::var("WALLETD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true");
    match sqlx::PgPool::connect(&admin).await {
        Ok(pool) => {
            let name = format!("walletd_unit_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let (base, query) = admin
                .split_once('?')
                .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
            let cut = base.rfind('/').unwrap_or(base.len());
            let url = format!(
                "{}/{name}{}",
                &base[..cut],
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
            let db = crate::store::connect(&url, 4).await.unwrap();
            crate::store::migrate::run(&db).await.unwrap();
            out.push((db, Some(name), tempfile::tempdir().unwrap()));
        }
        Err(e) if required => panic!("PostgreSQL is required but unreachable: {e}"),
        Err(_) => {}
    }
    out
}

async fn drop_database(name: &str) {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

fn cosigner_keys() -> Option<crate::custody::MasterKeys> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).unwrap();
    Some(crate::custody::MasterKeys::single(
        crate::custody::MasterKey::parse(&hex::encode(b)).unwrap(),
    ))
}

fn request_for(key_id: &str, payload: &[u8]) -> SignRequest {
    SignRequest {
        key_id: key_id.into(),
        ..request(payload)
    }
}

/// DKLs23's ban rule on the cosigner's side: corrupted OT data in party 1's
/// first signing message makes the cosigner freeze its share in its own
/// database and refuse every later request for that key, honest or not,
/// also after a restart; other keys keep working.
#[tokio::test]
async fn the_cosigner_freezes_a_key_when_party_1_cheats() {
    for (db, pg_name, _dir) in databases().await {
        let keys = cosigner_keys();
        let vault = Arc::new(ShareVault::new(db.clone(), keys.clone(), 2));
        let cosigner = Arc::new(Cosigner::new(vault.clone(), Arc::new(Keccak)));
        let honest = Link::new(cosigner.clone());
        let k1 = generate_key(&honest, "k1").await.unwrap();
        let k2 = generate_key(&honest, "k2").await.unwrap();
        sign(&honest, &k1, request_for("k1", b"before"))
            .await
            .unwrap();

        let cheat = CorruptOt {
            cosigner: cosigner.clone(),
        };
        let err = sign(&cheat, &k1, request_for("k1", b"cheat"))
            .await
            .unwrap_err();
        assert!(matches!(err, MpcError::PeerBanned(_)), "{err}");
        let frozen: Option<String> = walletd_projections::with_db!(&db, pool => {
            sqlx::query_scalar("SELECT frozen FROM mpc_shares WHERE key_id = 'k1' AND party = 2")
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert!(
            frozen.is_some_and(|r| !r.is_empty()),
            "the freeze is recorded"
        );

        // The next honest request for k1 is refused, and logs nothing.
        let logged = |db: walletd_projections::Db| async move {
            walletd_projections::with_db!(&db, pool => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cosign_log WHERE key_id = 'k1'")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            })
        };
        assert_eq!(logged(db.clone()).await, 1);
        let err = sign(&honest, &k1, request_for("k1", b"after"))
            .await
            .unwrap_err();
        assert!(matches!(err, MpcError::PeerBanned(_)), "{err}");
        assert_eq!(logged(db.clone()).await, 1);
        // Another key is untouched.
        sign(&honest, &k2, request_for("k2", b"other key"))
            .await
            .unwrap();

        // A restarted cosigner (new process state, same database) refuses too.
        let restarted = Arc::new(Cosigner::new(
            Arc::new(ShareVault::new(db.clone(), keys.clone(), 2)),
            Arc::new(Keccak),
        ));
        let err = sign(
            &Link::new(restarted.clone()),
            &k1,
            request_for("k1", b"again"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, MpcError::PeerBanned(_)), "{err}");
        sign(&Link::new(restarted), &k2, request_for("k2", b"still fine"))
            .await
            .unwrap();
        db.close().await;
        if let Some(name) = pg_name {
            drop_database(&name).await;
        }
    }
}

/// Where DKLs23 key generation spends its time, per party and phase, with
/// the size of each message (`cargo test --lib -- --ignored
/// profile_key_generation --nocapture`; the README's figures come from it).
/// Both parties run on this one thread, one step after the other, exactly
/// as `party1` and `party2` order them.
#[test]
#[ignore]
fn profile_key_generation() {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use dkls23::protocols::dkg::ProofCommitment;
    use dkls23::secp256k1::compute_eth_address;
    use dkls23::DkgSession;

    use super::party1::{parameters, party};
    use super::wire::{decode, encode, Curve, Request, Response};

    const RUNS: u32 = 20;
    let mut t: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut bytes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut time = |name: &'static str, f: &mut dyn FnMut()| {
        let s = Instant::now();
        f();
        *t.entry(name).or_default() += s.elapsed();
    };
    for _ in 0..RUNS {
        let sid = super::party1::random_id();
        let mut p1 = DkgSession::<Curve>::new(parameters(), party(1), sid.to_vec());
        let mut p2 = DkgSession::<Curve>::new(parameters(), party(2), sid.to_vec());
        let (mut f1, mut f2) = (Vec::new(), Vec::new());
        let mut wire1 = Vec::new();
        time("p1 phase 1 (polynomial)", &mut || f1 = p1.phase1());
        time("p1 encode DkgStart", &mut || {
            wire1 = encode(&Request::DkgStart {
                key_id: "k".into(),
                session_id: sid,
                fragment: f1[1],
            })
            .unwrap()
        });
        bytes.insert("DkgStart (p1 → p2)", wire1.len());
        time("p2 decode", &mut || {
            let _: Request = decode(&wire1).unwrap();
        });
        time("p2 phase 1 (polynomial)", &mut || f2 = p2.phase1());
        let mut r2 = None;
        time("p2 phase 2 (commitment, zero shares)", &mut || {
            r2 = Some(p2.phase2(&[f1[1], f2[1]]).unwrap())
        });
        let (own2, zero2_2, bip2_2) = r2.unwrap();
        let mut wire2 = Vec::new();
        time("p2 encode", &mut || {
            wire2 = encode(&Response::DkgStart {
                fragment: f2[0],
                commitment: own2.commitment,
                zero2: zero2_2.clone(),
                bip2: bip2_2.clone(),
            })
            .unwrap()
        });
        bytes.insert("DkgStart answer (p2 → p1)", wire2.len());
        time("p1 decode", &mut || {
            let _: Response = decode(&wire2).unwrap();
        });
        let mut r1 = None;
        time("p1 phase 2 (commitment, zero shares)", &mut || {
            r1 = Some(p1.phase2(&[f1[0], f2[0]]).unwrap())
        });
        let (own1, zero2_1, bip2_1) = r1.unwrap();
        let mut r13 = None;
        time("p1 phase 3 (base OT set-up)", &mut || {
            r13 = Some(p1.phase3().unwrap())
        });
        let (zero3_1, mul3_1, bip3_1) = r13.unwrap();
        let mut p1 = Some(p1);
        let mut wire3 = Vec::new();
        time("p1 encode", &mut || {
            wire3 = encode(&Request::DkgFinish {
                key_id: "k".into(),
                session_id: sid,
                commitment: own1.commitment,
                zero2: zero2_1.clone(),
                bip2: bip2_1.clone(),
                proof: own1.proof.clone(),
                zero3: zero3_1.clone(),
                mul3: mul3_1.clone(),
                bip3: bip3_1.clone(),
            })
            .unwrap()
        });
        bytes.insert("DkgFinish (p1 → p2)", wire3.len());
        time("p2 decode", &mut || {
            let _: Request = decode(&wire3).unwrap();
        });
        let mut r23 = None;
        time("p2 phase 3 (base OT set-up)", &mut || {
            r23 = Some(p2.phase3().unwrap())
        });
        let (zero3_2, mul3_2, bip3_2) = r23.unwrap();
        let mut p2 = Some(p2);
        let proofs = [own1.clone(), own2.clone()];
        let mut joint2 = None;
        time("p2 phase 4 (verify, finish OT, derive)", &mut || {
            joint2 = Some(
                p2.take()
                    .unwrap()
                    .phase4(
                        &proofs,
                        &zero2_1,
                        &zero3_1,
                        &mul3_1,
                        &BTreeMap::from([(party(1), bip2_1.clone()), (party(2), bip2_2.clone())]),
                        &BTreeMap::from([(party(1), bip3_1.clone()), (party(2), bip3_2.clone())]),
                        compute_eth_address,
                    )
                    .unwrap(),
            )
        });
        let mut share2 = None;
        time("p2 serialize share", &mut || {
            let s = KeyShare::new(joint2.take().unwrap().0).unwrap();
            bytes.insert("share (serialized)", s.to_bytes().unwrap().len());
            share2 = Some(s);
        });
        let mut wire4 = Vec::new();
        time("p2 encode", &mut || {
            wire4 = encode(&Response::DkgFinish {
                proof: own2.proof.clone(),
                zero3: zero3_2.clone(),
                mul3: mul3_2.clone(),
                bip3: bip3_2.clone(),
                address: share2.as_ref().unwrap().address().to_checksum(),
            })
            .unwrap()
        });
        bytes.insert("DkgFinish answer (p2 → p1)", wire4.len());
        time("p1 decode", &mut || {
            let _: Response = decode(&wire4).unwrap();
        });
        let proofs = [
            own1.clone(),
            ProofCommitment {
                index: party(2),
                proof: own2.proof.clone(),
                commitment: own2.commitment,
            },
        ];
        time("p1 phase 4 (verify, finish OT, derive)", &mut || {
            let (joint, _) = p1
                .take()
                .unwrap()
                .phase4(
                    &proofs,
                    &zero2_2,
                    &zero3_2,
                    &mul3_2,
                    &BTreeMap::from([(party(1), bip2_1.clone()), (party(2), bip2_2.clone())]),
                    &BTreeMap::from([(party(1), bip3_1.clone()), (party(2), bip3_2.clone())]),
                    compute_eth_address,
                )
                .unwrap();
            assert_eq!(
                KeyShare::new(joint).unwrap().address(),
                share2.as_ref().unwrap().address()
            );
        });
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(RUNS);
    let total: Duration = t.values().sum();
    for party in ["p1", "p2"] {
        let sum: Duration = t
            .iter()
            .filter(|(k, _)| k.starts_with(party))
            .map(|(_, v)| *v)
            .sum();
        println!("{party}: {:.1} ms per key", per(sum));
        for (k, v) in t.iter().filter(|(k, _)| k.starts_with(party)) {
            println!("  {k:<45} {:>7.2} ms", per(*v));
        }
    }
    println!("both: {:.1} ms of CPU per key", per(total));
    for (k, v) in &bytes {
        println!("{k:<30} {v:>8} bytes");
    }
}

/// The cosigner decodes key generation's messages in the key generation
/// lane, everything else in the signing lane.
#[test]
fn requests_are_told_apart_before_decoding() {
    use super::wire::{encode, is_keygen_request, Request};
    let dkg = encode(&Request::DkgStart {
        key_id: "k".into(),
        session_id: [0; 32],
        fragment: super::wire::Scalar::ONE,
    })
    .unwrap();
    assert!(is_keygen_request(&dkg));
    let release = encode(&Request::Release { key_id: "k".into() }).unwrap();
    assert!(!is_keygen_request(&release));
    assert!(!is_keygen_request(&[]));
}
