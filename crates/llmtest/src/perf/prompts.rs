//! The requests of a perf scenario: prompts of a given length in tokens and their arrival
//! times.
//!
//! Prompts are random English words, different for every request (so a server's prefix
//! cache cannot answer one from another), sized with the model's own tokenizer when the
//! backend offers one (`Backend::count_tokens`: the onnx backend's tokenizer, llama.cpp's and
//! vLLM's `/tokenize`), else by the usual approximation of 4 characters per token. The
//! lengths the server reports back are what the results show.

use llmtest_backend::{Backend, InfraError};
use llmtest_spec::{Message, Mode, Prompt, Role};

const WORDS: &[&str] = &[
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
    "car",
    "city",
    "community",
    "name",
    "president",
    "team",
    "minute",
    "idea",
    "kid",
    "body",
    "information",
    "back",
    "parent",
    "face",
    "others",
    "level",
    "office",
    "door",
    "health",
    "person",
    "art",
    "war",
    "history",
    "party",
    "result",
    "change",
    "morning",
    "reason",
    "research",
    "girl",
    "guy",
    "moment",
    "air",
    "teacher",
    "force",
    "education",
    "river",
    "garden",
    "winter",
    "market",
    "bridge",
    "music",
    "paper",
    "table",
];

/// A small deterministic generator (SplitMix64): the same seed gives the same prompts and
/// arrival times on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    /// Gamma(shape, scale) by Marsaglia and Tsang (2000); shape < 1 through the boost
    /// `Gamma(k) = Gamma(k + 1) · U^(1/k)`.
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        if shape < 1.0 {
            let u = self.unit();
            return self.gamma(shape + 1.0, scale) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * scale;
            }
        }
    }
}

/// When each of `n` requests is sent, in seconds from the start, as `vllm bench serve` does:
/// gamma-distributed gaps of mean `1 / rate` (shape `burstiness`; 1 is a Poisson process),
/// rescaled so that the last one is sent at `n / rate`.
pub(crate) fn arrivals(n: usize, rate: f64, burstiness: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed ^ 0xA441);
    let theta = 1.0 / (rate * burstiness);
    let mut t = 0.0;
    let mut out: Vec<f64> = (0..n)
        .map(|_| {
            t += rng.gamma(burstiness, theta);
            t
        })
        .collect();
    if let Some(last) = out.last().copied().filter(|l| *l > 0.0) {
        let k = n as f64 / rate / last;
        out.iter_mut().for_each(|x| *x *= k);
    }
    out
}

fn words(rng: &mut Rng, count: usize) -> Vec<&'static str> {
    (0..count)
        .map(|_| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize])
        .collect()
}

/// How the prompts were sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sizing {
    Tokenizer,
    Approximation,
    File,
}

impl Sizing {
    pub fn as_str(self) -> &'static str {
        match self {
            Sizing::Tokenizer => "tokenizer",
            Sizing::Approximation => "approximation",
            Sizing::File => "file",
        }
    }
}

/// `n` texts of about `target` tokens each, all different. With a tokenizer each text is
/// within one word of the target (a word is one to a few tokens).
pub(crate) async fn synthetic(
    backend: &dyn Backend,
    target: u32,
    n: usize,
    seed: u64,
) -> Result<(Vec<String>, Sizing), InfraError> {
    let target = target as usize;
    // Calibrate words per token once, on a sample of the same words.
    let mut rng = Rng::new(seed);
    let sample = words(&mut rng, 512).join(" ");
    let per_word = match backend.count_tokens(&sample).await {
        Some(Ok(t)) => Some((t as f64 / 512.0).max(0.05)),
        Some(Err(e)) => return Err(e),
        None => None,
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut rng = Rng::new(seed.wrapping_add(1 + i as u64).wrapping_mul(0x2545_F491));
        let pool = words(&mut rng, 16 + target * 2);
        let cut = |k: usize| pool[..k.clamp(1, pool.len())].join(" ");
        let text = match per_word {
            None => {
                // 4 characters per token.
                let (mut k, mut chars) = (0, 0);
                while chars < target * 4 && k < pool.len() {
                    chars += pool[k].len() + 1;
                    k += 1;
                }
                cut(k)
            }
            Some(pw) => {
                let mut k = ((target as f64 / pw).round() as usize).max(1);
                let mut best: Option<(usize, String)> = None;
                for _ in 0..8 {
                    let t = cut(k);
                    let count = match backend.count_tokens(&t).await {
                        Some(Ok(c)) => c,
                        Some(Err(e)) => return Err(e),
                        None => break,
                    };
                    let miss = count.abs_diff(target);
                    if best.as_ref().is_none_or(|(m, _)| miss < *m) {
                        best = Some((miss, t));
                    }
                    if miss == 0 {
                        break;
                    }
                    let step = ((miss as f64 / pw).round() as usize).max(1);
                    k = if count > target {
                        k.saturating_sub(step).max(1)
                    } else {
                        k + step
                    };
                }
                best.map(|(_, t)| t).unwrap_or_default()
            }
        };
        out.push(text);
    }
    let sizing = if per_word.is_some() {
        Sizing::Tokenizer
    } else {
        Sizing::Approximation
    };
    Ok((out, sizing))
}

/// A prompt text as the suite's mode sends it.
pub(crate) fn as_prompt(mode: Mode, text: String) -> Prompt {
    match mode {
        Mode::Completion => Prompt::Completion(text),
        Mode::Chat => Prompt::Chat(vec![Message {
            role: Role::User,
            content: text,
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_has_its_mean_and_variance() {
        for (shape, scale) in [(1.0, 2.0), (0.5, 1.0), (4.0, 0.25)] {
            let mut rng = Rng::new(7);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| rng.gamma(shape, scale)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let (m, v) = (shape * scale, shape * scale * scale);
            assert!(
                (mean - m).abs() < 0.02 * m,
                "shape {shape}: mean {mean} vs {m}"
            );
            assert!(
                (var - v).abs() < 0.05 * v,
                "shape {shape}: var {var} vs {v}"
            );
        }
    }

    #[test]
    fn arrivals_keep_the_rate_and_burstiness_shapes_the_gaps() {
        let a = arrivals(1000, 4.0, 1.0, 0);
        assert!((a[999] - 250.0).abs() < 1e-9, "last sent at n / rate");
        assert!(a.windows(2).all(|w| w[1] >= w[0]));
        let cv = |a: &[f64]| {
            let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
            let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let sd = (gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
            sd / m
        };
        // Gamma gaps have a coefficient of variation of 1/sqrt(shape).
        assert!((cv(&a) - 1.0).abs() < 0.1, "poisson: {}", cv(&a));
        let bursty = arrivals(1000, 4.0, 0.25, 0);
        assert!((cv(&bursty) - 2.0).abs() < 0.3, "bursty: {}", cv(&bursty));
        assert_eq!(a, arrivals(1000, 4.0, 1.0, 0), "seeded");
    }
}
