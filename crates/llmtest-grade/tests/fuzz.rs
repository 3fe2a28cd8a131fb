//! Property tests for the `number` and `math` extractors and parsers: no panic on any input,
//! and bounded work on long or adversarial input (nested braces, digit floods, towers of
//! powers, thousands of Chinese numerals). The time bound is generous on purpose: it is
//! there to catch exponential behaviour, which would overshoot it by orders of magnitude,
//! not to benchmark. It bounds the CPU time of the checking thread, not wall time, so a
//! machine busy with other work cannot fail it.

use std::time::{Duration, Instant};

use llmtest_grade::math::MathGrader;
use llmtest_grade::number::NumberGrader;
use proptest::prelude::*;

const BOUND: Duration = Duration::from_secs(5);

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn number() -> NumberGrader {
    NumberGrader::from_params(
        serde_json::json!({"value": 58159881, "unit": "千元"})
            .as_object()
            .unwrap(),
    )
    .unwrap()
}

fn maths() -> Vec<MathGrader> {
    [
        "\\frac{1}{2}",
        "x=2 或 x=3",
        "(x-1)^2",
        "(1, 2]",
        "极大值点 x=0，极小值点 x=2",
        "142",
    ]
    .iter()
    .map(|g| MathGrader::new(g, true).unwrap())
    .collect()
}

/// Pieces that exercise the scanners' and parsers' special cases.
const PIECES: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "{",
    "}",
    "\\{",
    "\\}",
    "(",
    ")",
    "[",
    "]",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[",
    "^",
    "_",
    "9",
    "99999",
    "0",
    ".",
    ",",
    "，",
    "-",
    "−",
    "+",
    "*",
    "/",
    "=",
    "<",
    "\\le",
    "!",
    "%",
    "\\%",
    "e",
    "E",
    "x",
    "y",
    "f(x)",
    "\\pi",
    "\\infty",
    "\\cup",
    "\\pm",
    "\\text{",
    "\\left(",
    "\\right)",
    "亿",
    "万",
    "千",
    "百",
    "十",
    "元",
    "千元",
    "人民币",
    "RMB",
    "$",
    "¥",
    "五",
    "八",
    "零",
    "点",
    "百分之",
    "分之",
    "年",
    "第",
    "或",
    "和",
    "答案：",
    "the answer is ",
    "####",
    "\n",
    " ",
    "billion",
    "k",
    "M",
    "×10^",
    "1,234",
    "５",
    "（",
    "）",
    "极大值",
    "下降",
    "|",
    "\\binom",
    "\\sin",
    "ln",
    "°",
    "∪",
];

fn check_all(input: &str, n: &NumberGrader, ms: &[MathGrader]) {
    let start = Instant::now();
    let cpu = thread_cpu();
    let g = n.grade_answer(input);
    assert!(
        g.found.len() < 2_000,
        "message stays short: {} bytes",
        g.found.len()
    );
    for m in ms {
        let g = m.grade_answer(input);
        assert!(
            g.found.len() < 2_000,
            "message stays short: {} bytes",
            g.found.len()
        );
        if let Some(e) = &g.extracted {
            assert!(
                e.len() < 20_000,
                "canonical form stays bounded: {} bytes",
                e.len()
            );
        }
    }
    // FUZZ_TIMES=1 lists the slow inputs (with --nocapture)
    if std::env::var_os("FUZZ_TIMES").is_some() && start.elapsed() > Duration::from_millis(100) {
        eprintln!(
            "{:?} on {} chars: {:?}",
            start.elapsed(),
            input.chars().count(),
            input.chars().take(40).collect::<String>()
        );
    }
    let used = thread_cpu() - cpu;
    assert!(
        used < BOUND,
        "took {used:?} of CPU on {} chars",
        input.chars().count()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text(s in "\\PC{0,400}") {
        check_all(&s, &number(), &maths());
    }

    #[test]
    fn token_soup(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..300)) {
        check_all(&pieces.concat(), &number(), &maths());
    }

    #[test]
    fn gold_parsing_never_panics(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..60)) {
        let gold = pieces.concat();
        if let Ok(m) = MathGrader::new(&gold, true) {
            let _ = m.grade_answer(&gold);
        }
        let params = serde_json::json!({"value": gold, "unit": "万元"});
        let _ = NumberGrader::from_params(params.as_object().unwrap());
    }
}

#[test]
fn long_adversarial_inputs_finish() {
    let n = number();
    let ms = maths();
    let cases = [
        "{".repeat(50_000),
        "\\boxed{".repeat(20_000),
        format!("\\boxed{{{}}}", "(".repeat(10_000)),
        "9".repeat(200_000),
        "9^".repeat(5_000) + "9",
        "\\frac{".repeat(5_000),
        "1,".repeat(50_000),
        "五百八十一亿六千万元".repeat(20_000),
        "三万".repeat(50_000),
        "\\sqrt{".repeat(5_000) + "2" + &"}".repeat(5_000),
        format!(
            "\\boxed{{{}}}",
            (0..3_000).map(|i| format!("\\{{{i}, ")).collect::<String>()
        ),
        format!(
            "\\boxed{{{}}}",
            vec!["\\{1, \\{2, \\{3, 4\\}\\}\\}"; 200].join(", ")
        ),
        "x=2 或 ".repeat(5_000),
        "答案：".repeat(30_000),
        "(1,234)".repeat(20_000) + "58,159,881千元",
        format!("{}{}", "a".repeat(300_000), "58,159,881千元"),
        "10^{999}".repeat(100),
        "1e999".repeat(1000),
        "5!".repeat(1000) + "!!!!!!!!!!",
    ];
    for c in &cases {
        check_all(c, &n, &ms);
    }
    // the number grader still finds an answer at the end of a long text
    let long = format!("{}58,159,881千元", "无关的文字。".repeat(30_000));
    assert!(n.grade_answer(&long).pass);
}
