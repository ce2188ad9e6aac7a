use proptest::prelude::*;

use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("test YAML")
}

fn parse(text: &str) -> Result<Rules, String> {
    Rules::parse(&yaml(text)).map_err(|e| e.to_string())
}

#[test]
fn kinds_follow_the_type_and_the_suffix() {
    use SampleKind::*;
    let cases: &[(Option<&str>, &str, SampleKind)] = &[
        (Some("counter"), "", CounterLike(Kind::Counter)),
        (Some("counter"), "_total", CounterLike(Kind::Counter)),
        (Some("counter"), "_created", Created),
        (Some("histogram"), "_bucket", CounterLike(Kind::Bucket)),
        (Some("histogram"), "_sum", CounterLike(Kind::Sum)),
        (Some("histogram"), "_count", CounterLike(Kind::Count)),
        (Some("histogram"), "_created", Created),
        (Some("summary"), "", Quantile),
        (Some("summary"), "_sum", CounterLike(Kind::Sum)),
        (Some("summary"), "_count", CounterLike(Kind::Count)),
        (Some("summary"), "_created", Created),
        (Some("gauge"), "", Gauge),
        (Some("gaugehistogram"), "_bucket", Gauge),
        (Some("gaugehistogram"), "_gcount", Gauge),
        (Some("gaugehistogram"), "_gsum", Gauge),
        (Some("info"), "_info", Info),
        (Some("info"), "", Info),
        (Some("stateset"), "", Info),
        (Some("untyped"), "", Untyped),
        (Some("unknown"), "", Untyped),
        (None, "", Untyped),
        (None, "_total", Untyped),
        (Some("gauge"), "_created", Untyped),
        (Some("histogram"), "", Untyped),
    ];
    for &(typ, suffix, want) in cases {
        assert_eq!(sample_kind(typ, suffix), want, "{typ:?} {suffix:?}");
    }
}

#[test]
fn combine_is_compact() {
    assert_eq!(std::mem::size_of::<Combine>(), 56);
    assert_eq!(std::mem::size_of::<Stamp>(), 16);
}

#[test]
fn ops_have_names() {
    for op in Op::ALL {
        assert_eq!(Op::from_name(op.as_str()), Some(op));
    }
    assert_eq!(Op::from_name("MAX"), None);
}

#[test]
fn rules_select_by_anchored_name_regex_or_labels() {
    let mut rules = parse(
        r#"
- match: app_connections|app_.*_ratio
  op: max
- source_labels: [__name__, job]
  regex: "queue_depth;(worker|batch)"
  op: avg
- source_labels: [__name__]
  regex: "temp_.*"
  op: last
- match: 200
  op: count
"#,
    )
    .unwrap();
    assert_eq!(rules.len(), 4);
    assert!(rules.uses_labels());
    assert_eq!(rules.rule_for("app_connections", &[]), Some(Op::Max));
    assert_eq!(rules.rule_for("app_hit_ratio", &[]), Some(Op::Max));
    // Anchored: neither a prefix nor a suffix match.
    assert_eq!(rules.rule_for("app_connections_total", &[]), None);
    assert_eq!(rules.rule_for("my_app_connections", &[]), None);
    assert_eq!(
        rules.rule_for("queue_depth", &[("job", "worker")]),
        Some(Op::Avg)
    );
    assert_eq!(
        rules.rule_for("queue_depth", &[("job", "api"), ("le", "1")]),
        None
    );
    assert_eq!(rules.rule_for("queue_depth", &[]), None);
    assert_eq!(rules.rule_for("temp_c", &[("x", "y")]), Some(Op::Last));
    // A number where a string is expected is its text, as for relabel regexes.
    assert_eq!(rules.rule_for("200", &[]), Some(Op::Count));
    // The first matching rule wins.
    let mut first = parse("[{match: 'a.*', op: min}, {match: 'ab', op: max}]").unwrap();
    assert_eq!(first.rule_for("ab", &[]), Some(Op::Min));
    assert!(!first.uses_labels());
}

#[test]
fn null_and_empty_are_no_rules() {
    assert!(parse("null").unwrap().is_empty());
    assert!(parse("[]").unwrap().is_empty());
}

#[test]
fn errors_name_the_rule_and_the_field() {
    let cases = [
        ("{match: x, op: max}", "aggregation: expected a list of rules, got a map"),
        ("[x]", "aggregation[0]: expected a rule (a map with \"op\" and \"match\" or \"source_labels\"), got a string"),
        ("[{match: x}]", "aggregation[0]: missing field \"op\""),
        ("[{match: x, op: max}, {match: y, op: median}]", "aggregation[1].op: unknown op \"median\": expected one of sum, max, min, avg, count, last, drop"),
        ("[{op: max}]", "aggregation[0]: set \"match\" (a metric name regex) or \"source_labels\" (with \"regex\")"),
        ("[{match: x, source_labels: [a], op: max}]", "aggregation[0]: \"match\" and \"source_labels\" cannot both be set"),
        ("[{match: x, regex: y, op: max}]", "aggregation[0].regex: only with \"source_labels\" (\"match\" is the metric name regex)"),
        ("[{match: x, separator: ',', op: max}]", "aggregation[0].separator: only with \"source_labels\" (\"match\" is the metric name regex)"),
        ("[{match: '(', op: max}]", "aggregation[0].match: invalid regex \"(\": unclosed group"),
        // Any non-empty UTF-8 name is valid (Prometheus 3's default scheme).
        ("[{source_labels: [''], op: max}]", "aggregation[0].source_labels: \"\" is not a valid label name"),
        ("[{source_labels: [a], regex: '[', op: max}]", "aggregation[0].regex: invalid regex \"[\": missing closing ]: `[`"),
        ("[{source_labels: a, op: max}]", "aggregation[0].source_labels: expected a list of label names, got a string"),
        ("[{source_labels: [], op: max}]", "aggregation[0].source_labels: must name at least one label"),
        ("[{match: [x], op: max}]", "aggregation[0].match: expected a string, got a list"),
        ("[{match: x, op: max, ops: min}]", "aggregation[0]: unknown field \"ops\" (a rule has match, source_labels, separator, regex and op)"),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).err().as_deref(), Some(want), "{text}");
    }
}

#[test]
fn a_subset_named_like_the_reserved_key_is_refused() {
    let err = parse(
        r#"
- action: keep
  source_labels: [__name__]
  regex: nginx_.*
"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "aggregation[0]: \"aggregation\" is reserved for aggregation rules and cannot name a \
         subset (this entry has the relabel field \"action\"); rename the subset"
    );
    // Whatever relabel field shows it, even on a later entry and next to an `op`.
    let err = parse("[{match: x, op: max}, {op: max, target_label: y}]").unwrap_err();
    assert!(
        err.starts_with("aggregation[1]: \"aggregation\" is reserved"),
        "{err}"
    );
    assert!(err.contains("\"target_label\""), "{err}");
    // The error carries the origin like relabel errors do.
    let e = Rules::parse(&yaml("[{action: drop}]"))
        .unwrap_err()
        .with_origin("relabel.yaml");
    assert!(
        e.to_string().starts_with("relabel.yaml: aggregation[0]: "),
        "{e}"
    );
}

#[test]
fn the_built_in_rules_compile_and_select_what_they_say() {
    let mut rules = Rules::default();
    assert_eq!(rules.defaults.len(), DEFAULT_RULES.len());
    let cases = [
        ("process_start_time_seconds", Some(Op::Max)),
        ("process_max_fds", Some(Op::Max)),
        ("process_virtual_memory_max_bytes", Some(Op::Max)),
        ("process_resident_memory_bytes", None),
        ("process_open_fds", None),
        ("nginx_ingress_controller_build_info", Some(Op::Max)),
        ("go_info", Some(Op::Max)),
        ("info", None),
        ("python_gc_created", Some(Op::Min)),
        (
            "nginx_ingress_controller_config_last_reload_successful",
            Some(Op::Min),
        ),
        ("prometheus_config_last_reload_successful", Some(Op::Min)),
        ("nginx_ingress_controller_config_hash", Some(Op::Max)),
        ("leader_election_master_status", Some(Op::Max)),
        ("etcd_server_is_leader", Some(Op::Max)),
        (
            "nginx_ingress_controller_config_last_reload_successful_timestamp_seconds",
            Some(Op::Max),
        ),
        ("go_memstats_last_gc_time_seconds", Some(Op::Max)),
        ("app_connections", None),
        ("go_goroutines", None),
        ("http_request_duration_seconds", None),
    ];
    for (name, want) in cases {
        assert_eq!(rules.default_for(name), want, "{name}");
    }
}

#[test]
fn actions_by_kind_and_rule() {
    let mut none = Rules::default();
    let k = |k| SampleKind::CounterLike(k);
    assert_eq!(
        none.action(k(Kind::Counter), "x_total", &[]),
        Action::Carry(Kind::Counter)
    );
    assert_eq!(
        none.action(k(Kind::Bucket), "h_bucket", &[("le", "1")]),
        Action::Carry(Kind::Bucket)
    );
    assert_eq!(
        none.action(SampleKind::Created, "x_created", &[]),
        Action::Combine(Op::Min)
    );
    assert_eq!(
        none.action(SampleKind::Quantile, "s", &[("quantile", "0.5")]),
        Action::DropQuantile
    );
    assert_eq!(
        none.action(SampleKind::Info, "x_info", &[]),
        Action::Combine(Op::Max)
    );
    assert_eq!(
        none.action(SampleKind::Gauge, "app_connections", &[]),
        Action::Combine(Op::Sum)
    );
    assert_eq!(
        none.action(SampleKind::Untyped, "anything", &[]),
        Action::Combine(Op::Sum)
    );
    assert_eq!(
        none.action(SampleKind::Gauge, "process_start_time_seconds", &[]),
        Action::Combine(Op::Max)
    );
    assert_eq!(
        none.action(SampleKind::Untyped, "process_start_time_seconds", &[]),
        Action::Combine(Op::Max)
    );
    // Built-in rules never touch counters: a counter named like a timestamp is still carried.
    assert_eq!(
        none.action(k(Kind::Counter), "x_timestamp_seconds", &[]),
        Action::Carry(Kind::Counter)
    );

    let mut rules = parse(
        r#"
- {match: process_start_time_seconds, op: min}
- {match: s, op: max}
- {match: s2|x_created|y_created, op: sum}
- {match: x_total, op: drop}
- {match: y_total, op: max}
- {match: x_info, op: sum}
"#,
    )
    .unwrap();
    // A user rule wins over a built-in one.
    assert_eq!(
        rules.action(SampleKind::Gauge, "process_start_time_seconds", &[]),
        Action::Combine(Op::Min)
    );
    assert_eq!(
        rules.action(SampleKind::Quantile, "s", &[]),
        Action::Combine(Op::Max)
    );
    // `sum` is refused for quantiles and creation times.
    assert_eq!(
        rules.action(SampleKind::Quantile, "s2", &[]),
        Action::DropQuantile
    );
    assert_eq!(
        rules.action(SampleKind::Created, "x_created", &[]),
        Action::Combine(Op::Min)
    );
    assert_eq!(
        rules.action(k(Kind::Counter), "x_total", &[]),
        Action::Combine(Op::Drop)
    );
    // Another op on a counter combines per scrape; it is no longer carried.
    assert_eq!(
        rules.action(k(Kind::Counter), "y_total", &[]),
        Action::Combine(Op::Max)
    );
    assert_eq!(
        rules.action(SampleKind::Info, "x_info", &[]),
        Action::Combine(Op::Sum)
    );
    assert_eq!(Action::Carry(Kind::Sum).op(), Op::Sum);
    assert_eq!(Action::DropQuantile.op(), Op::Drop);
}

fn combine(op: Op, samples: &[(f64, Option<i64>)], now: i64) -> Option<(f64, Option<i64>)> {
    let mut c = Combine::new(op);
    for &(v, t) in samples {
        c.add(v, t);
    }
    c.result(now)
}

#[test]
fn combine_by_op() {
    let s = [(1.0, None), (4.0, None), (2.5, None)];
    assert_eq!(combine(Op::Sum, &s, 0), Some((7.5, None)));
    assert_eq!(combine(Op::Max, &s, 0), Some((4.0, None)));
    assert_eq!(combine(Op::Min, &s, 0), Some((1.0, None)));
    assert_eq!(combine(Op::Avg, &s, 0), Some((2.5, None)));
    assert_eq!(combine(Op::Count, &s, 0), Some((3.0, None)));
    assert_eq!(combine(Op::Last, &s, 0), Some((2.5, None)));
    assert_eq!(combine(Op::Drop, &s, 0), None);
    assert_eq!(combine(Op::Drop, &s[..1], 0), Some((1.0, None)));
    for op in Op::ALL {
        assert_eq!(combine(op, &[], 0), None, "{op:?}");
    }
    // NaN: max and min ignore it unless every input is NaN; sum and avg propagate it.
    let n = [(f64::NAN, None), (3.0, None), (f64::NAN, None)];
    assert_eq!(combine(Op::Max, &n, 0), Some((3.0, None)));
    assert_eq!(combine(Op::Min, &n, 0), Some((3.0, None)));
    assert!(combine(Op::Max, &[(f64::NAN, None)], 0).is_some_and(|(v, _)| v.is_nan()));
    assert!(combine(Op::Sum, &n, 0).is_some_and(|(v, _)| v.is_nan()));
    assert_eq!(combine(Op::Count, &n, 0), Some((3.0, None)));
    // -0 alone stays -0.
    assert!(combine(Op::Sum, &[(-0.0, None), (-0.0, None)], 0)
        .is_some_and(|(v, _)| v.is_sign_negative()));
}

#[test]
fn last_takes_the_newest_sample() {
    let now = 10_000;
    let s = [(1.0, Some(5_000)), (2.0, Some(9_000)), (3.0, Some(7_000))];
    assert_eq!(combine(Op::Last, &s, now), Some((2.0, Some(9_000))));
    // A sample without a timestamp is "now": newer than any past timestamp.
    let s = [(1.0, Some(5_000)), (2.0, None), (3.0, Some(7_000))];
    assert_eq!(combine(Op::Last, &s, now), Some((2.0, None)));
    // ... but not newer than a timestamp ahead of now.
    let s = [(1.0, Some(50_000)), (2.0, None)];
    assert_eq!(combine(Op::Last, &s, now), Some((1.0, Some(50_000))));
    // Equally new: the one read last.
    let s = [(1.0, Some(5_000)), (2.0, Some(5_000))];
    assert_eq!(combine(Op::Last, &s, now), Some((2.0, Some(5_000))));
    assert_eq!(
        combine(Op::Last, &[(1.0, None), (2.0, None)], now),
        Some((2.0, None))
    );
}

#[test]
fn mixed_timestamps_are_never_older_than_a_summed_sample() {
    // The probe from the issue: `m{a="1"} 1 1000` plus `m{a="2"} 2` was `m 3 1000`.
    let now = 1_700_000_000_000;
    assert_eq!(
        combine(Op::Sum, &[(1.0, Some(1000)), (2.0, None)], now),
        Some((3.0, None))
    );
    assert_eq!(combined_timestamp([Some(1000), None], now), None);
    // All stamped: the latest.
    assert_eq!(
        combined_timestamp([Some(1000), Some(3000), Some(2000)], now),
        Some(3000)
    );
    // None stamped: none.
    assert_eq!(combined_timestamp([None, None], now), None);
    // A stamp ahead of now wins over "now".
    assert_eq!(
        combined_timestamp([None, Some(now + 5)], now),
        Some(now + 5)
    );
    assert_eq!(combined_timestamp([None, Some(now)], now), None);
}

fn op_strategy() -> impl Strategy<Value = Op> {
    proptest::sample::select(Op::ALL.to_vec())
}

fn sample_strategy() -> impl Strategy<Value = (f64, Option<i64>)> {
    (
        prop_oneof![8 => (-1000i32..1000).prop_map(|v| f64::from(v) / 4.0), 1 => Just(f64::NAN)],
        proptest::option::of(0i64..20),
    )
}

proptest! {
    /// Folding targets separately and merging them in order gives what one pass over all
    /// inputs gives.
    #[test]
    fn merge_equals_one_pass(
        op in op_strategy(),
        samples in proptest::collection::vec(sample_strategy(), 0..12),
        cuts in proptest::collection::vec(0usize..12, 0..3),
        now in 0i64..25,
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(samples.len())).collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([samples.len()]) {
            let mut part = Combine::new(op);
            for &(v, t) in &samples[start..c.max(start)] {
                part.add(v, t);
            }
            start = c.max(start);
            parts.push(part);
        }
        let mut merged = Combine::new(op);
        for p in &parts {
            merged.merge(p);
        }
        let one = combine(op, &samples, now);
        let got = merged.result(now);
        let same = match (one, got) {
            (None, None) => true,
            (Some((a, ta)), Some((b, tb))) => ta == tb && (a == b || (a.is_nan() && b.is_nan())),
            _ => false,
        };
        prop_assert!(same, "{:?}: one pass {:?}, merged {:?}", op, one, got);
        prop_assert_eq!(merged.count() as usize, samples.len());
    }

    /// The combined timestamp is never older than a combined sample's (with "now" for those
    /// without one).
    #[test]
    fn stamp_is_never_older(stamps in proptest::collection::vec(proptest::option::of(0i64..100), 1..8), now in 0i64..100) {
        let ts = combined_timestamp(stamps.iter().copied(), now).unwrap_or(now);
        for s in stamps {
            prop_assert!(ts >= s.unwrap_or(now));
        }
    }
}
