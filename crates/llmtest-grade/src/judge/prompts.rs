//! The default judge prompts. Placeholders are `{name}` (not `{{ name }}`: assertion
//! parameters are rendered with the case's variables when the suite loads, and the judge's
//! placeholders must survive that). Unknown `{…}` text (JSON in the prompt) is left alone.

/// The system message of every default judge prompt.
pub const SYSTEM: &str = "You are a careful, impartial grader. You follow the instructions exactly and reply with one JSON object and nothing else.";

/// `rubric`: `{question}`, `{answer}`, `{rubric}`, `{scale}`, `{format}`.
pub const RUBRIC: &str = "Grade the answer to the question below against the rubric.

[Question]
{question}

[Answer]
{answer}

[Rubric]
{rubric}

Score the answer on {scale}. Give a short reason first, then the score. Reply with JSON only: {format}";

/// `closed-qa`: `{question}`, `{answer}`, `{criterion}`, `{format}`.
pub const CLOSED_QA: &str = "You are checking whether a submitted answer to a task meets a criterion.

[Task]
{question}

[Submission]
{answer}

[Criterion]
{criterion}

Does the submission meet the criterion? Give a short reason first, then Y (it does) or N (it does not). Reply with JSON only: {format}";

/// `factuality`: `{question}`, `{answer}`, `{reference}`, `{format}`.
pub const FACTUALITY: &str = "You are comparing the facts in a submitted answer with those in an expert's answer to the same question. Differences of style, wording, grammar or punctuation do not count.

[Question]
{question}

[Expert answer]
{reference}

[Submitted answer]
{answer}

Pick the one option that describes the submitted answer:
(A) it states only part of what the expert answer states, and nothing that contradicts it;
(B) it states everything the expert answer states and more, and nothing that contradicts it;
(C) it states the same facts as the expert answer;
(D) it contradicts the expert answer;
(E) it differs from the expert answer, but not in any fact that matters.
Give a short reason first, then the letter. Reply with JSON only: {format}";

/// `pairwise`: `{question}`, `{answer_a}`, `{answer_b}`, `{criterion}`, `{format}`.
pub const PAIRWISE: &str = "Two assistants answered the same question. Decide which answer is better with respect to: {criterion}.

[Question]
{question}

[Answer A]
{answer_a}

[Answer B]
{answer_b}

The order of the answers and their length must not influence you. If neither is better, say tie. Give a short reason first, then the winner. Reply with JSON only: {format}";

/// Replaces each `{name}` of `vars` in `template`; other braces stay as written.
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let hit = after.find('}').and_then(|j| {
            let name = &after[..j];
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (j, *v))
        });
        match hit {
            Some((j, v)) => {
                out.push_str(v);
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_names_only() {
        let t = "Q: {question} A: {answer} JSON: {\"score\": 1} {unknown} {answer}";
        assert_eq!(
            fill(t, &[("question", "1+1? {answer}"), ("answer", "2")]),
            "Q: 1+1? {answer} A: 2 JSON: {\"score\": 1} {unknown} 2"
        );
    }
}
