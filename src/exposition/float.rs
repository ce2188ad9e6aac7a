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
//! Rust's `Display` prints `inf` and writes 1e300 out in full, so it cannot be used raw; its
//! `LowerExp` form gives the same shortest round-trip digits, which we re-lay out Go's way.
//!
//! # Parsing
//!
//! Prometheus reads values (and OpenMetrics timestamps) with Go's `strconv.ParseFloat(s, 64)`,
//! after refusing `p`, `P` and `_`: [`parse_go_float`] accepts exactly that language. Rust's
//! `f64::from_str` agrees with Go on decimal syntax but not on the rest (it takes `+nan`, it
//! returns infinity where Go reports a range error), so those cases are decided before it runs.

use std::io::Write as _;

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
    // A whole number below 1e6 (most sums of counters and buckets) is its integer digits in
    // %g (exponent below 6): no search for the shortest digits needed.
    if f.fract() == 0.0 && f.abs() < 1e6 {
        write_i64(out, f as i64);
        return;
    }
    write_shortest(out, f);
}

/// [`write_go_float`] for a finite, non-zero `f`, through the shortest round-trip digits.
fn write_shortest(out: &mut Vec<u8>, f: f64) {
    // Shortest round-trip digits, in Rust's form `d.ddddde-7` / `de7`.
    let mut buf = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // A finite f64 in LowerExp form is at most ~25 bytes: this write cannot fail.
        let _ = write!(cursor, "{:e}", f.abs());
        cursor.position() as usize
    };
    let text = &buf[..len];
    let e_pos = text.iter().position(|&b| b == b'e').unwrap_or(len);
    let (mantissa, exp_text) = (&text[..e_pos], &text[(e_pos + 1).min(len)..]);
    let exp: i32 = std::str::from_utf8(exp_text)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut digits = [0u8; 20];
    let mut nd = 0;
    for &b in mantissa {
        if b.is_ascii_digit() && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd];

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

    /// The whole-number shortcut writes what the shortest-digits path writes.
    #[test]
    fn whole_numbers_take_the_shortcut_to_the_same_text() {
        let shortest = |f: f64| {
            let mut v = Vec::new();
            write_shortest(&mut v, f);
            String::from_utf8(v).unwrap()
        };
        for n in (1..2_000i64)
            .chain((999_000..1_000_000).step_by(7))
            .chain([999_999, 123_456, 100_000, 10])
        {
            for f in [n as f64, -(n as f64)] {
                assert_eq!(go(f), shortest(f), "{f}");
            }
        }
        assert_eq!(go(1e6), "1e+06");
        assert_eq!(go(-999_999.0), "-999999");
        assert_eq!(go(999_999.5), "999999.5");
    }

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
}
