use super::*;

const MIN: i64 = 60_000;

fn series(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

fn group(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// One target's body: (input series, output series, kind, group, value).
type Body<'a> = &'a [(&'a str, &'a str, Kind, &'a str, f64)];

/// A scrape driver with increasing sequence numbers.
struct Driver {
    state: CounterState,
    seq: u64,
}

impl Driver {
    fn new(staleness_ms: u64) -> Driver {
        Driver {
            state: CounterState::new(staleness_ms),
            seq: 0,
        }
    }

    fn scrape(&mut self, now_ms: i64, targets: &[(&str, Option<f64>, Body)]) -> ApplyReport {
        self.seq += 1;
        let scrapes = build(targets);
        self.state.apply(self.seq, now_ms, &scrapes).unwrap()
    }

    fn value(&self, output: &str) -> Option<f64> {
        self.state
            .served(output_hash(output.as_bytes()))
            .map(Served::value)
    }

    fn served(&self, output: &str) -> Option<Served> {
        self.state.served(output_hash(output.as_bytes()))
    }
}

fn build(targets: &[(&str, Option<f64>, Body)]) -> Vec<TargetScrape> {
    targets
        .iter()
        .map(|(name, start, body)| {
            let mut ts = TargetScrape::new(name);
            if let Some(s) = start {
                ts.set_process_start(*s);
            }
            for &(s, o, kind, g, v) in body.iter() {
                ts.observe(series(s), output_hash(o.as_bytes()), kind, group(g), v);
            }
            ts
        })
        .collect()
}

fn counter<'a>(input: &'a str, output: &'a str, v: f64) -> (&'a str, &'a str, Kind, &'a str, f64) {
    (input, output, Kind::Counter, "", v)
}

#[test]
fn record_sizes() {
    assert_eq!(std::mem::size_of::<InputRecord>(), 32);
    assert_eq!(std::mem::size_of::<Observation>(), 48);
    assert_eq!(std::mem::size_of::<OutputRecord>(), 64);
}

#[test]
fn a_single_input_passes_through_and_shows_its_restart() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(0, &[("a", None, &[counter("x_total", "x_total", 10.0)])]);
    assert_eq!(d.served("x_total"), Some(Served::PassThrough(10.0)));
    d.scrape(MIN, &[("a", None, &[counter("x_total", "x_total", 15.0)])]);
    assert_eq!(d.value("x_total"), Some(15.0));
    d.scrape(
        2 * MIN,
        &[("a", None, &[counter("x_total", "x_total", 3.0)])],
    );
    assert_eq!(d.served("x_total"), Some(Served::PassThrough(3.0)));
    assert_eq!(d.state.stats().outputs_carried, 0);
}

#[test]
fn two_pods_restart_timeout_and_return() {
    let mut d = Driver::new(5 * MIN as u64);
    let both = |a: f64, b: f64| {
        [
            ("a", None, vec![counter("x{pod=a}", "x", a)]),
            ("b", None, vec![counter("x{pod=b}", "x", b)]),
        ]
    };
    let run = |d: &mut Driver, t: i64, a: Option<f64>, b: Option<f64>| {
        let mut targets: Vec<(&str, Option<f64>, Vec<_>)> = Vec::new();
        let [ta, tb] = both(a.unwrap_or(0.0), b.unwrap_or(0.0));
        if a.is_some() {
            targets.push(ta);
        }
        if b.is_some() {
            targets.push(tb);
        }
        let refs: Vec<(&str, Option<f64>, Body)> = targets
            .iter()
            .map(|(n, s, b)| (*n, *s, b.as_slice()))
            .collect();
        d.scrape(t, &refs);
        d.served("x").unwrap()
    };
    assert_eq!(
        run(&mut d, 0, Some(10.0), Some(20.0)),
        Served::Carried(30.0)
    );
    assert_eq!(
        run(&mut d, MIN, Some(15.0), Some(25.0)),
        Served::Carried(40.0)
    );
    // a restarted: +2 (its new value) +5 (b's rise), where the plain sum fell to 32.
    assert_eq!(
        run(&mut d, 2 * MIN, Some(2.0), Some(30.0)),
        Served::Carried(47.0)
    );
    // b timed out: its last value stays; a rose by 4.
    assert_eq!(run(&mut d, 3 * MIN, Some(6.0), None), Served::Carried(51.0));
    // b is back, higher: only its rise (30 -> 34) is added.
    assert_eq!(
        run(&mut d, 4 * MIN, Some(7.0), Some(34.0)),
        Served::Carried(56.0)
    );
    // b is back lower after another absence: a reset, its value is added.
    assert_eq!(run(&mut d, 5 * MIN, Some(7.0), None), Served::Carried(56.0));
    assert_eq!(
        run(&mut d, 6 * MIN, Some(8.0), Some(1.0)),
        Served::Carried(58.0)
    );
    assert_eq!(d.state.stats().resets, 2);
}

#[test]
fn a_restart_is_seen_by_the_process_start_time_even_when_the_value_climbed_past() {
    let mut d = Driver::new(5 * MIN as u64);
    let body = |a: f64, b: f64| [counter("x{pod=a}", "x", a), counter("x{pod=b}", "x", b)];
    d.scrape(0, &[("p", Some(1000.0), &body(5.0, 5.0))]);
    assert_eq!(d.value("x"), Some(10.0));
    // The process restarted and both series counted past their old values since.
    d.scrape(MIN, &[("p", Some(1030.0), &body(8.0, 6.0))]);
    assert_eq!(d.value("x"), Some(24.0));
    assert_eq!(d.state.stats().target_restarts, 1);
    assert_eq!(d.state.stats().resets, 2);
    // Jitter within the tolerance is not a restart.
    d.scrape(2 * MIN, &[("p", Some(1030.4), &body(9.0, 7.0))]);
    assert_eq!(d.value("x"), Some(26.0));
    assert_eq!(d.state.stats().target_restarts, 1);
}

#[test]
fn a_series_missing_during_a_restart_resets_when_it_returns() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(
        0,
        &[(
            "p",
            Some(1000.0),
            &[
                counter("x{path=1}", "x", 50.0),
                counter("x{path=2}", "x", 5.0),
            ],
        )],
    );
    // Restarted; path 2 has not been requested since.
    d.scrape(
        MIN,
        &[("p", Some(1050.0), &[counter("x{path=1}", "x", 1.0)])],
    );
    assert_eq!(d.value("x"), Some(56.0));
    // Path 2 is back with 7 > 5: still a reset, since the process restarted meanwhile.
    d.scrape(
        2 * MIN,
        &[(
            "p",
            Some(1050.0),
            &[
                counter("x{path=1}", "x", 1.0),
                counter("x{path=2}", "x", 7.0),
            ],
        )],
    );
    assert_eq!(d.value("x"), Some(63.0));
}

fn histogram(
    pod: &str,
    count: f64,
    le1: f64,
    sum: f64,
) -> [(&'static str, &'static str, Kind, &'static str, f64); 4] {
    let (b1, binf, c, s) = match pod {
        "a" => (
            "h_bucket{le=1,pod=a}",
            "h_bucket{le=+Inf,pod=a}",
            "h_count{pod=a}",
            "h_sum{pod=a}",
        ),
        _ => (
            "h_bucket{le=1,pod=b}",
            "h_bucket{le=+Inf,pod=b}",
            "h_count{pod=b}",
            "h_sum{pod=b}",
        ),
    };
    let g = if pod == "a" { "h{pod=a}" } else { "h{pod=b}" };
    [
        (b1, "h_bucket{le=1}", Kind::Bucket, g, le1),
        (binf, "h_bucket{le=+Inf}", Kind::Bucket, g, count),
        (s, "h_sum", Kind::Sum, g, sum),
        (c, "h_count", Kind::Count, g, count),
    ]
}

#[test]
fn a_histogram_resets_as_a_whole_by_its_count() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(
        0,
        &[
            ("a", None, &histogram("a", 10.0, 4.0, 20.0)),
            ("b", None, &histogram("b", 10.0, 5.0, 20.0)),
        ],
    );
    assert_eq!(d.value("h_count"), Some(20.0));
    assert_eq!(d.value("h_bucket{le=1}"), Some(9.0));
    // a restarted: _count fell to 6, but its le=1 bucket (4 -> 5) and _sum (20 -> 21) rose.
    d.scrape(
        MIN,
        &[
            ("a", None, &histogram("a", 6.0, 5.0, 21.0)),
            ("b", None, &histogram("b", 11.0, 5.0, 22.0)),
        ],
    );
    assert_eq!(d.value("h_count"), Some(20.0 + 6.0 + 1.0));
    assert_eq!(d.value("h_bucket{le=+Inf}"), d.value("h_count"));
    assert_eq!(d.value("h_bucket{le=1}"), Some(9.0 + 5.0));
    assert_eq!(d.value("h_sum"), Some(40.0 + 21.0 + 2.0));
    assert_eq!(d.state.stats().resets, 4);
}

#[test]
fn a_sum_that_falls_without_its_count_is_not_a_reset() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(
        0,
        &[
            ("a", None, &histogram("a", 10.0, 4.0, 20.0)),
            ("b", None, &histogram("b", 10.0, 5.0, 20.0)),
        ],
    );
    // A negative observation: a's _sum falls while its _count rises.
    d.scrape(
        MIN,
        &[
            ("a", None, &histogram("a", 11.0, 5.0, 15.0)),
            ("b", None, &histogram("b", 10.0, 5.0, 20.0)),
        ],
    );
    assert_eq!(d.value("h_sum"), Some(35.0));
    assert_eq!(d.state.stats().resets, 0);
}

#[test]
fn new_inputs_count_in_full_or_from_their_second_sample() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(0, &[("a", Some(100.0), &[counter("x{pod=a}", "x", 10.0)])]);
    // A new series in a known target counts in full (it did not exist at the last scrape).
    d.scrape(
        MIN,
        &[(
            "a",
            Some(100.0),
            &[
                counter("x{pod=a}", "x", 10.0),
                counter("y{pod=a}", "x", 3.0),
            ],
        )],
    );
    assert_eq!(d.value("x"), Some(13.0));
    // A new pod started since the last scrape counts in full.
    d.scrape(
        2 * MIN,
        &[
            (
                "a",
                Some(100.0),
                &[
                    counter("x{pod=a}", "x", 10.0),
                    counter("y{pod=a}", "x", 3.0),
                ],
            ),
            (
                "b",
                Some(100.0 + 1.5 * 60.0),
                &[counter("x{pod=b}", "x", 4.0)],
            ),
        ],
    );
    assert_eq!(d.value("x"), Some(17.0));
    // An unknown target whose process is older (it was failing, or is not new): from its
    // second sample.
    d.scrape(
        3 * MIN,
        &[
            (
                "a",
                Some(100.0),
                &[
                    counter("x{pod=a}", "x", 10.0),
                    counter("y{pod=a}", "x", 3.0),
                ],
            ),
            ("b", Some(190.0), &[counter("x{pod=b}", "x", 4.0)]),
            ("c", Some(50.0), &[counter("x{pod=c}", "x", 1000.0)]),
        ],
    );
    assert_eq!(d.value("x"), Some(17.0));
    assert_eq!(d.state.stats().first_samples_skipped, 1);
    d.scrape(
        4 * MIN,
        &[
            (
                "a",
                Some(100.0),
                &[
                    counter("x{pod=a}", "x", 10.0),
                    counter("y{pod=a}", "x", 3.0),
                ],
            ),
            ("b", Some(190.0), &[counter("x{pod=b}", "x", 4.0)]),
            ("c", Some(50.0), &[counter("x{pod=c}", "x", 1002.0)]),
        ],
    );
    assert_eq!(d.value("x"), Some(19.0));
    // Without a start time, an unknown target also counts from its second sample, unless
    // the output is new.
    d.scrape(
        5 * MIN,
        &[(
            "d",
            None,
            &[counter("x{pod=d}", "x", 7.0), counter("z{pod=d}", "z", 7.0)],
        )],
    );
    assert_eq!(d.value("x"), Some(19.0));
    assert_eq!(d.value("z"), Some(7.0));
}

#[test]
fn departed_inputs_are_forgotten_and_outputs_expire_after_the_window() {
    let mut d = Driver::new(5 * MIN as u64);
    let a = |v: f64| {
        (
            "a",
            None,
            vec![
                counter("x{pod=a}", "x", v),
                counter("only{pod=a}", "only", v),
            ],
        )
    };
    let b = |v: f64| ("b", None, vec![counter("x{pod=b}", "x", v)]);
    let go = |d: &mut Driver, t: i64, ts: Vec<(&'static str, Option<f64>, Vec<_>)>| {
        let refs: Vec<(&str, Option<f64>, Body)> =
            ts.iter().map(|(n, s, b)| (*n, *s, b.as_slice())).collect();
        d.scrape(t, &refs)
    };
    go(&mut d, 0, vec![a(1.0), b(2.0)]);
    let r = go(&mut d, MIN, vec![a(1.0), b(3.0)]);
    assert_eq!(r.needs_description, vec![output_hash(b"x")]);
    assert!(d
        .state
        .describe(output_hash(b"x"), "x", "counter", "help", b"x"));
    // Pod a leaves for good; "x" keeps a's 1, "only" passes through and is not listed absent.
    go(&mut d, 2 * MIN, vec![b(4.0)]);
    assert_eq!(d.value("x"), Some(5.0));
    assert_eq!(d.state.absent().count(), 0);
    // Every target gone: "x" is absent but served (carried), until the window passes.
    go(&mut d, 3 * MIN, vec![]);
    let absent: Vec<_> = d.state.absent().collect();
    assert_eq!(absent.len(), 1);
    assert_eq!(
        (absent[0].series.as_slice(), absent[0].value, absent[0].typ),
        (&b"x"[..], 5.0, "counter")
    );
    let r = go(&mut d, 6 * MIN + 1, vec![]);
    assert_eq!(r.expired, vec![output_hash(b"only")]);
    assert_eq!(d.state.stats().inputs_expired, 2);
    let r = go(&mut d, 7 * MIN + 1, vec![]);
    assert_eq!(r.expired, vec![output_hash(b"x")]);
    assert_eq!(d.value("x"), None);
    let st = d.state.stats();
    assert_eq!(
        (st.inputs_tracked, st.outputs_tracked, st.outputs_carried),
        (0, 0, 0)
    );
    assert_eq!((st.inputs_expired, st.outputs_expired), (3, 2));
    // A new "x" starts over, as a new output.
    go(&mut d, 8 * MIN, vec![b(50.0)]);
    assert_eq!(d.served("x"), Some(Served::PassThrough(50.0)));
}

#[test]
fn a_carried_output_returns_to_pass_through_only_when_that_changes_nothing() {
    let base = 10 * MIN;
    let mut d = Driver::new(2 * MIN as u64);
    d.scrape(base, &[("a", None, &[counter("x{pod=a}", "x", 10.0)])]);
    // b shows up once from an old process (not counted), then leaves.
    d.scrape(
        base + MIN,
        &[
            ("a", None, &[counter("x{pod=a}", "x", 11.0)]),
            ("b", Some(1.0), &[counter("x{pod=b}", "x", 500.0)]),
        ],
    );
    assert_eq!(d.served("x"), Some(Served::Carried(11.0)));
    for i in 2..=6 {
        d.scrape(
            base + i * MIN,
            &[("a", None, &[counter("x{pod=a}", "x", 10.0 + i as f64)])],
        );
        assert_eq!(d.served("x"), Some(Served::Carried(10.0 + i as f64)));
    }
    // b is forgotten at 4m (after the scrape's totals are resolved, so the output still had
    // two inputs then); the window after that passes at 6m+.
    d.scrape(
        base + 6 * MIN + 1,
        &[("a", None, &[counter("x{pod=a}", "x", 17.0)])],
    );
    assert_eq!(d.served("x"), Some(Served::PassThrough(17.0)));
    assert_eq!(d.state.stats().outputs_carried, 0);

    // When the carried total differs from the input (a departed input counted), it stays.
    let mut d = Driver::new(2 * MIN as u64);
    d.scrape(
        0,
        &[
            ("a", None, &[counter("x{pod=a}", "x", 10.0)]),
            ("b", None, &[counter("x{pod=b}", "x", 5.0)]),
        ],
    );
    for i in 1..=6 {
        d.scrape(
            i * MIN,
            &[("a", None, &[counter("x{pod=a}", "x", 10.0 + i as f64)])],
        );
        assert_eq!(d.served("x"), Some(Served::Carried(15.0 + i as f64)));
    }
}

#[test]
fn late_and_repeated_scrapes_are_refused() {
    let mut state = CounterState::new(5 * MIN as u64);
    let scrapes = build(&[(
        "a",
        None,
        &[counter("x{pod=a}", "x", 1.0), counter("x{pod=b}", "x", 1.0)],
    )]);
    state.apply(2, 0, &scrapes).unwrap();
    let later = build(&[(
        "a",
        None,
        &[counter("x{pod=a}", "x", 5.0), counter("x{pod=b}", "x", 1.0)],
    )]);
    assert_eq!(
        state.apply(2, MIN, &later),
        Err(Refused { seq: 2, last: 2 })
    );
    assert_eq!(
        state.apply(1, MIN, &later),
        Err(Refused { seq: 1, last: 2 })
    );
    assert_eq!(state.served(output_hash(b"x")), Some(Served::Carried(2.0)));
    assert_eq!(state.stats().scrapes_refused, 2);
    state.apply(3, MIN, &later).unwrap();
    assert_eq!(state.served(output_hash(b"x")), Some(Served::Carried(6.0)));
    // A clock that went back counts as the last time. (Targets may be passed by reference.)
    let refs: Vec<&TargetScrape> = later.iter().collect();
    state.apply(4, -MIN, &refs).unwrap();
    assert_eq!(state.served(output_hash(b"x")), Some(Served::Carried(6.0)));
}

#[test]
fn a_reload_that_moves_an_input_keeps_both_totals_monotonic() {
    let mut d = Driver::new(5 * MIN as u64);
    let body = |o1: &'static str, a: f64, b: f64| {
        [counter("x{pod=a}", o1, a), counter("x{pod=b}", "x", b)]
    };
    d.scrape(0, &[("t", None, &body("x", 10.0, 5.0))]);
    assert_eq!(d.value("x"), Some(15.0));
    // The new rules send pod a's series to "y" (new: it starts as the plain sum) while "x"
    // keeps what a contributed.
    d.scrape(MIN, &[("t", None, &body("y", 12.0, 6.0))]);
    assert_eq!(d.value("x"), Some(16.0));
    assert_eq!(d.served("y"), Some(Served::PassThrough(12.0)));
    d.scrape(2 * MIN, &[("t", None, &body("y", 13.0, 7.0))]);
    assert_eq!((d.value("x"), d.value("y")), (Some(17.0), Some(13.0)));
    // Back to "x" (existing): counted from the next sample, no jump.
    d.scrape(3 * MIN, &[("t", None, &body("x", 14.0, 8.0))]);
    assert_eq!(d.value("x"), Some(18.0));
    d.scrape(4 * MIN, &[("t", None, &body("x", 15.0, 8.0))]);
    assert_eq!(d.value("x"), Some(19.0));
}

#[test]
fn non_finite_values_leave_totals_alone() {
    let mut d = Driver::new(5 * MIN as u64);
    let body = |a: f64, b: f64| [counter("x{pod=a}", "x", a), counter("x{pod=b}", "x", b)];
    d.scrape(0, &[("t", None, &body(1.0, 2.0))]);
    d.scrape(MIN, &[("t", None, &body(f64::NAN, 3.0))]);
    assert_eq!(d.value("x"), Some(4.0));
    d.scrape(2 * MIN, &[("t", None, &body(2.0, f64::INFINITY))]);
    assert_eq!(d.value("x"), Some(5.0));
    d.scrape(3 * MIN, &[("t", None, &body(3.0, 4.0))]);
    assert_eq!(d.value("x"), Some(7.0));
    assert_eq!(d.state.stats().non_finite, 2);
    // A pass-through output shows what its input says.
    d.scrape(
        4 * MIN,
        &[("t", None, &[counter("solo", "solo", f64::NAN)])],
    );
    assert!(d.value("solo").is_some_and(f64::is_nan));
}

#[test]
fn fractional_values_sum_like_the_plain_sum() {
    let mut d = Driver::new(5 * MIN as u64);
    let mut values = [0.1f64; 10];
    for step in 0..100 {
        let body: Vec<_> = (0..10)
            .map(|i| {
                let name: &'static str = Box::leak(format!("x{{i={i}}}").into_boxed_str());
                counter(name, "x", values[i])
            })
            .collect();
        d.scrape(step * MIN / 10, &[("t", None, &body)]);
        let mut plain = Sum::new();
        values.iter().for_each(|&v| plain.add(v));
        let got = d.value("x").unwrap_or(f64::NAN);
        assert!(
            (got - plain.value()).abs() <= plain.value() * 1e-12,
            "{got} vs {}",
            plain.value()
        );
        for (i, v) in values.iter_mut().enumerate() {
            *v += 0.1 * (i + 1) as f64;
        }
    }
}

#[test]
fn serialize_round_trip_continues_identically() {
    let mut d = Driver::new(5 * MIN as u64);
    d.scrape(
        0,
        &[
            ("a", Some(10.0), &histogram("a", 10.0, 4.0, 20.0)),
            ("b", None, &histogram("b", 3.0, 1.0, 2.5)),
        ],
    );
    let r = d.scrape(MIN, &[("a", Some(10.0), &histogram("a", 11.0, 4.0, 21.0))]);
    for h in r.needs_description {
        d.state.describe(
            h,
            "h",
            "histogram",
            "A \"histogram\".",
            b"h_bucket{le=\"1\"}",
        );
    }
    d.scrape(2 * MIN, &[("c", None, &[counter("solo", "solo", 4.0)])]);
    let bytes = d.state.serialize();
    let mut restored = CounterState::deserialize(&bytes, 5 * MIN as u64).unwrap();
    assert_eq!(restored.serialize(), bytes);
    assert_eq!(restored.stats(), d.state.stats());
    let absent: Vec<_> = d.state.absent().collect();
    assert_eq!(restored.absent().collect::<Vec<_>>(), absent);
    assert!(!absent.is_empty());
    // Both continue the same way (a new process: its sequence numbers start over).
    let next = build(&[
        ("a", Some(99.0), &histogram("a", 2.0, 1.0, 1.0)),
        ("b", None, &histogram("b", 4.0, 2.0, 3.0)),
    ]);
    let r1 = d.state.apply(d.seq + 1, 3 * MIN, &next).unwrap();
    let r2 = restored.apply(1, 3 * MIN, &next).unwrap();
    assert_eq!(r1, r2);
    for o in [
        "h_count",
        "h_sum",
        "h_bucket{le=1}",
        "h_bucket{le=+Inf}",
        "solo",
    ] {
        let h = output_hash(o.as_bytes());
        assert_eq!(d.state.served(h), restored.served(h), "{o}");
    }
    assert_eq!(restored.serialize(), d.state.serialize());
}

#[test]
fn deserialize_refuses_bad_input() {
    let mut d = Driver::new(MIN as u64);
    d.scrape(
        0,
        &[(
            "a",
            None,
            &[counter("x{pod=a}", "x", 1.0), counter("x{pod=b}", "x", 1.0)],
        )],
    );
    let bytes = d.state.serialize();
    assert_eq!(
        CounterState::deserialize(b"nonsense", 1).unwrap_err(),
        StateError::BadMagic
    );
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert_eq!(
        CounterState::deserialize(&v2, 1).unwrap_err(),
        StateError::Version(2)
    );
    for n in 0..bytes.len() {
        assert!(
            CounterState::deserialize(&bytes[..n], 1).is_err(),
            "prefix of {n} bytes"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        CounterState::deserialize(&long, 1).unwrap_err(),
        StateError::Corrupt("trailing bytes")
    );
    // Arbitrary bytes after a valid header never panic.
    for seed in 0..200u64 {
        let mut junk = bytes[..12].to_vec();
        junk.extend(
            (0..200).map(|i| (xxhash_rust::xxh3::xxh3_64(&[seed as u8, i as u8]) & 0xff) as u8),
        );
        let _ = CounterState::deserialize(&junk, 1);
    }
    assert_eq!(
        StateError::Version(2).to_string(),
        "counter state format version 2 is not supported (this build reads version 1)"
    );
}

/// Memory per tracked input: 1M inputs (10 per output), measured from the allocations'
/// capacities.
#[test]
fn memory_per_input() {
    let mut state = CounterState::new(5 * MIN as u64);
    let mut ts = TargetScrape::new("t");
    let n = 1_000_000u32;
    for i in 0..n {
        ts.observe(
            u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            u128::from(i / 10),
            Kind::Counter,
            0,
            1.0,
        );
    }
    state.apply(1, 0, &[ts]).unwrap();
    let per_input = state.input_bytes() as f64 / f64::from(n);
    let total = state.memory_bytes() as f64 / f64::from(n);
    println!(
        "inputs: {} tracked, InputRecord {} bytes, {:.1} bytes per input (records + index), {:.1} bytes per input with outputs",
        state.stats().inputs_tracked,
        std::mem::size_of::<InputRecord>(),
        per_input,
        total
    );
    assert_eq!(state.stats().inputs_tracked, n as usize);
    assert!(per_input < 48.0, "{per_input}");
}

/// The worked example of docs/aggregation.md: pods a and b, a restarts at t2, b times out at
/// t4 and comes back at t5, pod c starts at t6. Prints the table the doc shows.
#[test]
fn worked_example() {
    let mut d = Driver::new(5 * MIN as u64);
    // (a, b, c) per scrape; None: not in the scrape.
    let rows: [(Option<f64>, Option<f64>, Option<f64>); 7] = [
        (Some(10.0), Some(20.0), None),
        (Some(15.0), Some(25.0), None),
        (Some(2.0), Some(30.0), None),
        (Some(6.0), Some(35.0), None),
        (Some(9.0), None, None),
        (Some(12.0), Some(44.0), None),
        (Some(14.0), Some(46.0), Some(3.0)),
    ];
    let starts = [("a", 1000.0), ("b", 1000.0), ("c", 1000.0 + 5.5 * 15.0)];
    let mut served = Vec::new();
    let mut plain = Vec::new();
    for (i, &(a, b, c)) in rows.iter().enumerate() {
        let t = i as i64 * 15_000;
        let a_start = if i >= 2 {
            1000.0 + 1.5 * 15.0
        } else {
            starts[0].1
        };
        let names = [
            ("a", "req{pod=a}", a, a_start),
            ("b", "req{pod=b}", b, starts[1].1),
            ("c", "req{pod=c}", c, starts[2].1),
        ];
        let bodies: Vec<(&str, f64, Vec<_>)> = names
            .iter()
            .filter_map(|&(pod, s, v, start)| v.map(|v| (pod, start, vec![counter(s, "req", v)])))
            .collect();
        let refs: Vec<(&str, Option<f64>, Body)> = bodies
            .iter()
            .map(|(n, s, b)| (*n, Some(*s), b.as_slice()))
            .collect();
        d.scrape(1_000_000 + t, &refs);
        served.push(d.value("req").unwrap_or(f64::NAN));
        plain.push(a.unwrap_or(0.0) + b.unwrap_or(0.0) + c.unwrap_or(0.0));
    }
    for (i, ((&(a, b, c), p), s)) in rows.iter().zip(&plain).zip(&served).enumerate() {
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| v.to_string());
        println!(
            "| t{i} | {} | {} | {} | {p} | {s} |",
            show(a),
            show(b),
            show(c)
        );
    }
    assert_eq!(plain, [30.0, 40.0, 32.0, 41.0, 9.0, 56.0, 63.0]);
    assert_eq!(served, [30.0, 40.0, 47.0, 56.0, 59.0, 71.0, 78.0]);
    // What Prometheus' increase() makes of each series, step by step (a fall is a reset).
    let increases = |v: &[f64]| -> Vec<f64> {
        v.windows(2)
            .map(|w| if w[1] < w[0] { w[1] } else { w[1] - w[0] })
            .collect()
    };
    assert_eq!(increases(&plain), [10.0, 32.0, 9.0, 9.0, 47.0, 7.0]);
    assert_eq!(increases(&served), [10.0, 7.0, 9.0, 3.0, 12.0, 7.0]);
    assert_eq!(increases(&plain).iter().sum::<f64>(), 114.0);
    // The pods' true increase: a 5+2+4+3+3+2, b 5+5+5+9+2, c 3 (it started at t6).
    assert_eq!(increases(&served).iter().sum::<f64>(), 48.0);
}

#[test]
fn families_of_expired_outputs_are_forgotten() {
    let mut d = Driver::new(2 * MIN as u64);
    // Two pods sum into a new family every scrape (a carried output each), described.
    for scrape in 0..40i64 {
        let input_a = format!("m{scrape}{{pod=a}}");
        let input_b = format!("m{scrape}{{pod=b}}");
        let output = format!("m{scrape}");
        for rep in 0..2 {
            let r = d.scrape(
                (2 * scrape + rep) * MIN / 2,
                &[
                    ("a", None, &[counter(&input_a, &output, 1.0)]),
                    ("b", None, &[counter(&input_b, &output, 1.0)]),
                ],
            );
            for h in r.needs_description {
                assert!(d
                    .state
                    .describe(h, &output, "counter", "Help.", output.as_bytes()));
            }
        }
    }
    // Outputs expire after the window (2 min: a few names) and their families follow.
    let families = d.state.family_count();
    assert!((2..=12).contains(&families), "{families}");
    // The renumbered families still describe the outputs that remain.
    d.scrape(41 * MIN, &[]);
    let absent: Vec<_> = d.state.absent().map(|a| a.family.to_owned()).collect();
    assert!(absent.contains(&"m39".to_owned()), "{absent:?}");
    assert!(absent.iter().all(|f| f.starts_with('m')), "{absent:?}");
}

/// Removed descriptions are dropped by a rebuild once they are the majority; the live ones
/// read back the same, with their families.
#[test]
fn description_rebuild_keeps_the_live_texts() {
    let mut st = CounterState::new(5 * MIN as u64);
    st.intern_family("m", "counter", "");
    st.intern_family("n", "counter", "");
    let text = |i: u32| format!("m_total{{host=\"h{}\",code=\"{}\"}}", i / 4, i % 4).into_bytes();
    for i in 0..4000u32 {
        let id = st.descriptions.insert(i % 2, &text(i));
        let mut o = OutputRecord::new(u128::from(i) + 1, false);
        o.description = Some(id);
        st.outputs.push(o);
    }
    // Three in four go (bases among them).
    for (i, o) in st.outputs.iter_mut().enumerate() {
        if i % 4 != 3 {
            st.descriptions.remove(o.description.take().unwrap());
        }
    }
    assert!(st.descriptions.wants_rebuild());
    let before = st.descriptions.bytes();
    st.rebuild_descriptions();
    assert!(!st.descriptions.wants_rebuild());
    assert!(st.descriptions.bytes() < before);
    for (i, o) in st.outputs.iter().enumerate() {
        match o.description {
            Some(d) => {
                assert_eq!(i % 4, 3);
                assert_eq!(st.descriptions.get(d), text(i as u32));
                assert_eq!(st.descriptions.family(d), (i % 2) as u32);
            }
            None => assert_ne!(i % 4, 3),
        }
    }
}

/// A released record holds no buffer until its next scrape, which reserves what the last one
/// needed at once.
#[test]
fn a_released_record_reserves_its_last_size_again() {
    let mut ts = TargetScrape::new("t");
    for i in 0..100u32 {
        ts.observe(u128::from(i), 1, Kind::Counter, 0, 1.0);
    }
    ts.release();
    assert_eq!((ts.len(), ts.capacity_bytes()), (0, 0));
    ts.reset("t");
    assert!(ts.capacity_bytes() >= 100 * std::mem::size_of::<Observation>());
    assert!(ts.is_empty());
    // Only once: a later reset keeps the buffer as it is.
    ts.observe(1, 1, Kind::Counter, 0, 1.0);
    let cap = ts.capacity_bytes();
    ts.clear();
    assert_eq!(ts.capacity_bytes(), cap);
}
