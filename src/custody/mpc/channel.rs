//! The channel between party 1 (`walletd serve`) and the cosigner
//! (`walletd cosigner`): mutually authenticated with pinned static X25519
//! keys, encrypted, one HTTP request/response per protocol exchange.
//!
//! # Design
//!
//! Each direction of an exchange is one Noise one-way handshake,
//! `Noise_K_25519_ChaChaPoly_BLAKE2s` (the `snow` crate), followed by Noise
//! transport messages:
//!
//! - **Request** (party 1 → cosigner): party 1 is the initiator with its
//!   static key; the cosigner's static key is pinned (`-> s`, `<- s`, then
//!   `-> e, es, ss`). Prologue `walletd/mpc-channel/v1/request`.
//! - **Response** (cosigner → party 1): a second `Noise_K` handshake the
//!   other way round, whose prologue is `walletd/mpc-channel/v1/response`
//!   followed by the request's handshake hash. A response therefore opens
//!   only for the one request it answers (that hash covers the request's
//!   fresh ephemeral key), and only under both pinned keys.
//!
//! Why not one `Noise_KK` handshake (request = message 1, response =
//! message 2)? A Noise message carries at most 65535 bytes, and the
//! protocol's messages are 27–82 KB. Before message 2 arrives, the KK
//! initiator has no transport keys, so the request could not be split
//! without an extra round trip. A one-way pattern gives the sender transport
//! keys at once, so each direction is sent as a handshake message plus as
//! many transport messages as needed, in one HTTP round trip.
//!
//! What it gives: only the holder of the pinned party-1 key can produce a
//! request the cosigner accepts, and only the holder of the pinned cosigner
//! key can produce a response party 1 accepts (the `ss` and `es` terms);
//! everything but the ephemeral keys is encrypted; any change to any byte,
//! any reordering, truncation or extension of the chunks fails
//! authentication (nonces count the chunks; the authenticated header carries
//! the total length). Like every `K` message, a request stays readable to
//! someone who later steals the cosigner's static key, and a response to
//! someone who later steals party 1's; each holds only what that party saw
//! in the protocol anyway.
//!
//! # Framing
//!
//! A body is a sequence of frames, each a big-endian `u16` length followed
//! by one Noise message. Frame 0 is the handshake message; its (encrypted)
//! payload is a header: for a request, the sender's clock (`u64` Unix
//! seconds) and the plaintext length (`u32`); for a response, a status byte
//! (0 = success, else the kind of [`MpcError`]) and the length. Then follow
//! `ceil(length / 65519)` transport frames of at most 65535 bytes each.
//! Bodies are capped at [`MAX_BODY`].
//!
//! # Replays
//!
//! The cosigner accepts each authenticated request once: it remembers the
//! request's handshake hash for twice the clock window and refuses requests
//! whose clock is more than [`CLOCK_WINDOW`] away from its own. The
//! protocol layer refuses a reused session or sign id on its own as well
//! (live sessions, stored keys, the cosign log), and a replayed request's
//! response is readable only by party 1, which drops it: it is bound to a
//! handshake party 1 is no longer waiting for.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use snow::params::NoiseParams;
use snow::Builder;
use zeroize::Zeroizing;

use super::MpcError;

/// Largest HTTP body either side sends or accepts.
pub const MAX_BODY: usize = 256 * 1024;
/// Largest plaintext (request or response) carried by one body.
const MAX_PLAINTEXT: usize = 224 * 1024;
const NOISE_MAX: usize = 65_535;
const TAG: usize = 16;
const CHUNK: usize = NOISE_MAX - TAG;
/// How far the two hosts' clocks may disagree about a request's age.
pub const CLOCK_WINDOW: Duration = Duration::from_secs(120);

const REQUEST_PROLOGUE: &[u8] = b"walletd/mpc-channel/v1/request";
const RESPONSE_PROLOGUE: &[u8] = b"walletd/mpc-channel/v1/response";

static PARAMS: LazyLock<Result<NoiseParams, String>> = LazyLock::new(|| {
    "Noise_K_25519_ChaChaPoly_BLAKE2s"
        .parse()
        .map_err(|e: snow::Error| e.to_string())
});

fn params() -> Result<NoiseParams, ChannelError> {
    PARAMS.clone().map_err(ChannelError::Internal)
}

/// Why a channel message was not accepted. None of these carries key or
/// message bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("malformed channel message: {0}")]
    Malformed(&'static str),
    /// Wrong key, or a byte changed anywhere: Noise cannot tell them apart.
    #[error("channel authentication failed")]
    Authentication,
    #[error("channel message replayed")]
    Replayed,
    #[error("channel message outside the {}-second clock window (check both hosts' clocks)", CLOCK_WINDOW.as_secs())]
    Stale,
    #[error("channel message too large")]
    TooLarge,
    #[error("bad channel key: {0}")]
    BadKey(&'static str),
    #[error("channel: {0}")]
    Internal(String),
}

/// A static X25519 key pair. The private half never leaves this value
/// except through [`ChannelKey::private_hex`] (for `walletd mpc-keygen`).
pub struct ChannelKey {
    private: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelKey(public {})", self.public_hex())
    }
}

impl ChannelKey {
    pub fn generate() -> Result<Self, ChannelError> {
        let pair = Builder::new(params()?)
            .generate_keypair()
            .map_err(|e| ChannelError::Internal(e.to_string()))?;
        let private = Zeroizing::new(pair.private);
        Self::from_private(private.as_slice())
    }

    /// A private key as 64 hex digits (an optional `0x` is ignored).
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        let bytes =
            Zeroizing::new(hex::decode(strip(text)).map_err(|_| ChannelError::BadKey("not hex"))?);
        Self::from_private(&bytes)
    }

    fn from_private(bytes: &[u8]) -> Result<Self, ChannelError> {
        let private: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ChannelError::BadKey("a private key is 32 bytes (64 hex digits)"))?;
        let private = Zeroizing::new(private);
        let public = public_of(&private)?;
        Ok(Self { private, public })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.public)
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.public)
    }

    /// The secret half, hex-encoded. Only for printing a new key once.
    pub fn private_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.private.as_slice()))
    }
}

fn public_of(private: &[u8; 32]) -> Result<[u8; 32], ChannelError> {
    use snow::resolvers::{CryptoResolver, DefaultResolver};
    let mut dh = DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .ok_or_else(|| ChannelError::Internal("X25519 is not available".into()))?;
    dh.set(private);
    dh.pubkey()
        .try_into()
        .map_err(|_| ChannelError::Internal("unexpected X25519 key length".into()))
}

fn strip(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("0x").unwrap_or(t)
}

/// A pinned peer's static public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        let bytes = hex::decode(strip(text)).map_err(|_| ChannelError::BadKey("not hex"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ChannelError::BadKey("a public key is 32 bytes (64 hex digits)"))?;
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

fn noise_err(e: snow::Error) -> ChannelError {
    match e {
        snow::Error::Decrypt => ChannelError::Authentication,
        snow::Error::Input => ChannelError::Malformed("bad Noise message"),
        other => ChannelError::Internal(other.to_string()),
    }
}

/// Writes `header` as a `Noise_K` handshake message and `plaintext` as
/// transport messages; returns the body and the handshake hash.
fn seal(
    own: &ChannelKey,
    peer: &PublicKey,
    prologue: &[u8],
    header: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; 32]), ChannelError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(ChannelError::TooLarge);
    }
    let mut hs = Builder::new(params()?)
        .local_private_key(own.private.as_slice())
        .and_then(|b| b.remote_public_key(&peer.0))
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_initiator())
        .map_err(noise_err)?;
    let mut buf = vec![0u8; NOISE_MAX];
    let chunks = plaintext.len().div_ceil(CHUNK);
    let mut body = Vec::with_capacity(plaintext.len() + 128 + chunks * (2 + TAG));
    let n = hs.write_message(header, &mut buf).map_err(noise_err)?;
    push_frame(&mut body, &buf[..n])?;
    let hash = handshake_hash(hs.get_handshake_hash())?;
    let mut transport = hs.into_transport_mode().map_err(noise_err)?;
    for chunk in plaintext.chunks(CHUNK) {
        let n = transport
            .write_message(chunk, &mut buf)
            .map_err(noise_err)?;
        push_frame(&mut body, &buf[..n])?;
    }
    Ok((body, hash))
}

/// The header, the plaintext and the handshake hash of an opened body.
type Opened = (Vec<u8>, Vec<u8>, [u8; 32]);

/// Reads a body written by [`seal`]: the header and the plaintext, and the
/// handshake hash. `length` reads the plaintext length from the header.
fn open(
    own: &ChannelKey,
    peer: &PublicKey,
    prologue: &[u8],
    body: &[u8],
    length: impl FnOnce(&[u8]) -> Result<usize, ChannelError>,
) -> Result<Opened, ChannelError> {
    if body.len() > MAX_BODY {
        return Err(ChannelError::TooLarge);
    }
    let mut frames = Frames(body);
    let first = frames
        .next_frame()?
        .ok_or(ChannelError::Malformed("empty body"))?;
    let mut hs = Builder::new(params()?)
        .local_private_key(own.private.as_slice())
        .and_then(|b| b.remote_public_key(&peer.0))
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_responder())
        .map_err(noise_err)?;
    let mut buf = vec![0u8; NOISE_MAX];
    let n = hs.read_message(first, &mut buf).map_err(noise_err)?;
    let header = buf[..n].to_vec();
    let total = length(&header)?;
    if total > MAX_PLAINTEXT {
        return Err(ChannelError::TooLarge);
    }
    let hash = handshake_hash(hs.get_handshake_hash())?;
    let mut transport = hs.into_transport_mode().map_err(noise_err)?;
    let mut plaintext = Vec::with_capacity(total);
    for _ in 0..total.div_ceil(CHUNK) {
        let frame = frames
            .next_frame()?
            .ok_or(ChannelError::Malformed("truncated body"))?;
        let n = transport.read_message(frame, &mut buf).map_err(noise_err)?;
        plaintext.extend_from_slice(&buf[..n]);
    }
    if frames.next_frame()?.is_some() || plaintext.len() != total {
        return Err(ChannelError::Malformed("body does not match its length"));
    }
    Ok((header, plaintext, hash))
}

fn handshake_hash(h: &[u8]) -> Result<[u8; 32], ChannelError> {
    h.try_into()
        .map_err(|_| ChannelError::Internal("unexpected handshake hash length".into()))
}

fn push_frame(body: &mut Vec<u8>, message: &[u8]) -> Result<(), ChannelError> {
    let len = u16::try_from(message.len()).map_err(|_| ChannelError::TooLarge)?;
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(message);
    Ok(())
}

struct Frames<'a>(&'a [u8]);

impl<'a> Frames<'a> {
    fn next_frame(&mut self) -> Result<Option<&'a [u8]>, ChannelError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let (len, rest) = self
            .0
            .split_first_chunk::<2>()
            .ok_or(ChannelError::Malformed("truncated frame length"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(ChannelError::Malformed("truncated frame"));
        }
        let (frame, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(Some(frame))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn response_prologue(request_hash: &[u8; 32]) -> Vec<u8> {
    [RESPONSE_PROLOGUE, request_hash.as_slice()].concat()
}

/// Party 1's end: its own static key and the cosigner's pinned public key.
pub struct Party1Channel {
    own: ChannelKey,
    cosigner: PublicKey,
}

/// A request sent and not yet answered.
pub struct PendingRequest {
    hash: [u8; 32],
}

impl Party1Channel {
    pub fn new(own: ChannelKey, cosigner: PublicKey) -> Self {
        Self { own, cosigner }
    }

    /// The HTTP body carrying `request`, and what is needed to open its answer.
    pub fn seal_request(&self, request: &[u8]) -> Result<(Vec<u8>, PendingRequest), ChannelError> {
        let len = u32::try_from(request.len()).map_err(|_| ChannelError::TooLarge)?;
        let mut header = unix_now().to_be_bytes().to_vec();
        header.extend_from_slice(&len.to_be_bytes());
        let (body, hash) = seal(
            &self.own,
            &self.cosigner,
            REQUEST_PROLOGUE,
            &header,
            request,
        )?;
        Ok((body, PendingRequest { hash }))
    }

    /// Opens the cosigner's answer to `pending`: its outcome, as the
    /// cosigner reported it, or why the answer was not accepted.
    pub fn open_response(
        &self,
        pending: PendingRequest,
        body: &[u8],
    ) -> Result<Result<Vec<u8>, MpcError>, ChannelError> {
        let (header, plaintext, _) = open(
            &self.own,
            &self.cosigner,
            &response_prologue(&pending.hash),
            body,
            |h| match h {
                [_, a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d]) as usize),
                _ => Err(ChannelError::Malformed("bad response header")),
            },
        )?;
        let status = header.first().copied().unwrap_or(u8::MAX);
        if status == 0 {
            return Ok(Ok(plaintext));
        }
        let message = String::from_utf8_lossy(&plaintext).into_owned();
        Ok(Err(match status {
            1 => MpcError::Unavailable(message),
            2 => MpcError::Aborted(message),
            3 => MpcError::PeerBanned(message),
            4 => MpcError::Refused(message),
            5 => MpcError::BadMessage(message),
            // The cosigner's own storage failed: retry later.
            6 => MpcError::Unavailable(format!("cosigner storage: {message}")),
            _ => return Err(ChannelError::Malformed("unknown response status")),
        }))
    }
}

/// The cosigner's end: its own static key, party 1's pinned public key, and
/// the requests it has already accepted.
pub struct CosignerChannel {
    own: ChannelKey,
    party1: PublicKey,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

/// Where the answer to an accepted request goes.
pub struct ReplyTo {
    request_hash: [u8; 32],
}

impl CosignerChannel {
    pub fn new(own: ChannelKey, party1: PublicKey) -> Self {
        Self {
            own,
            party1,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn public_hex(&self) -> String {
        self.own.public_hex()
    }

    /// Authenticates, decrypts and de-duplicates one request body.
    pub fn open_request(&self, body: &[u8]) -> Result<(Vec<u8>, ReplyTo), ChannelError> {
        let mut sent_at = 0u64;
        let (_, plaintext, hash) = open(&self.own, &self.party1, REQUEST_PROLOGUE, body, |h| {
            let (time, len) = h
                .split_first_chunk::<8>()
                .ok_or(ChannelError::Malformed("bad request header"))?;
            let len: [u8; 4] = len
                .try_into()
                .map_err(|_| ChannelError::Malformed("bad request header"))?;
            sent_at = u64::from_be_bytes(*time);
            Ok(u32::from_be_bytes(len) as usize)
        })?;
        if unix_now().abs_diff(sent_at) > CLOCK_WINDOW.as_secs() {
            return Err(ChannelError::Stale);
        }
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| ChannelError::Internal("replay table poisoned".into()))?;
        // A request older than the window is refused as stale, so entries
        // need not outlive twice the window.
        seen.retain(|_, at| at.elapsed() < 2 * CLOCK_WINDOW);
        if seen.insert(hash, Instant::now()).is_some() {
            return Err(ChannelError::Replayed);
        }
        Ok((plaintext, ReplyTo { request_hash: hash }))
    }

    /// The body answering `reply` with `outcome`.
    pub fn seal_response(
        &self,
        reply: ReplyTo,
        outcome: &Result<Vec<u8>, MpcError>,
    ) -> Result<Vec<u8>, ChannelError> {
        let (status, plaintext): (u8, Vec<u8>) = match outcome {
            Ok(bytes) => (0, bytes.clone()),
            Err(e) => {
                let (code, message) = match e {
                    MpcError::Unavailable(m) => (1, m),
                    MpcError::Aborted(m) => (2, m),
                    MpcError::PeerBanned(m) => (3, m),
                    MpcError::Refused(m) => (4, m),
                    MpcError::BadMessage(m) => (5, m),
                    MpcError::Storage(m) => (6, m),
                };
                (code, message.as_bytes().to_vec())
            }
        };
        let len = u32::try_from(plaintext.len()).map_err(|_| ChannelError::TooLarge)?;
        let mut header = vec![status];
        header.extend_from_slice(&len.to_be_bytes());
        let (body, _) = seal(
            &self.own,
            &self.party1,
            &response_prologue(&reply.request_hash),
            &header,
            &plaintext,
        )?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Party1Channel, CosignerChannel) {
        let p1 = ChannelKey::generate().unwrap();
        let cs = ChannelKey::generate().unwrap();
        let (p1_pub, cs_pub) = (p1.public(), cs.public());
        (
            Party1Channel::new(p1, cs_pub),
            CosignerChannel::new(cs, p1_pub),
        )
    }

    #[test]
    fn round_trip_of_large_messages_in_chunks() {
        let (p1, cs) = pair();
        for size in [0, 1, CHUNK, CHUNK + 1, 82 * 1024, MAX_PLAINTEXT] {
            let request: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (body, pending) = p1.seal_request(&request).unwrap();
            assert!(body.len() <= MAX_BODY);
            let (opened, reply) = cs.open_request(&body).unwrap();
            assert_eq!(opened, request);
            let response = cs
                .seal_response(reply, &Ok(request.iter().rev().copied().collect()))
                .unwrap();
            let answer = p1.open_response(pending, &response).unwrap().unwrap();
            assert_eq!(answer, request.iter().rev().copied().collect::<Vec<_>>());
        }
        assert_eq!(
            p1.seal_request(&vec![0; MAX_PLAINTEXT + 1]).err(),
            Some(ChannelError::TooLarge)
        );
    }

    #[test]
    fn errors_travel_authenticated() {
        let (p1, cs) = pair();
        let (body, pending) = p1.seal_request(b"x").unwrap();
        let (_, reply) = cs.open_request(&body).unwrap();
        let response = cs
            .seal_response(reply, &Err(MpcError::Refused("no".into())))
            .unwrap();
        assert_eq!(
            p1.open_response(pending, &response).unwrap(),
            Err(MpcError::Refused("no".into()))
        );
    }

    #[test]
    fn every_tampered_byte_fails_and_replays_are_refused() {
        let (p1, cs) = pair();
        let request = vec![7u8; CHUNK + 100];
        let (body, _) = p1.seal_request(&request).unwrap();
        for i in (0..body.len()).step_by(997).chain([body.len() - 1]) {
            let mut bad = body.clone();
            bad[i] ^= 0x01;
            assert!(cs.open_request(&bad).is_err(), "byte {i}");
        }
        assert!(cs.open_request(&body[..body.len() - 1]).is_err());
        let mut longer = body.clone();
        longer.extend_from_slice(&[0, 1, 0]);
        assert!(cs.open_request(&longer).is_err());
        assert!(cs.open_request(&body).is_ok());
        assert_eq!(cs.open_request(&body).err(), Some(ChannelError::Replayed));
    }

    #[test]
    fn unpinned_keys_are_refused_both_ways() {
        let (p1, cs) = pair();
        let (stranger, _) = pair();
        let (body, _) = stranger.seal_request(b"hello").unwrap();
        assert_eq!(
            cs.open_request(&body).err(),
            Some(ChannelError::Authentication)
        );
        // A response made for another request, or by another cosigner.
        let (body1, pending1) = p1.seal_request(b"one").unwrap();
        let (body2, _) = p1.seal_request(b"two").unwrap();
        let _ = cs.open_request(&body1).unwrap();
        let (_, reply2) = cs.open_request(&body2).unwrap();
        let wrong = cs.seal_response(reply2, &Ok(b"for two".to_vec())).unwrap();
        assert_eq!(
            p1.open_response(pending1, &wrong).err(),
            Some(ChannelError::Authentication)
        );
    }

    #[test]
    fn keys_parse_and_derive_their_public_half() {
        let key = ChannelKey::generate().unwrap();
        let again = ChannelKey::parse(&key.private_hex()).unwrap();
        assert_eq!(again.public_hex(), key.public_hex());
        assert_eq!(
            PublicKey::parse(&format!("0x{}", key.public_hex())).unwrap(),
            key.public()
        );
        assert!(ChannelKey::parse("abcd").is_err());
        assert!(PublicKey::parse("zz").is_err());
        assert!(!format!("{key:?}").contains(key.private_hex().as_str()));
    }
}
