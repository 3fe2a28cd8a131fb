//! Located diagnostics: every problem in suites and config, with file:line:col, a source
//! line with a caret, and a hint. All of them are collected and shown together.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a source file (1-based line and column; 0 when unknown).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Loc {
    /// Path relative to the project root (as given when the file was read).
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn new(file: impl Into<PathBuf>, line: u32, col: u32) -> Self {
        Loc {
            file: file.into(),
            line,
            col,
        }
    }

    pub(crate) fn from_saphyr(file: &Path, loc: &serde_saphyr::Location) -> Self {
        Loc {
            file: file.to_path_buf(),
            line: loc.line() as u32,
            col: loc.column() as u32,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

/// One problem found while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub loc: Loc,
    /// Lowercase fragment: what is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// The offending source line, when known.
    pub(crate) source_line: Option<String>,
}

impl Diagnostic {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            loc,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_source(mut self, src: &str) -> Self {
        if self.loc.line > 0 {
            self.source_line = src
                .lines()
                .nth(self.loc.line as usize - 1)
                .map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.loc)?;
        if let Some(line) = &self.source_line {
            let num = self.loc.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_at: usize = line
                .chars()
                .take(self.loc.col.saturating_sub(1) as usize)
                .map(display_width)
                .sum();
            write!(
                f,
                "\n{pad} |\n{num} | {line}\n{pad} | {}^",
                " ".repeat(caret_at)
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

/// East Asian wide characters take two terminal columns; keep the caret under the right one.
fn display_width(c: char) -> usize {
    let u = c as u32;
    let wide = (0x1100..=0x115F).contains(&u)
        || (0x2E80..=0xA4CF).contains(&u)
        || (0xAC00..=0xD7A3).contains(&u)
        || (0xF900..=0xFAFF).contains(&u)
        || (0xFE30..=0xFE4F).contains(&u)
        || (0xFF00..=0xFF60).contains(&u)
        || (0xFFE0..=0xFFE6).contains(&u);
    if c == '\t' {
        4
    } else if wide {
        2
    } else {
        1
    }
}

/// Every problem found in a load, in file order.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| a.loc.cmp(&b.loc));
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}\n")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} found; nothing was run",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

/// "did you mean `x`?" for a misspelt name among `known`.
pub fn did_you_mean<'a>(got: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        let score = strsim::jaro_winkler(got, k);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| format!("did you mean `{k}`?"))
}

/// The hint for an unknown name: a close match, else the full list.
pub fn unknown_name_hint<'a>(
    got: &str,
    known: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    did_you_mean(got, known.clone()).unwrap_or_else(|| {
        let list: Vec<_> = known.into_iter().map(|k| format!("`{k}`")).collect();
        format!("expected one of {}", list.join(", "))
    })
}
