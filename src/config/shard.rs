//! Splitting one workload over several load generators (`run --shard K/N`, k6's execution
//! segments) and starting their measured windows together (`--start-at`).
//!
//! A shard is not a config of its own: every shard reads the same config, and this says which
//! share of it one process drives. Shares are exact: the shards' calls, users and iterations
//! add up to what the config plans, never to more or fewer (see [`Shard::share`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The most shards a run may be split into: far beyond any machine count we have seen, low
/// enough that a typo (`1/10000`) is caught.
pub const MAX_SHARDS: u32 = 1000;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `K/N`, 1 ≤ K ≤ N ≤ [`MAX_SHARDS`].
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard `{text}`: write K/N, e.g. 2/3 for the second of three shards");
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("a run splits into 1 to {MAX_SHARDS} shards, not {count}"));
        }
        if index == 0 || index > count {
            return Err(format!("shard {index}/{count}: the index runs from 1 to {count}"));
        }
        Ok(Shard { index, count })
    }

    /// A Kubernetes Indexed Job's pod: `JOB_COMPLETION_INDEX` counts from 0.
    pub fn from_completion_index(text: &str, count: u32) -> Result<Shard, String> {
        let index: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("JOB_COMPLETION_INDEX is `{text}`, not a number counting from 0"))?;
        Shard::new(index.saturating_add(1), count)
            .map_err(|e| format!("JOB_COMPLETION_INDEX {index} with --shards {count}: {e}"))
    }

    /// The shard's 0-based position: the global numbers of its open-model sends are
    /// `position + m × count`.
    pub fn position(self) -> u64 {
        u64::from(self.index - 1)
    }

    /// This shard's part of `total` indivisible units (users, iterations, in-flight slots): the
    /// first `total mod count` shards take one more, so the parts add up to `total` exactly.
    pub fn share(self, total: u64) -> u64 {
        let n = u64::from(self.count);
        (total + n - 1 - self.position()) / n
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// When the first measured window starts: a moment, or the next multiple of a period of the
/// clock (so that shards started a little apart agree without talking to each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    At(SystemTime),
    /// `next:10s`.
    Next(Duration),
}

impl StartAt {
    /// An RFC 3339 time (`2026-12-06T10:00:00Z`, or with an offset `+01:00`), or `next:PERIOD`.
    pub fn parse(text: &str) -> Result<StartAt, String> {
        let text = text.trim();
        if let Some(period) = text.strip_prefix("next:") {
            let period = humantime::parse_duration(period.trim())
                .map_err(|e| format!("--start-at `{text}`: `{period}` is not a period such as 10s or 1m ({e})"))?;
            if period < Duration::from_secs(1) || period.subsec_nanos() != 0 {
                return Err(format!("--start-at `{text}`: the period is whole seconds, at least 1s"));
            }
            return Ok(StartAt::Next(period));
        }
        parse_rfc3339(text).map(StartAt::At).map_err(|e| {
            format!("--start-at `{text}`: {e}; write an RFC 3339 time such as 2026-12-06T10:00:00Z, or next:10s")
        })
    }

    /// The moment itself; for `next:P`, the first multiple of P since the Unix epoch that is at
    /// least `lead` after `now` (the time the shard needs to be ready: its server started, its
    /// warm-up run).
    pub fn resolve(self, now: SystemTime, lead: Duration) -> SystemTime {
        match self {
            StartAt::At(t) => t,
            StartAt::Next(period) => {
                let earliest = (now + lead).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                let p = period.as_secs();
                let next = (earliest / p as f64).ceil() as u64 * p;
                UNIX_EPOCH + Duration::from_secs(next)
            }
        }
    }
}

/// A common start: the first measured window begins at `at`; each later one (in the run's
/// order of repetitions and scenarios) at the previous one's planned end plus `gap` and its
/// own warm-up, so that every shard computes the same timetable from the same config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonStart {
    pub at: SystemTime,
    /// Between one measured window's end and the next warm-up: time to end one server and
    /// start the next.
    pub gap: Duration,
}

/// RFC 3339 with `Z` or a numeric offset; fractions of a second allowed.
fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    let (local, offset_s) = match text.strip_suffix(['Z', 'z']) {
        Some(local) => (local, 0i64),
        None => {
            let at = text.len().checked_sub(6).filter(|&i| text.is_char_boundary(i)).ok_or("no time zone")?;
            let (local, zone) = text.split_at(at);
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err("no time zone (end it with Z or an offset such as +01:00)".into()),
            };
            // `±HH:MM` in ASCII digits; `get` so that other text is an error, never a panic.
            let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
                let part = zone.get(range).filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
                part.and_then(|p| p.parse().ok()).ok_or_else(|| "a bad time-zone offset".to_string())
            };
            let (hours, minutes) = (digits(1..3)?, digits(4..6)?);
            if zone.as_bytes()[3] != b':' || hours > 23 || minutes > 59 {
                return Err("a bad time-zone offset".into());
            }
            (local, sign * (hours * 3600 + minutes * 60))
        }
    };
    let utc = humantime::parse_rfc3339_weak(local).map_err(|e| e.to_string())?;
    // The local time is `offset` ahead of UTC.
    let shifted = if offset_s >= 0 {
        utc.checked_sub(Duration::from_secs(offset_s as u64))
    } else {
        utc.checked_add(Duration::from_secs(offset_s.unsigned_abs()))
    };
    shifted.ok_or_else(|| "out of range".to_string())
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole_and_differ_by_at_most_one() {
        for count in 1..=7u32 {
            for total in [0u64, 1, 2, 6, 7, 10, 101] {
                let parts: Vec<u64> = (1..=count).map(|k| Shard::new(k, count).unwrap().share(total)).collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {count}: {parts:?}");
                let (min, max) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(max - min <= 1, "{parts:?}");
                assert!(parts.windows(2).all(|w| w[0] >= w[1]), "the first shards take the extra: {parts:?}");
            }
        }
    }

    #[test]
    fn shards_are_read_from_k_over_n_or_a_completion_index() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(Shard::from_completion_index("0", 4), Ok(Shard { index: 1, count: 4 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/1001"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let e = Shard::from_completion_index("4", 4).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX 4 with --shards 4"), "{e}");
    }

    #[test]
    fn a_start_is_a_time_with_its_zone_or_the_next_multiple_of_a_period() {
        let at = |s| match StartAt::parse(s).unwrap() {
            StartAt::At(t) => unix_ms(t),
            other => panic!("{other:?}"),
        };
        assert_eq!(at("2026-12-06T10:00:00Z"), 1_796_551_200_000);
        assert_eq!(at("2026-12-06T11:30:00+01:30"), 1_796_551_200_000);
        assert_eq!(at("2026-12-06T09:00:00.250-01:00"), 1_796_551_200_250);
        let bad = ["2026-12-06T10:00:00", "tomorrow", "next:0s", "next:1500ms", "2026-12-06T10:00:00+1:00"];
        // Multi-byte text where the offset's digits would be: an error, not a panic.
        let foreign = ["2026-12-06T10:00:00+€ab", "2026-12-06T10:00:00+01€a", "2026-12-06T10:00:00+0+:30"];
        for bad in bad.into_iter().chain(foreign) {
            assert!(StartAt::parse(bad).is_err(), "{bad}");
        }
        let next = StartAt::parse("next:10s").unwrap();
        let now = UNIX_EPOCH + Duration::from_millis(1_000_003_500);
        // 3.5 s past a multiple of 10 s: the next one, unless the lead does not fit before it.
        assert_eq!(unix_ms(next.resolve(now, Duration::from_secs(1))), 1_000_010_000);
        assert_eq!(unix_ms(next.resolve(now, Duration::from_secs(8))), 1_000_020_000);
    }
}
