//! `--state-file`: the counter state of every list, kept across metric-gate's restarts.
//!
//! The file holds one [`CounterState::serialize`] blob per list (by list name), in a versioned
//! container with a checksum, so a file from another program, another format version, or one
//! cut short or damaged is refused with an error that names it, instead of being half-read.
//! It is written atomically (a temporary file in the same directory, synced, then renamed over
//! the old one), so a crash while writing leaves the previous file whole.
//!
//! Layout (little-endian): magic `MGSTATE\0`, format version (u32), number of lists (u32), per
//! list its name and its blob (each a u32 length and the bytes), then the xxh3-64 of everything
//! before it (u64).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{CounterState, StateError};

const MAGIC: &[u8; 8] = b"MGSTATE\0";

/// The version of the file's container format (each list's blob has its own version too).
pub const FILE_VERSION: u32 = 1;

/// Why a state file could not be read or written. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading or writing failed.
    #[error("counter state file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a metric-gate state file.
    #[error("counter state file {}: not a metric-gate state file (bad magic bytes)", .path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// Written by a format version this build does not read.
    #[error("counter state file {}: format version {version} is not supported (this build reads version {FILE_VERSION})", .path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it has.
        version: u32,
    },
    /// Cut short, damaged (checksum), or inconsistent.
    #[error("counter state file {}: corrupt: {what}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The file's bytes for `lists` (list name, state).
pub fn encode<'a>(lists: impl IntoIterator<Item = (&'a str, &'a CounterState)>) -> Vec<u8> {
    let lists: Vec<_> = lists.into_iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&(lists.len() as u32).to_le_bytes());
    for (name, state) in lists {
        let blob = state.serialize();
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        out.extend_from_slice(&blob);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Reads the lists of a state file's bytes (`path` names it in errors); inputs unseen for
/// `staleness_ms` are forgotten at the first scrape (see [`CounterState::deserialize`]).
pub fn decode(
    path: &Path,
    bytes: &[u8],
    staleness_ms: u64,
) -> Result<Vec<(String, CounterState)>, StateFileError> {
    let corrupt = |what: &str| StateFileError::Corrupt {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(StateFileError::BadMagic {
            path: path.to_owned(),
        });
    }
    let mut r = &bytes[MAGIC.len()..];
    let version = take_u32(&mut r).ok_or_else(|| corrupt("truncated"))?;
    if version != FILE_VERSION {
        return Err(StateFileError::Version {
            path: path.to_owned(),
            version,
        });
    }
    let Some(body_len) = bytes.len().checked_sub(8) else {
        return Err(corrupt("truncated"));
    };
    let (body, sum) = bytes.split_at(body_len);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(sum);
    if body.len() < MAGIC.len() + 8
        || xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(stored)
    {
        return Err(corrupt("checksum mismatch (truncated or damaged)"));
    }
    let mut r = &body[MAGIC.len() + 4..];
    let n = take_u32(&mut r).ok_or_else(|| corrupt("truncated"))?;
    let mut lists = Vec::new();
    for _ in 0..n {
        let name = take_bytes(&mut r).ok_or_else(|| corrupt("truncated list name"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| corrupt("list name is not UTF-8"))?
            .to_owned();
        let blob = take_bytes(&mut r).ok_or_else(|| corrupt("truncated list state"))?;
        let state = CounterState::deserialize(blob, staleness_ms)
            .map_err(|e: StateError| corrupt(&format!("list {name:?}: {e}")))?;
        lists.push((name, state));
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(lists)
}

fn take_u32(r: &mut &[u8]) -> Option<u32> {
    let (head, rest) = r.split_first_chunk::<4>()?;
    *r = rest;
    Some(u32::from_le_bytes(*head))
}

fn take_bytes<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_u32(r)? as usize;
    if r.len() < n {
        return None;
    }
    let (head, rest) = r.split_at(n);
    *r = rest;
    Some(head)
}

/// Reads the state file at `path`: `Ok(None)` when there is none yet.
pub fn load(
    path: &Path,
    staleness_ms: u64,
) -> Result<Option<Vec<(String, CounterState)>>, StateFileError> {
    match std::fs::read(path) {
        Ok(bytes) => decode(path, &bytes, staleness_ms).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file beside it (same directory, so
/// the rename cannot cross file systems), synced, then renamed over `path`. A reader, or the
/// next start after a crash, sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced (best effort: not every
        // platform can open a directory).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{output_hash, Kind, TargetScrape};

    fn state_with(value: f64) -> CounterState {
        let mut st = CounterState::new(300_000);
        let mut a = TargetScrape::new("a");
        let mut b = TargetScrape::new("b");
        let out = output_hash(b"x_total");
        a.observe(1, out, Kind::Counter, 0, value);
        b.observe(2, out, Kind::Counter, 0, 5.0);
        st.apply(1, 0, &[a, b]).unwrap();
        st
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        assert!(load(&path, 300_000).unwrap().is_none());
        let (s1, s2) = (state_with(10.0), state_with(20.0));
        write_atomic(&path, &encode([("(default)", &s1), ("sub", &s2)])).unwrap();
        let lists = load(&path, 300_000).unwrap().unwrap();
        let names: Vec<&str> = lists.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["(default)", "sub"]);
        let served = |st: &CounterState| st.served(output_hash(b"x_total")).map(|s| s.value());
        assert_eq!(served(&lists[0].1), Some(15.0));
        assert_eq!(served(&lists[1].1), Some(25.0));
        // Overwriting leaves no temporary file behind.
        write_atomic(&path, &encode([("(default)", &s2)])).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        assert_eq!(load(&path, 300_000).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn refuses_other_files_versions_and_damage_naming_the_file() {
        let path = Path::new("/var/lib/metric-gate/state");
        let good = encode([("(default)", &state_with(1.0))]);
        let err = |bytes: &[u8]| decode(path, bytes, 1).unwrap_err().to_string();

        let e = err(b"hello world, not a state");
        assert!(
            e.contains("/var/lib/metric-gate/state") && e.contains("bad magic"),
            "{e}"
        );
        let mut v2 = good.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let e = err(&v2);
        assert!(e.contains("format version 2 is not supported"), "{e}");
        let e = err(&good[..good.len() - 3]);
        assert!(
            e.contains("corrupt") && e.contains("/var/lib/metric-gate/state"),
            "{e}"
        );
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(err(&flipped).contains("checksum mismatch"));
        assert!(err(&good[..10]).contains("corrupt"));
        assert!(err(b"").contains("bad magic"));
        // A damaged blob behind a valid checksum is still refused by the blob's own checks.
        let mut inner = good[..good.len() - 8].to_vec();
        let n = inner.len();
        inner.truncate(n - 4);
        let blob_len_at = 8 + 4 + 4 + 4 + "(default)".len();
        let blob_len = u32::from_le_bytes(inner[blob_len_at..blob_len_at + 4].try_into().unwrap());
        inner[blob_len_at..blob_len_at + 4].copy_from_slice(&(blob_len - 4).to_le_bytes());
        let sum = xxhash_rust::xxh3::xxh3_64(&inner);
        inner.extend_from_slice(&sum.to_le_bytes());
        let e = err(&inner);
        assert!(e.contains("list \"(default)\""), "{e}");
    }
}
