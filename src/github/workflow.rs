//! The workflow's own files and log commands: step outputs (`GITHUB_OUTPUT`), the job summary
//! (`GITHUB_STEP_SUMMARY`) and annotations (`::error ...::`), each escaped as Actions requires.

use std::io::Write;

use anyhow::Context;

/// Most annotations one step shows (GitHub shows 10 errors per step).
pub const MAX_ANNOTATIONS: usize = 10;

/// The job summary's limit is 1 MiB per step.
const SUMMARY_LIMIT: usize = 1024 * 1024 - 1024;

/// Appends `name=value` pairs to `GITHUB_OUTPUT` (a no-op outside Actions). Values use the
/// heredoc form with a random delimiter, so no value can inject another output.
pub fn set_outputs(pairs: &[(&str, &str)]) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("cannot open GITHUB_OUTPUT {}", path.to_string_lossy()))?;
    for (name, value) in pairs {
        let delimiter = format!("ghadelimiter_{:016x}", rand_u64());
        anyhow::ensure!(!value.contains(&delimiter), "output {name} contains its delimiter");
        write!(file, "{name}<<{delimiter}\n{value}\n{delimiter}\n")?;
    }
    Ok(())
}

/// Appends markdown to the job summary (a no-op outside Actions), cut to its 1 MiB limit.
pub fn append_summary(markdown: &str) -> anyhow::Result<bool> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return Ok(false) };
    let mut text = markdown.to_string();
    if text.len() > SUMMARY_LIMIT {
        let mut cut = SUMMARY_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n\n… (cut to the job summary's 1 MiB limit)\n");
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("cannot open GITHUB_STEP_SUMMARY {}", path.to_string_lossy()))?;
    file.write_all(text.as_bytes())?;
    Ok(true)
}

/// `text` for the job log with the runner's command processing paused around it
/// (`::stop-commands::TOKEN` … `::TOKEN::`, the token random), so that nothing in it can act as
/// a workflow command even where an escaping missed it. Outside Actions (`in_actions` false:
/// no `GITHUB_ACTIONS`), `text` as it is.
pub fn log_block(text: &str, in_actions: bool) -> String {
    if !in_actions {
        return text.to_string();
    }
    let token = format!("mcp-perfcheck-{:016x}{:016x}", rand_u64(), rand_u64());
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("::stop-commands::{token}\n{text}{newline}::{token}::\n")
}

/// An `::error title=…::message` (or warning) command line.
pub fn annotation(level: &str, title: &str, message: &str) -> String {
    // Names in them come from the server: no controls or bidi characters in the UI either.
    let (title, message) = (crate::report::inert::line(title), crate::report::inert::line(message));
    format!("::{level} title={}::{}", escape_property(&title), escape_data(&message))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A random value for delimiters (not security-critical beyond being unguessable in advance).
pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_block_pauses_commands_with_a_fresh_token() {
        assert_eq!(log_block("::error::x\n", false), "::error::x\n");
        let (a, b) = (log_block("::error::x\n", true), log_block("y", true));
        let token = a.lines().next().unwrap().strip_prefix("::stop-commands::").unwrap().to_string();
        assert!(token.len() > 20 && a.ends_with(&format!("::error::x\n::{token}::\n")), "{a}");
        assert!(!b.contains(&token), "each block its own token");
        assert!(b.ends_with("y\n") || b.contains("y\n::"), "{b}");
    }

    #[test]
    fn annotation_text_cannot_start_another_command() {
        assert_eq!(
            annotation("error", "p99: +30%, echo", "line one\n::set-output name=x::y 100%"),
            "::error title=p99%3A +30%25%2C echo::line one ::set-output name=x::y 100%25"
        );
    }
}
