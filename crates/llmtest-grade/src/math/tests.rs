use super::*;

#[track_caller]
pub(super) fn ok(gold: &str, answer: &str) {
    let g = MathGrader::new(gold, true).unwrap();
    let r = g.grade_answer(answer);
    assert!(
        r.pass,
        "gold {gold:?}, answer {answer:?} should pass: {}",
        r.found
    );
}

#[track_caller]
pub(super) fn bad(gold: &str, answer: &str) {
    let g = MathGrader::new(gold, true).unwrap();
    let r = g.grade_answer(answer);
    assert!(
        !r.pass,
        "gold {gold:?}, answer {answer:?} should fail: {}",
        r.found
    );
}

#[test]
fn issue_examples() {
    ok("\\frac{1}{2}", "\\boxed{\\dfrac{2}{4}}");
    ok("x=2 或 x=3", "x=2 或 x=3");
    ok("\\{2, 3\\}", "x=2 或 x=3");
    ok("2, 3", "x_1=2, x_2=3");
    ok("2, 3", "x_1=3, x_2=2");
    ok("25\\%", "0.25");
    ok("(x-1)^2", "x^2-2x+1");
    ok("2x", "x+x");
    ok("\\frac{1}{6}", "0.1667");
    ok("1\\frac{1}{2}", "1.5");
    ok("y=2x+1", "2x+1");
    ok("2x+1", "y = 2x + 1");
    ok("极大值点 x=0，极小值点 x=2", "极大值点 x=0，极小值点 x=2");
    ok("极大值点 x=0，极小值点 x=2", "极小值点为x=2，极大值点为x=0");
    ok("142", "所以最小的三位数是 142。");
    ok("142", "\\boxed{142}");
}

#[test]
fn distractors() {
    bad("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}");
    bad("x=2 或 x=3", "x=2");
    bad("x=2 或 x=3", "x=2 或 x=3 或 x=4");
    bad("x=2 或 x=3", "x=-2 或 x=-3");
    bad("(x-1)^2", "x^2-2x-1");
    bad("\\frac{1}{6}", "0.17");
    bad("\\frac{1}{6}", "0.2");
    bad("\\frac{1}{6}", "0.1666");
    bad("142", "137");
    bad("142", "\\boxed{1420}");
    bad("极大值点 x=0，极小值点 x=2", "极大值点 x=2，极小值点 x=0");
    bad("(1, 2]", "[1, 2]");
    bad("(1, 2)", "(2, 1)");
    bad("\\sqrt{2}", "1.4");
    bad("18", "I am not sure.");
    bad("2", "2 or 3");
}

#[test]
fn numbers_and_latex() {
    ok("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}");
    ok("\\frac{\\sqrt{3}}{2}", "0.866");
    ok("\\sqrt{8}", "2\\sqrt{2}");
    ok("\\pi", "3.14");
    ok("2\\pi", "\\boxed{2 \\pi}");
    ok("e^2", "\\exp(2)");
    ok("1000", "1,000");
    ok("1000", "1{,}000");
    ok("1000", "10^3");
    ok("4", "\\boxed{\\log_2 16}");
    ok("3", "\\log_{10} 1000");
    ok("\\log_2 x", "\\frac{\\ln x}{\\ln 2}");
    bad("4", "\\log_2 8");
    ok("1.5e3", "1500");
    ok("0.5", "\\tfrac12");
    ok("\\frac{3}{4}", "3/4");
    ok("-\\frac{1}{2}", "\\frac{-1}{2}");
    ok("30", "30^\\circ");
    ok("5", "\\text{5 cm}");
    ok("5", "5\\text{ cm}");
    ok("120", "5!");
    ok("10", "\\binom{5}{2}");
    ok("2", "\\sqrt[3]{8}");
    ok("\\frac{1}{2}", "50%");
    ok("50\\%", "50");
    ok("\\frac{1}{3}", "0.\\overline{3}");
    ok("\\frac{1}{6}", "0.1\\overline{6}");
    ok("\\frac{1}{7}", "0.\\dot{1}4285\\dot{7}");
    ok("\\frac{1}{3}", "0.\\dot{3}");
    bad("\\frac{1}{3}", "0.\\overline{4}");
    ok("\\frac{\\pi}{4}", "45^\\circ");
    ok("60^\\circ", "\\frac{\\pi}{3}");
    bad("\\frac{\\pi}{4}", "30^\\circ");
    ok("３", "3");
    ok("3", "３");
    bad("50\\%", "0.05");
}

#[test]
fn structures() {
    ok("(1, 2]", "(1,2]");
    ok(
        "(-\\infty, 1] \\cup (2, \\infty)",
        "(2, +\\infty) \\cup (-\\infty, 1]",
    );
    ok("(2, \\infty)", "x > 2");
    // A zero coefficient bounds nothing (and is no division by zero: found by the fuzz test).
    bad("(0, \\infty)", "0x > 0");
    bad("(-\\infty, 0)", "0 < 0f");
    ok("[2, 5)", "2 \\le x < 5");
    ok("(1, 2)", "(1, 2)");
    ok("(3, -1)", "\\left( 3, -1 \\right)");
    ok("1 \\pm \\sqrt{2}", "x = 1 + \\sqrt{2} 或 x = 1 - \\sqrt{2}");
    ok("x+y=1", "y = 1 - x");
    ok("x=3, y=4", "y=4, x=3");
    bad("x=3, y=4", "x=4, y=3");
    ok("\\{1, 2, 3\\}", "\\{3, 1, 2\\}");
    ok("Yes", "yes");
    ok("B", "\\boxed{B}");
    bad("B", "\\boxed{C}");
}

#[test]
fn extraction_styles() {
    for a in [
        "#### 18",
        "The answer is 18.",
        "The answer is $18.",
        "Final answer: 18",
        "答案：18",
        "答案是 18 元。",
        "So she makes 9 * 2 = 18 dollars every day.",
        "Janet makes $18 every day at the farmers' market.",
        "**18**",
        "18",
        "\\[\\boxed{18}\\]",
        "She has 16 - 3 - 4 = 9 eggs left, which sell for $2 each, so the answer is $18.",
    ] {
        ok("18", a);
    }
    ok("1234", "The total is $1,234.");
    bad("18", "The answer is 16.");
    bad("18", "#### 81");
}

#[test]
fn messages_and_canonical_form() {
    let g = MathGrader::new("\\frac{1}{2}", true).unwrap();
    let r = g.grade_answer("thus \\boxed{\\dfrac{2}{4}}");
    assert_eq!(r.extracted.as_deref(), Some("1/2"));
    assert_eq!(r.found, "\"\\\\dfrac{2}{4}\" from \\boxed{} = 1/2");
    let r = g.grade_answer("the answer is 0.3");
    assert!(!r.pass);
    assert!(r.found.contains("≢ 1/2"), "{}", r.found);
    assert_eq!(r.expected, "\\frac{1}{2} (= 1/2)");
    assert!(MathGrader::new("", true).is_err());
    let e = MathGrader::from_params(
        serde_json::json!({"value": "1", "decimal": true})
            .as_object()
            .unwrap(),
    )
    .err()
    .unwrap();
    assert!(e.message.contains("unknown key"), "{}", e.message);
}
