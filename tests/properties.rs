//! Property tests of the whole pipeline:
//! - aggregation is order-independent: the same samples in any order, cut into any chunks, split
//!   across any number of fan-out targets merged in any order, or served from the series cache
//!   after a scrape in another order, give the same sums, and those sums are what a plain model
//!   of `sum without(...)` computes;
//! - random relabel programs (every action, random fields, valid or not) never panic: the
//!   configuration either loads or is refused with a message, and a loaded one turns valid input
//!   into output that parses again, with no more series than went in.

use std::collections::BTreeMap;

use metric_gate::aggregate::{Aggregator, RenderOptions};
use metric_gate::exposition::Sink;
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;
use testkit::checks;

/// Output series, comparable: name, sorted labels, value.
type Key = (String, Vec<(String, String)>);

fn feed<S: Sink>(text: &[u8], chunk: usize, sink: &mut S) -> Result<(), String> {
    checks::feed(text, &[chunk], sink).map_err(|e| e.to_string())
}

/// Renders an aggregate and parses it back into a map; a duplicate output series is a failure.
fn output(agg: &Aggregator) -> Result<BTreeMap<Key, f64>, String> {
    let mut out = Vec::new();
    agg.render(&mut out, &RenderOptions::default());
    let mut c = checks::Record::default();
    feed(&out, out.len(), &mut c).map_err(|e| {
        format!(
            "output does not parse: {e}\n{}",
            String::from_utf8_lossy(&out)
        )
    })?;
    let mut map = BTreeMap::new();
    for mut s in c.samples {
        s.labels.sort();
        let key = (s.name, s.labels);
        if map.insert(key.clone(), s.value).is_some() {
            return Err(format!(
                "duplicate output series {key:?}\n{}",
                String::from_utf8_lossy(&out)
            ));
        }
    }
    Ok(map)
}

// ----------------------------------------------------------------------------------------------
// Aggregation is order-independent

const SUM_CONFIG: &str = "
metric_relabel_configs:
- action: labeldrop
  regex: path
by_code:
- action: labelkeep
  regex: __name__|code
";

/// One input sample: metric, path, code, optional method, value. Values are small integers so
/// that every summation order gives the exact same float.
#[derive(Debug, Clone)]
struct In {
    metric: usize,
    path: usize,
    code: usize,
    method: Option<usize>,
    value: u32,
}

const METRICS: [&str; 3] = ["req_total", "bytes_total", "errors"];
const PATHS: [&str; 4] = ["/", "/api", "/api/v1", "/x y"];
const CODES: [&str; 3] = ["200", "404", "500"];
const METHODS: [&str; 2] = ["GET", "POST"];

fn sample_in() -> impl Strategy<Value = In> {
    (
        0..METRICS.len(),
        0..PATHS.len(),
        0..CODES.len(),
        proptest::option::of(0..METHODS.len()),
        0u32..1_000_000,
    )
        .prop_map(|(metric, path, code, method, value)| In {
            metric,
            path,
            code,
            method,
            value,
        })
}

/// Exposition text of the samples in the given order. Labels are written in a per-sample order
/// that depends on the sample, so both parser layouts and unsorted label blocks are exercised.
fn text_of(samples: &[In]) -> Vec<u8> {
    let mut out = String::new();
    for s in samples {
        let mut labels = vec![
            format!("path=\"{}\"", PATHS[s.path]),
            format!("code=\"{}\"", CODES[s.code]),
        ];
        if let Some(m) = s.method {
            labels.push(format!("method=\"{}\"", METHODS[m]));
        }
        if s.value % 2 == 1 {
            labels.reverse();
        }
        out.push_str(&format!(
            "{}{{{}}} {}\n",
            METRICS[s.metric],
            labels.join(","),
            s.value
        ));
    }
    out.into_bytes()
}

/// What `sum without(path)` and `sum by(code)` give, computed directly.
fn model(samples: &[In]) -> [BTreeMap<Key, f64>; 2] {
    let mut without_path = BTreeMap::<Key, f64>::new();
    let mut by_code = BTreeMap::<Key, f64>::new();
    for s in samples {
        let name = METRICS[s.metric].to_owned();
        let mut labels = vec![("code".to_owned(), CODES[s.code].to_owned())];
        *by_code.entry((name.clone(), labels.clone())).or_default() += f64::from(s.value);
        if let Some(m) = s.method {
            labels.push(("method".to_owned(), METHODS[m].to_owned()));
        }
        *without_path.entry((name, labels)).or_default() += f64::from(s.value);
    }
    [without_path, by_code]
}

fn outputs(pipeline: &Pipeline) -> Result<Vec<BTreeMap<Key, f64>>, String> {
    pipeline
        .subsets()
        .iter()
        .map(|s| output(&s.aggregator))
        .collect()
}

/// Samples in some order, and the same in another. A series appears at most once: the same
/// series twice in one body keeps its first sample (as in Prometheus), which depends on order.
fn shuffled_pair() -> impl Strategy<Value = (Vec<In>, Vec<In>)> {
    proptest::collection::vec(sample_in(), 0..80)
        .prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|s| seen.insert((s.metric, s.path, s.code, s.method)));
            v
        })
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sums_do_not_depend_on_order_or_chunking(
        (original, shuffled) in shuffled_pair(),
        chunk_a in 1usize..200,
        chunk_b in 1usize..200,
    ) {
        let config = Config::from_yaml(SUM_CONFIG, "test").expect("valid config");
        let want = model(&original).to_vec();

        let mut a = Pipeline::new(&config);
        feed(&text_of(&original), chunk_a, &mut a).map_err(TestCaseError::fail)?;
        let mut b = Pipeline::new(&config);
        feed(&text_of(&shuffled), chunk_b, &mut b).map_err(TestCaseError::fail)?;

        prop_assert_eq!(&outputs(&a).map_err(TestCaseError::fail)?, &want);
        prop_assert_eq!(&outputs(&b).map_err(TestCaseError::fail)?, &want);
    }

    #[test]
    fn fan_out_merge_does_not_depend_on_split_or_merge_order(
        (original, shuffled) in shuffled_pair(),
        targets in 1usize..5,
        assignment in proptest::collection::vec(0usize..5, 80),
        merge_order in Just((0..5).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        // Each sample goes to one target (like pods of a headless Service); each target is parsed
        // on its own and the aggregates are merged as dns+ mode does.
        let config = Config::from_yaml(SUM_CONFIG, "test").expect("valid config");
        let mut parts = vec![Vec::new(); targets];
        for (i, s) in shuffled.iter().enumerate() {
            parts[assignment[i] % targets].push(s.clone());
        }
        let mut runs = Vec::new();
        for part in &parts {
            let mut p = Pipeline::new(&config);
            feed(&text_of(part), 61, &mut p).map_err(TestCaseError::fail)?;
            runs.push(p);
        }
        let order: Vec<usize> = merge_order.into_iter().filter(|&t| t < targets).collect();
        let mut merged = Vec::new();
        for subset in 0..2 {
            let mut agg = Aggregator::new();
            for &t in &order {
                agg.merge_from(&runs[t].subsets()[subset].aggregator);
            }
            merged.push(output(&agg).map_err(TestCaseError::fail)?);
        }
        prop_assert_eq!(merged, model(&original).to_vec());
    }

    #[test]
    fn cached_repeat_scrape_in_another_order_gives_the_same_sums(
        (original, shuffled) in shuffled_pair(),
    ) {
        let config = Config::from_yaml(SUM_CONFIG, "test").expect("valid config");
        let mut p = Pipeline::new(&config).with_series_cache(1 << 16);
        feed(&text_of(&original), 4096, &mut p).map_err(TestCaseError::fail)?;
        prop_assert_eq!(outputs(&p).map_err(TestCaseError::fail)?, model(&original).to_vec());
        p.begin_scrape();
        feed(&text_of(&shuffled), 53, &mut p).map_err(TestCaseError::fail)?;
        prop_assert_eq!(outputs(&p).map_err(TestCaseError::fail)?, model(&shuffled).to_vec());
    }
}

// ----------------------------------------------------------------------------------------------
// Random relabel programs never panic

const ACTIONS: [&str; 14] = [
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "replace ",
    "Keep",
    "nonsense",
];

const LABELS: [&str; 9] = [
    "__name__", "code", "path", "method", "le", "pod", "missing", "__tmp_x", "bad-name",
];

const REGEXES: [&str; 16] = [
    "(.*)",
    "",
    "200",
    "2..|5..",
    "GET|POST",
    "req_.*",
    ".*_total",
    ".*api.*",
    "(.+);(.+)",
    "([a-z]+)_(.*)",
    "(?i)get",
    "__(.+)",
    "[",
    "(a",
    "\\d+",
    "^/api$",
];

const REPLACEMENTS: [&str; 10] = [
    "$1",
    "${1}",
    "$2",
    "${1}_${2}",
    "x",
    "",
    "$0",
    "${name}",
    "$$1",
    "a$1b",
];

const TARGETS: [&str; 10] = [
    "code", "out", "__name__", "$1", "${1}_x", "method", "le", "x_y", "bad-name", "",
];

/// One rule as YAML: mostly a well-formed rule of a random action (the fields that action takes,
/// random values), sometimes any mix of fields.
fn rule() -> impl Strategy<Value = String> {
    prop_oneof![4 => well_formed_rule(), 1 => any_rule()]
}

fn well_formed_rule() -> impl Strategy<Value = String> {
    (
        0usize..11,
        proptest::collection::vec(prop::sample::select(&LABELS[..7]), 1..3),
        prop::sample::select(&REGEXES[..12]),
        prop::sample::select(&REPLACEMENTS[..]),
        prop::sample::select(&TARGETS[..8]),
        1u64..5,
    )
        .prop_map(|(action, sources, regex, replacement, target, modulus)| {
            let sources = format!("[{}]", sources.join(", "));
            match ACTIONS[action] {
                a @ ("labeldrop" | "labelkeep") => format!("- {{action: {a}, regex: '{regex}'}}\n"),
                "labelmap" => format!(
                    "- {{action: labelmap, regex: '{regex}', replacement: '{replacement}'}}\n"
                ),
                a @ ("keep" | "drop") => {
                    format!("- {{action: {a}, source_labels: {sources}, regex: '{regex}'}}\n")
                }
                a @ ("keepequal" | "dropequal" | "lowercase" | "uppercase") => {
                    format!("- {{action: {a}, source_labels: {sources}, target_label: '{target}'}}\n")
                }
                "hashmod" => format!(
                    "- {{action: hashmod, source_labels: {sources}, modulus: {modulus}, target_label: '{target}'}}\n"
                ),
                a => format!(
                    "- {{action: {a}, source_labels: {sources}, regex: '{regex}', replacement: '{replacement}', target_label: '{target}'}}\n"
                ),
            }
        })
}

/// Any mix of fields, each present or absent, valid or not.
fn any_rule() -> impl Strategy<Value = String> {
    (
        (
            proptest::option::weighted(0.95, prop::sample::select(&ACTIONS[..])),
            proptest::option::of(proptest::collection::vec(
                prop::sample::select(&LABELS[..]),
                0..4,
            )),
            proptest::option::of(prop::sample::select(&[";", "", "/", "\\n"][..])),
        ),
        (
            proptest::option::of(prop::sample::select(&REGEXES[..])),
            proptest::option::of(prop::sample::select(&REPLACEMENTS[..])),
            proptest::option::weighted(0.9, prop::sample::select(&TARGETS[..])),
            proptest::option::weighted(0.9, prop::sample::select(&[1u64, 3, 1000, 0][..])),
        ),
    )
        .prop_map(
            |((action, sources, separator), (regex, replacement, target, modulus))| {
                let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
                let mut out = String::from("- {");
                let mut fields = Vec::new();
                if let Some(a) = action {
                    fields.push(format!("action: {}", quote(a)));
                }
                if let Some(s) = sources {
                    let list: Vec<String> = s.iter().map(|l| quote(l)).collect();
                    fields.push(format!("source_labels: [{}]", list.join(", ")));
                }
                if let Some(s) = separator {
                    fields.push(format!("separator: \"{s}\""));
                }
                if let Some(r) = regex {
                    fields.push(format!("regex: {}", quote(r)));
                }
                if let Some(r) = replacement {
                    fields.push(format!("replacement: {}", quote(r)));
                }
                if let Some(t) = target {
                    fields.push(format!("target_label: {}", quote(t)));
                }
                if let Some(m) = modulus {
                    fields.push(format!("modulus: {m}"));
                }
                out.push_str(&fields.join(", "));
                out.push_str("}\n");
                out
            },
        )
}

/// A configuration: the default list and up to two subsets, each of random rules.
fn config_yaml() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::collection::vec(rule(), 0..4), 1..4).prop_map(|lists| {
        let mut out = String::new();
        for (i, rules) in lists.iter().enumerate() {
            let name = match i {
                0 => "metric_relabel_configs".to_owned(),
                i => format!("s{i}"),
            };
            out.push_str(&format!("{name}:\n"));
            if rules.is_empty() {
                out.push_str("  []\n");
            }
            for r in rules {
                out.push_str(r);
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn random_relabel_programs_never_panic(yaml in config_yaml(), chunk in 1usize..128) {
        let config = match Config::from_yaml(&yaml, "random.yaml") {
            Ok(config) => config,
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("random.yaml"), "error without origin: {message}");
                return Ok(());
            }
        };
        let mut pipeline = Pipeline::new(&config).with_series_cache(64);
        for scrape in 0..2 {
            if scrape > 0 {
                pipeline.begin_scrape();
            }
            feed(checks::SAMPLE_INPUT.as_bytes(), chunk, &mut pipeline).map_err(TestCaseError::fail)?;
            for s in pipeline.subsets() {
                let out = output(&s.aggregator)
                    .map_err(|e| TestCaseError::fail(format!("{e}\nconfig:\n{yaml}")))?;
                prop_assert!(out.len() <= 9, "more series out than in: {out:?}\nconfig:\n{yaml}");
                for (name, labels) in out.keys() {
                    prop_assert!(!name.is_empty(), "nameless series\nconfig:\n{yaml}");
                    prop_assert!(labels.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()
                        && n != "__name__"), "{labels:?}\nconfig:\n{yaml}");
                }
            }
        }
    }
}

#[test]
fn the_model_sums_what_the_pipeline_sums_on_a_fixed_case() {
    // A fixed case the properties rely on: two paths of one series fold into one sum.
    let input = vec![
        In {
            metric: 0,
            path: 0,
            code: 0,
            method: Some(0),
            value: 2,
        },
        In {
            metric: 0,
            path: 1,
            code: 0,
            method: Some(0),
            value: 5,
        },
    ];
    let config = Config::from_yaml(SUM_CONFIG, "test").expect("valid config");
    let mut p = Pipeline::new(&config);
    feed(&text_of(&input), 7, &mut p).expect("parses");
    let got = outputs(&p).expect("renders");
    let key = (
        "req_total".to_owned(),
        vec![
            ("code".to_owned(), "200".to_owned()),
            ("method".to_owned(), "GET".to_owned()),
        ],
    );
    assert_eq!(got[0].get(&key), Some(&7.0));
    assert_eq!(got[0].len(), 1);
    assert_eq!(got, model(&input).to_vec());
}
