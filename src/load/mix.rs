//! The operation mix: weighted tool calls compiled into ready-to-send request parameters and a
//! deterministic pick schedule.

use crate::config::MixEntry;

/// A scenario's mix, ready for the hot loop: no formatting or allocation per call.
#[derive(Debug, Clone)]
pub struct CompiledMix {
    /// Distinct operation names (`tools/call:<tool>`), indexing the recorders.
    pub operations: Vec<String>,
    /// Per mix entry: its operation index and its `tools/call` params JSON.
    pub entries: Vec<(usize, String)>,
    /// Entry indices in smooth weighted round-robin order; call `n` uses `schedule[n % len]`.
    schedule: Vec<usize>,
}

impl CompiledMix {
    pub fn new(mix: &[MixEntry]) -> CompiledMix {
        let mut operations: Vec<String> = Vec::new();
        let entries = mix
            .iter()
            .map(|m| {
                let name = format!("tools/call:{}", m.tool);
                let op = operations.iter().position(|o| *o == name).unwrap_or_else(|| {
                    operations.push(name);
                    operations.len() - 1
                });
                let params = serde_json::json!({"name": m.tool, "arguments": m.arguments});
                (op, params.to_string())
            })
            .collect();
        let weights: Vec<u64> = mix.iter().map(|m| u64::from(m.weight)).collect();
        CompiledMix { operations, entries, schedule: smooth_weighted_schedule(&weights) }
    }

    /// The entry for the `n`-th call. Deterministic, exact in proportion over every cycle,
    /// and interleaved (3:1 gives a a b a, not a a a b).
    pub fn pick(&self, n: u64) -> usize {
        self.schedule[(n % self.schedule.len() as u64) as usize]
    }
}

/// nginx's smooth weighted round-robin over weights reduced by their gcd.
fn smooth_weighted_schedule(weights: &[u64]) -> Vec<usize> {
    let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
    let weights: Vec<i64> = weights.iter().map(|w| (w / g.max(1)) as i64).collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..weights.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).expect("non-empty mix");
            current[best] -= total;
            best
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tool: &str, weight: u32) -> MixEntry {
        MixEntry { tool: tool.into(), arguments: Default::default(), weight }
    }

    #[test]
    fn schedule_is_proportional_and_interleaved() {
        assert_eq!(smooth_weighted_schedule(&[3, 1]), vec![0, 0, 1, 0]);
        assert_eq!(smooth_weighted_schedule(&[6, 2]), vec![0, 0, 1, 0]);
        let s = smooth_weighted_schedule(&[5, 0, 2]);
        assert_eq!(s.len(), 7);
        assert_eq!(s.iter().filter(|&&i| i == 2).count(), 2);
        assert!(!s.contains(&1));
    }

    #[test]
    fn same_tool_with_other_arguments_is_one_operation() {
        let mut a = entry("echo", 1);
        a.arguments.insert("message".into(), "x".into());
        let mix = CompiledMix::new(&[a, entry("echo", 1), entry("compute", 2)]);
        assert_eq!(mix.operations, vec!["tools/call:echo", "tools/call:compute"]);
        assert_eq!(mix.entries[0].1, r#"{"arguments":{"message":"x"},"name":"echo"}"#);
        assert_eq!(mix.entries[1].0, 0);
        assert_eq!(mix.entries[2].0, 1);
    }
}
