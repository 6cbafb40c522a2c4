use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration file: where (path + line), what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Dotted path of the field, e.g. `cameras[0].zones[1].polygon`.
    pub field: String,
    /// 1-based line in the file, when the field (or its nearest parent) could be located.
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found in one file, reported together.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {} problem{} found",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            match p.line {
                Some(line) => write!(f, "  {}:{}: ", self.file.display(), line)?,
                None => write!(f, "  {}: ", self.file.display())?,
            }
            write!(f, "{}: {}", p.field, p.message)?;
            if let Some(h) = &p.hint {
                write!(f, "\n      fix: {h}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Collects problems while validating; knows nothing about lines (added at the end).
#[derive(Default)]
pub(crate) struct Collector {
    pub problems: Vec<Problem>,
}

impl Collector {
    pub fn push(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.problems.push(Problem {
            field: field.into(),
            line: None,
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment), for "did you
/// mean" hints on unknown keys: `fsp` is one edit from `fps`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("fps", "fps"), 0);
        assert_eq!(edit_distance("fsp", "fps"), 1);
        assert_eq!(edit_distance("widht", "width"), 1);
        assert_eq!(closest("fsp", ["rtsp", "fps"]), Some("fps"));
        assert_eq!(closest("widht", ["id", "width", "height"]), Some("width"));
        assert_eq!(closest("zzzzzz", ["id", "width"]), None);
    }
}
