//! The counter state as bytes, for `--state-file`: a versioned little-endian format (magic,
//! version, then scrape clock, targets, families, outputs, inputs), written whole and read back
//! with every count and index checked, so a damaged file is refused, never trusted.

use super::*;

/// A state blob that [`CounterState::deserialize`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not a metric-gate counter state.
    #[error("not a metric-gate counter state (bad magic bytes)")]
    BadMagic,
    /// Written by another version of the format.
    #[error("counter state format version {0} is not supported (this build reads version {FORMAT_VERSION})")]
    Version(u32),
    /// Shorter than its own counts say.
    #[error("counter state is truncated")]
    Truncated,
    /// Inconsistent content.
    #[error("counter state is corrupt: {0}")]
    Corrupt(&'static str),
}

const MAGIC: &[u8; 8] = b"MGCNTST\0";
/// The version of [`CounterState::serialize`]'s format.
pub const FORMAT_VERSION: u32 = 1;

impl CounterState {
    /// The state as bytes, for `--state-file`: a versioned little-endian format (magic, version,
    /// then scrape clock, targets, families, outputs, inputs). Sequence numbers are not kept.
    pub fn serialize(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + self.inputs.len() * 32));
        w.0.extend_from_slice(MAGIC);
        w.u32(FORMAT_VERSION);
        w.u64(self.staleness_ms);
        w.u32(self.epoch);
        w.i64(self.last_now_ms.unwrap_or(i64::MIN));
        w.u32(self.times.len() as u32);
        for &(e, t) in &self.times {
            w.u32(e);
            w.i64(t);
        }
        let s = &self.stats;
        for n in [
            s.resets,
            s.target_restarts,
            s.inputs_expired,
            s.outputs_expired,
            s.first_samples_skipped,
            s.non_finite,
            s.scrapes_refused,
        ] {
            w.u64(n);
        }
        w.u32(self.targets.len() as u32);
        let mut targets: Vec<_> = self.targets.iter().collect();
        targets.sort_unstable_by_key(|(&key, _)| key);
        for (&key, t) in targets {
            w.u128(key);
            w.f64(t.start.unwrap_or(f64::NAN));
            w.u32(t.seen);
            w.u32(t.restart);
        }
        w.u32(self.families.len() as u32);
        for f in &self.families {
            w.bytes(f.name.as_bytes());
            w.bytes(f.typ.as_bytes());
            w.bytes(f.help.as_bytes());
        }
        // Live outputs only, renumbered densely; inputs refer to the new numbers.
        let mut renumber = vec![u32::MAX; self.outputs.len()];
        let mut live = Vec::with_capacity(self.outputs.len());
        for (old, o) in self.outputs.iter().enumerate().filter(|(_, o)| o.alive) {
            renumber[old] = live.len() as u32;
            live.push(o);
        }
        w.u32(live.len() as u32);
        for o in live {
            w.u128(o.hash());
            let (naive, comp) = o.total.to_parts();
            w.f64(naive);
            w.f64(comp);
            w.f64(o.raw);
            w.u32(o.seen);
            w.u32(o.multi);
            // Was the epoch that created the output; only its own scrape used it, and a
            // loaded state applies none of its old scrapes again.
            w.u32(0);
            w.0.push(u8::from(o.carried));
            match o.description {
                Some(d) => {
                    w.0.push(1);
                    w.u32(self.descriptions.family(d));
                    w.bytes(&self.descriptions.get(d));
                }
                None => w.0.push(0),
            }
        }
        w.u32(self.inputs.len() as u32);
        for r in &self.inputs {
            w.u128(r.key);
            w.f64(r.last);
            w.u32(r.seen);
            w.u32(renumber[r.output as usize]);
        }
        w.0
    }

    /// Restores a state from [`CounterState::serialize`]'s bytes, with the staleness window
    /// given now (a changed flag wins over the stored one). The first scrape applied after
    /// loading accepts any sequence number. Times are compared with the new process's clock,
    /// so inputs that were not seen for the window while metric-gate was down are forgotten at
    /// the first scrape.
    pub fn deserialize(bytes: &[u8], staleness_ms: u64) -> Result<CounterState, StateError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(StateError::BadMagic);
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(StateError::Version(version));
        }
        let _stored_staleness = r.u64()?;
        let mut st = CounterState::new(staleness_ms);
        st.epoch = r.u32()?;
        let last_now = r.i64()?;
        st.last_now_ms = (last_now != i64::MIN).then_some(last_now);
        let n = r.count(12)?;
        for _ in 0..n {
            let e = r.u32()?;
            let t = r.i64()?;
            st.times.push_back((e, t));
        }
        st.stats.resets = r.u64()?;
        st.stats.target_restarts = r.u64()?;
        st.stats.inputs_expired = r.u64()?;
        st.stats.outputs_expired = r.u64()?;
        st.stats.first_samples_skipped = r.u64()?;
        st.stats.non_finite = r.u64()?;
        st.stats.scrapes_refused = r.u64()?;
        let n = r.count(32)?;
        for _ in 0..n {
            let key = r.u128()?;
            let start = r.f64()?;
            let seen = r.u32()?;
            let restart = r.u32()?;
            st.targets.insert(
                key,
                TargetRecord {
                    start: (!start.is_nan()).then_some(start),
                    seen,
                    restart,
                },
            );
        }
        let n = r.count(12)?;
        for _ in 0..n {
            let name = r.string()?;
            let typ = r.string()?;
            let help = r.string()?;
            if st.family_index.contains_key(name.as_str()) {
                return Err(StateError::Corrupt("duplicate family"));
            }
            st.intern_family(&name, &typ, &help);
        }
        let n = r.count(54)?;
        for idx in 0..n {
            let hash = r.u128()?;
            let naive = r.f64()?;
            let comp = r.f64()?;
            let raw = r.f64()?;
            let seen = r.u32()?;
            let multi = r.u32()?;
            let _created = r.u32()?;
            let carried = r.u8()? != 0;
            let description = match r.u8()? {
                0 => None,
                _ => {
                    let family = r.u32()?;
                    if family as usize >= st.families.len() {
                        return Err(StateError::Corrupt("output refers to an unknown family"));
                    }
                    let series = r.take_len()?;
                    Some(st.descriptions.insert(family, series))
                }
            };
            let outputs = &st.outputs;
            if st
                .output_index
                .find(low_bits(hash), |&i| outputs[i as usize].hash() == hash)
                .is_some()
            {
                return Err(StateError::Corrupt("duplicate output"));
            }
            st.outputs.push(OutputRecord {
                total: Sum::from_parts(naive, comp),
                raw,
                seen,
                multi,
                carried,
                description,
                ..OutputRecord::new(hash, false)
            });
            let outputs = &st.outputs;
            st.output_index
                .insert_unique(low_bits(hash), idx as u32, |&i| {
                    low_bits(outputs[i as usize].hash())
                });
            if carried {
                st.stats.outputs_carried += 1;
            }
        }
        let n = r.count(32)?;
        st.inputs.reserve_exact(n);
        st.min_seen = st.epoch;
        for _ in 0..n {
            let key = r.u128()?;
            let last = r.f64()?;
            let seen = r.u32()?;
            let output = r.u32()?;
            let Some(out) = st.outputs.get_mut(output as usize) else {
                return Err(StateError::Corrupt("input refers to an unknown output"));
            };
            out.inputs += 1;
            if st.find_input(key).is_some() {
                return Err(StateError::Corrupt("duplicate input"));
            }
            st.min_seen = st.min_seen.min(seen);
            st.insert_input(InputRecord {
                key,
                last,
                seen,
                output,
            });
        }
        if r.pos != bytes.len() {
            return Err(StateError::Corrupt("trailing bytes"));
        }
        // Outputs without inputs expire at the next sweep if they are old enough.
        st.orphans = st.outputs.iter().any(|o| o.inputs == 0);
        Ok(st)
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.pos.checked_add(n).ok_or(StateError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(StateError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, StateError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, StateError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, StateError> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left, so a
    /// corrupt count cannot make the reader reserve unbounded memory.
    fn count(&mut self, min_size: usize) -> Result<usize, StateError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.pos {
            return Err(StateError::Truncated);
        }
        Ok(n)
    }
    fn take_len(&mut self) -> Result<&'a [u8], StateError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, StateError> {
        let b = self.take_len()?;
        String::from_utf8(b.to_vec()).map_err(|_| StateError::Corrupt("family text is not UTF-8"))
    }
}
