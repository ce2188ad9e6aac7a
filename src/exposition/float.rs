//! Go's float syntax, both ways: formatting as Prometheus writers do it, and parsing as
//! Prometheus reads it. Both live here because they must agree: a value the parser accepts and
//! the renderer writes back has to mean the same float to Prometheus.
//!
//! # Formatting
//!
//! Prometheus' Go client writes sample values with `strconv.AppendFloat(f, 'g', -1, 64)`, after
//! special-casing `1`, `0`, `-1`, `NaN`, `+Inf` and `-Inf` (prometheus/common `expfmt`,
//! `writeFloat`). Go's shortest `%g` uses the exponent form when the decimal exponent is below
//! -4 or at least 6 (`eprec = 6` for the shortest form in Go's `strconv/ftoa.go`), with a sign
//! and at least two exponent digits (`1e+06`, `1.5e-05`).
//! Rust's `Display` prints `inf` and writes 1e300 out in full, so it cannot be used raw; the
//! shortest round-trip digits (from `ryu`: those of Rust's `LowerExp`, except that an exact tie
//! between two shortest forms rounds to even, as Go's `ryuFtoaShortest` does) are re-laid out
//! Go's way.
//!
//! # Parsing
//!
//! Prometheus reads values (and OpenMetrics timestamps) with Go's `strconv.ParseFloat(s, 64)`,
//! after refusing `p`, `P` and `_`: [`parse_go_float`] accepts exactly that language. Rust's
//! `f64::from_str` agrees with Go on decimal syntax but not on the rest (it takes `+nan`, it
//! returns infinity where Go reports a range error), so those cases are decided before it runs.

/// Appends `f` to `out` exactly as Go's `strconv.FormatFloat(f, 'g', -1, 64)` would, with
/// Prometheus' spellings `NaN`, `+Inf` and `-Inf`.
pub fn write_go_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if f == 0.0 {
        // Prometheus writes -0 as 0 too (writeFloat's `f == 0` case).
        out.push(b'0');
        return;
    }
    let mut all = [0u8; 32];
    let (digits, exp) = shortest_digits(f.abs(), &mut all);
    let nd = digits.len();
    if nd == 0 {
        // Not reached: zero was written above.
        out.push(b'0');
        return;
    }

    if f < 0.0 {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        // %e: d[.ddd]e±XX
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa_buf(a).as_bytes());
    } else if exp < 0 {
        // 0.000ddd
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if nd <= int_len {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', int_len - nd));
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

/// The shortest round-trip digits of `f` (finite, positive), without leading or trailing
/// zeros, in `buf`, and the decimal exponent of the first: `1234.5` is `("12345", 3)`.
fn shortest_digits(f: f64, buf: &mut [u8; 32]) -> (&[u8], i32) {
    // (`as` conversions, not `fract`: without SSE4.1, `trunc` is a call into libm.)
    if f < INTEGER_EXACT && (f as u64) as f64 == f {
        // An integer below 2^53: its own digits are the shortest (every shorter decimal near it
        // is another integer, itself a float). Sums of counts and buckets mostly are integers,
        // and this costs a few dozen instructions where ryu costs several hundred.
        let mut n = f as u64;
        let mut at = buf.len();
        while n > 0 && at > 0 {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let exp = (buf.len() - at) as i32 - 1;
        let digits = &buf[at..];
        let trail = digits.iter().rev().take_while(|&&d| d == b'0').count();
        return (&digits[..digits.len() - trail], exp);
    }
    // ryu writes `123.0`, `0.0001`, `1.5e-5` or `1e16`. Rust's `{:e}` gives the same digits
    // (but for ties, see the module docs) through `core::fmt` at ~1,200 instructions a value.
    let mut shortest = ryu::Buffer::new();
    let text = shortest.format_finite(f).as_bytes();
    let (mantissa, exp_text) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (&text[..e], &text[e + 1..]),
        None => (text, &b""[..]),
    };
    let mut nd = 0;
    let mut point = None;
    for &b in mantissa {
        if b == b'.' {
            point = Some(nd);
        } else if b.is_ascii_digit() && nd < buf.len() {
            buf[nd] = b;
            nd += 1;
        }
    }
    let lead = buf[..nd].iter().take_while(|&&d| d == b'0').count();
    let trail = buf[lead..nd]
        .iter()
        .rev()
        .take_while(|&&d| d == b'0')
        .count();
    let exp = point.unwrap_or(nd) as i32 - lead as i32 - 1 + parse_exponent(exp_text);
    (&buf[lead..nd - trail], exp)
}

/// 2^53: every integer below it is a float of its own.
const INTEGER_EXACT: f64 = 9_007_199_254_740_992.0;

/// The exponent after a shortest form's `e` (`-5`, `16`); 0 when there is none.
fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let n = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i32, |n, &b| n * 10 + i32::from(b - b'0'));
    if negative {
        -n
    } else {
        n
    }
}

/// A small decimal rendering of a `u32` on the stack.
struct SmallNum {
    buf: [u8; 10],
    start: usize,
}

impl SmallNum {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u32) -> SmallNum {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    SmallNum { buf, start: i }
}

/// Appends the decimal form of `n` to `out`.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Parses a float as Prometheus does: Go's `strconv.ParseFloat(s, 64)` after rejecting `p`, `P`
/// and `_`. Decimal syntax, `Inf`/`Infinity` with optional sign and `NaN` without sign, all
/// case-insensitive. A finite literal that overflows is an error (Go's range error).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    // Fast path: short plain integers are exact in an f64 (15 digits < 2^53).
    if !b.is_empty() && b.len() <= 15 {
        let mut v: u64 = 0;
        let mut plain = true;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                plain = false;
                break;
            }
            v = v * 10 + u64::from(d);
        }
        if plain {
            return Some(v as f64);
        }
    }
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let signed = rest.len() != s.len();
    match rest.as_bytes().first() {
        None => None,
        Some(c) if c.is_ascii_alphabetic() => {
            if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
                Some(if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            } else if !signed && rest.eq_ignore_ascii_case("nan") {
                Some(f64::NAN)
            } else {
                None
            }
        }
        Some(_) => {
            // Rust's grammar equals Go's decimal grammar on these characters; anything else
            // (hex, `_`, words Rust knows but Go does not, like `+nan`) is refused up front.
            let decimal = rest
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
            if !decimal {
                return None;
            }
            let v: f64 = s.parse().ok()?;
            if v.is_infinite() {
                None
            } else {
                Some(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(f: f64) -> String {
        let mut v = Vec::new();
        write_go_float(&mut v, f);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn matches_go_shortest_g() {
        // Expected strings are Go's strconv.FormatFloat(f, 'g', -1, 64) outputs.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.5, "0.5"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (1e21, "1e+21"),
            (1e300, "1e+300"),
            (1e-300, "1e-300"),
            (-2.5e-7, "-2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (100.0, "100"),
            (12.75, "12.75"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            // An exact tie (...797.25): Go rounds the shortest form half to even.
            (-1.1496366673247973e15, "-1.1496366673247972e+15"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(f, want) in cases {
            assert_eq!(go(f), want, "formatting {f:?}");
        }
    }

    #[test]
    fn round_trips() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if !f.is_finite() {
                continue;
            }
            let s = go(f);
            let back: f64 = s.parse().unwrap();
            assert_eq!(
                back.to_bits(),
                if f == 0.0 { 0 } else { f.to_bits() },
                "{s}"
            );
        }
    }

    #[test]
    fn parses_like_go() {
        for (s, want) in [
            ("1", 1.0),
            ("-1.5e-3", -1.5e-3),
            ("+Inf", f64::INFINITY),
            ("Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("infinity", f64::INFINITY),
            (".5", 0.5),
            ("1.", 1.0),
            ("1E3", 1000.0),
        ] {
            assert_eq!(parse_go_float(s), Some(want), "{s}");
        }
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert!(parse_go_float("nan").is_some_and(f64::is_nan));
        for bad in [
            "", "0x1p3", "1_000", "+NaN", "-nan", "1e", "abc", " 1", "1 ",
        ] {
            assert_eq!(parse_go_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers() {
        let mut v = Vec::new();
        for n in [0i64, 7, -7, 1234567890123, i64::MIN, i64::MAX] {
            v.clear();
            write_i64(&mut v, n);
            assert_eq!(std::str::from_utf8(&v).unwrap(), n.to_string());
        }
    }

    /// The digits and exponent the formatter lays out are those of Rust's `LowerExp` (the
    /// shortest round-trip digits), for random and hand-picked values, but for exact ties.
    #[test]
    fn same_digits_as_lower_exp() {
        let lower_exp = |f: f64| {
            let e = format!("{:e}", f.abs());
            let (m, x) = e.split_once('e').unwrap();
            let digits: String = m.chars().filter(char::is_ascii_digit).collect();
            (digits, x.parse::<i32>().unwrap())
        };
        let ours = |f: f64| {
            let s = go(f.abs());
            let (m, x) = s
                .split_once('e')
                .map_or((s.as_str(), 0), |(m, x)| (m, x.parse::<i32>().unwrap()));
            let point = m.find('.').unwrap_or(m.len()) as i32;
            let all: String = m.chars().filter(char::is_ascii_digit).collect();
            let lead = all.len() - all.trim_start_matches('0').len();
            let digits = all.trim_matches('0').to_string();
            (digits, point - lead as i32 - 1 + x)
        };
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut values = vec![
            1e-7,
            1e-5,
            1.5e-5,
            0.0001,
            0.00012345678901234567,
            1e15,
            1e16,
            1e17,
        ];
        values.extend([
            123456789012345680.0,
            9007199254740993.0,
            0.1,
            2.5,
            1e22,
            1e23,
        ]);
        // Integers near and beyond 2^53, where the integer path stops.
        values.extend([
            9007199254740991.0,
            9007199254740992.0,
            9007199254740994.0,
            1e15,
            7.0,
        ]);
        values.extend([
            120.0,
            999999.0,
            1000000.0,
            1234567.0,
            4503599627370497.0,
            2e53,
        ]);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push((x % 10_000_000) as f64 / 1000.0);
            values.push((x >> (x % 64)) as f64);
        }
        for f in values {
            if !f.is_finite() || f == 0.0 {
                continue;
            }
            let (mine, theirs) = (ours(f), lower_exp(f));
            if mine != theirs {
                // An exact tie between two shortest forms: Go (and ryu) round it to even, Rust's
                // `LowerExp` up.
                let last = |d: &str| d.bytes().last().map_or(0, |b| b - b'0');
                assert_eq!(mine.1, theirs.1, "{f:e}");
                assert_eq!(mine.0.len(), theirs.0.len(), "{f:e}");
                assert!(
                    last(&mine.0) % 2 == 0 && last(&theirs.0) == last(&mine.0) + 1,
                    "{f:e}"
                );
                assert_eq!(go(f).parse::<f64>().unwrap(), f, "{f:e}");
            }
        }
    }
}
