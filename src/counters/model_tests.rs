//! Property test: [`CounterState`] against a straightforward model, over random sequences of
//! increments, restarts (values drop to small numbers, the process start time moves), pods
//! that time out, leave, come back and join, new series, histograms, and scrapes that finish
//! late.
//!
//! The model keeps plain maps keyed by names and compares times directly (no epochs, tables,
//! cursors or free lists) and computes each output's increase per scrape under Prometheus'
//! reset rule. Checked after every scrape:
//! - the state serves exactly what the model serves;
//! - a carried output never decreases, and its increase equals the sum of its inputs'
//!   increases under the reset rule;
//! - a carried output none of whose inputs was ever reset, missing or skipped equals the plain
//!   sum of its inputs' current values;
//! - a refused (late) scrape changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone)]
enum Op {
    /// Time passes and the aggregator scrapes.
    Scrape { dt: u8 },
    /// Every series of a pod counts up.
    Inc { pod: u8, amount: u8 },
    /// A pod's process restarts: its counters drop to small values.
    Restart { pod: u8, small: u8 },
    /// A pod is missing from the next scrape.
    Timeout { pod: u8 },
    /// A pod leaves the DNS answer.
    Leave { pod: u8 },
    /// A pod that left comes back (same process).
    Return { pod: u8 },
    /// A new pod: `old` ones started long ago (were not seen before), others just now.
    Join { old: bool, exports_start: bool },
    /// A new series in a pod.
    NewSeries { pod: u8, hist: bool },
    /// A series is missing from a pod's next scrape (e.g. not requested since a restart).
    Hide { pod: u8, series: u8 },
    /// A scrape whose response finished after a newer one was applied.
    Late,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4).prop_map(|dt| Op::Scrape { dt }),
        5 => (any::<u8>(), 0u8..12).prop_map(|(pod, amount)| Op::Inc { pod, amount }),
        2 => (any::<u8>(), 0u8..4).prop_map(|(pod, small)| Op::Restart { pod, small }),
        2 => any::<u8>().prop_map(|pod| Op::Timeout { pod }),
        1 => any::<u8>().prop_map(|pod| Op::Leave { pod }),
        1 => any::<u8>().prop_map(|pod| Op::Return { pod }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(old, exports_start)| Op::Join { old, exports_start }),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(pod, hist)| Op::NewSeries { pod, hist }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(pod, series)| Op::Hide { pod, series }),
        1 => Just(Op::Late),
    ]
}

/// One input series of a pod: its name, output, kind, group and true value.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    output: String,
    kind: Kind,
    group: String,
    value: f64,
}

#[derive(Debug, Clone)]
struct Pod {
    name: String,
    start_s: Option<f64>,
    present: bool,
    timeout: bool,
    /// Series missing from the next scrape.
    hidden: BTreeSet<usize>,
    series: Vec<Series>,
    /// Counters and histograms created so far (to name new ones).
    made: u32,
}

impl Pod {
    fn new(name: String, start_s: Option<f64>) -> Pod {
        let mut p = Pod {
            name,
            start_s,
            present: true,
            timeout: false,
            hidden: BTreeSet::new(),
            series: Vec::new(),
            made: 0,
        };
        p.add_series(false);
        p.add_series(false);
        p.add_series(true);
        p
    }

    /// Counter k sums into output `c{k % 3}` (so a pod feeds some outputs twice); histogram k
    /// into `h{k % 2}_*`.
    fn add_series(&mut self, hist: bool) {
        let k = self.made;
        self.made += 1;
        let pod = &self.name;
        if !hist {
            self.series.push(Series {
                name: format!("c{k}{{pod={pod}}}"),
                output: format!("c{}", k % 3),
                kind: Kind::Counter,
                group: String::new(),
                value: 1.0,
            });
            return;
        }
        let g = format!("h{k}{{pod={pod}}}");
        let o = k % 2;
        for (suffix, kind) in [
            ("le1", Kind::Bucket),
            ("inf", Kind::Bucket),
            ("sum", Kind::Sum),
            ("count", Kind::Count),
        ] {
            self.series.push(Series {
                name: format!("h{k}_{suffix}{{pod={pod}}}"),
                output: format!("h{o}_{suffix}"),
                kind,
                group: g.clone(),
                value: 1.0,
            });
        }
    }

    /// Counts up, keeping each histogram consistent (le1 <= inf == count).
    fn inc(&mut self, amount: u8) {
        let mut by_group: BTreeMap<String, f64> = BTreeMap::new();
        for (i, s) in self.series.iter_mut().enumerate() {
            let step = f64::from((u32::from(amount) * (i as u32 + 1)) % 7);
            match s.kind {
                Kind::Counter => s.value += step,
                Kind::Sum => s.value += 2.0 * step,
                _ => {
                    *by_group.entry(s.group.clone()).or_default() = step;
                }
            }
        }
        for s in &mut self.series {
            if let Some(&step) = by_group.get(&s.group) {
                match s.kind {
                    Kind::Bucket if s.name.contains("_le1") => s.value += (step / 2.0).floor(),
                    Kind::Bucket | Kind::Count => s.value += step,
                    _ => {}
                }
            }
        }
    }

    /// The series the next scrape shows.
    fn visible(&self) -> Vec<Series> {
        (0..self.series.len())
            .filter(|i| !self.hidden.contains(i))
            .map(|i| self.series[i].clone())
            .collect()
    }

    fn restart(&mut self, small: u8, now_ms: i64) {
        if self.start_s.is_some() {
            self.start_s = Some(now_ms as f64 / 1000.0 - 0.5);
        }
        for s in &mut self.series {
            s.value = match s.kind {
                Kind::Bucket if s.name.contains("_le1") => 0.0,
                _ => f64::from(small),
            };
        }
    }
}

fn series_hash(name: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(name.as_bytes())
}

fn group_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

// ---- The model ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct MInput {
    last: f64,
    seen_ms: i64,
    output: String,
}

#[derive(Debug, Clone)]
struct MTarget {
    start: Option<f64>,
    seen_ms: i64,
    restart_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct MOutput {
    /// What is served: the carried total, or the single input's last value.
    served: f64,
    carried: bool,
    seen_ms: i64,
    multi_ms: i64,
    /// An input of it was reset, missing from a scrape while tracked, or counted from its
    /// second sample: from then on it may differ from the plain sum.
    disturbed: bool,
}

#[derive(Debug, Default)]
struct Model {
    inputs: BTreeMap<(String, String), MInput>,
    targets: BTreeMap<String, MTarget>,
    outputs: BTreeMap<String, MOutput>,
    prev_now: Option<i64>,
}

/// One target's scrape as the model sees it.
struct MScrape<'a> {
    pod: &'a str,
    start: Option<f64>,
    series: &'a [Series],
}

impl Model {
    /// Applies a scrape; returns each observed output's increase under the reset rule.
    fn scrape(&mut self, now: i64, scrapes: &[MScrape]) -> BTreeMap<String, f64> {
        let prev_now = self.prev_now;
        self.prev_now = Some(now);
        let mut increase: BTreeMap<String, f64> = BTreeMap::new();
        let mut raw: BTreeMap<String, f64> = BTreeMap::new();
        let mut new_outputs = BTreeSet::new();
        let observed: BTreeSet<(String, String)> = scrapes
            .iter()
            .flat_map(|s| s.series.iter().map(|x| (s.pod.to_owned(), x.name.clone())))
            .collect();
        // Tracked inputs that are missing disturb their outputs.
        for (key, input) in &self.inputs {
            if !observed.contains(key) {
                if let Some(o) = self.outputs.get_mut(&input.output) {
                    o.disturbed = true;
                }
            }
        }
        for s in scrapes {
            let known = self.targets.contains_key(s.pod);
            let target = self.targets.entry(s.pod.to_owned()).or_insert(MTarget {
                start: s.start,
                seen_ms: now,
                restart_ms: None,
            });
            let restarted = known
                && matches!((target.start, s.start), (Some(a), Some(b)) if (a - b).abs() > START_TIME_TOLERANCE_S);
            if restarted {
                target.restart_ms = Some(now);
            }
            if s.start.is_some() {
                target.start = s.start;
            }
            target.seen_ms = now;
            let restart_ms = target.restart_ms;
            let started_since =
                matches!((s.start, prev_now), (Some(st), Some(p)) if st * 1000.0 > p as f64);
            let count_first = known || started_since;
            let was_reset = |input: Option<&MInput>, value: f64| {
                restarted
                    || input.is_some_and(|i| {
                        restart_ms.is_some_and(|r| i.seen_ms < r) || value < i.last
                    })
            };
            // Group resets, from each group's _count.
            let mut group_reset: BTreeMap<&str, bool> = BTreeMap::new();
            for x in s.series.iter().filter(|x| x.kind == Kind::Count) {
                let input = self.inputs.get(&(s.pod.to_owned(), x.name.clone()));
                group_reset.insert(&x.group, was_reset(input, x.value));
            }
            for x in s.series {
                if !self.outputs.contains_key(&x.output) {
                    new_outputs.insert(x.output.clone());
                    self.outputs.insert(
                        x.output.clone(),
                        MOutput {
                            served: 0.0,
                            carried: false,
                            seen_ms: now,
                            multi_ms: i64::MIN,
                            disturbed: false,
                        },
                    );
                }
                let out = self.outputs.get_mut(&x.output).expect("just inserted");
                out.seen_ms = now;
                let key = (s.pod.to_owned(), x.name.clone());
                let contribution = match self.inputs.get(&key) {
                    None => {
                        if new_outputs.contains(&x.output) || count_first {
                            x.value
                        } else {
                            out.disturbed = true;
                            0.0
                        }
                    }
                    Some(input) => {
                        let group = group_reset.get(x.group.as_str()).copied();
                        let reset = match x.kind {
                            Kind::Counter | Kind::Count => was_reset(Some(input), x.value),
                            Kind::Bucket => was_reset(Some(input), x.value) || group == Some(true),
                            Kind::Sum => {
                                restarted
                                    || restart_ms.is_some_and(|r| input.seen_ms < r)
                                    || group.unwrap_or(x.value < input.last)
                            }
                        };
                        if reset {
                            out.disturbed = true;
                            x.value
                        } else {
                            x.value - input.last
                        }
                    }
                };
                self.inputs.insert(
                    key,
                    MInput {
                        last: x.value,
                        seen_ms: now,
                        output: x.output.clone(),
                    },
                );
                *increase.entry(x.output.clone()).or_default() += contribution;
                raw.insert(x.output.clone(), x.value);
            }
        }
        // Outputs: carried when two or more inputs are tracked.
        for (name, inc) in &increase {
            let n = self.inputs.values().filter(|i| &i.output == name).count();
            let out = self.outputs.get_mut(name).expect("observed");
            if n >= 2 {
                out.multi_ms = now;
                out.carried = true;
            }
            let r = raw[name];
            if out.carried {
                out.served += inc;
                if n == 1 && out.multi_ms < now - WINDOW_MS && out.served == r {
                    out.carried = false;
                }
            } else {
                out.served = r;
            }
        }
        // Forget what was not seen for the window.
        let horizon = now - WINDOW_MS;
        self.inputs.retain(|_, i| i.seen_ms >= horizon);
        self.targets.retain(|_, t| t.seen_ms >= horizon);
        let inputs = &self.inputs;
        self.outputs
            .retain(|name, o| o.seen_ms >= horizon || inputs.values().any(|i| &i.output == name));
        increase
    }
}

// ---- The run ------------------------------------------------------------------------------

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut state = CounterState::new(WINDOW_MS as u64);
    let mut model = Model::default();
    let mut pods = vec![
        Pod::new("p0".into(), Some(900.0)),
        Pod::new("p1".into(), None),
    ];
    let mut now: i64 = 1_000_000;
    let mut seq = 0u64;
    let mut late_pending = false;
    let mut previous: BTreeMap<String, (f64, bool)> = BTreeMap::new();
    let pick = |pods: &[Pod], i: u8| usize::from(i) % pods.len();
    for op in ops {
        match *op {
            Op::Inc { pod, amount } => {
                let i = pick(&pods, pod);
                pods[i].inc(amount);
            }
            Op::Restart { pod, small } => {
                let i = pick(&pods, pod);
                pods[i].restart(small, now + 1);
            }
            Op::Timeout { pod } => {
                let i = pick(&pods, pod);
                pods[i].timeout = true;
            }
            Op::Leave { pod } => {
                let i = pick(&pods, pod);
                pods[i].present = false;
            }
            Op::Return { pod } => {
                let i = pick(&pods, pod);
                pods[i].present = true;
            }
            Op::Join { old, exports_start } => {
                let start = exports_start.then_some(if old {
                    100.0
                } else {
                    now as f64 / 1000.0 + 0.5
                });
                let n = pods.len();
                let mut p = Pod::new(format!("p{n}"), start);
                if old {
                    p.inc(11);
                    p.inc(5);
                }
                pods.push(p);
            }
            Op::NewSeries { pod, hist } => {
                let i = pick(&pods, pod);
                pods[i].add_series(hist);
            }
            Op::Hide { pod, series } => {
                let i = pick(&pods, pod);
                let n = pods[i].series.len();
                pods[i].hidden.insert(usize::from(series) % n);
            }
            Op::Late => late_pending = true,
            Op::Scrape { dt } => {
                now += [5_000, 15_000, 40_000, 100_000][usize::from(dt)];
                let live: Vec<(&Pod, Vec<Series>)> = pods
                    .iter()
                    .filter(|p| p.present && !p.timeout)
                    .map(|p| (p, p.visible()))
                    .collect();
                let scrapes: Vec<TargetScrape> = live
                    .iter()
                    .map(|(p, visible)| {
                        let mut ts = TargetScrape::new(&p.name);
                        if let Some(s) = p.start_s {
                            ts.set_process_start(s);
                        }
                        for s in visible {
                            ts.observe(
                                series_hash(&s.name),
                                output_hash(s.output.as_bytes()),
                                s.kind,
                                group_hash(&s.group),
                                s.value,
                            );
                        }
                        ts
                    })
                    .collect();
                if late_pending && seq > 0 {
                    // This response finished after scrape `seq` was applied: refused, and
                    // nothing changes.
                    late_pending = false;
                    let before: Vec<_> = model
                        .outputs
                        .keys()
                        .map(|o| state.served(output_hash(o.as_bytes())))
                        .collect();
                    let stats = state.stats();
                    prop_assert!(state.apply(seq, now, &scrapes).is_err());
                    let after: Vec<_> = model
                        .outputs
                        .keys()
                        .map(|o| state.served(output_hash(o.as_bytes())))
                        .collect();
                    prop_assert_eq!(before, after);
                    prop_assert_eq!(stats.scrapes_refused + 1, state.stats().scrapes_refused);
                    now -= [5_000, 15_000, 40_000, 100_000][usize::from(dt)];
                    continue;
                }
                seq += 1;
                let report = state
                    .apply(seq, now, &scrapes)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mscrapes: Vec<MScrape> = live
                    .iter()
                    .map(|(p, visible)| MScrape {
                        pod: &p.name,
                        start: p.start_s,
                        series: visible,
                    })
                    .collect();
                let increase = model.scrape(now, &mscrapes);
                check(&state, &model, &increase, &previous, &report, &live)?;
                for p in &mut pods {
                    p.timeout = false;
                    p.hidden.clear();
                }
                previous = model
                    .outputs
                    .iter()
                    .map(|(k, o)| (k.clone(), (o.served, o.carried)))
                    .collect();
            }
        }
    }
    Ok(())
}

fn check(
    state: &CounterState,
    model: &Model,
    increase: &BTreeMap<String, f64>,
    previous: &BTreeMap<String, (f64, bool)>,
    report: &ApplyReport,
    live: &[(&Pod, Vec<Series>)],
) -> Result<(), TestCaseError> {
    let st = state.stats();
    prop_assert_eq!(st.inputs_tracked, model.inputs.len());
    prop_assert_eq!(st.outputs_tracked, model.outputs.len());
    prop_assert_eq!(
        st.outputs_carried,
        model.outputs.values().filter(|o| o.carried).count()
    );
    for (name, o) in &model.outputs {
        let served = state.served(output_hash(name.as_bytes()));
        let want = if o.carried {
            Served::Carried(o.served)
        } else {
            Served::PassThrough(o.served)
        };
        prop_assert_eq!(served, Some(want), "output {}", name);
        if let (Some(&(before, true)), true) = (previous.get(name), o.carried) {
            // A `_sum` may fall without a reset (negative observations; here: a restart its
            // `_count` does not show); every other carried output is monotonic.
            if !name.ends_with("_sum") {
                prop_assert!(
                    o.served >= before,
                    "{} fell from {} to {}",
                    name,
                    before,
                    o.served
                );
            }
            let inc = increase.get(name).copied().unwrap_or(0.0);
            prop_assert_eq!(o.served - before, inc, "increase of {}", name);
        }
        if o.carried && !o.disturbed {
            let plain: f64 = live
                .iter()
                .flat_map(|(_, visible)| visible.iter())
                .filter(|s| &s.output == name)
                .map(|s| s.value)
                .sum();
            prop_assert_eq!(o.served, plain, "undisturbed {} is not the plain sum", name);
        }
    }
    for h in &report.expired {
        prop_assert!(state.served(*h).is_none());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn counter_state_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}

#[test]
fn the_model_run_covers_the_interesting_paths() {
    // A fixed sequence that goes through every rule once, so a broken generator cannot make
    // the property test vacuous.
    use Op::*;
    let ops = [
        Scrape { dt: 1 },
        Inc { pod: 0, amount: 3 },
        Scrape { dt: 1 },
        Restart { pod: 0, small: 1 },
        Inc { pod: 0, amount: 9 },
        Timeout { pod: 1 },
        Scrape { dt: 1 },
        Restart { pod: 1, small: 0 },
        Scrape { dt: 1 },
        Hide { pod: 0, series: 0 },
        Hide { pod: 0, series: 5 },
        Restart { pod: 0, small: 0 },
        Scrape { dt: 1 },
        Inc { pod: 0, amount: 11 },
        Scrape { dt: 1 },
        Join {
            old: true,
            exports_start: true,
        },
        Join {
            old: false,
            exports_start: true,
        },
        Scrape { dt: 1 },
        NewSeries { pod: 2, hist: true },
        Inc { pod: 2, amount: 4 },
        Late,
        Scrape { dt: 1 },
        Scrape { dt: 1 },
        Leave { pod: 0 },
        Scrape { dt: 3 },
        Return { pod: 0 },
        Scrape { dt: 1 },
    ];
    run(&ops).unwrap();
}
