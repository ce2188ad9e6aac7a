//! HTTP basic auth against bcrypt hashes (`basic_auth_users` of the web config).
//!
//! bcrypt is slow by design: cost 10 takes 50-100 ms of CPU. A Prometheus server scraping every
//! 15 s with the same credentials would pay that at every scrape, so a successful check is
//! remembered: per user, a SHA-256 digest of (the user's bcrypt hash, the password). A request
//! whose password digest matches (compared in constant time) is let through without bcrypt. At
//! most one digest per configured user is held, so the cache cannot grow; a new web config
//! starts with an empty one. Failed checks are not remembered. bcrypt runs on the blocking
//! thread pool, one check at a time, so guessing passwords costs at most one core and never
//! stalls the threads that serve requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use axum::http::HeaderValue;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The configured users and the checks that succeeded.
#[derive(Debug)]
pub struct BasicAuth {
    /// User name to bcrypt hash.
    users: HashMap<String, String>,
    /// User name to the digest of the last password that passed bcrypt.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Serializes bcrypt runs.
    bcrypt_turn: tokio::sync::Mutex<()>,
    /// A hash of a password nobody knows, at the highest configured cost, checked for unknown
    /// users so that the answer takes as long as for a known user with a wrong password.
    decoy: OnceLock<String>,
    decoy_cost: u32,
}

impl BasicAuth {
    /// Users from `basic_auth_users`; every hash must be a valid bcrypt hash.
    pub fn new(users: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut decoy_cost = 4;
        for (user, hash) in users {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| format!("basic_auth_users.{user}: not a bcrypt hash: {e}"))?;
            decoy_cost = decoy_cost.max(parts.get_cost());
            if user.contains(':') {
                return Err(format!(
                    "basic_auth_users.{user}: a user name can not contain ':'"
                ));
            }
        }
        Ok(Self {
            users: users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            verified: Mutex::new(HashMap::new()),
            bcrypt_turn: tokio::sync::Mutex::new(()),
            decoy: OnceLock::new(),
            decoy_cost: decoy_cost.min(31),
        })
    }

    /// True if `authorization` carries the name and password of a configured user.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let known = self.users.get(&user);
        let hash = match known {
            Some(h) => h.clone(),
            None => self.decoy().to_owned(),
        };
        let digest = password_digest(&hash, &password);
        if known.is_some() {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = verified.get(&user) {
                if bool::from(d.ct_eq(&digest)) {
                    return true;
                }
            }
        }
        let ok = {
            let _turn = self.bcrypt_turn.lock().await;
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        if ok && known.is_some() {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(user, digest);
            return true;
        }
        false
    }

    fn decoy(&self) -> &str {
        self.decoy.get_or_init(|| {
            bcrypt::hash("metric-gate: no such user", self.decoy_cost).unwrap_or_default()
        })
    }
}

fn password_digest(hash: &str, password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    h.update([0u8]);
    h.update(password);
    h.finalize().into()
}

/// `Basic base64(user:password)` to (user, password). The scheme is case-insensitive.
fn parse_basic(v: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let v = v.to_str().ok()?.trim();
    let (scheme, creds) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[tokio::test]
    async fn checks_and_remembers_only_successes() {
        let hash = bcrypt::hash("s3cret:with colon", 4).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), hash)]);
        let auth = BasicAuth::new(&users).unwrap();
        assert!(!auth.check(None).await);
        assert!(!auth.check(Some(&header("alice", "wrong"))).await);
        assert!(auth.verified.lock().unwrap().is_empty());
        assert!(!auth.check(Some(&header("bob", "s3cret:with colon"))).await);
        assert!(
            auth.check(Some(&header("alice", "s3cret:with colon")))
                .await
        );
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        // From the cache now; a wrong password still fails.
        assert!(
            auth.check(Some(&header("alice", "s3cret:with colon")))
                .await
        );
        assert!(!auth.check(Some(&header("alice", "s3cret"))).await);
        let bearer = HeaderValue::from_static("Bearer abc");
        assert!(!auth.check(Some(&bearer)).await);
        let lower = HeaderValue::from_str(
            &header("alice", "s3cret:with colon")
                .to_str()
                .unwrap()
                .replace("Basic", "basic"),
        )
        .unwrap();
        assert!(auth.check(Some(&lower)).await);
    }

    #[test]
    fn invalid_hashes_are_refused() {
        for bad in ["plain", "$2y$10$short", ""] {
            let users = BTreeMap::from([("bob".to_owned(), bad.to_owned())]);
            let e = BasicAuth::new(&users).unwrap_err();
            assert!(
                e.starts_with("basic_auth_users.bob: not a bcrypt hash"),
                "{e}"
            );
        }
    }
}
