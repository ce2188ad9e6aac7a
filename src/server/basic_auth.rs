//! HTTP basic auth against bcrypt hashes (`basic_auth_users` of the web config).
//!
//! bcrypt is slow by design: cost 10 takes 50-100 ms of CPU. A Prometheus server scraping every
//! 15 s with the same credentials would pay that at every scrape, so a successful check is
//! remembered: per user, a SHA-256 digest of (the user's bcrypt hash, the password). A request
//! whose password digest matches (compared in constant time) is let through without bcrypt. At
//! most one digest per configured user is held, so the cache cannot grow; a new web config
//! starts with an empty one. The last [`MAX_REMEMBERED_FAILURES`] failed checks are remembered
//! too (a digest of user, hash and password), so a flood repeating a wrong password costs one
//! bcrypt run and is answered 401 at once after that. bcrypt runs on the blocking thread pool,
//! one check at a time, so guessing passwords costs at most one core and never stalls the
//! threads that serve requests.
//!
//! The queue of checks is bounded: at most [`MAX_BCRYPT_CHECKS`] run or wait at once, and a
//! check beyond that fails at once ([`AuthOutcome::Busy`], answered 503 with `Retry-After`).
//! Under a flood of wrong passwords, a legitimate client's first login therefore never waits
//! behind the flood: it is checked after at most [`MAX_BCRYPT_CHECKS`] - 1 others, or told at
//! once to retry. Once it has passed, its later requests are answered from the remembered
//! digest and never queue.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use axum::http::HeaderValue;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// bcrypt checks running or waiting at once; more fail at once with [`AuthOutcome::Busy`].
pub const MAX_BCRYPT_CHECKS: usize = 4;

/// Failed checks remembered (oldest forgotten first): 1024 digests, about 100 KiB.
pub const MAX_REMEMBERED_FAILURES: usize = 1024;

/// Recently failed (user, hash, password) digests, oldest first.
#[derive(Debug, Default)]
struct Failures {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Failures {
    fn insert(&mut self, key: [u8; 32]) {
        if self.set.insert(key) {
            self.order.push_back(key);
            if self.order.len() > MAX_REMEMBERED_FAILURES {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials of this configured user.
    Allowed(String),
    /// No credentials, or wrong ones.
    Denied,
    /// The credentials would need a bcrypt check and [`MAX_BCRYPT_CHECKS`] are already running
    /// or waiting: refused at once, nothing was checked.
    Busy,
}

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
    /// bcrypt checks running or waiting now.
    bcrypt_pending: AtomicUsize,
    /// Checks that failed lately.
    failed: Mutex<Failures>,
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
            bcrypt_pending: AtomicUsize::new(0),
            failed: Mutex::new(Failures::default()),
            decoy: format!("$2b${:02}${DECOY_SALT_AND_DIGEST}", decoy_cost.min(31)),
        })
    }

    /// Whether `authorization` carries the name and password of a configured user; see
    /// [`AuthOutcome`].
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> AuthOutcome {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return AuthOutcome::Denied;
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
        let failure = password_digest(&format!("{user}\0{hash}"), &password);
        let failed_before = || {
            self.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set
                .contains(&failure)
        };
        if remembered() {
            return AuthOutcome::Allowed(user);
        }
        if failed_before() {
            return AuthOutcome::Denied;
        }
        // A place in the bounded queue, or a refusal at once.
        if self.bcrypt_pending.fetch_add(1, Ordering::AcqRel) >= MAX_BCRYPT_CHECKS {
            self.bcrypt_pending.fetch_sub(1, Ordering::AcqRel);
            return AuthOutcome::Busy;
        }
        let _queued = Pending(&self.bcrypt_pending);
        let ok = {
            let _turn = self.bcrypt_turn.lock().await;
            // A request with the same credentials may have been checked while this one waited.
            if remembered() {
                return AuthOutcome::Allowed(user);
            }
            if failed_before() {
                return AuthOutcome::Denied;
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
                .insert(user.clone(), digest);
            return AuthOutcome::Allowed(user);
        }
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(failure);
        AuthOutcome::Denied
    }
}

/// A place in the bcrypt queue, given back when dropped (also when the request is dropped
/// while it waits).
struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        let ok = |o: AuthOutcome| o == AuthOutcome::Allowed("alice".into());
        assert_eq!(auth.check(None).await, AuthOutcome::Denied);
        assert_eq!(
            auth.check(Some(&header("alice", "wrong"))).await,
            AuthOutcome::Denied
        );
        assert!(auth.verified.lock().unwrap().is_empty());
        assert_eq!(
            auth.check(Some(&header("bob", "s3cret:with colon"))).await,
            AuthOutcome::Denied
        );
        assert!(ok(auth
            .check(Some(&header("alice", "s3cret:with colon")))
            .await));
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        // From the cache now; a wrong password still fails.
        assert!(ok(auth
            .check(Some(&header("alice", "s3cret:with colon")))
            .await));
        assert_eq!(
            auth.check(Some(&header("alice", "s3cret"))).await,
            AuthOutcome::Denied
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(auth.check(Some(&bearer)).await, AuthOutcome::Denied);
        let lower = HeaderValue::from_str(
            &header("alice", "s3cret:with colon")
                .to_str()
                .unwrap()
                .replace("Basic", "basic"),
        )
        .unwrap();
        assert!(ok(auth.check(Some(&lower)).await));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_first_requests_costs_one_bcrypt_run() {
        let users = BTreeMap::from([("p".to_owned(), bcrypt::hash("pw", 6).unwrap())]);
        let auth = std::sync::Arc::new(BasicAuth::new(&users).unwrap());
        let tasks: Vec<_> = (0..MAX_BCRYPT_CHECKS)
            .map(|_| {
                let a = std::sync::Arc::clone(&auth);
                tokio::spawn(async move { a.check(Some(&header("p", "pw"))).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), AuthOutcome::Allowed("p".into()));
        }
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_wrong_passwords_is_refused_beyond_the_queue() {
        let users = BTreeMap::from([("p".to_owned(), bcrypt::hash("pw", 8).unwrap())]);
        let auth = std::sync::Arc::new(BasicAuth::new(&users).unwrap());
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let a = std::sync::Arc::clone(&auth);
                tokio::spawn(async move { a.check(Some(&header("p", &format!("no{i}")))).await })
            })
            .collect();
        let mut denied = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                AuthOutcome::Denied => denied += 1,
                AuthOutcome::Busy => busy += 1,
                AuthOutcome::Allowed(u) => panic!("{u} allowed with a wrong password"),
            }
        }
        // Each check that was let in ran bcrypt (every password differs); the rest were refused
        // without one.
        let runs = auth.bcrypt_runs.load(Ordering::Relaxed) as usize;
        assert_eq!(runs, denied);
        assert!(
            busy >= 40 - 2 * MAX_BCRYPT_CHECKS,
            "{busy} refused, {denied} checked"
        );
        assert_eq!(auth.bcrypt_pending.load(Ordering::Relaxed), 0);
        // The queue is free again: the right password passes.
        assert_eq!(
            auth.check(Some(&header("p", "pw"))).await,
            AuthOutcome::Allowed("p".into())
        );
    }

    #[tokio::test]
    async fn a_repeated_wrong_password_costs_one_bcrypt_run() {
        let users = BTreeMap::from([("p".to_owned(), bcrypt::hash("pw", 4).unwrap())]);
        let auth = BasicAuth::new(&users).unwrap();
        for _ in 0..5 {
            assert_eq!(
                auth.check(Some(&header("p", "wrong"))).await,
                AuthOutcome::Denied
            );
            assert_eq!(
                auth.check(Some(&header("nobody", "wrong"))).await,
                AuthOutcome::Denied
            );
        }
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 2);
        let mut f = Failures::default();
        for i in 0..MAX_REMEMBERED_FAILURES + 10 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            f.insert(key);
        }
        assert_eq!(f.set.len(), MAX_REMEMBERED_FAILURES);
        assert_eq!(f.order.len(), MAX_REMEMBERED_FAILURES);
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
