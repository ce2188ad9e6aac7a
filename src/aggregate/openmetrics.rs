//! The aggregate written in OpenMetrics text 1.0, for a client that accepts OpenMetrics when
//! the upstream answered in it: `# UNIT`, `_created` samples, `info`, `stateset` and
//! `gaugehistogram` families come through as the upstream wrote them, and the text ends with
//! `# EOF`. Exemplars of the scrape come out with their series where OpenMetrics allows them
//! (see [`super::exemplars`] for the one a summed series keeps).
//!
//! How each family is written (its OpenMetrics name and type, where `# UNIT` may stand) is
//! decided in [`crate::exposition::render_om`], the same rules the format conversions use.

use std::io;

use crate::exposition::render_om::{
    key_name, write_eof, write_openmetrics_family, OmSample, OmValue,
};

use crate::relabel::aggregation::{Action, Op};

use super::render::wall_clock_ms;
use super::{Aggregator, RenderOptions};

impl Aggregator {
    /// Renders every family that has served series in OpenMetrics: HELP, TYPE (the input's own,
    /// OpenMetrics types included), UNIT, then its samples with timestamps in seconds
    /// (`opts.default_timestamp_ms` for samples without one), then `# EOF`. The series are
    /// the same as [`Aggregator::render`] writes, in the same order.
    pub fn render_openmetrics(&self, out: &mut Vec<u8>, opts: &RenderOptions) {
        // A Vec is its own destination: the chunk never fills, so nothing is handed on.
        let unbounded = self.render_openmetrics_chunked(out, opts, usize::MAX, |_| Ok(()));
        debug_assert!(unbounded.is_ok());
        write_eof(out);
    }

    /// Renders the same text as [`Aggregator::render_openmetrics`] into `w`, with `tail`
    /// (more OpenMetrics families, e.g. the server's per-target health) before `# EOF`,
    /// through a buffer of about [`super::RENDER_CHUNK`] bytes plus one family's text: the
    /// server streams it into a gzip encoder without holding the text whole.
    pub fn render_openmetrics_to(
        &self,
        w: &mut impl io::Write,
        opts: &RenderOptions,
        tail: &[u8],
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(super::RENDER_CHUNK + (4 << 10));
        self.render_openmetrics_chunked(&mut buf, opts, super::RENDER_CHUNK, |b| {
            w.write_all(b)?;
            b.clear();
            Ok(())
        })?;
        buf.extend_from_slice(tail);
        write_eof(&mut buf);
        w.write_all(&buf)
    }

    /// The families of [`Aggregator::render_openmetrics`] without `# EOF`, appended to `out`;
    /// calls `spill` with it after a family that took it to `chunk` bytes or more.
    fn render_openmetrics_chunked(
        &self,
        out: &mut Vec<u8>,
        opts: &RenderOptions,
        chunk: usize,
        mut spill: impl FnMut(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let now_ms = opts.now_ms.unwrap_or_else(wall_clock_ms);
        // The family's keys read back whole, one after the other, and where each ends.
        let mut keys = Vec::new();
        let mut ends = Vec::new();
        for f in &self.families {
            let live: Vec<u32> = f
                .series
                .iter()
                .copied()
                .filter(|&id| self.is_served(id))
                .collect();
            if live.is_empty() {
                continue;
            }
            keys.clear();
            ends.clear();
            for &id in &live {
                self.keys
                    .get(self.series[id as usize].key)
                    .write_to(&mut keys);
                ends.push(keys.len());
            }
            let key = |i: usize| &keys[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
            let names: Vec<_> = (0..live.len()).map(|i| key_name(key(i))).collect();
            let samples: Vec<OmSample<'_>> = live
                .iter()
                .zip(&names)
                .enumerate()
                .map(|(i, (&id, name))| {
                    let s = &self.series[id as usize];
                    // As the text renderer: one input as written (`count` is 1 even then, and
                    // not the value), otherwise the served combination and its timestamp.
                    let (value, timestamp_ms) = match self
                        .raw_text(s)
                        .filter(|_| s.action != Action::Combine(Op::Count))
                    {
                        Some(raw) => (OmValue::Text(raw), s.timestamp_ms),
                        None => {
                            let (value, ts) = Self::served_value(s, now_ms);
                            (OmValue::Float(value), ts)
                        }
                    };
                    OmSample {
                        name,
                        key: key(i),
                        value,
                        timestamp_ms: timestamp_ms.or(opts.default_timestamp_ms),
                        exemplar: if self.exemplars.is_empty() {
                            None
                        } else {
                            self.exemplar(id)
                        },
                    }
                })
                .collect();
            let current = f.meta_epoch == self.epoch;
            write_openmetrics_family(
                out,
                &f.name,
                (current && f.has_help).then_some(f.help.as_str()),
                if current { f.om_type.or(f.typ) } else { None },
                (current && f.has_unit).then_some(f.unit.as_str()),
                &samples,
            );
            if out.len() >= chunk {
                spill(out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::exposition::{Format, ParseOptions, Parser};
    use crate::pipeline::Pipeline;
    use crate::relabel::Config;

    use super::*;

    #[test]
    fn openmetrics_input_comes_out_whole() {
        let om = "\
# HELP rpc_seconds Time \\\"spent\\\".
# TYPE rpc_seconds counter
# UNIT rpc_seconds seconds
rpc_seconds_total{a=\"1\"} 2 1700000000.5 # {trace_id=\"x\"} 1
rpc_seconds_created{a=\"1\"} 1.7e9
# TYPE build info
build_info{v=\"1\"} 1
# TYPE s stateset
s{s=\"a\"} 1
s{s=\"b\"} 0
# TYPE q gaugehistogram
q_bucket{le=\"+Inf\"} 1
q_gsum 2
q_gcount 1
# EOF
";
        let mut p = Pipeline::new(&Config::passthrough());
        let mut parser = Parser::new(ParseOptions {
            format: Format::OpenMetrics,
            ..ParseOptions::default()
        });
        parser.feed(om.as_bytes(), &mut p).unwrap();
        parser.finish(&mut p).unwrap();
        let mut out = Vec::new();
        p.subsets()[0]
            .aggregator
            .render_openmetrics(&mut out, &RenderOptions::default());
        assert_eq!(String::from_utf8(out).unwrap(), om);
        // Streamed, with more families before `# EOF`: the same text around them.
        let tail = "# TYPE up gauge\nup 1\n";
        let mut streamed = Vec::new();
        p.subsets()[0]
            .aggregator
            .render_openmetrics_to(&mut streamed, &RenderOptions::default(), tail.as_bytes())
            .unwrap();
        let expected = om.replace("# EOF\n", &format!("{tail}# EOF\n"));
        assert_eq!(String::from_utf8(streamed).unwrap(), expected);
        // Text 0.0.4 has no exemplars.
        let mut text = Vec::new();
        p.subsets()[0]
            .aggregator
            .render(&mut text, &RenderOptions::default());
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("rpc_seconds_total{a=\"1\"} 2 1700000000500\n"),
            "{text}"
        );
        // Subsets stamp samples without a timestamp, in seconds.
        let mut out = Vec::new();
        p.subsets()[0].aggregator.render_openmetrics(
            &mut out,
            &RenderOptions {
                default_timestamp_ms: Some(1_700_000_001_250),
                ..RenderOptions::default()
            },
        );
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("rpc_seconds_total{a=\"1\"} 2 1700000000.5 # {trace_id=\"x\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("build_info{v=\"1\"} 1 1700000001.25\n"),
            "{out}"
        );
    }

    fn run(config: &str, om: &str) -> Pipeline {
        let config = Config::from_yaml(config, "test").unwrap();
        let mut p = Pipeline::new(&config).with_series_cache(100);
        for _ in 0..2 {
            // The second pass replays the series cache: exemplars come through there too.
            p.begin_scrape();
            let mut parser = Parser::new(ParseOptions {
                format: Format::OpenMetrics,
                ..ParseOptions::default()
            });
            parser.feed(om.as_bytes(), &mut p).unwrap();
            parser.finish(&mut p).unwrap();
        }
        p
    }

    fn om_of(agg: &Aggregator) -> String {
        let mut out = Vec::new();
        agg.render_openmetrics(&mut out, &RenderOptions::default());
        String::from_utf8(out).unwrap()
    }

    /// OpenMetrics serves what text serves: a gauge rule's combination (`avg`, `count`) and a
    /// compensated sum, not the running value.
    #[test]
    fn combined_values_are_the_served_ones() {
        let om = "\
# TYPE g gauge
g{a=\"1\"} 1
g{a=\"2\"} 2
g{a=\"3\"} 6
# TYPE n gauge
n{a=\"1\"} 5
n{a=\"2\"} 5
# TYPE f gauge
f{a=\"1\"} 1e16
f{a=\"2\"} 1
f{a=\"3\"} 1
f{a=\"4\"} -1e16
# EOF
";
        let config = "metric_relabel_configs: [{action: labeldrop, regex: a}]\n\
            aggregation: [{match: g, op: avg}, {match: n, op: count}]";
        let p = run(config, om);
        let agg = &p.subsets()[0].aggregator;
        let mut text = Vec::new();
        agg.render(&mut text, &RenderOptions::default());
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "# TYPE g gauge\ng 3\n# TYPE n gauge\nn 2\n# TYPE f gauge\nf 2\n"
        );
        assert_eq!(
            om_of(agg),
            "# TYPE g gauge\ng 3\n# TYPE n gauge\nn 2\n# TYPE f gauge\nf 2\n# EOF\n"
        );
    }

    /// A summed series keeps the newest exemplar by timestamp, in one body and across targets.
    #[test]
    fn summed_series_keep_the_newest_exemplar() {
        let om = "\
# TYPE c counter
c_total{a=\"1\"} 1 # {t=\"old\"} 1 100.5
c_total{a=\"2\"} 1 # {t=\"new\"} 1 200
c_total{a=\"3\"} 1 # {t=\"none\"} 1
c_total{a=\"4\"} 1
# EOF
";
        let drop_a = "metric_relabel_configs: [{action: labeldrop, regex: a}]";
        let p = run(drop_a, om);
        assert_eq!(
            om_of(&p.subsets()[0].aggregator),
            "# TYPE c counter\nc_total 4 # {t=\"new\"} 1 200\n# EOF\n"
        );
        // Targets merged: the newest of theirs.
        let newer = run(drop_a, &om.replace("200", "300").replace("new", "newest"));
        let older = run(drop_a, &om.replace("200", "150").replace("new", "newer"));
        let mut merged = Aggregator::new();
        merged.merge_targets(&[
            &p.subsets()[0].aggregator,
            &newer.subsets()[0].aggregator,
            &older.subsets()[0].aggregator,
        ]);
        assert_eq!(
            om_of(&merged),
            "# TYPE c counter\nc_total 12 # {t=\"newest\"} 1 300\n# EOF\n"
        );
        // One input: intact.
        let p = run("metric_relabel_configs: []", om);
        assert!(om_of(&p.subsets()[0].aggregator)
            .contains("c_total{a=\"1\"} 1 # {t=\"old\"} 1 100.5\n"));
        assert!(om_of(&p.subsets()[0].aggregator).contains("c_total{a=\"4\"} 1\n"));
    }
}
