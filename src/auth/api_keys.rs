//! API keys for the server-wallet API. Keys are random 256-bit tokens; only
//! their SHA3-256 hash is stored (a fast hash is right for high-entropy
//! tokens — there is nothing to brute-force). Keys from WALLETD_API_KEYS are
//! hashed at start-up and never kept in the clear.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sha3::{Digest, Sha3_256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use walletd_projections::{with_db, Db};

use super::Principal;

const KEY_PREFIX: &str = "wd_";
/// How long a key found in the database is trusted without asking again
/// (and so how long a revocation takes to reach a running server).
const CACHE_TTL: Duration = Duration::from_secs(30);

pub struct ApiKeys {
    db: Db,
    configured: Vec<([u8; 32], String)>,
    cache: RwLock<HashMap<[u8; 32], (String, Instant)>>,
}

pub struct CreatedKey {
    pub id: String,
    /// Shown once; not stored.
    pub token: String,
}

fn hash(token: &str) -> [u8; 32] {
    Sha3_256::digest(token.as_bytes()).into()
}

impl ApiKeys {
    pub fn new(db: Db, configured: &[String]) -> Self {
        let configured = configured
            .iter()
            .map(|t| {
                let h = hash(t);
                (h, format!("apikey:env-{}", &hex::encode(h)[..8]))
            })
            .collect();
        Self {
            db,
            configured,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// True when any key can possibly authenticate.
    pub fn any_configured(&self) -> bool {
        !self.configured.is_empty()
    }

    pub async fn create(&self, name: &str) -> Result<CreatedKey, sqlx::Error> {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).expect("operating system random number generator");
        let token = format!("{KEY_PREFIX}{}", hex::encode(raw));
        let id = uuid::Uuid::new_v4().to_string();
        let now = crate::domain::Timestamp::now().to_text();
        with_db!(&self.db, pool => {
            sqlx::query("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&id)
                .bind(name)
                .bind(hex::encode(hash(&token)))
                .bind(&now)
                .execute(pool)
                .await?;
        });
        Ok(CreatedKey { id, token })
    }

    /// Every stored key: (id, name, created_at, revoked_at). Never the key.
    pub async fn list(&self) -> Result<Vec<(String, String, String, Option<String>)>, sqlx::Error> {
        Ok(with_db!(&self.db, pool => {
            let rows = sqlx::query("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((r.try_get("id")?, r.try_get("name")?, r.try_get("created_at")?, r.try_get("revoked_at")?));
            }
            out
        }))
    }

    /// Revokes a stored key. Running servers stop accepting it within the
    /// cache lifetime (30 s). Returns false when no live key has that id.
    pub async fn revoke(&self, id: &str) -> Result<bool, sqlx::Error> {
        let now = crate::domain::Timestamp::now().to_text();
        Ok(with_db!(&self.db, pool => {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(&now)
                .execute(pool)
                .await?
                .rows_affected()
                == 1
        }))
    }

    /// The principal for a bearer token, if the token is a live key.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, sqlx::Error> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let h = hash(token);
        let mut found = None;
        for (k, actor) in &self.configured {
            if bool::from(k.ct_eq(&h)) {
                found = Some(actor.clone());
            }
        }
        if found.is_none() {
            if let Some((actor, at)) = self.cache.read().ok().and_then(|c| c.get(&h).cloned()) {
                if at.elapsed() < CACHE_TTL {
                    found = Some(actor);
                }
            }
        }
        if found.is_none() {
            let hex_hash = hex::encode(h);
            let id: Option<String> = with_db!(&self.db, pool => {
                match sqlx::query("SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                    .bind(&hex_hash)
                    .fetch_optional(pool)
                    .await?
                {
                    Some(row) => Some(row.try_get("id")?),
                    None => None,
                }
            });
            if let Some(id) = id {
                let actor = format!("apikey:{id}");
                if let Ok(mut c) = self.cache.write() {
                    c.insert(h, (actor.clone(), Instant::now()));
                }
                found = Some(actor);
            }
        }
        Ok(found.map(|actor| Principal {
            actor,
            auth_method: "api_key",
            role: None,
        }))
    }
}
