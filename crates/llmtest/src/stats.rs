//! Small statistics shared by the reports and `compare`: Wilson score intervals,
//! percentiles, and the exact two-sided binomial test behind McNemar's test and the sign
//! test. Closed forms, tested against published values and against scipy/statsmodels
//! (`fixtures/stats/reference.json`, written by `fixtures/stats/make_reference.py`).

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

/// The exact two-sided p-value of `k` successes in `n` Bernoulli(½) trials:
/// `min(1, 2·P(X ≤ min(k, n−k)))`, X ~ Binomial(n, ½) (statsmodels' exact McNemar; the
/// same as scipy's `binomtest(k, n, 0.5)`, the distribution being symmetric). 1 when `n` is 0.
///
/// Summed in log space, so it stays exact to rounding for n in the millions.
pub fn binomial_two_sided_half(k: u64, n: u64) -> f64 {
    let k = k.min(n);
    let m = k.min(n - k);
    if n == 0 || 2 * m == n {
        return 1.0;
    }
    // ln C(n, j) for j = 0..=m, then log-sum-exp around the largest term (j = m).
    // Compensated (Kahan) summation: at n = 200,000 a plain running sum drifts by 1e-9.
    let (mut ln_c, mut carry) = (0.0f64, 0.0f64);
    let mut terms = Vec::with_capacity(m as usize + 1);
    terms.push(0.0);
    for j in 1..=m {
        let y = ((n - j + 1) as f64 / j as f64).ln() - carry;
        let t = ln_c + y;
        carry = (t - ln_c) - y;
        ln_c = t;
        terms.push(ln_c);
    }
    let top = terms[m as usize];
    let sum: f64 = terms.iter().map(|t| (t - top).exp()).sum();
    let ln_tail = top + sum.ln() - n as f64 * std::f64::consts::LN_2;
    (2.0 * ln_tail.exp()).min(1.0)
}

/// McNemar's exact test on the discordant pairs of a paired 2×2 table: `b` cases passed by
/// the baseline only, `c` by the candidate only. Two-sided p-value; 1 with no discordant pair.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    binomial_two_sided_half(b, b + c)
}

/// The exact two-sided sign test of paired differences: `pos` cases where the candidate's
/// per-case pass rate is higher, `neg` where it is lower (ties dropped). With one sample per
/// case it is McNemar's exact test.
pub fn sign_test(pos: u64, neg: u64) -> f64 {
    binomial_two_sided_half(pos, pos + neg)
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
    fn exact_binomial_small_tables_by_hand() {
        // b = 6, c = 0: 2 · (½)^6 = 0.03125; b = 5, c = 0: 0.0625; b = 8, c = 1: 2 · 10/512.
        assert!((mcnemar_exact(6, 0) - 0.03125).abs() < 1e-12);
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        assert!((mcnemar_exact(8, 1) - 20.0 / 512.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert!((sign_test(2, 3) - 1.0).abs() < 1e-12);
    }

    /// Every table and interval in `fixtures/stats/reference.json` (scipy and statsmodels).
    #[test]
    fn matches_scipy_and_statsmodels_reference() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/stats/reference.json"
        );
        let text = std::fs::read_to_string(path).expect("fixtures/stats/reference.json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rel =
            |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-300) || (a - b).abs() < 1e-15;
        let tables = v["mcnemar"].as_array().unwrap();
        assert!(tables.len() >= 10, "reference tables: {}", tables.len());
        let (mut zero, mut one_way, mut large) = (false, false, false);
        for t in tables {
            let (b, c) = (t["b"].as_u64().unwrap(), t["c"].as_u64().unwrap());
            let want = t["pvalue"].as_f64().unwrap();
            let got = mcnemar_exact(b, c);
            assert!(
                rel(got, want),
                "mcnemar b={b} c={c}: {got} vs statsmodels {want}"
            );
            let want_binom = t["binomtest_pvalue"].as_f64().unwrap();
            assert!(rel(sign_test(b, c), want_binom), "binomtest b={b} c={c}");
            zero |= b + c == 0;
            one_way |= (b == 0) != (c == 0);
            large |= b + c >= 10_000;
        }
        assert!(
            zero && one_way && large,
            "the reference must cover 0 discordant, one-way, large n"
        );
        let intervals = v["wilson"].as_array().unwrap();
        assert!(intervals.len() >= 8);
        for w in intervals {
            let (k, n) = (
                w["pass"].as_u64().unwrap() as usize,
                w["n"].as_u64().unwrap() as usize,
            );
            let (lo, hi) = wilson(k, n, Z95);
            let (wl, wh) = (w["low"].as_f64().unwrap(), w["high"].as_f64().unwrap());
            assert!(
                (lo - wl).abs() < 1e-9 && (hi - wh).abs() < 1e-9,
                "wilson {k}/{n}: ({lo}, {hi}) vs ({wl}, {wh})"
            );
        }
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
