//! Making text that a server under test or a fork chose inert, one rule per format. Every
//! exporter's output passes through [`Inert`], so a string that escaped its format's cell
//! escaping is still caught:
//!
//! - **everywhere**: ANSI escape sequences, C0 and C1 controls (but newline and tab) and the
//!   bidirectional controls that reorder what a reviewer sees (U+202A–U+202E, U+2066–U+2069,
//!   U+200E, U+200F, U+061C) are removed;
//! - **text, markdown, HTML, JUnit**: a line that would start a workflow command (`::` after
//!   leading blanks) and the legacy prefix `##[` (acted on anywhere in a line) are broken with a
//!   zero-width space, so a log shows them and the runner ignores them;
//! - **JSON**: the same characters are written as `\u` escapes instead, so the data survives
//!   and no terminal, log or diff viewer acts on it.
//!
//! Within a line, [`line`] is what a single-line cell gets (newlines become spaces).

use super::{Exporter, Format, Report};
use crate::results::Results;

/// Bidirectional formatting characters: they make text display in another order than it reads.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Controls no report needs: C0 but newline and tab, DEL, C1.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi(c)
}

/// `text` without ANSI escape sequences, controls or bidi characters (newlines and tabs kept).
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1's CSI and OSC introducers, the single-character forms of ESC [ and ESC ].
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' => skip_osc(&mut chars),
            c if is_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After ESC: a CSI (`[` … final byte), an OSC (`]` … BEL or ESC \), or one more character.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_osc(chars),
        _ => {}
    }
}

fn skip_csi(chars: &mut Chars<'_>) {
    // Parameter and intermediate bytes, then one final byte in @..~.
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
        if !(' '..='?').contains(&c) {
            return;
        }
    }
}

fn skip_osc(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// One line of untrusted text: stripped, with newlines and tabs as spaces.
pub fn line(text: &str) -> String {
    strip(text).replace(['\n', '\t'], " ")
}

/// A whole text or markdown document: stripped, and no line can start a workflow command.
pub fn document(text: &str) -> String {
    let stripped = strip(text);
    let mut out = String::with_capacity(stripped.len());
    for (i, l) in stripped.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let l = l.replace("##[", "#\u{200B}#[");
        let rest = l.trim_start();
        let indent = &l[..l.len() - rest.len()];
        match rest.strip_prefix("::") {
            Some(after) => {
                out.push_str(indent);
                out.push_str(":\u{200B}:");
                out.push_str(after);
            }
            None => out.push_str(&l),
        }
    }
    out
}

/// A JSON document with every control and bidi character written as a `\u` escape (JSON
/// strings already escape C0; C1 and bidi characters pass through serializers as they are),
/// and the legacy command prefix `##[` as `#\u0023[`: the same data, nothing a log acts on.
/// (No JSON line can start with `::`: each starts with a bracket or a quote.)
pub fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_control(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.replace("##[", "#\\u0023[")
}

/// An exporter whose output is made inert for its format.
pub struct Inert {
    pub format: Format,
    pub inner: Box<dyn Exporter>,
}

impl Inert {
    fn finish(&self, text: String) -> String {
        match self.format {
            // HTML and JUnit files get printed to logs too (`cat`, a failing test's output).
            Format::Text | Format::Markdown | Format::Html | Format::Junit => document(&text),
            Format::Json => json(&text),
        }
    }
}

impl Exporter for Inert {
    fn run(&self, results: &Results) -> anyhow::Result<String> {
        self.inner.run(results).map(|t| self.finish(t))
    }
    fn comparison(&self, report: &Report<'_>) -> anyhow::Result<String> {
        self.inner.comparison(report).map(|t| self.finish(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_are_removed() {
        assert_eq!(strip("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(strip("\u{1b}]8;;https://evil\u{7}link\u{1b}]8;;\u{1b}\\"), "link");
        assert_eq!(strip("x\u{202e}gpj.exe\u{2066}y"), "xgpj.exey");
        assert_eq!(strip("bell\u{7} nul\u{0} c1\u{85}\u{9b}2J done\ttab\nline"), "bell nul c1 done\ttab\nline");
    }

    #[test]
    fn no_line_can_start_a_workflow_command() {
        let d = document("ok\n::error::pwned\n   ::stop-commands::x\n##[error]old style");
        assert!(d.lines().all(|l| !l.trim_start().starts_with("::") && !l.contains("##[")), "{d}");
        assert_eq!(d.lines().nth(1), Some(":\u{200B}:error::pwned"));
        assert_eq!(line("a\n::b\tc"), "a ::b c");
    }

    #[test]
    fn json_keeps_the_data_as_escapes() {
        let text = serde_json::to_string(&"a\u{202e}b\u{85}##[x").unwrap();
        let inert = json(&text);
        assert_eq!(inert, "\"a\\u202eb\\u0085#\\u0023[x\"");
        assert_eq!(serde_json::from_str::<String>(&inert).unwrap(), "a\u{202e}b\u{85}##[x");
    }
}
