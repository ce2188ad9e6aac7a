//! Compensated (Neumaier) summation for sums of several inputs.
//!
//! Adding floats one after the other loses the low bits of every small addend next to a large
//! running total: one million times `0.1` gives `100000.00000133288`, and `1e16 + 1 + 1 - 1e16`
//! gives `0`. [`Sum`] keeps a second float with the error each addition made (Neumaier's
//! variant of Kahan summation, which is also exact when an addend is larger than the running
//! total) and adds it back when the value is read: both examples come out as `100000` and `2`.
//!
//! Plain addition's special cases are kept, so a summed series never reads differently from
//! what the inputs say in the cases users look for: a sum of only `-0` is `-0`; a `NaN` input
//! makes the sum `NaN`; `+Inf` stays `+Inf`, and `+Inf` plus `-Inf` is `NaN`.

/// A running compensated sum. Start with [`Sum::new`] (the empty sum, `-0`) or
/// [`Sum::from`]; read it with [`Sum::value`].
///
/// 16 bytes. `Copy`, so partial sums can be kept per series and merged
/// ([`Sum::merge`]) without allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sum {
    /// The plain running sum: exactly what adding the inputs one by one gives. Its special
    /// values (`NaN`, infinities, the sign of zero) are the sum's.
    naive: f64,
    /// The rounding errors of the additions so far; zero (of either sign) when none was made.
    comp: f64,
}

impl Default for Sum {
    fn default() -> Self {
        Sum::new()
    }
}

impl From<f64> for Sum {
    /// A sum holding one input, `value` (its sign of zero included).
    fn from(value: f64) -> Self {
        Sum {
            naive: value,
            comp: 0.0,
        }
    }
}

impl Sum {
    /// The empty sum. Its value is `-0`, the identity of IEEE addition (`-0 + x` is `x` for
    /// every `x`, `+0` included), so a sum of only negative zeros stays `-0`.
    #[inline]
    pub const fn new() -> Sum {
        Sum {
            naive: -0.0,
            comp: 0.0,
        }
    }

    /// Adds `x`.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.naive + x;
        // The larger operand keeps all its bits in `t`; what the smaller one lost is exact.
        let err = if self.naive.abs() >= x.abs() {
            (self.naive - t) + x
        } else {
            (x - t) + self.naive
        };
        self.naive = t;
        self.comp += err;
    }

    /// Adds every input of `other` (a partial sum over other inputs, e.g. another target's).
    ///
    /// The result is as if `other`'s inputs had been added to `self` as one value holding their
    /// exact sum up to `other`'s own rounding: merging partial sums loses no more than
    /// summing them in one pass.
    #[inline]
    pub fn merge(&mut self, other: &Sum) {
        self.add(other.naive);
        self.comp += other.comp;
    }

    /// The sum.
    ///
    /// Finite sums are the plain sum corrected by the accumulated rounding errors. When the
    /// plain sum is `NaN` or infinite (an input was, or the plain sum overflowed), that is the
    /// value, as plain addition gives it; the correction is then meaningless (`Inf - Inf`).
    /// When no rounding error was made, the plain sum is returned as is, so its sign of zero
    /// survives.
    #[inline]
    pub fn value(&self) -> f64 {
        if !self.naive.is_finite() || self.comp == 0.0 {
            self.naive
        } else {
            self.naive + self.comp
        }
    }

    /// The two floats of the sum (plain sum, correction), for storing it without losing the
    /// correction; [`Sum::from_parts`] restores it.
    pub fn to_parts(&self) -> (f64, f64) {
        (self.naive, self.comp)
    }

    /// A sum from [`Sum::to_parts`].
    pub fn from_parts(naive: f64, comp: f64) -> Sum {
        Sum { naive, comp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sum_of(xs: &[f64]) -> f64 {
        let mut s = Sum::new();
        for &x in xs {
            s.add(x);
        }
        s.value()
    }

    #[test]
    fn a_million_tenths_is_one_hundred_thousand() {
        let mut s = Sum::new();
        let mut plain = 0.0f64;
        for _ in 0..1_000_000 {
            s.add(0.1);
            plain += 0.1;
        }
        // The exact sum of one million copies of the double nearest 0.1 is
        // 100000.0000000000055511151231257827..., which rounds to 100000.
        assert_eq!(s.value(), 100000.0);
        assert_eq!(s.value().to_string(), "100000");
        assert_ne!(
            plain, 100000.0,
            "plain summation drifts (that is why Sum exists)"
        );
    }

    #[test]
    fn small_addends_next_to_a_large_total_are_kept() {
        assert_eq!(sum_of(&[1e16, 1.0, 1.0, -1e16]), 2.0);
        assert_eq!(sum_of(&[1.0, 1e100, 1.0, -1e100]), 2.0);
    }

    #[test]
    fn signed_zeros_follow_plain_addition() {
        assert!(sum_of(&[-0.0, -0.0]).is_sign_negative());
        assert_eq!(sum_of(&[-0.0, -0.0]), 0.0);
        assert!(sum_of(&[]).is_sign_negative(), "the empty sum is -0");
        assert!(sum_of(&[0.0, -0.0]).is_sign_positive());
        assert!(sum_of(&[-0.0, 0.0]).is_sign_positive());
        assert!(Sum::from(0.0).value().is_sign_positive());
        assert!(sum_of(&[1.0, -1.0]).is_sign_positive());
        // A correction that cancelled out leaves the plain sum, sign included.
        assert_eq!(sum_of(&[1e16, 1.0, -1e16, -1.0]), 0.0);
    }

    #[test]
    fn nan_and_infinities_propagate_as_in_plain_addition() {
        assert!(sum_of(&[1.0, f64::NAN, 2.0]).is_nan());
        assert_eq!(sum_of(&[1.0, f64::INFINITY, 2.0]), f64::INFINITY);
        assert_eq!(sum_of(&[f64::NEG_INFINITY, 1e300]), f64::NEG_INFINITY);
        assert!(sum_of(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(sum_of(&[f64::INFINITY, 1.0, f64::NAN]).is_nan());
        // Overflow of the plain sum is what plain addition gives.
        assert_eq!(sum_of(&[f64::MAX, f64::MAX]), f64::INFINITY);
    }

    #[test]
    fn merge_is_as_good_as_one_pass() {
        let xs = [1e16, 1.0, 0.1, 0.2, 1.0, -1e16, 0.3];
        let mut a = Sum::new();
        let mut b = Sum::new();
        for (i, &x) in xs.iter().enumerate() {
            if i % 2 == 0 {
                a.add(x);
            } else {
                b.add(x);
            }
        }
        a.merge(&b);
        // The exact sum is 2.6000000000000000055...; both ways stay within an ulp of it.
        let ulp = f64::from_bits(2.6f64.to_bits() + 1) - 2.6;
        assert!((a.value() - 2.6).abs() <= ulp, "{}", a.value());
        assert!((sum_of(&xs) - 2.6).abs() <= ulp, "{}", sum_of(&xs));
        let mut z = Sum::new();
        z.merge(&Sum::new());
        assert!(z.value().is_sign_negative());
        let mut n = Sum::from(1.0);
        n.merge(&Sum::from(f64::NAN));
        assert!(n.value().is_nan());
    }

    #[test]
    fn parts_round_trip() {
        let mut s = Sum::new();
        for x in [1e16, 1.0, 1.0] {
            s.add(x);
        }
        let (a, b) = s.to_parts();
        assert_eq!(Sum::from_parts(a, b), s);
    }

    /// Exact sum of floats of moderate exponent, as an integer multiple of 2^-60.
    fn exact(xs: &[f64]) -> f64 {
        let total: i128 = xs.iter().map(|&x| (x * (1u64 << 60) as f64) as i128).sum();
        total as f64 / (1u64 << 60) as f64
    }

    proptest! {
        /// Inputs that are multiples of 2^-20 below 2^30 have an exact sum representable in
        /// i128 units of 2^-60; the compensated sum must be its correctly rounded value for
        /// these (few, well-conditioned) inputs.
        #[test]
        fn close_to_the_exact_sum(raw in proptest::collection::vec(-(1i64 << 50)..(1i64 << 50), 0..200)) {
            let xs: Vec<f64> = raw.iter().map(|&r| r as f64 / (1u64 << 20) as f64).collect();
            let got = sum_of(&xs);
            let want = exact(&xs);
            let magnitude: f64 = xs.iter().map(|x| x.abs()).sum();
            let tolerance = want.abs() * f64::EPSILON + 256.0 * f64::EPSILON * f64::EPSILON * magnitude;
            prop_assert!((got - want).abs() <= tolerance, "got {got}, want {want}");
        }

        #[test]
        fn merge_matches_one_pass(xs in proptest::collection::vec(-1e12f64..1e12, 0..100), cut in 0usize..100) {
            let cut = cut.min(xs.len());
            let mut a = Sum::new();
            let mut b = Sum::new();
            xs[..cut].iter().for_each(|&x| a.add(x));
            xs[cut..].iter().for_each(|&x| b.add(x));
            a.merge(&b);
            let one = sum_of(&xs);
            let tolerance = xs.iter().map(|x| x.abs()).sum::<f64>() * 4.0 * f64::EPSILON * f64::EPSILON + one.abs() * f64::EPSILON;
            prop_assert!((a.value() - one).abs() <= tolerance, "{} vs {}", a.value(), one);
        }
    }
}
