//! Choosing the next token: greedy, or temperature / top-k / top-p / min-p sampling from a
//! seeded generator, after repetition, presence and frequency penalties.

use std::collections::HashMap;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// How tokens are chosen and when generation stops.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// Most new tokens per sequence.
    pub max_tokens: u32,
    /// `0`: greedy (the most likely token, the first on ties).
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this total probability (`1`: off).
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens (`0`: off).
    pub top_k: u32,
    /// Drop tokens less likely than `min_p` times the most likely one (`0`: off).
    pub min_p: f64,
    /// Seed of sequence 0; sequence `i` of a batch uses a seed derived from it and `i`, so a
    /// batch of `n` samples is reproducible and its samples differ. `None`: a fresh seed.
    pub seed: Option<u64>,
    /// Generation stops before the first occurrence of any of these (not included).
    pub stop: Vec<String>,
    /// OpenAI's: subtract once from the logit of every token already generated.
    pub presence_penalty: f64,
    /// OpenAI's: subtract per occurrence in the generated text.
    pub frequency_penalty: f64,
    /// transformers': divide positive (multiply negative) logits of tokens seen in the prompt
    /// or the output (`1`: off).
    pub repetition_penalty: f64,
    /// Keep generating past end-of-sequence tokens (vLLM's `ignore_eos`; for benchmarks).
    pub ignore_eos: bool,
    /// Keep the logits each token of sequence 0 was chosen from ([`crate::Generation::logits`]).
    pub record_logits: bool,
}

impl Sampling {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: u32) -> Sampling {
        Sampling {
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: None,
            stop: Vec::new(),
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: 1.0,
            ignore_eos: false,
            record_logits: false,
        }
    }
}

/// The per-sequence state: its generator and the tokens seen so far.
pub(crate) struct Sampler<'a> {
    cfg: &'a Sampling,
    rng: Pcg64Mcg,
    generated: HashMap<u32, u32>,
    seen: Vec<u32>,
}

/// A seed for sequence `row` derived from the request's seed (SplitMix64's finaliser, so
/// neighbouring rows get unrelated streams).
fn row_seed(base: u64, row: usize) -> u64 {
    let mut z = base.wrapping_add((row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<'a> Sampler<'a> {
    pub fn new(cfg: &'a Sampling, base_seed: u64, row: usize, prompt: &[u32]) -> Sampler<'a> {
        let seen = if cfg.repetition_penalty != 1.0 {
            prompt.to_vec()
        } else {
            Vec::new()
        };
        Sampler {
            cfg,
            rng: Pcg64Mcg::seed_from_u64(row_seed(base_seed, row)),
            generated: HashMap::new(),
            seen,
        }
    }

    /// Chooses the next token from `logits` (modified in place by the penalties).
    pub fn pick(&mut self, logits: &mut [f32]) -> u32 {
        self.penalize(logits);
        let tok = if self.cfg.temperature <= 0.0 {
            argmax(logits)
        } else {
            self.sample(logits)
        };
        *self.generated.entry(tok).or_insert(0) += 1;
        if self.cfg.repetition_penalty != 1.0 {
            self.seen.push(tok);
        }
        tok
    }

    fn penalize(&self, logits: &mut [f32]) {
        let rp = self.cfg.repetition_penalty as f32;
        if rp != 1.0 {
            let mut done = std::collections::HashSet::new();
            for &t in &self.seen {
                if done.insert(t)
                    && let Some(l) = logits.get_mut(t as usize)
                {
                    *l = if *l > 0.0 { *l / rp } else { *l * rp };
                }
            }
        }
        let (pp, fp) = (
            self.cfg.presence_penalty as f32,
            self.cfg.frequency_penalty as f32,
        );
        if pp != 0.0 || fp != 0.0 {
            for (&t, &c) in &self.generated {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l -= pp + fp * c as f32;
                }
            }
        }
    }

    fn sample(&mut self, logits: &[f32]) -> u32 {
        let t = self.cfg.temperature as f32;
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l / t))
            .collect();
        if cand.is_empty() {
            return argmax(logits);
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.cfg.top_k as usize;
        if k > 0 && k < cand.len() {
            cand.select_nth_unstable_by(k - 1, by_logit);
            cand.truncate(k);
        }
        cand.sort_unstable_by(by_logit);
        let max = cand[0].1;
        let mut probs: Vec<f64> = cand
            .iter()
            .map(|&(_, l)| ((l - max) as f64).exp())
            .collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        let mut keep = probs.len();
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.cfg.min_p > 0.0 {
            let floor = probs[0] * self.cfg.min_p;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        let total: f64 = probs[..keep].iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        for i in 0..keep {
            u -= probs[i];
            if u < 0.0 {
                return cand[i].0;
            }
        }
        cand[keep - 1].0
    }
}

/// Index of the largest logit, the first on ties (as NumPy's `argmax`); NaN never wins.
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f64, seed: u64) -> Sampling {
        Sampling {
            temperature,
            seed: Some(seed),
            ..Sampling::greedy(10)
        }
    }

    #[test]
    fn argmax_takes_first_of_ties_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, f32::NAN]), 1);
    }

    #[test]
    fn same_seed_same_choices_other_seed_other_choices() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let run = |seed| {
            let cfg = sampling(1.0, seed);
            let mut s = Sampler::new(&cfg, seed, 0, &[]);
            (0..40)
                .map(|_| s.pick(&mut logits.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rows_of_a_batch_get_different_streams() {
        let cfg = sampling(1.0, 3);
        let logits = vec![0.0f32; 100];
        let a: Vec<u32> = {
            let mut s = Sampler::new(&cfg, 3, 0, &[]);
            (0..20).map(|_| s.pick(&mut logits.clone())).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(&cfg, 3, 1, &[]);
            (0..20).map(|_| s.pick(&mut logits.clone())).collect()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits = vec![0.1f32, 2.0, 1.9, -1.0];
        for cfg in [
            Sampling {
                top_k: 1,
                ..sampling(5.0, 1)
            },
            Sampling {
                top_p: 0.01,
                ..sampling(5.0, 1)
            },
        ] {
            let mut s = Sampler::new(&cfg, 1, 0, &[]);
            for _ in 0..50 {
                assert_eq!(s.pick(&mut logits.clone()), 1);
            }
        }
    }

    #[test]
    fn top_k_limits_the_support() {
        let logits = vec![3.0f32, 2.9, 2.8, -5.0, 2.7];
        let cfg = Sampling {
            top_k: 2,
            ..sampling(10.0, 5)
        };
        let mut s = Sampler::new(&cfg, 5, 0, &[]);
        let seen: std::collections::BTreeSet<u32> =
            (0..200).map(|_| s.pick(&mut logits.clone())).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn high_temperature_spreads_choices() {
        let logits = vec![1.0f32, 0.9, 0.8, 0.7];
        let cfg = sampling(2.0, 9);
        let mut s = Sampler::new(&cfg, 9, 0, &[]);
        let seen: std::collections::BTreeSet<u32> =
            (0..200).map(|_| s.pick(&mut logits.clone())).collect();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn penalties_change_the_greedy_choice() {
        // token 0 leads by 1.0; after it was generated, a presence penalty of 2 flips the choice
        let cfg = Sampling {
            presence_penalty: 2.0,
            ..Sampling::greedy(5)
        };
        let mut s = Sampler::new(&cfg, 0, 0, &[]);
        assert_eq!(s.pick(&mut [2.0, 1.0]), 0);
        assert_eq!(s.pick(&mut [2.0, 1.0]), 1);
        // repetition penalty sees the prompt
        let cfg = Sampling {
            repetition_penalty: 4.0,
            ..Sampling::greedy(5)
        };
        let mut s = Sampler::new(&cfg, 0, 0, &[0]);
        assert_eq!(s.pick(&mut [2.0, 1.0]), 1);
    }
}
