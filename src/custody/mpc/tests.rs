//! Both parties in one process, talking only through encoded messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::custody::eth;

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

    // A replayed request is refused; signing itself still works.
    let link = Link::new(cosigner.clone());
    sign(&link, &share, request(b"once")).await.unwrap();
    let sent = link.last.lock().unwrap().clone();
    for message in sent {
        assert!(cosigner.handle(&message).await.is_err());
    }
    sign(&link, &share, request(b"again")).await.unwrap();
    assert_eq!(store.log.lock().unwrap().len(), 2);
    // Garbage and unknown versions.
    for bad in [vec![], vec![9, 1, 2], vec![1, 0xff, 0xff]] {
        assert!(cosigner.handle(&bad).await.is_err());
    }
}
