//! Number and text formatting shared by every human-readable format.

/// `1234.5` → `1,234.5`; one decimal below 100, none above.
pub fn rate(per_s: f64) -> String {
    // An empty `f64` sum is -0.0: shown as 0.0.
    let per_s = per_s + 0.0;
    if per_s < 100.0 { format!("{per_s:.1}") } else { thousands(per_s.round() as u64) }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds in the unit that reads best: `850µs`, `1.25ms`, `2.50s`.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Bytes in binary units: `14.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A measured value in its base unit, shown in the unit that reads best.
pub fn quantity(value: f64, q: crate::measure::Quantity) -> String {
    use crate::measure::Quantity;
    match q {
        Quantity::Duration => micros(value),
        Quantity::Ratio => format!("{:.2}%", value * 100.0),
        Quantity::Bytes => bytes(value.max(0.0) as u64),
        Quantity::BytesPerSecond if value < 0.0 => format!("-{}/s", bytes(-value as u64)),
        Quantity::BytesPerSecond => format!("{}/s", bytes(value as u64)),
        Quantity::PerSecond => format!("{}/s", rate(value)),
        Quantity::Count => format!("{value:.0}"),
    }
}

/// An absolute change of a rate: `0.02` → `+2.00 pp` (percentage points).
pub fn points(change: f64) -> String {
    format!("{:+.2} pp", change * 100.0)
}

/// `0.072` → `+7.2%`.
pub fn percent(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

/// Where the forest plot's axis ends, in minimum effects either side of zero: an interval
/// beyond it is cut there.
pub const FOREST_REACH: f64 = 150.0;

/// A change in minimum effects as a position from 0 (the axis's left end) to 1: linear near
/// zero, logarithmic far from it (`sign(v) ln(1 + |v|)`), so that the band of ±1 stays wide
/// and a change of fifty minimum effects still fits. The HTML forest plot and the comment's
/// bars share it.
pub fn forest_position(v: f64) -> f64 {
    let scale = |v: f64| v.signum() * v.abs().min(FOREST_REACH).ln_1p();
    (scale(v) + scale(FOREST_REACH)) / (2.0 * scale(FOREST_REACH))
}

/// The forest plot in one line of text for a comment: `low`..`high` (the interval) and
/// `change`, in minimum effects, on 15 cells: `░` the ± minimum-effect band, `━` the
/// interval, `●` the change, `·` the rest of the axis.
pub fn forest_bar(low: f64, high: f64, change: f64) -> String {
    const CELLS: usize = 15;
    let cell = |v: f64| ((forest_position(v) * CELLS as f64) as usize).min(CELLS - 1);
    let (band, interval, dot) = ((cell(-1.0), cell(1.0)), (cell(low), cell(high)), cell(change));
    (0..CELLS)
        .map(|i| match i {
            _ if i == dot => '●',
            _ if i >= interval.0 && i <= interval.1 => '━',
            _ if i >= band.0 && i <= band.1 => '░',
            _ => '·',
        })
        .collect()
}

/// Values as a line of eight-level blocks (`▁▂▃▄▅▆▇█`), lowest to highest over their own range;
/// a flat line when they do not vary. Values that are not finite are gaps (` `).
pub fn sparkline(values: &[f64]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    values
        .iter()
        .map(|v| match v {
            v if !v.is_finite() => ' ',
            _ if hi <= lo => LEVELS[3],
            v => LEVELS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
        })
        .collect()
}

pub fn p_value(p: f64) -> String {
    if p < 0.001 { "<0.001".to_string() } else { format!("{p:.3}") }
}

/// GitHub's markdown turns `scheme://…` and `www.…` into links: a zero-width space after the
/// scheme's colon or the `www` keeps them text.
pub fn unlinked(text: &str) -> String {
    text.replace("://", ":\u{200B}//").replace("www.", "www\u{200B}.")
}

/// Escapes text for a markdown table cell or line: no markup, HTML, math, links, autolinks
/// or @-mentions can come through from names that a server or a config chose (and no
/// controls: see [`super::inert`]).
pub fn markdown(text: &str) -> String {
    let text = unlinked(&super::inert::line(text));
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '>' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            // A zero-width joiner after @ stops GitHub from turning it into a mention.
            '@' => out.push_str("@\u{200D}"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(rate(12345.6), "12,346");
        assert_eq!(rate(42.25), "42.2");
        assert_eq!(micros(850.0), "850µs");
        assert_eq!(micros(1250.0), "1.25ms");
        assert_eq!(micros(2_500_000.0), "2.50s");
        assert_eq!(percent(0.072), "+7.2%");
        assert_eq!(percent(-0.5), "-50.0%");
        assert_eq!(p_value(0.0001), "<0.001");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(14_889_779), "14.2 MiB");
        use crate::measure::Quantity;
        assert_eq!(quantity(0.0123, Quantity::Ratio), "1.23%");
        assert_eq!(quantity(-2048.0, Quantity::BytesPerSecond), "-2.0 KiB/s");
        assert_eq!(quantity(1500.0, Quantity::Duration), "1.50ms");
    }

    #[test]
    fn markdown_escaping_defuses_markup() {
        assert_eq!(markdown("a|b"), "a\\|b");
        assert_eq!(markdown("<img src=x>"), "&lt;img src=x\\>");
        assert_eq!(markdown("@octocat"), "@\u{200D}octocat");
        assert_eq!(markdown("[x](http://e)"), "\\[x\\](http:\u{200B}//e)");
        assert_eq!(
            markdown("see https://evil.example or www.evil.example"),
            "see https:\u{200B}//evil.example or www\u{200B}.evil.example"
        );
        assert_eq!(markdown("$x^2$"), "\\$x^2\\$");
        assert_eq!(markdown("a\u{202e}b\u{1b}[1mc"), "abc");
    }
}

#[cfg(test)]
mod forest_tests {
    use super::forest_bar;

    #[test]
    fn the_bar_places_band_interval_and_change_on_one_axis() {
        // Unchanged: a narrow interval around zero, over the band (cells 6 to 8).
        assert_eq!(forest_bar(-0.4, 0.4, 0.0), "······━●━······");
        // Undecided: the interval reaches from inside the band far to the worse side.
        assert_eq!(forest_bar(-0.5, 9.0, 2.0), "······━━━●━····");
        // Forty minimum effects faster: far to the left, clear of the band.
        assert_eq!(forest_bar(-50.0, -30.0, -40.0), "·●━···░░░······");
        // +225% [+213%, +239%] against 5%: a regression far to the right.
        assert_eq!(forest_bar(42.5, 47.7, 45.1), "······░░░····●·");
    }
}
