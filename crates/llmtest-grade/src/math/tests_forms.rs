//! Forms found by grading other people's cases (math-verify's own tests, held-out answers in
//! the styles of Qwen, DeepSeek-R1 and Llama): each class once right, once wrong.

use proptest::prelude::*;

use super::tests::{bad, ok};
use super::*;

#[track_caller]
fn refused(gold: &str, says: &str) {
    match MathGrader::new(gold, true) {
        Ok(_) => panic!("gold {gold:?} should be refused"),
        Err(e) => assert!(e.message.contains(says), "{gold:?}: {}", e.message),
    }
}

#[test]
fn matrices_compare_entry_by_entry() {
    let m = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}";
    ok(m, "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}");
    ok(
        m,
        "\\boxed{\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}}",
    );
    ok(
        m,
        "$\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]$",
    );
    ok(
        m,
        "\\boxed{\\begin{pmatrix} \\frac{2}{2} & 2 \\\\ 3 & 2^2 \\end{pmatrix}}",
    );
    bad(
        m,
        "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}}",
    );
    bad(
        m,
        "\\boxed{\\begin{pmatrix} 1 & 2 & 3 \\\\ 4 & 5 & 6 \\end{pmatrix}}",
    );
    bad(m, "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}");
    bad(m, "\\boxed{(1, 2, 3, 4)}");
    // sums and products of matrices are worked out
    ok(
        "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
        "The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$",
    );
    ok(
        "\\begin{pmatrix}2 & 1 \\\\ 4 & 3\\end{pmatrix}",
        "$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} \\begin{pmatrix}0 & 1 \\\\ 1 & 0\\end{pmatrix}$",
    );
    bad(
        "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}",
        "$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} \\begin{pmatrix}0 & 1 \\\\ 1 & 0\\end{pmatrix}$",
    );
    // an environment that is not read is refused, never compared as words
    assert!(MathGrader::new("\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}", true).is_err());
    bad(
        "x",
        "\\begin{cases} x & x > 0 \\\\ 0 & x \\le 0 \\end{cases}",
    );
}

#[test]
fn ratios_and_times_keep_every_part() {
    ok("3:2", "The ratio of boys to girls is $\\boxed{3:2}$.");
    bad("3:2", "\\boxed{2:3}");
    ok("12:00", "$12:00$");
    bad("12:00", "$1:00$");
    bad("10:30", "\\boxed{10:03}");
    ok("V_{1}:V_{2}=11:21", "$11:21$");
    ok("A:B=1", "$$1$$");
    // a colon after a word is not a ratio
    ok("5", "Answer:5");
}

#[test]
fn sums_and_products_with_bounds() {
    ok("55", "\\boxed{\\sum_{k=1}^{10} k}");
    ok("\\sum_{k=1}^{10} k", "55");
    bad("\\sum_{k=1}^{10} k", "\\boxed{\\sum_{k=1}^{9} k}");
    ok("120", "\\boxed{\\prod_{i=1}^{5} i}");
    ok("\\sum_{k=1}^{n} k^2", "\\boxed{\\sum_{k=1}^{n} k^2}");
    let f = "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}";
    ok(f, "$F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k$");
    bad(f, "$F_n = \\sum_{k=0}^{n-2} F_k F_{n-k-2}$");
    // a sum without bounds is not read
    assert!(MathGrader::new("\\sum x_i", true).is_err());
}

#[test]
fn forms_that_must_match_their_own_copy() {
    for g in [
        "(p,q)=(3,2)",
        "x \\neq 3",
        "x != 3",
        "x = \\frac{-1 \\pm \\sqrt{13}}{4}",
        "\\frac{-1 \\pm \\sqrt{13}}{4}",
        "f(2) < f(1) < f(4)",
        "1 \\leq |z| \\leq \\frac{3}{2}",
        "\\text{Evelyn}",
        "\\mathrm{e}",
        "1 - \\frac{1}{\\mathrm{e}}",
    ] {
        ok(g, g);
        ok(g, &format!("\\boxed{{{g}}}"));
    }
    ok("(p,q)=(3,2)", "$(3,2)$");
    ok("(p,q)=(3,2)", "\\boxed{p=3, q=2}");
    bad("(p,q)=(3,2)", "\\boxed{(2,3)}");
    ok("x \\neq 3", "We find that $x != 3$.");
    bad("x \\neq 3", "x \\neq 4");
    bad("x \\neq 3", "x = 3");
    ok(
        "\\frac{-1 \\pm \\sqrt{13}}{4}",
        "\\boxed{x = \\frac{-1 + \\sqrt{13}}{4}, \\ x = \\frac{-1 - \\sqrt{13}}{4}}",
    );
    bad(
        "\\frac{-1 \\pm \\sqrt{13}}{4}",
        "\\boxed{\\frac{-1 + \\sqrt{13}}{4}}",
    );
    bad(
        "\\frac{-1 \\pm \\sqrt{13}}{4}",
        "\\boxed{\\frac{-1 \\pm \\sqrt{11}}{4}}",
    );
    ok("f(2) < f(1) < f(4)", "f(4) > f(1) > f(2)");
    bad("f(2) < f(1) < f(4)", "f(1) < f(2) < f(4)");
    ok(
        "1\\leq|z|\\leq \\frac{3}{2}",
        "$z \\in \\left[-\\frac{3}{2}, -1\\right] \\cup \\left[1, \\frac{3}{2}\\right]$",
    );
    bad("1\\leq|z|\\leq \\frac{3}{2}", "$[1, \\frac{3}{2}]$");
    ok("0<f(x)<1", "$(0,1)$");
}

#[test]
fn misreadings() {
    ok(
        "(2,12) \\cup (12,102)",
        "Thus, the answer is $x \\in \\boxed{(2,12) \\cup (12,102)}$",
    );
    bad("12102", "\\boxed{(2,12) \\cup (12,102)}");
    ok("1234567", "\\boxed{(1,234,567)}");
    ok("x = 1/3", "$x = 5+5+1 = 1/3 \\approx 11$");
    ok("\\frac{1}{3}", "$x=1/3\\approx0.33$");
    ok("11", "$x\\approx11$");
    bad("\\frac{1}{3}", "$x \\approx 0.33$");
    ok("x < 1", "$-x > -1$");
    ok("x <= 1", "$-x >= -1$");
    ok("[2, \\infty)", "$2x + 1 \\ge 5$");
    bad("x < 1", "$-x < -1$");
    ok("1000.99", "so the number is 10 which is 1,000.99m²");
    ok("1000.99", "not it's not 10 it's 1,000.99m²");
    ok("1000000", "\\boxed{1{,}000{,}000}");
    ok("11111111100", "is $\\boxed{11,\\! 111,\\! 111,\\! 100}$");
    ok("14916", "$14 {, }916$");
    ok("1000", "1 000");
    ok("58159881", "\\boxed{58\u{2009}159\u{2009}881}");
    bad("1000", "1 0000");
    ok("[-2, 7]", "$x \\in [-2,7]$");
    ok("[2, 5]", "The range is $x \\in [2, 5]$.");
    ok("9", "Answer \\[ \n 9 \n \\]");
    ok(
        "\\frac{9}{2}",
        "So the area is\n\\[\n\\frac{9}{2}\n\\]\nsquare units.",
    );
    ok("W(n) = 1 \\text{ and } W(n) = -1", "W(x)=1orW(x)=-1");
    ok("x=1 \\text{ or } x=-1", "\\boxed{x=1\\text{or}x=-1}");
    bad("x=1 \\text{ or } x=-1", "\\boxed{x=1\\text{or}x=1}");
    ok("\\frac{1}{12}", "$0.0833333333333333$");
    bad("\\frac{1}{12}", "$0.0833333333$3");
}

#[test]
fn text_answers_and_worked_solutions() {
    ok(
        "\\text{Evelyn}",
        "so the answer is $\\boxed{\\text{Evelyn}}$.",
    );
    bad("\\text{Evelyn}", "\\boxed{\\text{Briana}}");
    ok("\\text{(C)}", "The correct option is \\boxed{C}.");
    ok("\\text{(C)}", "$\\boxed{\\text{(C)}}.$");
    bad("\\text{(C)}", "答案选 \\boxed{D}。");
    ok("\\text{odd}", "$odd$");
    ok("$\\text{Even}$", "$Even$");
    bad("\\text{odd}", "\\boxed{\\text{even}}");
    ok("\\text{e}", "$e$");
    ok("\\text{E}", "$E$");
    ok(
        "$$\\text{The midpoints form a regular hexagon}$$",
        "$$\\text{The midpoints form a regular hexagon}$$",
    );
    ok(
        "125 miles",
        "The distance is $\\boxed{125\\textnormal{ miles}}.$",
    );
    refused(
        "Let's assume the stock's value at the beginning of Monday is 100 and that it loses 10 percent",
        "worked solution",
    );
    refused(
        "In order for $N$ to be divisible by 12, $N$ must be divisible by both 3 and 4, so its digits sum to a multiple of 3",
        "worked solution",
    );
    // a solution with its answer marked is a gold
    ok("The answer is 28, after both days of losses", "\\boxed{28}");
    // `\t` in a double-quoted YAML string is a tab
    refused("\text{13}", "control character");
}

#[test]
fn several_boxes_and_final_answer_lines() {
    ok(
        "(3, 3), (1, 1)",
        "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)} \\text{ for part (b)}$$",
    );
    ok("$\\boxed{1}\\boxed{2}$", "$\\boxed{1,2}$");
    bad("\\boxed{1} no no no no no \\boxed{2}", "$\\boxed{1,2}$");
    ok("\\boxed{1} papers and \\boxed{2} bins", "$\\boxed{1,2}$");
    ok("$\\\\boxed{35 cm} ++++++ \\\\boxed{4}$", "${35 cm,4}$");
    ok(
        "the answer should be \\boxed{004}. So, \\boxed{004} is the correct answer.\n\n**Final Answer**\n\\boxed{004}",
        "$004$",
    );
    ok(
        "7",
        "We try $n=5$: $\\boxed{5}$ does not work. Trying $n=7$ works.\n\nFinal Answer: 7",
    );
    bad(
        "5",
        "We try $n=5$: $\\boxed{5}$ does not work. Trying $n=7$ works.\n\nFinal Answer: 7",
    );
    ok("p=5,q=2;p=7,q=2", "$(5,2),(7,2)$");
    bad("p=5,q=2;p=7,q=2", "$(5,2),(2,7)$");
}

#[test]
fn labels_after_values_and_chinese_numerals() {
    ok(
        "0, 2",
        "The critical points are x=0 (a local maximum) and x=2 (a local minimum).",
    );
    bad(
        "0, 3",
        "The critical points are x=0 (a local maximum) and x=2 (a local minimum).",
    );
    ok("\\frac{1}{3}", "所以概率是三分之一。");
    bad("\\frac{1}{3}", "所以概率是四分之一。");
    ok("-2", "答：x 等于负二。");
    bad("2", "答：x 等于负二。");
    ok("100", "答案是一百。");
    ok("15", "所以小明今年十五岁。");
    ok("1.5", "一共需要一点五小时。");
    ok("-\\frac{1}{2}", "所以直线的斜率为负二分之一。");
    ok("40\\%", "所占比例为百分之四十");
    // 一 in words (一共, 一半) and ordinals (第三) are not numbers
    ok("8", "一共有 8 个");
    bad("3", "这是第三个");
}

#[test]
fn named_values_set_builders_and_asides() {
    ok("3", "Hence, $f(x)_{\\max} = 3$.");
    ok("\\frac{3}{5}", "\\sin A = \\frac{3}{5}");
    ok("a+b=6", "\\boxed{6}");
    ok("6", "所以 $a+b=\\boxed{6}$");
    // an equation with a number in its left side is to be solved, not a value
    bad("3", "x + 1 = 3");
    bad("a + 3z = 0", "$0$");
    bad("2x + z = 1", "$1$");
    ok("\\{1,2\\}", "$A\\cap B=\\{1,2\\}$");
    bad("\\{1,2\\}", "$A\\cap B=\\{1,3\\}$");
    ok("16", "小明一共走了十六千米。");
    ok("(2, \\infty)", "\\boxed{\\{x \\mid x > 2\\}}");
    ok("(2, \\infty)", "\\boxed{\\{x : x > 2\\}}");
    bad("(2, \\infty)", "\\boxed{\\{x \\mid x < 2\\}}");
    ok("(-\\infty, -2) \\cup (2, +\\infty)", "\\boxed{|x| > 2}");
    ok("[-2, 2]", "\\boxed{|x| \\le 2}");
    bad("(-2, 2)", "\\boxed{|x| > 2}");
    ok("1:2", "\\boxed{\\frac{1}{2}}");
    ok("0.5", "\\boxed{1:2}");
    bad("1:2", "\\boxed{2}");
    bad("12:00", "\\boxed{12}");
    ok("\\frac{2}{3}", "$\\frac{2}{3}$ (约 0.67)");
    ok("0.5", "\\boxed{\\frac{1}{2}} \\text{ (or 0.5)}");
    bad("\\frac{2}{3}", "$\\frac{3}{4}$ (约 0.67)");
}

#[test]
fn words_with_numerals_vectors_and_corrections() {
    // 三 in 三角形 is part of a word; 三个 is a number
    ok("60^\\circ", "在三角形 ABC 中，角 A 为 60°。");
    bad("3", "在三角形 ABC 中，角 A 为 60°。");
    ok("3", "共有三个");
    ok("3, 4", "三和四");
    // a column vector and the tuple of its entries
    ok(
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        "\\boxed{(1, 2)}",
    );
    ok("(1, 2)", "\\boxed{\\begin{pmatrix} 1 & 2 \\end{pmatrix}}");
    bad(
        "(1, 2)",
        "\\boxed{\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}}",
    );
    // a box corrected by a later one
    ok("8", "$$\\boxed{9}$$ is wrong; the answer is $\\boxed{8}$");
    bad("9", "$$\\boxed{9}$$ is wrong; the answer is $\\boxed{8}$");
    // trigonometric functions of degrees
    ok("\\sqrt{3}", "\\boxed{\\tan 60^\\circ}");
    ok("\\frac{1}{2}", "\\sin 30°");
    bad("\\frac{1}{2}", "\\cos 30°");
}

#[test]
fn messages_render_relations_as_math() {
    let g = MathGrader::new("x \\neq 3", true).unwrap();
    let r = g.grade_answer("x \\neq 4");
    assert!(!r.pass);
    assert!(r.found.contains("x ≠ 4 ≢ x ≠ 3"), "{}", r.found);
    assert!(!r.found.contains("Var("), "{}", r.found);
    assert!(!r.expected.contains("Num("), "{}", r.expected);
    let g = MathGrader::new("(1, \\infty)", true).unwrap();
    let r = g.grade_answer("\\boxed{-x < -1}");
    assert!(r.pass, "{}", r.found);
    assert_eq!(r.extracted.as_deref(), Some("(1, oo)"));
}

/// Golds of every kind the corpus and these tests hold.
fn golds() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/math-corpus/pairs.jsonl");
    let text = std::fs::read_to_string(&path).expect("the corpus");
    let mut golds: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["grader"] == "math")
        .filter_map(|v| v["gold"].as_str().map(str::to_owned))
        .collect();
    golds.extend(
        [
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "3:2",
            "\\sum_{k=1}^{10} k^2",
            "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}",
            "(p,q)=(3,2)",
            "x \\neq 3",
            "f(2) < f(1) < f(4)",
            "1 \\leq |z| \\leq \\frac{3}{2}",
            "\\text{Evelyn}",
            "\\binom{5}{2}",
            "(-\\infty, -1) \\cup (3, \\infty)",
            "x = \\frac{-1 \\pm \\sqrt{13}}{4}",
        ]
        .map(str::to_owned),
    );
    golds.sort();
    golds.dedup();
    golds
}

#[test]
fn every_gold_matches_itself_and_its_rendering() {
    let mut checked = 0;
    for gold in golds() {
        let Ok(g) = MathGrader::new(&gold, true) else {
            continue;
        };
        let shown = show(&g.gold);
        for answer in [gold.clone(), shown.clone()] {
            let r = g.grade_answer(&answer);
            assert!(
                r.pass,
                "gold {gold:?} (shown {shown:?}) against {answer:?}: {}",
                r.found
            );
        }
        checked += 1;
    }
    assert!(checked > 150, "{checked} golds");
}

/// A random expression in LaTeX.
fn latex_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (1u32..50).prop_map(|n| n.to_string()),
        Just("x".to_owned()),
        Just("y".to_owned()),
        Just("\\pi".to_owned()),
        (1u32..9, 2u32..9).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
        (2u32..30).prop_map(|n| format!("\\sqrt{{{n}}}")),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} - {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
            (inner.clone(), 2u32..4).prop_map(|(a, n)| format!("({a})^{{{n}}}")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("\\sqrt{{{a}}}")),
        ]
    })
}

fn latex_answer() -> impl Strategy<Value = String> {
    prop_oneof![
        latex_expr(),
        (latex_expr(), latex_expr()).prop_map(|(a, b)| format!("({a}, {b})")),
        (latex_expr(), latex_expr()).prop_map(|(a, b)| format!("\\{{{a}, {b}\\}}")),
        (latex_expr(), latex_expr())
            .prop_map(|(a, b)| format!("\\begin{{pmatrix}} {a} & {b} \\\\ 1 & 2 \\end{{pmatrix}}")),
        (1u32..24, 0u32..60).prop_map(|(h, m)| format!("{h}:{m:02}")),
        latex_expr().prop_map(|a| format!("x = {a}")),
        latex_expr().prop_map(|a| format!("x \\neq {a}")),
        (1u32..9, 2u32..9).prop_map(|(a, b)| format!("\\frac{{-{a} \\pm \\sqrt{{{b}}}}}{{2}}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_golds_match_themselves_and_their_rendering(gold in latex_answer()) {
        let g = MathGrader::new(&gold, true).map_err(|e| TestCaseError::fail(format!("{gold:?}: {}", e.message)))?;
        let shown = show(&g.gold);
        for answer in [gold.clone(), format!("\\boxed{{{gold}}}"), shown.clone()] {
            let r = g.grade_answer(&answer);
            prop_assert!(r.pass, "gold {:?} (shown {:?}) against {:?}: {}", gold, shown, answer, r.found);
        }
    }
}
