//! Every core on one input: a regular file read as byte ranges, one thread and one
//! [`Pipeline`] per range, the ranges' results put together in input order.
//!
//! # Guarantee
//! [`apply`] returns [`Parts`] whose outputs, written one after the other, are the text one
//! pass over the whole input would write, with the same counters, or says why it could not
//! ([`Fallback`]); the caller then reads the
//! input in one pass, which also reports any error with its exact line and column. Nothing it
//! cannot decide per range is guessed:
//!
//! - any parse error, read error or label limit in any range: fallback (the one-pass read
//!   reports the first one, where it is);
//! - an OpenMetrics-only feature (`# UNIT`, `# EOF`, an exemplar) anywhere: fallback, since
//!   it changes how later integer timestamps read ([`crate::exposition::Format::Auto`]) and
//!   `# EOF` ends the input;
//! - a series that occurs twice, in one range or in two: fallback (one pass keeps its first
//!   sample and counts the rest as duplicates; each range would keep one of its own). Ranges
//!   do not look series up as they read them: each lists the hashes of its series and sorts
//!   the list at its end ([`Pipeline::defer_repeat_check`]), and the lists are then compared
//!   with one walk each. Repeated series are rare, and a hash-table probe per series took 29%
//!   of the time.
//!
//! # What crosses a split point
//! The parser carries, from line to line: the line number (only in errors and in the limit a
//! sample breaks, both of which fall back), the claim of the last `# TYPE` on the samples
//! that follow (ended by a `# HELP`/`# UNIT` for another name: `Families`), whether an
//! OpenMetrics feature was seen (fallback), whether `# EOF` ended the input (fallback), and
//! caches that change no result (remembered label layouts and names, whose ids each range's
//! pipeline sees consistently). The pipeline carries the last `# TYPE` (which decides how a
//! new output series combines its inputs) and the set of series read (duplicates, checked at
//! the end). So a range that starts inside a family is first fed its *context*: the last valid
//! `# TYPE` line before it and at most two `# HELP`/`# UNIT` lines after that one (enough to
//! tell whether one of them ended the claim), found by scanning back from the split point for
//! lines that start with `#`. Feeding them again is harmless to the
//! aggregate, whose metadata is "first line of each kind wins": those lines are in an earlier
//! range, which already set what they set.
//!
//! # Putting the ranges together
//! A range whose aggregates hold no family and no series of the ranges before it (and no
//! metadata for their families) stays a part of its own
//! ([`Aggregator::can_precede`](crate::aggregate::Aggregator::can_precede)): written after
//! them, it writes what one pass would, with no copy; it only takes the metadata the earlier
//! ranges kept pending for its families (a HELP in one range, the family's first series in
//! the next). Otherwise
//! [`Aggregator::append_following`](crate::aggregate::Aggregator::append_following) appends
//! the range's aggregate to the aggregate of the ranges before it: families and series keep
//! first-seen order, each family its first HELP/TYPE/UNIT, and the counters add up as one pass
//! counts them. A sum whose inputs lie in two ranges is two compensated partial sums merged:
//! exact, and so equal to one pass, when the sums are exact (integer counts, dyadic values);
//! otherwise it may differ from one pass in the last bit, within the compensated sum's error.
//! Split points are line starts near equal shares of the file; where a `# HELP`/`# TYPE` line
//! (a family's start) is close, the split moves there, so that usually no output series spans
//! two ranges, and the ranges stay parts of their own (on the 2x ingress payload, appending
//! the second range's 213k output series into the first's aggregate took about a fifth of the
//! parallel read's wall time, by a perf profile: the reason parts exist).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use memchr::{memchr, memrchr};

use super::{Pipeline, READ_CHUNK};
use crate::aggregate::{AggregateStats, Aggregator, RenderOptions};
use crate::exposition::{MetaKind, Metadata, ParseOptions, Parser, Sample, Sink};
use crate::limits::{LabelLimits, LimitSink};
use crate::relabel::Config;

/// Bytes a file must have before it is worth splitting: below this, starting threads and
/// merging costs more than a second core saves.
pub const MIN_PARALLEL_BYTES: u64 = 8 << 20;

/// Fewest bytes per range: a file is split into at most its size over this many ranges.
pub const MIN_RANGE_BYTES: u64 = 4 << 20;

/// Most ranges when the caller leaves the number to the machine: putting the ranges together
/// is serial work that grows with their number (each range's series are looked up in every
/// earlier range's aggregate), so past a few cores more ranges stop paying.
pub const DEFAULT_MAX_THREADS: usize = 8;

/// The threads a `--threads N` asks for: `n`, or for 0 every core the process may use (its
/// CPU quota included), at most [`DEFAULT_MAX_THREADS`].
pub fn threads_for(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(DEFAULT_MAX_THREADS),
        n => n,
    }
}

/// How far (a fraction of a range, as a divisor) a split point may move to reach a family's
/// start: an eighth of a share costs at most ~12% balance and usually spares every sum
/// across two ranges.
const SNAP_DIVISOR: u64 = 8;

/// Bytes read at once while looking for a line end or a family start near a split point.
const PROBE_CHUNK: usize = 64 << 10;

/// Settings of a parallel read.
#[derive(Debug, Clone)]
pub struct ParallelOptions {
    /// Threads, at least 2 to read in parallel.
    pub threads: usize,
    /// Parser settings, as for a one-pass read.
    pub parse: ParseOptions,
    /// Label limits of output series.
    pub labels: LabelLimits,
}

/// An input that can be read at any offset by several threads at once: a regular file
/// (`pread`), or bytes in memory (tests).
pub trait Source: Sync {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// True when the input is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; 0 only at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

#[cfg(unix)]
impl Source for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

/// Without `pread`, a file is read in one pass: every read fails, which falls back.
#[cfg(not(unix))]
impl Source for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }

    fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - at);
        buf[..n].copy_from_slice(&self[at..at + n]);
        Ok(n)
    }
}

/// Why a parallel read gave way to one pass (counted in a debug log line by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The input has too few lines to split.
    Unsplittable,
    /// A range failed: a read error, a parse error or a label limit (one pass reports it).
    Failed,
    /// An OpenMetrics-only feature (`# UNIT`, `# EOF`, an exemplar) was seen.
    OpenMetrics,
    /// A series occurs twice (one pass counts the repeats as duplicates).
    Duplicate,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fallback::Unsplittable => "too few lines to split",
            Fallback::Failed => "a range failed (error or limit)",
            Fallback::OpenMetrics => "OpenMetrics-only feature",
            Fallback::Duplicate => "a repeated series",
        })
    }
}

/// Reads `src` with `opts.threads` threads into pipelines of `config` and merges them: the
/// pipeline one pass over `src` builds, or why it could not be built this way.
pub fn apply<S: Source + ?Sized>(
    src: &S,
    config: &Config,
    opts: &ParallelOptions,
) -> Result<Parts, Fallback> {
    let starts = split_points(src, opts.threads.max(1)).map_err(|_| Fallback::Failed)?;
    apply_ranges(src, config, opts, &starts)
}

/// [`apply`] over ranges starting at `starts` (ascending, the first 0, each a line start); a
/// range ends where the next starts, the last at the end of `src`.
pub fn apply_ranges<S: Source + ?Sized>(
    src: &S,
    config: &Config,
    opts: &ParallelOptions,
    starts: &[u64],
) -> Result<Parts, Fallback> {
    if starts.len() < 2 {
        return Err(Fallback::Unsplittable);
    }
    let len = src.len();
    let abort = AtomicBool::new(false);
    let run = |k: usize| {
        let end = starts.get(k + 1).copied().unwrap_or(len);
        let res = read_range(src, config, opts, starts[k], end, &abort);
        // A repeat is found at a range's end and stops no other range: one that fails is
        // the reason to give.
        if matches!(res, Err(ref why) if *why != Some(Fallback::Duplicate)) {
            abort.store(true, Ordering::Relaxed);
        }
        res
    };
    let parts: Vec<Result<Pipeline, Option<Fallback>>> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..starts.len())
            .map(|k| scope.spawn(move || run(k)))
            .collect();
        let mut parts = vec![run(0)];
        for h in others {
            parts.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        parts
    });
    if parts.iter().any(Result::is_err) {
        // The reason of the first range that failed on its own (the others were stopped), a
        // failure before a repeated series (one pass then reports the failure).
        let why = parts
            .iter()
            .filter_map(|p| p.as_ref().err().copied().flatten())
            .min_by_key(|&w| w == Fallback::Duplicate);
        return Err(why.unwrap_or(Fallback::Failed));
    }
    merge(parts.into_iter().flatten().collect())
}

/// Range starts for `threads` ranges of about equal size: each at a line start, moved to a
/// family's first metadata line when one is close. Fewer when the input has few lines.
pub fn split_points<S: Source + ?Sized>(src: &S, threads: usize) -> io::Result<Vec<u64>> {
    let len = src.len();
    let share = len / threads.max(1) as u64;
    let mut starts = vec![0u64];
    for k in 1..threads as u64 {
        let nominal = share * k;
        let Some(at) = line_start_at_or_after(src, nominal)? else {
            break;
        };
        let at = family_start_near(src, at, share / SNAP_DIVISOR)?.unwrap_or(at);
        if at > *starts.last().unwrap_or(&0) && at < len {
            starts.push(at);
        }
    }
    Ok(starts)
}

/// The first line start at or after `at` (the byte before it is `\n`), if one is before the
/// end.
fn line_start_at_or_after<S: Source + ?Sized>(src: &S, at: u64) -> io::Result<Option<u64>> {
    if at == 0 {
        return Ok(Some(0));
    }
    let mut buf = vec![0u8; PROBE_CHUNK];
    let mut pos = at - 1;
    loop {
        let n = src.read_at(&mut buf, pos)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(nl) = memchr(b'\n', &buf[..n]) {
            let start = pos + nl as u64 + 1;
            return Ok((start < src.len()).then_some(start));
        }
        pos += n as u64;
    }
}

/// The line starts in `from..to` (`from` a line start) whose line begins with `# HELP ` or
/// `# TYPE `: where a family's metadata begins (usually with its HELP, so a family's HELP and
/// TYPE stay in one range). The first of them when `first` is set (the scan stops there), else
/// the last.
fn family_start_in<S: Source + ?Sized>(
    src: &S,
    from: u64,
    to: u64,
    first: bool,
) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; PROBE_CHUNK];
    let mut pos = from;
    let limit = to.min(src.len());
    let mut found = None;
    // Where the line after the last match starts: a match there continues that family's
    // metadata (its TYPE after its HELP) and is not a start of its own.
    let mut after_match = None;
    while pos < limit {
        let want = PROBE_CHUNK.min((limit - pos) as usize + 8);
        let n = src.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            break;
        }
        let b = &buf[..n];
        // A family start is `\n# HELP ` or `\n# TYPE ` (or the very line at `from`).
        let mut i = 0;
        while let Some(j) = memchr(b'#', &b[i..]) {
            let p = i + j;
            let line_start = if p == 0 {
                pos == from
            } else {
                b[p - 1] == b'\n'
            };
            if line_start
                && pos + (p as u64) < limit
                && (b[p..].starts_with(b"# HELP ") || b[p..].starts_with(b"# TYPE "))
            {
                let at = pos + p as u64;
                if after_match != Some(at) {
                    found = Some(at);
                }
                if first {
                    return Ok(found);
                }
                after_match = memchr(b'\n', &b[p..]).map(|nl| at + nl as u64 + 1);
            }
            i = p + 1;
        }
        // Keep a few bytes of overlap so that a keyword across two reads is seen.
        pos += (n as u64).saturating_sub(8).max(1);
    }
    Ok(found)
}

/// The family start (see [`family_start_in`]) nearest to `at` (a line start) within `reach`
/// bytes before or after it.
fn family_start_near<S: Source + ?Sized>(src: &S, at: u64, reach: u64) -> io::Result<Option<u64>> {
    let after = family_start_in(src, at, at.saturating_add(reach), true)?;
    let from = match line_start_at_or_after(src, at.saturating_sub(reach))? {
        Some(from) if from < at => from,
        _ => return Ok(after),
    };
    let before = family_start_in(src, from, at, false)?;
    Ok(match (before, after) {
        (Some(b), Some(a)) => Some(if at - b <= a - at { b } else { a }),
        (b, a) => b.or(a),
    })
}

/// Reads one range into a pipeline of its own: its context first (see the module
/// documentation), then its bytes in [`READ_CHUNK`] pieces. Gives up as soon as `abort` is set
/// (another range failed): `Err(None)`.
fn read_range<S: Source + ?Sized>(
    src: &S,
    config: &Config,
    opts: &ParallelOptions,
    start: u64,
    end: u64,
    abort: &AtomicBool,
) -> Result<Pipeline, Option<Fallback>> {
    const FAILED: Option<Fallback> = Some(Fallback::Failed);
    let mut pipeline = Pipeline::new(config).with_label_limits(opts.labels);
    pipeline.defer_repeat_check();
    let mut parse = opts.parse.clone();
    if parse.max_labels == 0 {
        parse.max_labels = pipeline.input_label_limit();
    }
    let mut parser = Parser::new(parse);
    if start > 0 {
        let lines = context(src, start, &opts.parse).map_err(|_| FAILED)?;
        parser.feed(&lines, &mut pipeline).map_err(|_| FAILED)?;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = start;
    while pos < end {
        if abort.load(Ordering::Relaxed) {
            return Err(None);
        }
        let want = READ_CHUNK.min((end - pos) as usize);
        let n = match src.read_at(&mut buf[..want], pos) {
            Ok(0) => return Err(FAILED),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(FAILED),
        };
        parser.feed(&buf[..n], &mut pipeline).map_err(|_| FAILED)?;
        if pipeline.limit_hit().is_some() {
            return Err(FAILED);
        }
        pos += n as u64;
    }
    if parser.openmetrics_seen() {
        return Err(Some(Fallback::OpenMetrics));
    }
    parser.finish(&mut pipeline).map_err(|_| FAILED)?;
    if pipeline.limit_hit().is_some() {
        return Err(FAILED);
    }
    if !pipeline.check_repeats() {
        return Err(Some(Fallback::Duplicate));
    }
    Ok(pipeline)
}

/// Puts the ranges' pipelines in input order: a range whose series an earlier range holds
/// only in families that range holds ([`Aggregator::can_follow`]) stays a part of its own, its
/// series of those families moved there ([`Aggregator::follow`]; one family, the one a split
/// cuts, in the usual case); otherwise everything so far is appended into one
/// ([`Aggregator::append_following`]) and the range after it.
fn merge(pipelines: Vec<Pipeline>) -> Result<Parts, Fallback> {
    for (j, later) in pipelines.iter().enumerate().skip(1) {
        if pipelines[..j]
            .iter()
            .any(|p| !p.seen.is_disjoint(&later.seen))
        {
            return Err(Fallback::Duplicate);
        }
    }
    let mut parts: Vec<Pipeline> = Vec::with_capacity(pipelines.len());
    for mut next in pipelines {
        let lists = next.subsets.len();
        let apart = (0..lists).all(|i| {
            let earlier: Vec<&Aggregator> =
                parts.iter().map(|p| &p.subsets[i].aggregator).collect();
            Aggregator::can_follow(&earlier, &next.subsets[i].aggregator)
        });
        if apart {
            for i in 0..lists {
                let mut earlier: Vec<&mut Aggregator> = parts
                    .iter_mut()
                    .map(|p| &mut p.subsets[i].aggregator)
                    .collect();
                Aggregator::follow(&mut earlier, &mut next.subsets[i].aggregator);
            }
            parts.push(next);
            continue;
        }
        let mut all = std::mem::take(&mut parts).into_iter();
        let Some(mut acc) = all.next() else {
            return Err(Fallback::Unsplittable);
        };
        for p in all.chain(std::iter::once(next)) {
            append(&mut acc, &p);
        }
        parts.push(acc);
    }
    Ok(Parts(parts))
}

/// Appends `next`, the pipeline of the range right after `acc`'s, into `acc`.
fn append(acc: &mut Pipeline, next: &Pipeline) {
    acc.samples += next.samples;
    acc.duplicates += next.duplicates;
    for (a, b) in acc.subsets.iter_mut().zip(&next.subsets) {
        a.aggregator.append_following(&b.aggregator);
        a.dropped_by_relabel += b.dropped_by_relabel;
    }
}

/// The result of reading one input as consecutive parts, each a [`Pipeline`] of the same
/// configuration, whose lists' outputs written one after the other (in order) are the output
/// of one pass, and whose counters add up to one pass's. One pass is one part.
#[derive(Debug)]
pub struct Parts(Vec<Pipeline>);

impl From<Pipeline> for Parts {
    fn from(p: Pipeline) -> Self {
        Parts(vec![p])
    }
}

impl Parts {
    /// The parts, in input order.
    pub fn pipelines(&self) -> &[Pipeline] {
        &self.0
    }

    /// Samples read ([`Pipeline::samples`]).
    pub fn samples(&self) -> u64 {
        self.0.iter().map(Pipeline::samples).sum()
    }

    /// Samples that repeated a series ([`Pipeline::duplicates`]).
    pub fn duplicates(&self) -> u64 {
        self.0.iter().map(Pipeline::duplicates).sum()
    }

    /// The aggregates of list `index` (0: the default list), in order.
    pub fn aggregators(&self, index: usize) -> impl Iterator<Item = &Aggregator> + '_ {
        self.0.iter().map(move |p| &p.subsets[index].aggregator)
    }

    /// Output series of list `index` ([`Aggregator::series_count`]).
    pub fn series_count(&self, index: usize) -> usize {
        self.aggregators(index).map(Aggregator::series_count).sum()
    }

    /// Counters of list `index` ([`Aggregator::stats`]).
    pub fn stats(&self, index: usize) -> AggregateStats {
        self.aggregators(index)
            .map(Aggregator::stats)
            .fold(AggregateStats::default(), |a, b| AggregateStats {
                samples_in: a.samples_in + b.samples_in,
                samples_merged: a.samples_merged + b.samples_merged,
                dropped_nameless: a.dropped_nameless + b.dropped_nameless,
                dropped_invalid: a.dropped_invalid + b.dropped_invalid,
            })
    }

    /// Samples the rules of list `index` dropped ([`Subset::dropped_by_relabel`](super::Subset)).
    pub fn dropped_by_relabel(&self, index: usize) -> u64 {
        self.0
            .iter()
            .map(|p| p.subsets[index].dropped_by_relabel)
            .sum()
    }

    /// Renders list `index` into `out` ([`Aggregator::render`]); `opts.now_ms` should be set,
    /// so that every part renders with the same "now".
    pub fn render(&self, index: usize, out: &mut Vec<u8>, opts: &RenderOptions) {
        for a in self.aggregators(index) {
            a.render(out, opts);
        }
    }

    /// Renders list `index` into `w` ([`Aggregator::render_to`]), as [`Parts::render`].
    pub fn render_to(
        &self,
        index: usize,
        w: &mut impl io::Write,
        opts: &RenderOptions,
    ) -> io::Result<()> {
        self.aggregators(index)
            .try_for_each(|a| a.render_to(w, opts))
    }
}

/// The context of a range starting at `start` (see the module documentation): the last valid
/// `# TYPE` line before it, then up to two `# HELP`/`# UNIT` lines after that one for
/// different families; each line ends with `\n`. Empty when no `# TYPE` comes before.
fn context<S: Source + ?Sized>(src: &S, start: u64, opts: &ParseOptions) -> io::Result<Vec<u8>> {
    let mut block = vec![0u8; READ_CHUNK];
    // Lines between the TYPE and `start` that describe other families (the nearest first).
    let mut described: Vec<(String, Vec<u8>)> = Vec::new();
    let mut hi = start;
    while hi > 0 {
        let lo = hi.saturating_sub(READ_CHUNK as u64);
        let b = &mut block[..(hi - lo) as usize];
        read_exact_at(src, b, lo)?;
        let b = &block[..(hi - lo) as usize];
        let mut end = b.len();
        while let Some(p) = memrchr(b'#', &b[..end]) {
            end = p;
            let mut q = p;
            while q > 0 && is_blank(b[q - 1]) {
                q -= 1;
            }
            let at_line_start = match q {
                0 => line_start_before(src, lo)?,
                _ => b[q - 1] == b'\n',
            };
            if !at_line_start {
                continue;
            }
            let line = match memchr(b'\n', &b[q..]) {
                Some(nl) => b[q..q + nl + 1].to_vec(),
                None => match read_line_at(src, lo + q as u64, opts.max_line_len)? {
                    Some(line) => line,
                    None => continue,
                },
            };
            match metadata_of(&line, opts) {
                Some((MetaKind::Type, _)) => {
                    let mut out = line;
                    for (_, l) in described {
                        out.extend_from_slice(&l);
                    }
                    return Ok(out);
                }
                Some((_, family))
                    if described.len() < 2 && described.iter().all(|(f, _)| *f != family) =>
                {
                    described.push((family, line));
                }
                _ => {}
            }
        }
        hi = lo;
    }
    Ok(Vec::new())
}

/// Spaces and tabs may stand before a comment's `#` (as the parser skips them).
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// True when only blanks stand between the last line start before `at` and `at`.
fn line_start_before<S: Source + ?Sized>(src: &S, mut at: u64) -> io::Result<bool> {
    let mut buf = [0u8; 256];
    while at > 0 {
        let lo = at.saturating_sub(buf.len() as u64);
        let b = &mut buf[..(at - lo) as usize];
        read_exact_at(src, b, lo)?;
        if let Some(i) = b.iter().rposition(|&c| !is_blank(c)) {
            return Ok(b[i] == b'\n');
        }
        at = lo;
    }
    Ok(true)
}

/// The line starting at `at`, with its `\n`; `None` when it is longer than `max` or has none.
fn read_line_at<S: Source + ?Sized>(src: &S, at: u64, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut buf = vec![0u8; PROBE_CHUNK];
    let mut pos = at;
    while line.len() <= max {
        let n = src.read_at(&mut buf, pos)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(nl) = memchr(b'\n', &buf[..n]) {
            line.extend_from_slice(&buf[..nl + 1]);
            return Ok(Some(line));
        }
        line.extend_from_slice(&buf[..n]);
        pos += n as u64;
    }
    Ok(None)
}

/// Fills `buf` from `offset`; an input that ends first is an error (it shrank).
fn read_exact_at<S: Source + ?Sized>(src: &S, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the parser makes of `line` (one line with its `\n`), when it is valid metadata: its
/// kind and family. The parser itself decides, so what counts as a `# TYPE` line here is
/// exactly what counts in the range that holds it.
fn metadata_of(line: &[u8], opts: &ParseOptions) -> Option<(MetaKind, String)> {
    /// Keeps the metadata the line is.
    struct Probe(Option<(MetaKind, String)>);
    impl Sink for Probe {
        fn metadata(&mut self, meta: &Metadata<'_>) {
            self.0 = Some((meta.kind, meta.family.to_owned()));
        }
        fn sample(&mut self, _: &Sample<'_>) {}
    }
    let mut parser = Parser::new(ParseOptions {
        max_line_len: opts.max_line_len,
        format: opts.format,
        ..ParseOptions::default()
    });
    let mut probe = Probe(None);
    parser.feed(line, &mut probe).ok()?;
    parser.finish(&mut probe).ok()?;
    probe.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::RenderOptions;
    use crate::pipeline::read_all;
    use proptest::prelude::*;

    /// Everything a caller reads from a pipeline: every list's rendered output and counters.
    #[derive(Debug, PartialEq)]
    struct Seen {
        samples: u64,
        duplicates: u64,
        lists: Vec<(String, u64, crate::aggregate::AggregateStats, usize)>,
    }

    fn seen(p: &Parts) -> Seen {
        let lists = (0..p.pipelines()[0].subsets().len())
            .map(|i| {
                let mut out = Vec::new();
                let opts = RenderOptions {
                    now_ms: Some(0),
                    ..RenderOptions::default()
                };
                p.render(i, &mut out, &opts);
                (
                    String::from_utf8(out).unwrap(),
                    p.dropped_by_relabel(i),
                    p.stats(i),
                    p.series_count(i),
                )
            })
            .collect();
        Seen {
            samples: p.samples(),
            duplicates: p.duplicates(),
            lists,
        }
    }

    fn options(threads: usize) -> ParallelOptions {
        ParallelOptions {
            threads,
            parse: ParseOptions::default(),
            labels: LabelLimits::UNLIMITED,
        }
    }

    /// One pass over `input`: the pipeline, or the error.
    fn serial(input: &[u8], config: &Config) -> Result<Parts, String> {
        let mut p = Pipeline::new(config);
        read_all(input, ParseOptions::default(), &mut p).map_err(|e| e.to_string())?;
        Ok(Parts::from(p))
    }

    /// Line starts at or after each of `cuts` (in any order), as range starts.
    fn starts_at(input: &[u8], cuts: &[u64]) -> Vec<u64> {
        let mut starts = vec![0];
        for &c in cuts {
            if let Some(s) = line_start_at_or_after(input, c.min(input.len() as u64)).unwrap() {
                starts.push(s);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// Checks the parallel read of `input` split at `starts` against one pass: the same
    /// result, or a fallback where one pass fails or the input has what a split cannot carry.
    fn check(input: &str, config: &Config, starts: &[u64], exact: bool) {
        let one = serial(input.as_bytes(), config);
        let par = apply_ranges(input.as_bytes(), config, &options(starts.len()), starts);
        match (&one, par) {
            (Ok(one), Ok(par)) => {
                if exact {
                    assert_eq!(seen(&par), seen(one), "{input}\nsplit at {starts:?}");
                } else {
                    assert_close(&seen(&par), &seen(one), input);
                }
            }
            (Err(e), Ok(_)) => panic!("one pass fails ({e}), the split read did not\n{input}"),
            (_, Err(why)) => {
                let om = input.contains("# UNIT") || input.contains("# EOF");
                let allowed = match why {
                    Fallback::Failed => one.is_err(),
                    Fallback::OpenMetrics => om,
                    Fallback::Duplicate => one.as_ref().is_ok_and(|p| p.duplicates() > 0),
                    Fallback::Unsplittable => starts.len() < 2,
                };
                assert!(
                    allowed,
                    "fallback {why:?} for\n{input}\nsplit at {starts:?}"
                );
            }
        }
    }

    /// Same counters and series; values equal up to rounding (sums of arbitrary floats).
    fn assert_close(a: &Seen, b: &Seen, input: &str) {
        assert_eq!((a.samples, a.duplicates), (b.samples, b.duplicates));
        for (x, y) in a.lists.iter().zip(&b.lists) {
            assert_eq!((x.1, x.2, x.3), (y.1, y.2, y.3), "{input}");
            for (l, m) in x.0.lines().zip(y.0.lines()) {
                if l == m {
                    continue;
                }
                let (lk, lv) = l.rsplit_once(' ').unwrap();
                let (mk, mv) = m.rsplit_once(' ').unwrap();
                assert_eq!(lk, mk, "{input}");
                let (lv, mv): (f64, f64) = (lv.parse().unwrap(), mv.parse().unwrap());
                assert!(
                    (lv - mv).abs() <= 1e-9 * lv.abs().max(mv.abs()),
                    "{l} vs {m}\n{input}"
                );
            }
        }
    }

    const CONFIGS: [&str; 3] = [
        // The label-filter fast path: summing series that differ in `path`.
        "metric_relabel_configs: [{action: labeldrop, regex: path}]",
        // The general path, with a subset, a rename and a drop.
        "metric_relabel_configs: [{action: replace, source_labels: [code], target_label: c, replacement: 'x$1'}, {action: labeldrop, regex: path|code|part}]\nrequests: [{action: drop, source_labels: [__name__], regex: 'm1.*'}]",
        // Pass-through.
        "metric_relabel_configs: []",
    ];

    /// One family of a generated payload.
    #[derive(Debug, Clone)]
    struct Fam {
        name: usize,
        typ: usize,
        help: bool,
        series: Vec<(usize, usize, usize, bool)>,
        extra: usize,
        /// Series may repeat (within the family, or a family of the same name elsewhere).
        dup: bool,
    }

    const TYPES: [&str; 6] = ["", "counter", "gauge", "histogram", "summary", "untyped"];

    fn fam() -> impl Strategy<Value = Fam> {
        (
            0..6usize,
            0..TYPES.len(),
            any::<bool>(),
            prop::collection::vec(
                (0..3usize, 0..2usize, 0..8usize, prop::bool::weighted(0.1)),
                1..6,
            ),
            0..12usize,
            prop::bool::weighted(0.1),
        )
            .prop_map(|(name, typ, help, mut series, extra, dup)| {
                if !dup {
                    let mut labels = std::collections::HashSet::new();
                    series.retain(|&(path, code, _, escaped)| labels.insert((path, code, escaped)));
                }
                Fam {
                    name,
                    typ,
                    help,
                    series,
                    extra,
                    dup,
                }
            })
    }

    /// Writes a payload: families (names may repeat), metadata, blank lines and comments,
    /// escaped values; `bad` puts a broken line in; `values` gives the value texts.
    fn write(fams: &[Fam], bad: Option<usize>, values: &[String]) -> String {
        let mut s = String::new();
        for (i, f) in fams.iter().enumerate() {
            // Names 4 and 5 are series names of histogram `m0`, as families of their own.
            let name = match f.name {
                4 => "m0_count".to_owned(),
                5 => "m0_bucket".to_owned(),
                n => format!("m{n}"),
            };
            match f.extra {
                0 => s.push('\n'),
                1 => s.push_str("# a comment\n"),
                2 => s.push_str("#TYPE not metadata\n"),
                3 => s.push_str(&format!("# HELP other_{} Another family's help.\n", f.name)),
                4 => s.push_str("  \t\n"),
                _ => {}
            }
            if f.help {
                s.push_str(&format!("# HELP {name} Help of {name} \\\\ {i}.\n"));
            }
            let typ = TYPES[f.typ];
            if !typ.is_empty() {
                let sp = if f.extra == 5 { "  " } else { "" };
                s.push_str(&format!("{sp}# TYPE {name} {typ}\n"));
            }
            for (j, &(path, code, v, escaped)) in f.series.iter().enumerate() {
                let path = if escaped {
                    format!("p{path}\\\"q\\\\\\n")
                } else {
                    format!("/p{path}")
                };
                let mut labels = format!("code=\"{code}\",path=\"{path}\"");
                if !f.dup {
                    labels.push_str(&format!(",part=\"{i}\""));
                }
                let v = &values[v % values.len()];
                let w = &values[(v.len() + j) % values.len()];
                match typ {
                    "histogram" => {
                        for le in ["0.5", "+Inf"] {
                            s.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {v}\n"));
                        }
                        s.push_str(&format!("{name}_sum{{{labels}}} {w}\n"));
                        s.push_str(&format!("{name}_count{{{labels}}} {v}\n"));
                    }
                    "summary" => {
                        s.push_str(&format!("{name}{{{labels},quantile=\"0.5\"}} {w}\n"));
                        s.push_str(&format!("{name}_sum{{{labels}}} {w}\n"));
                        s.push_str(&format!("{name}_count{{{labels}}} {v}\n"));
                    }
                    "counter" => s.push_str(&format!("{name}_total{{{labels}}} {v}\n")),
                    _ => s.push_str(&format!("{name}{{{labels}}} {v} 1700000000000\n")),
                }
            }
            if bad == Some(i) {
                s.push_str(&format!("{name}{{path=\"x\" 1\n"));
            }
        }
        s
    }

    /// Integers and dyadic fractions: every sum of them is exact.
    fn dyadic() -> Vec<String> {
        [
            "0", "1", "2.5", "0.25", "3", "1e3", "-1.5", "7", "+Inf", "4096.125",
        ]
        .map(String::from)
        .to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Random payloads split at random line starts: identical to one pass, or a fallback
        /// that one pass justifies.
        #[test]
        fn split_read_is_one_pass(
            fams in prop::collection::vec(fam(), 1..12),
            bad in prop::option::weighted(0.15, 0..12usize),
            cuts in prop::collection::vec(any::<u64>(), 1..5),
            config in 0..CONFIGS.len(),
            om in prop::bool::weighted(0.05),
        ) {
            let mut input = write(&fams, bad, &dyadic());
            if om {
                input.insert_str(0, "# UNIT m0 seconds\n");
            }
            let len = input.len() as u64;
            let cuts: Vec<u64> = cuts.iter().map(|c| c % (len + 1)).collect();
            let config = Config::from_yaml(CONFIGS[config], "test").unwrap();
            check(&input, &config, &starts_at(input.as_bytes(), &cuts), true);
        }

        /// Arbitrary float values: the same series and counters, values within rounding.
        #[test]
        fn split_sums_of_floats_are_close(
            fams in prop::collection::vec(fam(), 1..8),
            values in prop::collection::vec(-1e6f64..1e6, 8),
            cuts in prop::collection::vec(any::<u64>(), 1..4),
        ) {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            let input = write(&fams, None, &values);
            let len = input.len() as u64;
            let cuts: Vec<u64> = cuts.iter().map(|c| c % (len + 1)).collect();
            let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
            check(&input, &config, &starts_at(input.as_bytes(), &cuts), false);
        }

        /// `split_points` gives ascending line starts, the first 0, and `apply` agrees with
        /// one pass.
        #[test]
        fn split_points_are_line_starts(
            fams in prop::collection::vec(fam(), 1..12),
            threads in 1..6usize,
        ) {
            let input = write(&fams, None, &dyadic());
            let b = input.as_bytes();
            let starts = split_points(b, threads).unwrap();
            prop_assert_eq!(starts[0], 0);
            prop_assert!(starts.len() <= threads);
            prop_assert!(starts.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(starts[1..].iter().all(|&s| b[s as usize - 1] == b'\n'));
            let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
            check(&input, &config, &starts, true);
        }
    }

    #[test]
    fn a_range_inside_a_family_gets_its_type() {
        // The second range starts at the `_sum` of a histogram and with a counter's samples
        // that a HELP for another name has cut from their TYPE.
        let input = "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\",path=\"a\"} 1\nh_sum{path=\"a\"} 2\nh_count{path=\"a\"} 1\n# TYPE c counter\n# HELP other O.\nc 1\n";
        let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
        for cut in 0..input.len() as u64 {
            let starts = starts_at(input.as_bytes(), &[cut]);
            let par = apply_ranges(input.as_bytes(), &config, &options(2), &starts);
            if starts.len() == 2 {
                let par = par.unwrap();
                assert_eq!(
                    seen(&par),
                    seen(&serial(input.as_bytes(), &config).unwrap())
                );
            }
        }
        let at = input.find("h_sum").unwrap() as u64;
        assert_eq!(
            context(input.as_bytes(), at, &ParseOptions::default()).unwrap(),
            b"# TYPE h histogram\n"
        );
        let at = input.find("c 1").unwrap() as u64;
        assert_eq!(
            context(input.as_bytes(), at, &ParseOptions::default()).unwrap(),
            b"# TYPE c counter\n# HELP other O.\n"
        );
    }

    #[test]
    fn a_series_an_earlier_range_holds_in_another_family() {
        // `h_count` is summed into histogram `h`'s series, as one pass does, wherever it is cut.
        let input = "# TYPE h histogram\nh_count{path=\"a\"} 1\nh_sum{path=\"a\"} 1\n# TYPE g gauge\ng 1\nh_count{path=\"b\"} 2\n";
        let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
        let want = seen(&serial(input.as_bytes(), &config).unwrap());
        assert!(
            want.lists[0].0.contains("h_count 3\n"),
            "{}",
            want.lists[0].0
        );
        for cut in 0..input.len() as u64 {
            let starts = starts_at(input.as_bytes(), &[cut]);
            let par = apply_ranges(input.as_bytes(), &config, &options(2), &starts);
            if starts.len() == 2 {
                assert_eq!(seen(&par.unwrap()), want, "split at {starts:?}");
            }
        }
    }

    #[test]
    fn a_family_whose_first_series_sums_elsewhere_comes_where_one_pass_puts_it() {
        // Gauge `h_count`'s first series sums into histogram `h`'s `h_count`; the family gets
        // a series of its own only after `g`, so one pass writes it after `g`.
        let input = "# TYPE h histogram\nh_count{path=\"a\"} 1\nh_sum{path=\"a\"} 1\n# TYPE h_count gauge\nh_count{path=\"b\"} 2\n# TYPE g gauge\ng 1\nh_count{x=\"1\"} 3\n";
        let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
        let want = seen(&serial(input.as_bytes(), &config).unwrap());
        let text = &want.lists[0].0;
        assert!(text.contains("h_count 3\n"), "{text}");
        assert!(
            text.find("g 1").unwrap() < text.find("h_count{x").unwrap(),
            "{text}"
        );
        for cut in 0..input.len() as u64 {
            let starts = starts_at(input.as_bytes(), &[cut]);
            let par = apply_ranges(input.as_bytes(), &config, &options(2), &starts);
            if starts.len() == 2 {
                assert_eq!(seen(&par.unwrap()), want, "split at {starts:?}");
            }
        }
    }

    #[test]
    fn splits_move_to_the_nearest_family_start() {
        let family = |name: &str| {
            let mut f = format!("# HELP {name} H.\n# TYPE {name} counter\n");
            for i in 0..20 {
                f.push_str(&format!("{name}_total{{i=\"{i}\"}} 1\n"));
            }
            f
        };
        let input = [family("a"), family("b"), family("c")].concat();
        let b = input.as_bytes();
        let b_start = input.find("# HELP b").unwrap() as u64;
        let c_start = input.find("# HELP c").unwrap() as u64;
        // Just after b's start, and just before c's: back to b, on to c.
        assert_eq!(
            family_start_near(b, b_start + 40, 200).unwrap(),
            Some(b_start)
        );
        assert_eq!(
            family_start_near(b, c_start - 40, 200).unwrap(),
            Some(c_start)
        );
        assert_eq!(family_start_near(b, b_start + 200, 50).unwrap(), None);
        assert_eq!(split_points(b, 3).unwrap(), [0, b_start, c_start]);
    }

    #[test]
    fn fallbacks() {
        let config = Config::from_yaml(CONFIGS[0], "test").unwrap();
        let two = |input: &str| {
            let starts = starts_at(input.as_bytes(), &[input.len() as u64 / 2]);
            apply_ranges(input.as_bytes(), &config, &options(2), &starts).map(|_| ())
        };
        assert_eq!(two("a 1\nb 2\na 3\n"), Err(Fallback::Duplicate));
        // A repeat within one range, found when that range ends.
        assert_eq!(two("a 1\na 2\nb 3\nc 4\n"), Err(Fallback::Duplicate));
        assert_eq!(two("a 1\nb 2\nc 3\nc 4\n"), Err(Fallback::Duplicate));
        // A failure anywhere is the reason given, not a repeat in another range.
        assert_eq!(two("a 1\na 2\nb 3\nc{ 4\n"), Err(Fallback::Failed));
        assert_eq!(two("a 1 # {x=\"y\"} 1\nb 2\n"), Err(Fallback::OpenMetrics));
        assert_eq!(two("a 1\nb 2\n# EOF\nc 3\n"), Err(Fallback::OpenMetrics));
        assert_eq!(two("a 1\nb 2\nc{ 3\n"), Err(Fallback::Failed));
        assert_eq!(two("a 1\nb 2\nc 3"), Err(Fallback::Failed));
        assert_eq!(two("a 1\n"), Err(Fallback::Unsplittable));
        assert_eq!(two("a 1\nb 2\nc 3\n"), Ok(()));
    }
}
