//! Histogram `le` and summary `quantile` bounds compared by value when targets are merged.
//!
//! Exporters spell the same bound differently (`le="1"` from one client library, `le="1.0"`
//! from another, or from a newer version of the same). Relabeling and each target's aggregate
//! see the upstream's text, as Prometheus 2 does; only the fan-out merge
//! ([`Aggregator::merge_targets`]) compares bounds by value, so that two targets writing `1` and
//! `1.0` sum into one series. The merged series is written as the upstream wrote it when every
//! input of its family spells each bound one way; when they disagree, every bound of that
//! family is written in one canonical form, Prometheus 3's (`formatOpenMetricsFloat`: Go's
//! shortest `%g`, `.0` added to integers: `1.0`, `0.25`, `1e+06`, `+Inf`). Deciding per family
//! rather than per bound keeps one histogram's buckets spelled one way.
//!
//! The counter state identifies an output series by [`output_of`]: the hash of its key with the
//! bound in canonical form, so the same bound summed under either spelling is one counter.

use std::ops::Range;

use hashbrown::HashMap;

use crate::counters::output_hash;
use crate::exposition::float::write_go_float;
use crate::exposition::parse_go_float;

use super::{Aggregator, Family};

/// The label whose value is a float bound in a family of TYPE `typ` (either format's word):
/// `le` for histograms, `quantile` for summaries (the labels Prometheus 3 normalizes).
pub fn float_label(typ: Option<&str>) -> Option<&'static str> {
    match typ? {
        "histogram" | "gaugehistogram" => Some("le"),
        "summary" => Some("quantile"),
        _ => None,
    }
}

/// Prometheus 3's float label text (`formatOpenMetricsFloat`): Go's shortest `%g`, with `.0`
/// added when that has neither `.` nor `e`; `NaN`, `+Inf`, `-Inf` as such. `None` when `v` is
/// not a float.
pub fn canonical_float_text(v: &str) -> Option<String> {
    let f: f64 = parse_go_float(v)?;
    let mut out = Vec::with_capacity(24);
    write_go_float(&mut out, f);
    if f.is_finite() && !out.iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
    String::from_utf8(out).ok()
}

/// Where the value of label `label` stands in a rendered series key (`name{a="x",le="1"}`, or
/// the quoted form `{"name",a="x"}`): the bytes between its quotes, still escaped. `None`
/// when the key has no such label or is not a rendered key.
pub fn label_value_span(key: &[u8], label: &str) -> Option<Range<usize>> {
    let open = memchr::memchr(b'{', key)?;
    let mut i = open + 1;
    if open == 0 && key.get(i) == Some(&b'"') {
        // The quoted metric name comes first.
        i = closing_quote(key, i + 1)? + 1;
        match key.get(i)? {
            b',' => i += 1,
            _ => return None,
        }
    }
    loop {
        let (name, after) = match key.get(i)? {
            b'"' => {
                let end = closing_quote(key, i + 1)?;
                (&key[i + 1..end], end + 1)
            }
            _ => {
                let eq = i + memchr::memchr(b'=', &key[i..])?;
                (&key[i..eq], eq)
            }
        };
        if key.get(after..after + 2)? != b"=\"" {
            return None;
        }
        let start = after + 2;
        let end = closing_quote(key, start)?;
        if name == label.as_bytes() {
            return Some(start..end);
        }
        match key.get(end + 1)? {
            b',' => i = end + 2,
            _ => return None,
        }
    }
}

/// The index of the `"` that closes a quoted string whose text starts at `from`, skipping
/// escaped characters.
fn closing_quote(key: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', key.get(from..)?)?;
        if key[at] == b'"' {
            return Some(at);
        }
        from = at + 2;
    }
}

/// `key` with the value of `label` written in canonical form into `buf`; false (and `buf`
/// untouched) when the key has no such label, its value is not a float, or it is canonical
/// already.
fn canonical_key(key: &[u8], label: &str, buf: &mut Vec<u8>) -> bool {
    let Some(span) = label_value_span(key, label) else {
        return false;
    };
    let Some(canonical) = std::str::from_utf8(&key[span.clone()])
        .ok()
        .and_then(canonical_float_text)
    else {
        return false;
    };
    if canonical.as_bytes() == &key[span.clone()] {
        return false;
    }
    buf.clear();
    buf.extend_from_slice(&key[..span.start]);
    buf.extend_from_slice(canonical.as_bytes());
    buf.extend_from_slice(&key[span.end..]);
    true
}

/// The counter state's identity of a new output series `key` of a family of TYPE `typ`:
/// [`output_hash`] of the key with its bound (if the family has one) in canonical form, so that
/// targets spelling a bound differently feed one counter.
pub(super) fn output_of(typ: Option<&str>, key: &[u8]) -> u128 {
    if let Some(label) = float_label(typ) {
        let mut buf = Vec::new();
        if canonical_key(key, label, &mut buf) {
            return output_hash(&buf);
        }
    }
    output_hash(key)
}

/// The bound label of family `f` of `agg`, when its current TYPE has one.
fn family_label(agg: &Aggregator, f: &Family) -> Option<&'static str> {
    if f.meta_epoch != agg.epoch {
        return None;
    }
    float_label(f.om_type.or(f.typ))
}

/// Which families the merge writes with canonical bounds: those whose inputs spell some bound
/// in more than one way.
#[derive(Debug, Default)]
struct Respelling {
    /// Family name -> whether its bounds are written canonically.
    families: HashMap<String, bool>,
}

impl Respelling {
    /// Looks at every live series with a bound in `sources`.
    fn decide(sources: &[&Aggregator]) -> Respelling {
        let mut memo: HashMap<Vec<u8>, Option<String>> = HashMap::new();
        // Family -> canonical bound -> the first spelling seen.
        let mut spelled: HashMap<String, HashMap<String, Vec<u8>>> = HashMap::new();
        let mut out = Respelling::default();
        for agg in sources {
            for f in &agg.families {
                let Some(label) = family_label(agg, f) else {
                    continue;
                };
                if out.families.get(f.name.as_str()) == Some(&true) {
                    continue;
                }
                let bounds = spelled.entry_ref(f.name.as_str()).or_default();
                let mut disagree = false;
                for &id in &f.series {
                    if !agg.is_live(id) {
                        continue;
                    }
                    let s = &agg.series[id as usize];
                    let key = &agg.arena[s.start..s.start + s.key_len as usize];
                    let Some(span) = label_value_span(key, label) else {
                        continue;
                    };
                    let text = &key[span];
                    let canonical = memo.entry_ref(text).or_insert_with(|| {
                        std::str::from_utf8(text)
                            .ok()
                            .and_then(canonical_float_text)
                    });
                    let Some(canonical) = canonical else {
                        continue;
                    };
                    match bounds.get(canonical.as_str()) {
                        Some(first) if first.as_slice() != text => {
                            disagree = true;
                            break;
                        }
                        Some(_) => {}
                        None => {
                            bounds.insert(canonical.clone(), text.to_vec());
                        }
                    }
                }
                *out.families.entry_ref(f.name.as_str()).or_default() |= disagree;
            }
        }
        out
    }

    /// The merge key of `key` (family `f` of `agg`): in `buf` when respelled (then true).
    fn key(&self, agg: &Aggregator, f: &Family, key: &[u8], buf: &mut Vec<u8>) -> bool {
        if self.families.get(f.name.as_str()) != Some(&true) {
            return false;
        }
        match family_label(agg, f) {
            Some(label) => canonical_key(key, label, buf),
            None => false,
        }
    }
}

impl Aggregator {
    /// Empties `self` and sums the live series of `sources` (fan-out: one aggregate per
    /// target) into it, comparing histogram and summary bounds by value: see the module
    /// documentation for how a merged bound is spelled.
    pub fn merge_targets(&mut self, sources: &[&Aggregator]) {
        self.clear();
        let respelling = Respelling::decide(sources);
        for &src in sources {
            self.merge_with(src, &mut |f, key, buf| respelling.key(src, f, key, buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{ParseOptions, Parser};
    use crate::pipeline::Pipeline;
    use crate::relabel::Config;

    use super::super::RenderOptions;

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

    #[test]
    fn finds_label_values_in_keys() {
        let at = |key: &str, label: &str| {
            label_value_span(key.as_bytes(), label).map(|r| key[r].to_owned())
        };
        assert_eq!(at("h_bucket{le=\"1\"}", "le").as_deref(), Some("1"));
        assert_eq!(
            at("h_bucket{a=\"x,le=\\\"2\\\"\",le=\"0.5\"}", "le").as_deref(),
            Some("0.5")
        );
        // A value that ends like a label does not fool the scan.
        assert_eq!(
            at("h_bucket{a=\"x,le=\",le=\"3\"}", "le").as_deref(),
            Some("3")
        );
        assert_eq!(
            at("{\"h.b\\\"x\",\"a.b\"=\"1\",le=\"+Inf\"}", "le").as_deref(),
            Some("+Inf")
        );
        assert_eq!(at("h_bucket{a=\"1\"}", "le"), None);
        assert_eq!(at("h_bucket", "le"), None);
        assert_eq!(at("{\"h.b\"}", "le"), None);
    }

    /// One target's aggregate of `text`, parsed as it would be in the server.
    fn target(text: &str) -> Pipeline {
        let mut p = Pipeline::new(&Config::passthrough());
        let mut parser = Parser::new(ParseOptions::default());
        parser.feed(text.as_bytes(), &mut p).unwrap();
        parser.finish(&mut p).unwrap();
        p
    }

    fn merged(texts: &[&str]) -> String {
        let targets: Vec<Pipeline> = texts.iter().map(|t| target(t)).collect();
        let sources: Vec<&Aggregator> =
            targets.iter().map(|p| &p.subsets()[0].aggregator).collect();
        let mut agg = Aggregator::new();
        agg.merge_targets(&sources);
        let mut out = Vec::new();
        agg.render(&mut out, &RenderOptions::default());
        String::from_utf8(out).unwrap()
    }

    /// The spelling rule: a bound is written as the targets wrote it while they agree; when
    /// they disagree, the whole family is written in Prometheus 3's form, summed by value.
    #[test]
    fn bounds_merge_by_value_and_keep_the_upstream_spelling_while_targets_agree() {
        let ints = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2.50\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_count 3\n";
        let floats = "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"2.5\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_count 3\n";
        // Agreeing targets: written as they wrote it.
        assert_eq!(
            merged(&[ints, ints]),
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2.50\"} 4\nh_bucket{le=\"+Inf\"} 6\nh_count 6\n"
        );
        // Disagreeing targets: one series per bound, every bound of the family canonical.
        assert_eq!(
            merged(&[ints, floats]),
            "# TYPE h histogram\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"2.5\"} 4\nh_bucket{le=\"+Inf\"} 6\nh_count 6\n"
        );
        // Summaries by `quantile`; other families' labels are text (an untyped `le` too).
        let s1 = "# TYPE s summary\ns{quantile=\"0.50\"} 1\n# TYPE g gauge\ng{le=\"1\"} 1\n";
        let s2 = "# TYPE s summary\ns{quantile=\"0.5\"} 1\n# TYPE g gauge\ng{le=\"1.0\"} 1\n";
        let out = merged(&[s1, s2]);
        assert!(out.contains("g{le=\"1\"} 1\ng{le=\"1.0\"} 1\n"), "{out}");
        // Two inputs of a quantile: not served, but one series (by value), not two.
        assert!(!out.contains("s{"), "{out}");
        // The counter state sees one output per bound value, whatever the spelling.
        assert_eq!(
            output_of(Some("histogram"), b"h_bucket{le=\"1\"}"),
            output_of(Some("histogram"), b"h_bucket{le=\"1.0\"}")
        );
        assert_ne!(
            output_of(Some("gauge"), b"g{le=\"1\"}"),
            output_of(Some("gauge"), b"g{le=\"1.0\"}")
        );
    }
}
