//! The aggregate written as text 0.0.4: families in first-seen order with their HELP and TYPE,
//! each served series as its key (already the rendered series text) and its value. A series of
//! one input is written with the value text as the input wrote it; a combination with the value
//! its action serves ([`Aggregator::served_value`], shared with the OpenMetrics writer).

use std::io;

use super::*;

/// A place in the output: a family (by index) and a position in its series list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cut {
    family: u32,
    at: u32,
}

/// One contiguous share of the output ([`Aggregator::render_shares`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderShare {
    from: Cut,
    to: Cut,
}

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
        self.render_share_to(self.whole(), w, opts)
    }

    /// The renderer: appends to `out` and calls `spill` with it after a line that took it to
    /// `chunk` bytes or more (lines are never split between calls).
    pub(super) fn render_chunked(
        &self,
        out: &mut Vec<u8>,
        opts: &RenderOptions,
        chunk: usize,
        spill: impl FnMut(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.render_range(out, opts, self.whole(), chunk, spill)
    }

    /// Every series, as one share.
    fn whole(&self) -> RenderShare {
        RenderShare {
            from: Cut::default(),
            to: Cut {
                family: self.families.len() as u32,
                at: 0,
            },
        }
    }

    /// The text of `share` only, as [`Aggregator::render_chunked`] writes it: a family's
    /// `# HELP` and `# TYPE` go with the share that holds the start of its series list.
    fn render_range(
        &self,
        out: &mut Vec<u8>,
        opts: &RenderOptions,
        share: RenderShare,
        chunk: usize,
        mut spill: impl FnMut(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let now_ms = opts.now_ms.unwrap_or_else(wall_clock_ms);
        let RenderShare { from, to } = share;
        let families = self
            .families
            .get(from.family as usize..)
            .unwrap_or_default()
            .iter()
            .zip(from.family..)
            .take_while(|&(_, fi)| fi < to.family || (fi == to.family && to.at > 0));
        for (f, fi) in families {
            let start = if fi == from.family { from.at } else { 0 } as usize;
            let end = if fi == to.family {
                to.at as usize
            } else {
                f.series.len()
            };
            let ids = f.series.get(start..end).unwrap_or_default();
            if start == 0 {
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
            }
            for &id in ids {
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

    /// The output cut into `n` (at least 1) shares of about as many series each, in output
    /// order: their texts ([`Aggregator::render_share_to`]) written one after the other are
    /// the text of [`Aggregator::render`]. A cut may fall inside a family.
    pub fn render_shares(&self, n: usize) -> Vec<RenderShare> {
        let total: usize = self.families.iter().map(|f| f.series.len()).sum();
        let n = n.clamp(1, total.max(1));
        let mut cuts = vec![Cut::default()];
        let (mut before, mut fi) = (0usize, 0usize);
        for k in 1..n {
            let target = total * k / n;
            while let Some(f) = self.families.get(fi) {
                if before + f.series.len() > target {
                    break;
                }
                before += f.series.len();
                fi += 1;
            }
            cuts.push(Cut {
                family: fi as u32,
                at: (target - before) as u32,
            });
        }
        cuts.push(self.whole().to);
        cuts.dedup();
        if cuts.len() < 2 {
            // Nothing to render: one empty share.
            return vec![self.whole()];
        }
        cuts.windows(2)
            .map(|w| RenderShare {
                from: w[0],
                to: w[1],
            })
            .collect()
    }

    /// Renders `share` (one of [`Aggregator::render_shares`]) into `w`, through a reused buffer
    /// of about [`RENDER_CHUNK`] bytes. `opts.now_ms` should be set, so that every share reads
    /// the same "now".
    pub fn render_share_to(
        &self,
        share: RenderShare,
        w: &mut impl io::Write,
        opts: &RenderOptions,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(RENDER_CHUNK + (4 << 10));
        self.render_range(&mut buf, opts, share, RENDER_CHUNK, |b| {
            w.write_all(b)?;
            b.clear();
            Ok(())
        })?;
        w.write_all(&buf)
    }

    /// The text of [`Aggregator::render`] written on up to `writers.len()` threads at once,
    /// one share each ([`Aggregator::render_shares`]): writer `k` gets share `k`, so the
    /// writers' contents in order are the whole text (a writer past the last share gets
    /// nothing). The first share is rendered on the calling thread.
    pub fn render_parallel<W: io::Write + Send>(
        &self,
        opts: &RenderOptions,
        writers: &mut [W],
    ) -> io::Result<()> {
        let opts = RenderOptions {
            now_ms: Some(opts.now_ms.unwrap_or_else(wall_clock_ms)),
            ..*opts
        };
        let shares = self.render_shares(writers.len());
        let mut jobs = writers.iter_mut().zip(shares);
        let Some((first_w, first)) = jobs.next() else {
            return Ok(());
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = jobs
                .map(|(w, share)| scope.spawn(move || self.render_share_to(share, w, &opts)))
                .collect();
            let mine = self.render_share_to(first, first_w, &opts);
            others.into_iter().fold(mine, |acc, h| {
                let theirs = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                acc.and(theirs)
            })
        })
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
