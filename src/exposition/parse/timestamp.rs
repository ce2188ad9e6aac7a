//! Timestamps, read as the input's [`Format`] says: integer milliseconds (text 0.0.4), float
//! seconds (OpenMetrics), or, in [`Format::Auto`], decided per timestamp by its spelling and by
//! whether an OpenMetrics-only feature was seen (the rule is in the `parse` module's
//! documentation, under "Timestamps").
//!
//! Guarantee: the result is in milliseconds and fits in an `i64`, or the line is an error
//! ("out of range"), never a wrapped or saturated value. Seconds are rounded to the nearest
//! millisecond.

use super::line::LineState;
use super::{Format, ParseError};
use crate::exposition::float::parse_go_float;

/// How a timestamp failed to parse.
enum TsError {
    Syntax,
    Range,
}

impl LineState {
    /// Reads a timestamp token per [`Format`]; `at` is its index in the line.
    pub(super) fn timestamp(&self, t: &str, at: usize) -> Result<i64, ParseError> {
        let floaty = t.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
        let res = match self.format {
            Format::Text => t.parse::<i64>().map_err(|_| TsError::Syntax),
            Format::OpenMetrics if floaty => seconds_to_ms(t),
            Format::OpenMetrics => int_seconds_to_ms(t),
            Format::Auto if floaty => seconds_to_ms(t),
            Format::Auto => match t.parse::<i64>() {
                Ok(v) if self.om_seen && v.unsigned_abs() < 100_000_000_000 => Ok(v * 1000),
                Ok(v) => Ok(v),
                Err(_) => Err(TsError::Syntax),
            },
        };
        res.map_err(|e| {
            let unit = match self.format {
                Format::Text => "integer milliseconds",
                Format::OpenMetrics => "seconds",
                Format::Auto => "integer milliseconds or float seconds",
            };
            match e {
                TsError::Syntax => self.err(
                    at + 1,
                    format_args!("expected a timestamp in {unit}, found {t:?}"),
                ),
                TsError::Range => self.err(at + 1, format_args!("timestamp {t:?} out of range")),
            }
        })
    }
}

/// OpenMetrics float seconds to milliseconds, rounded to nearest.
fn seconds_to_ms(t: &str) -> Result<i64, TsError> {
    let secs = parse_go_float(t).ok_or(TsError::Syntax)?;
    if secs.is_nan() {
        return Err(TsError::Syntax);
    }
    let ms = (secs * 1000.0).round();
    // `i64::MAX as f64` rounds up to 2^63, so the bound is exclusive.
    let limit = 2f64.powi(63);
    if (-limit..limit).contains(&ms) {
        Ok(ms as i64)
    } else {
        Err(TsError::Range)
    }
}

/// OpenMetrics integer seconds to milliseconds.
fn int_seconds_to_ms(t: &str) -> Result<i64, TsError> {
    let secs = t.parse::<i64>().map_err(|_| TsError::Syntax)?;
    secs.checked_mul(1000).ok_or(TsError::Range)
}
