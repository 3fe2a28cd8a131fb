//! Small statistics shared by the reports and `compare`: Wilson score intervals and
//! percentiles. Closed forms, tested against published values.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `pass` successes in `n` trials at normal quantile `z`
/// (use [`Z95`] for 95%). Returns `(low, high)` in `[0, 1]`; `(0, 1)` when `n` is 0.
///
/// Unlike the normal (Wald) interval it stays inside `[0, 1]` and is not degenerate at 0 or
/// n successes, which matters for the small suites and high pass rates of model evaluations.
pub fn wilson(pass: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = pass.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The `q`-quantile (0..=1) of `values` by linear interpolation between closest ranks
/// (numpy's default); `None` when empty. NaNs sort last.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605.
        let (l, h) = wilson(81, 263, Z95);
        assert!(close(l, 0.2553) && close(h, 0.3662), "{l} {h}");
        let (l, h) = wilson(15, 148, Z95);
        assert!(close(l, 0.0624) && close(h, 0.1605), "{l} {h}");
        // 0/10 and 10/10 are not degenerate: 0–0.2775 and 0.7225–1.
        let (l, h) = wilson(0, 10, Z95);
        assert!(close(l, 0.0) && close(h, 0.2775), "{l} {h}");
        let (l, h) = wilson(10, 10, Z95);
        assert!(close(l, 0.7225) && close(h, 1.0), "{l} {h}");
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.5), Some(2.5));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(4.0));
        assert!(close(percentile(&v, 0.9).unwrap(), 3.7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
