//! Histograms whose inputs have different bucket bounds: only the bounds common to every input
//! of an output histogram are served.
//!
//! Buckets are cumulative (`le="b"` counts every observation `<= b`), so the sum of the inputs'
//! `le="b"` buckets is exact for a bound `b` that every input has, and wrong for one that only
//! some inputs have: summed, it counts only those inputs' observations, while the `+Inf`
//! bucket and `_count` count everyone's, and the output is no longer a histogram that
//! `histogram_quantile` reads correctly. Prometheus 3.8 reconciles custom buckets the same way,
//! by intersection.
//!
//! The check costs no per-sample work: every input histogram contributes exactly one sample to
//! each of its buckets, `+Inf` included, so an output bucket whose contribution count is below
//! its histogram's `+Inf` bucket's count lacks some input and is not common to all. This holds
//! for one body (a `labeldrop` merging histograms) and for fan-out merges (counts add). For a
//! carried output the count is its tracked inputs, departed ones within the staleness window
//! included (set by [`super::Aggregator::apply_counters`]), so a bound that a departed input
//! lacked stays hidden until that input is forgotten. An output histogram without a `+Inf`
//! bucket is served as it is (nothing says how many inputs it has).
//!
//! Only counter-like buckets ([`Action::Carry`] with [`Kind::Bucket`]: the `_bucket` series of a
//! `# TYPE histogram` family summed as counters) are checked; untyped `_bucket` series are summed
//! plainly, like every untyped series.

use std::hash::BuildHasher;

use hashbrown::HashMap;

use super::{Aggregator, Series};
use crate::counters::Kind;
use crate::relabel::aggregation::Action;

/// The live bucket series of `agg`'s current scrape that are not common to all inputs of their
/// histogram, by id, sorted (for a binary search). Empty when every histogram's inputs have
/// the same bounds, which a scan of the counts tells without looking at any key.
pub(super) fn uncommon_buckets(agg: &Aggregator) -> Box<[u32]> {
    let mut hidden = Vec::new();
    // Per histogram (the key without `le`): its `+Inf` bucket's contribution count.
    let mut inf: HashMap<u64, u32> = HashMap::new();
    for f in &agg.families {
        let buckets = || {
            f.series
                .iter()
                .map(|&id| (id, &agg.series[id as usize]))
                .filter(|(_, s)| s.epoch == agg.epoch && is_bucket(s))
        };
        // Equal counts throughout the family: every bucket has as many inputs as its `+Inf`.
        let mut counts = buckets().map(|(_, s)| s.count);
        let Some(first) = counts.next() else {
            continue;
        };
        if counts.all(|c| c == first) {
            continue;
        }
        inf.clear();
        let mut key = Vec::new();
        let mut key_of = |s: &Series| {
            key.clear();
            agg.keys.get(s.key).write_to(&mut key);
            le_group(agg, &key)
        };
        for (_, s) in buckets() {
            if let Some((group, true)) = key_of(s) {
                inf.insert(group, s.count);
            }
        }
        for (id, s) in buckets() {
            if let Some((group, false)) = key_of(s) {
                if inf.get(&group).is_some_and(|&n| s.count < n) {
                    hidden.push(id);
                }
            }
        }
    }
    hidden.sort_unstable();
    hidden.into_boxed_slice()
}

impl Aggregator {
    /// True when the live series at `id` is a bucket not common to all inputs of its
    /// histogram (not served).
    #[inline]
    pub(super) fn is_uncommon_bucket(&self, id: u32) -> bool {
        is_bucket(&self.series[id as usize])
            && self.uncommon_bucket_ids().binary_search(&id).is_ok()
    }

    /// Live buckets not served because not every input of their histogram has their bound.
    pub(super) fn uncommon_bucket_count(&self) -> usize {
        self.uncommon_bucket_ids().len()
    }

    fn uncommon_bucket_ids(&self) -> &[u32] {
        self.uncommon_buckets.get_or_init(|| uncommon_buckets(self))
    }
}

/// The counter kind of a carried output served while none of its inputs is seen, from its
/// family's `# TYPE` and its series: a histogram's series with an `le` label is a bucket (and
/// so takes part in the bounds check).
pub(super) fn carried_kind(typ: &str, series: &[u8]) -> Kind {
    if typ == "histogram" && find_le(series).is_some() {
        Kind::Bucket
    } else {
        Kind::Counter
    }
}

fn is_bucket(s: &Series) -> bool {
    s.action == Action::Carry(Kind::Bucket)
}

/// The hash of a bucket series' key without its `le` label (its histogram within the family),
/// and whether its bound is `+Inf`. `None` when the key has no `le` label.
fn le_group(agg: &Aggregator, key: &[u8]) -> Option<(u64, bool)> {
    let (start, value, end) = find_le(key)?;
    let is_inf = std::str::from_utf8(&key[value.0..value.1])
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        == Some(f64::INFINITY);
    Some((agg.hasher.hash_one((&key[..start], &key[end..])), is_inf))
}

/// In a rendered series key (`name{a="x",le="0.5"}`, or `{"name",a="x"}` for a quoted name),
/// the `le` label: where it starts (at the `,` or `{` before it), its value's bounds, and where
/// it ends (at the `,` or `}` after it). Label values are read
/// with their escapes, so a value that contains `le="` is not mistaken for the label.
fn find_le(key: &[u8]) -> Option<(usize, (usize, usize), usize)> {
    let mut p = if key.first() == Some(&b'{') {
        // A quoted metric name first: `{"name"` then `,` or `}`.
        if key.get(1) != Some(&b'"') {
            return None;
        }
        quoted_end(key, 2)? + 1
    } else {
        memchr::memchr(b'{', key)?
    };
    // `p` is at the `{` or the `,` before the next label.
    loop {
        match key.get(p) {
            Some(b'{' | b',') => {}
            _ => return None,
        }
        let start = p + 1;
        let (name, eq) = if key.get(start) == Some(&b'"') {
            let end = quoted_end(key, start + 1)?;
            (&key[start + 1..end], end + 1)
        } else {
            let eq = start + memchr::memchr(b'=', key.get(start..)?)?;
            (&key[start..eq], eq)
        };
        if key.get(eq..eq + 2) != Some(b"=\"") {
            return None;
        }
        let value_end = quoted_end(key, eq + 2)?;
        if name == b"le" {
            return Some((p, (eq + 2, value_end), value_end + 1));
        }
        p = value_end + 1;
    }
}

/// The index of the quote that closes a quoted string whose text starts at `from`.
fn quoted_end(key: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < key.len() {
        match key[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::RenderOptions;
    use crate::exposition::ParseOptions;
    use crate::pipeline::{read_all, Pipeline};
    use crate::relabel::Config;

    /// A histogram `h` with the given bounds and cumulative counts (the last is `+Inf`, also
    /// `_count`), labelled `pod`.
    fn histogram(pod: &str, bounds: &[(&str, u32)]) -> String {
        let mut s = String::from("# TYPE h histogram\n");
        for (le, n) in bounds {
            s.push_str(&format!("h_bucket{{pod=\"{pod}\",le=\"{le}\"}} {n}\n"));
        }
        let count = bounds.last().map_or(0, |b| b.1);
        s.push_str(&format!(
            "h_sum{{pod=\"{pod}\"}} 1\nh_count{{pod=\"{pod}\"}} {count}\n"
        ));
        s
    }

    fn pipeline(yaml: &str) -> Pipeline {
        Pipeline::new(&Config::from_yaml(yaml, "test").unwrap())
    }

    fn feed(p: &mut Pipeline, text: &str) {
        read_all(text.as_bytes(), ParseOptions::default(), p).unwrap();
    }

    fn render(agg: &Aggregator) -> String {
        let mut out = Vec::new();
        agg.render(&mut out, &RenderOptions::default());
        String::from_utf8(out).unwrap()
    }

    const DROP_POD: &str = "metric_relabel_configs: [{action: labeldrop, regex: pod}]";

    #[test]
    fn one_body_serves_only_the_common_bounds() {
        let mut p = pipeline(DROP_POD);
        let body = histogram("a", &[("0.1", 1), ("1", 3), ("+Inf", 4)])
            + &histogram("b", &[("0.1", 2), ("0.5", 5), ("+Inf", 6)])
                .replace("# TYPE h histogram\n", "");
        feed(&mut p, &body);
        let agg = &p.subsets()[0].aggregator;
        assert_eq!(
            render(agg),
            "# TYPE h histogram\nh_bucket{le=\"0.1\"} 3\nh_bucket{le=\"+Inf\"} 10\nh_sum 2\nh_count 10\n"
        );
        assert_eq!(agg.summed_drops().buckets, 2);
        assert_eq!(agg.series_count(), 4);
        // OpenMetrics output serves the same series.
        let mut om = Vec::new();
        agg.render_openmetrics(&mut om, &RenderOptions::default());
        let om = String::from_utf8(om).unwrap();
        assert!(
            !om.contains("le=\"1\"") && !om.contains("le=\"0.5\""),
            "{om}"
        );
        assert!(om.contains("h_bucket{le=\"0.1\"} 3\n"), "{om}");
    }

    #[test]
    fn equal_bounds_and_single_inputs_are_untouched() {
        let mut p = pipeline(DROP_POD);
        let body = histogram("a", &[("1", 1), ("+Inf", 2)])
            + &histogram("b", &[("1", 3), ("+Inf", 4)]).replace("# TYPE h histogram\n", "");
        feed(&mut p, &body);
        let agg = &p.subsets()[0].aggregator;
        assert_eq!(agg.summed_drops().buckets, 0);
        assert!(render(agg).contains("h_bucket{le=\"1\"} 4\n"));
        // Without the labeldrop, each histogram has one input: every bound is served.
        let mut p = pipeline("metric_relabel_configs: []");
        let body = histogram("a", &[("0.1", 1), ("+Inf", 2)])
            + &histogram("b", &[("0.5", 3), ("+Inf", 4)]).replace("# TYPE h histogram\n", "");
        feed(&mut p, &body);
        assert_eq!(p.subsets()[0].aggregator.summed_drops().buckets, 0);
        assert_eq!(p.subsets()[0].aggregator.series_count(), 8);
    }

    #[test]
    fn fan_out_merges_add_the_counts() {
        let a = histogram("x", &[("0.1", 1), ("1", 3), ("+Inf", 4)]);
        let b = histogram("x", &[("0.1", 2), ("1", 4), ("2", 5), ("+Inf", 6)]);
        let c = histogram("x", &[("0.1", 0), ("1", 1), ("2", 1), ("+Inf", 1)]);
        let mut merged = Aggregator::new();
        for body in [&a, &b, &c] {
            let mut p = pipeline("metric_relabel_configs: []");
            feed(&mut p, body);
            merged.merge_from(&p.subsets()[0].aggregator);
        }
        let text = render(&merged);
        assert!(text.contains("h_bucket{le=\"1\",pod=\"x\"} 8\n"), "{text}");
        assert!(!text.contains("le=\"2\""), "{text}");
        assert!(
            text.contains("h_bucket{le=\"+Inf\",pod=\"x\"} 11\n"),
            "{text}"
        );
        assert_eq!(merged.summed_drops().buckets, 1);
        // A later contribution is taken into account (the decision is not stale).
        let mut p = pipeline("metric_relabel_configs: []");
        feed(&mut p, &histogram("x", &[("2", 1), ("+Inf", 1)]));
        merged.merge_from(&p.subsets()[0].aggregator);
        assert_eq!(merged.summed_drops().buckets, 3);
        let text = render(&merged);
        assert!(
            text.contains("h_bucket{le=\"+Inf\",pod=\"x\"} 12\n"),
            "{text}"
        );
        assert!(!text.contains("le=\"0.1\""), "{text}");
    }

    #[test]
    fn carried_kind_of_absent_outputs() {
        assert_eq!(
            carried_kind("histogram", br#"h_bucket{le="1"}"#),
            Kind::Bucket
        );
        assert_eq!(carried_kind("histogram", b"h_count"), Kind::Counter);
        assert_eq!(
            carried_kind("counter", br#"x_total{le="1"}"#),
            Kind::Counter
        );
    }

    fn le(key: &str) -> Option<(String, String, String)> {
        let (start, (v0, v1), end) = find_le(key.as_bytes())?;
        Some((
            key[..start].to_owned(),
            key[v0..v1].to_owned(),
            key[end..].to_owned(),
        ))
    }

    #[test]
    fn finds_the_le_label_and_not_a_value_that_looks_like_it() {
        let s = |a: &str, b: &str, c: &str| Some((a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(le(r#"h_bucket{le="0.5"}"#), s("h_bucket", "0.5", "}"));
        assert_eq!(
            le(r#"h_bucket{a="x",le="+Inf",z="y"}"#),
            s(r#"h_bucket{a="x""#, "+Inf", r#",z="y"}"#)
        );
        // A value ending in `,le=` and one with escaped quotes.
        assert_eq!(
            le(r#"h_bucket{a="x,le=",b="\"le=\"1\\",le="2"}"#),
            s(r#"h_bucket{a="x,le=",b="\"le=\"1\\""#, "2", "}")
        );
        // Quoted names.
        assert_eq!(
            le(r#"{"h.b_bucket","a.b"="x",le="1"}"#),
            s(r#"{"h.b_bucket","a.b"="x""#, "1", "}")
        );
        assert_eq!(le(r#"h_bucket{a="le"}"#), None);
        assert_eq!(le("h_bucket"), None);
        assert_eq!(le(r#"h_bucket{a="unterminated"#), None);
    }
}
