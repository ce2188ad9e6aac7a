//! The label-filter fast path (a list of only `labeldrop`/`labelkeep` rules, which builds no
//! label set) gives exactly what the general relabel path gives for the same rules.

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::{ParseOptions, Parser};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;

const NAMES: [&str; 8] = ["path", "code", "le", "Zone", "method", "a_b", "pod", "x"];

/// A rule that keeps everything but is no label filter (two source labels), so that a program
/// holding it takes the general relabel path.
const FORCE_GENERAL: &str = "- {action: keep, source_labels: [__name__, __name__], regex: '.*'}\n";

fn render(rules: &str, text: &str) -> (String, u64, u64, u64) {
    let config = Config::from_yaml(rules, "test").expect("valid config");
    assert_eq!(
        config.default.is_label_filter(),
        !rules.contains(FORCE_GENERAL),
        "{rules}"
    );
    let mut p = Pipeline::new(&config);
    let mut parser = Parser::new(ParseOptions::default());
    parser.feed(text.as_bytes(), &mut p).expect("parses");
    parser.finish(&mut p).expect("parses");
    let sub = &p.subsets()[0];
    let mut out = Vec::new();
    sub.aggregator.render(&mut out, &RenderOptions::default());
    (
        String::from_utf8(out).expect("utf-8"),
        sub.stats().dropped_nameless,
        sub.dropped_by_relabel,
        sub.aggregator.series_count() as u64,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_equals_general_path(
        lines in proptest::collection::vec(
            (0usize..4, proptest::collection::vec((0usize..8, 0u8..3), 0..8), 0u32..100),
            1..30,
        ),
        drop_re in prop_oneof![Just("path"), Just("p.*"), Just("code|le"), Just("__name__"), Just("[A-Z].*"), Just("x|pod")],
        keep_re in prop_oneof![Just(".*"), Just("__name__|code|le|path"), Just("code")],
        name_rule in prop_oneof![
            Just(""),
            Just("- {action: keep, source_labels: [__name__], regex: 'm0|m2'}\n"),
            Just("- {action: drop, source_labels: [__name__], regex: 'm1'}\n"),
            Just("- {action: drop, source_labels: [__name__], regex: ''}\n"),
            Just("- {action: keep, source_labels: [__name__], regex: 'm.q|m1'}\n"),
        ],
        name_rule_first in any::<bool>(),
    ) {
        let mut text = String::new();
        for (metric, labels, value) in &lines {
            let mut seen = std::collections::HashSet::new();
            let pairs: Vec<String> = labels
                .iter()
                .filter(|(n, _)| seen.insert(*n))
                .map(|(n, v)| format!("{}=\"{}\"", NAMES[*n], ["", "1", "v\\\"q"][*v as usize]))
                .collect();
            // Metric 3 is a quoted (Prometheus 3) name, which is not legacy-valid.
            if *metric == 3 {
                let sep = if pairs.is_empty() { "" } else { "," };
                text.push_str(&format!("{{\"m.q\"{sep}{}}} {value}\n", pairs.join(",")));
            } else {
                text.push_str(&format!("m{metric}{{{}}} {value}\n", pairs.join(",")));
            }
        }
        let (before, after) = if name_rule_first { (name_rule, "") } else { ("", name_rule) };
        let filter = format!(
            "metric_relabel_configs:\n{before}- {{action: labeldrop, regex: '{drop_re}'}}\n- {{action: labelkeep, regex: '{keep_re}'}}\n{after}"
        );
        // The same rules plus a `keep` that keeps everything: not a pure label filter, so the
        // general path runs.
        let general = format!("{filter}{FORCE_GENERAL}");
        prop_assert_eq!(render(&filter, &text), render(&general, &text), "\n{}", text);
    }
}

/// With fan-out normalization on, histogram `le` values are still rewritten (those samples take
/// the general path) while the other samples take the fast path; both give the general result.
#[test]
fn fast_path_with_float_label_normalization() {
    let text = "# TYPE h histogram\nh_bucket{le=\"1\",path=\"/a\"} 1\nh_bucket{le=\"1.0\",path=\"/b\"} 2\nh_sum{path=\"/a\"} 3\n# TYPE g gauge\ng{le=\"1\",path=\"/a\"} 4\n";
    let run = |rules: &str| {
        let config = Config::from_yaml(rules, "test").expect("valid config");
        let mut p = Pipeline::new(&config).normalize_float_labels(true);
        let mut parser = Parser::new(ParseOptions::default());
        parser.feed(text.as_bytes(), &mut p).expect("parses");
        parser.finish(&mut p).expect("parses");
        let mut out = Vec::new();
        p.subsets()[0]
            .aggregator
            .render(&mut out, &RenderOptions::default());
        String::from_utf8(out).expect("utf-8")
    };
    let filter = "metric_relabel_configs:\n- {action: labeldrop, regex: path}\n";
    let general = format!("{filter}{FORCE_GENERAL}");
    let fast = run(filter);
    assert_eq!(fast, run(&general));
    assert_eq!(
        fast,
        "# TYPE h histogram\nh_bucket{le=\"1.0\"} 3\nh_sum 3\n# TYPE g gauge\ng{le=\"1\"} 4\n"
    );
}
