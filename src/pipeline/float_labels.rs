//! `le` and `quantile` compared by value: their text rewritten the way Prometheus 3 stores it
//! (see [`super::Pipeline::normalize_float_labels`]).

/// Rewrites float label values to Prometheus 3's canonical text, with a bounded memo: a scrape
/// has a handful of distinct bucket bounds, so this is a lookup per sample.
#[derive(Debug, Clone, Default)]
pub(super) struct FloatLabelNormalizer {
    memo: hashbrown::HashMap<String, String, foldhash::fast::FixedState>,
}

impl FloatLabelNormalizer {
    const MEMO_CAP: usize = 4096;

    /// The canonical text of `v`; `v` itself when it is not a float.
    pub(super) fn normalize<'a>(&'a mut self, v: &'a str) -> &'a str {
        if self.memo.contains_key(v) {
            return self.memo.get(v).map(String::as_str).unwrap_or(v);
        }
        let Some(canonical) = canonical_float_text(v) else {
            return v;
        };
        if self.memo.len() >= Self::MEMO_CAP {
            self.memo.clear();
        }
        self.memo.entry(v.to_owned()).or_insert(canonical)
    }
}

/// Prometheus 3's float label text (`formatOpenMetricsFloat`): Go's shortest `%g`, with `.0`
/// added when that has neither `.` nor `e`; `NaN`, `+Inf`, `-Inf` as such. `None` when `v` is
/// not a float.
pub fn canonical_float_text(v: &str) -> Option<String> {
    let f: f64 = crate::exposition::parse_go_float(v)?;
    let mut out = Vec::with_capacity(24);
    crate::exposition::float::write_go_float(&mut out, f);
    if f.is_finite() && !out.iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_float_labels() {
        for (input, want) in [
            ("1", "1.0"),
            ("0.250", "0.25"),
            ("10", "10.0"),
            ("+Inf", "+Inf"),
            ("Inf", "+Inf"),
            ("1e6", "1e+06"),
            ("0.0001", "0.0001"),
            ("-0", "0.0"),
        ] {
            assert_eq!(
                canonical_float_text(input).as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(canonical_float_text("abc"), None);
    }
}
