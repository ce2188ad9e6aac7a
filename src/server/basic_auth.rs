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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// A bcrypt hash at the highest configured cost that no password matches, checked for
    /// unknown users so that the answer takes as long as for a known user with a wrong password.
    decoy: String,
    /// bcrypt checks run so far.
    bcrypt_runs: AtomicU64,
}

/// Salt and digest of the decoy hash (bcrypt's base64 alphabet; the last characters carry no
/// unused bits). Built, not computed: computing a hash would cost a bcrypt run per reload.
const DECOY_SALT_AND_DIGEST: &str = "metricgatenosuchuser..metricgatedecoyhashnotapasswor.";

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
            bcrypt_runs: AtomicU64::new(0),
            decoy: format!("$2b${:02}${DECOY_SALT_AND_DIGEST}", decoy_cost.min(31)),
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
            None => self.decoy.clone(),
        };
        let digest = password_digest(&hash, &password);
        let remembered = || {
            known.is_some() && {
                let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                verified
                    .get(&user)
                    .is_some_and(|d| bool::from(d.ct_eq(&digest)))
            }
        };
        if remembered() {
            return true;
        }
        let ok = {
            let _turn = self.bcrypt_turn.lock().await;
            // A request with the same credentials may have passed while this one waited.
            if remembered() {
                return true;
            }
            self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_first_requests_costs_one_bcrypt_run() {
        let users = BTreeMap::from([("p".to_owned(), bcrypt::hash("pw", 6).unwrap())]);
        let auth = std::sync::Arc::new(BasicAuth::new(&users).unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let a = std::sync::Arc::clone(&auth);
                tokio::spawn(async move { a.check(Some(&header("p", "pw"))).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn decoy_is_a_valid_hash_that_costs_a_full_check() {
        let users = BTreeMap::from([("a".to_owned(), bcrypt::hash("x", 5).unwrap())]);
        let auth = BasicAuth::new(&users).unwrap();
        assert!(auth.decoy.starts_with("$2b$05$"), "{}", auth.decoy);
        // Ok(false), not an error: the whole bcrypt computation runs.
        assert!(!bcrypt::verify("x", &auth.decoy).unwrap());
        assert!(!bcrypt::verify("", &auth.decoy).unwrap());
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
