//! The aggregate written as text 0.0.4: families in first-seen order with their HELP and TYPE,
//! each served series as its key (already the rendered series text) and its value. A series of
//! one input is written with the value text as the input wrote it; a combination with the value
//! its action serves ([`Aggregator::served_value`], shared with the OpenMetrics writer).

use std::io;

use super::*;

impl Aggregator {
    /// Renders every family that has served series: `# HELP`, `# TYPE`, then its samples,
    /// appended to `out`. The server keeps the whole text (it is served to many clients).
    pub fn render(&self, out: &mut Vec<u8>, opts: &RenderOptions) {
        // A Vec is its own destination: the chunk never fills, so nothing is handed on.
        let unbounded = self.render_chunked(out, opts, usize::MAX, |_| Ok(()));
        debug_assert!(unbounded.is_ok());
    }

    /// Renders the same text as [`Aggregator::render`] into `w`, through a reused buffer of
    /// about [`RENDER_CHUNK`] bytes: memory does not grow with the output (`--file --apply`
    /// writes to stdout as it renders).
    pub fn render_to(&self, w: &mut impl io::Write, opts: &RenderOptions) -> io::Result<()> {
        let mut buf = Vec::with_capacity(RENDER_CHUNK + (4 << 10));
        self.render_chunked(&mut buf, opts, RENDER_CHUNK, |b| {
            w.write_all(b)?;
            b.clear();
            Ok(())
        })?;
        w.write_all(&buf)
    }

    /// The renderer: appends to `out` and calls `spill` with it after a line that took it to
    /// `chunk` bytes or more (lines are never split between calls).
    pub(super) fn render_chunked(
        &self,
        out: &mut Vec<u8>,
        opts: &RenderOptions,
        chunk: usize,
        mut spill: impl FnMut(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let now_ms = opts.now_ms.unwrap_or_else(wall_clock_ms);
        for f in &self.families {
            if !f.series.iter().any(|&id| self.is_served(id)) {
                continue;
            }
            if f.meta_epoch == self.epoch {
                if f.has_help {
                    write_help(out, &f.name, &f.help);
                }
                if let Some(typ) = f.typ {
                    write_type(out, &f.name, typ);
                }
            }
            for &id in &f.series {
                if !self.is_served(id) {
                    continue;
                }
                let s = &self.series[id as usize];
                self.keys.get(s.key).write_to(out);
                // One input: as written (`count` is 1 even then, and not the value).
                match self
                    .raw_text(s)
                    .filter(|_| s.action != Action::Combine(Op::Count))
                {
                    Some(raw) => {
                        out.push(b' ');
                        out.extend_from_slice(raw);
                        write_timestamp_line_end(out, s.timestamp_ms.or(opts.default_timestamp_ms));
                    }
                    None => {
                        let (value, ts) = Self::served_value(s, now_ms);
                        write_value_line_end(out, value, ts.or(opts.default_timestamp_ms));
                    }
                }
                if out.len() >= chunk {
                    spill(out)?;
                }
            }
        }
        Ok(())
    }

    /// The value and timestamp a live series is served with (`now_ms`: the scrape's time).
    pub(super) fn served_value(s: &Series, now_ms: i64) -> (f64, Option<i64>) {
        let op = s.action.op();
        if op == Op::Last {
            return (s.value, if s.any_now { None } else { s.timestamp_ms });
        }
        let value = if s.carried {
            s.value
        } else {
            match op {
                Op::Sum | Op::Drop => Sum::from_parts(s.value, s.comp).value(),
                Op::Avg => Sum::from_parts(s.value, s.comp).value() / f64::from(s.count.max(1)),
                Op::Count => f64::from(s.count),
                Op::Max | Op::Min | Op::Last => s.value,
            }
        };
        // A combination with an input that is "now" is not older than now.
        let ts = match s.timestamp_ms {
            Some(t) if s.any_now && t <= now_ms => None,
            t => t,
        };
        (value, ts)
    }
}

/// Milliseconds since the epoch, now.
pub(super) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
