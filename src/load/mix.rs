//! The operation mix: weighted requests compiled into ready-to-send parameters and a
//! deterministic pick schedule. Entries without argument templates are serialized once;
//! templated ones build their parameters per call.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::config::{Method, MixEntry, sequence_bounds};

/// One entry of the mix, ready for the hot loop.
#[derive(Debug)]
pub struct CompiledEntry {
    /// Index into `CompiledMix::operations`, for recording.
    pub op: usize,
    pub method: Method,
    /// What the request names: the tool, the prompt or the resource URI.
    pub name: Option<String>,
    params: Params,
    /// A shard's place in the run's sequences: its `k`-th value of a counter is the
    /// sequence's `k × count + position`-th, so shards never repeat each other's values.
    stride: Stride,
}

#[derive(Debug, Clone, Copy)]
struct Stride {
    count: u64,
    position: u64,
}

impl Stride {
    const WHOLE: Stride = Stride { count: 1, position: 0 };

    fn of(self, k: u64) -> u64 {
        k * self.count + self.position
    }
}

#[derive(Debug)]
enum Params {
    Fixed(String),
    /// `base` with `templates` filled into `base.arguments` per call.
    Templated {
        base: Value,
        templates: Vec<(String, Template)>,
        calls: AtomicU64,
    },
    /// One ready-made params string per line of an arguments file, used in turn.
    Lines {
        lines: Vec<String>,
        calls: AtomicU64,
    },
}

#[derive(Debug)]
enum Template {
    Random(Vec<Value>),
    Sequence { start: i64, step: i64 },
}

impl CompiledEntry {
    /// The request's params JSON for the next call of this entry. `n` is the mix-wide call
    /// number, which seeds `$random` so that a run is reproducible.
    pub fn params(&self, n: u64) -> Cow<'_, str> {
        let stride = self.stride;
        match &self.params {
            Params::Fixed(s) => Cow::Borrowed(s),
            Params::Lines { lines, calls } => {
                let k = stride.of(calls.fetch_add(1, Ordering::Relaxed));
                Cow::Borrowed(&lines[(k % lines.len() as u64) as usize])
            }
            Params::Templated { base, templates, calls } => {
                let (n, k) = (stride.of(n), stride.of(calls.fetch_add(1, Ordering::Relaxed)));
                let mut params = base.clone();
                let args = params["arguments"].as_object_mut().expect("templated params have arguments");
                for (i, (key, t)) in templates.iter().enumerate() {
                    let value = match t {
                        Template::Random(values) => {
                            values[(splitmix64(n ^ ((i as u64) << 48)) % values.len() as u64) as usize].clone()
                        }
                        Template::Sequence { start, step } => json!(start + step * k as i64),
                    };
                    args.insert(key.clone(), value);
                }
                Cow::Owned(params.to_string())
            }
        }
    }
}

/// A scenario's mix, ready for the hot loop.
#[derive(Debug)]
pub struct CompiledMix {
    /// Distinct operation names (`tools/call:<tool>`, `ping`, …), indexing the recorders.
    pub operations: Vec<String>,
    pub entries: Vec<CompiledEntry>,
    /// Entry indices in smooth weighted round-robin order; call `n` uses `schedule[n % len]`.
    schedule: Vec<usize>,
}

impl CompiledMix {
    /// Compiles a validated mix.
    pub fn new(mix: &[MixEntry]) -> CompiledMix {
        let mut operations: Vec<String> = Vec::new();
        let entries = mix
            .iter()
            .map(|m| {
                let name = m.operation();
                let op = operations.iter().position(|o| *o == name).unwrap_or_else(|| {
                    operations.push(name);
                    operations.len() - 1
                });
                let name = m.tool.clone().or_else(|| m.prompt.clone()).or_else(|| m.uri.clone());
                CompiledEntry { op, method: m.method(), name, params: compile_params(m), stride: Stride::WHOLE }
            })
            .collect();
        let weights: Vec<u64> = mix.iter().map(|m| u64::from(m.weight)).collect();
        CompiledMix { operations, entries, schedule: smooth_weighted_schedule(&weights) }
    }

    /// The mix a shard sends: the same entries in the same proportions (each shard's calls
    /// follow the whole schedule, so a shard with a server of its own sees the whole mix),
    /// with `$random`, `$sequence` and arguments-file lines taken from the shard's own part of
    /// their sequences, so that shards do not send the same values.
    pub fn sharded(mut self, shard: Option<crate::config::Shard>) -> CompiledMix {
        if let Some(s) = shard {
            let stride = Stride { count: u64::from(s.count), position: s.position() };
            self.entries.iter_mut().for_each(|e| e.stride = stride);
        }
        self
    }

    /// The entry for the `n`-th call. Deterministic, exact in proportion over every cycle,
    /// and interleaved (3:1 gives a a b a, not a a a b).
    pub fn pick(&self, n: u64) -> usize {
        self.schedule[(n % self.schedule.len() as u64) as usize]
    }
}

fn compile_params(m: &MixEntry) -> Params {
    if !m.argument_lines.is_empty() {
        let name = m.tool.as_ref().or(m.prompt.as_ref());
        let lines = m.argument_lines.iter().map(|args| json!({"name": name, "arguments": args}).to_string()).collect();
        return Params::Lines { lines, calls: AtomicU64::new(0) };
    }
    let mut fixed = Map::new();
    let mut templates = Vec::new();
    for (key, value) in &m.arguments {
        let template = value.as_object().and_then(|o| {
            if let Some(Value::Array(values)) = o.get("$random") {
                Some(Template::Random(values.clone()))
            } else {
                let (start, step) = sequence_bounds(o.get("$sequence")?)?;
                Some(Template::Sequence { start, step })
            }
        });
        match template {
            Some(t) => templates.push((key.clone(), t)),
            None => {
                fixed.insert(key.clone(), value.clone());
            }
        }
    }
    let base = match m.method() {
        Method::ToolsCall => json!({"name": m.tool, "arguments": fixed}),
        Method::PromptsGet => json!({"name": m.prompt, "arguments": fixed}),
        Method::ResourcesRead => json!({"uri": m.uri}),
        Method::ToolsList | Method::Ping => json!({}),
    };
    if templates.is_empty() {
        Params::Fixed(base.to_string())
    } else {
        Params::Templated { base, templates, calls: AtomicU64::new(0) }
    }
}

/// SplitMix64's mixing of `z` (its `z + 1`-th output for a counter): reproducible picks.
pub(super) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    use crate::config::Config;

    fn mix_of(entries: &str) -> CompiledMix {
        let yaml = format!(
            "server: {{command: [x]}}\nworkload: {{scenarios: [{{name: s, duration: 1s, mix: [{entries}]}}]}}\n"
        );
        CompiledMix::new(&Config::from_yaml(&yaml, "t.yaml").unwrap().workload.scenarios[0].mix)
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
        let mix = mix_of("{tool: echo, arguments: {message: x}}, {tool: echo}, {tool: compute, weight: 2}");
        assert_eq!(mix.operations, vec!["tools/call:echo", "tools/call:compute"]);
        assert_eq!(mix.entries[0].params(0), r#"{"arguments":{"message":"x"},"name":"echo"}"#);
        assert_eq!((mix.entries[1].op, mix.entries[2].op), (0, 1));
    }

    #[test]
    fn every_method_gets_its_params() {
        let mix = mix_of(
            "{method: ping}, {method: tools/list}, {method: resources/read, uri: \"file:///a\"}, {method: prompts/get, prompt: greet, arguments: {who: x}}",
        );
        let params: Vec<String> = mix.entries.iter().map(|e| e.params(0).into_owned()).collect();
        assert_eq!(params, ["{}", "{}", r#"{"uri":"file:///a"}"#, r#"{"arguments":{"who":"x"},"name":"greet"}"#]);
        assert_eq!(mix.entries[2].method, Method::ResourcesRead);
    }

    #[test]
    fn argument_lines_are_used_in_turn() {
        let mut entry = MixEntry::tool("lookup", 1);
        entry.argument_lines =
            vec![serde_json::from_str(r#"{"id": 1}"#).unwrap(), serde_json::from_str(r#"{"id": 2}"#).unwrap()];
        let mix = CompiledMix::new(&[entry]);
        let ids: Vec<String> = (0..3).map(|n| mix.entries[0].params(n).into_owned()).collect();
        assert_eq!(ids[0], r#"{"arguments":{"id":1},"name":"lookup"}"#);
        assert_eq!(ids[1], r#"{"arguments":{"id":2},"name":"lookup"}"#);
        assert_eq!(ids[2], ids[0]);
    }

    #[test]
    fn templates_fill_arguments_per_call() {
        let mix = mix_of(
            "{tool: lookup, arguments: {id: {$random: [a, b, c]}, n: {$sequence: {start: 10, step: 5}}, fixed: 1}}",
        );
        let e = &mix.entries[0];
        let calls: Vec<Value> = (0..300).map(|n| serde_json::from_str(&e.params(n)).unwrap()).collect();
        let seq: Vec<i64> = calls.iter().take(3).map(|c| c["arguments"]["n"].as_i64().unwrap()).collect();
        assert_eq!(seq, [10, 15, 20]);
        assert!(calls.iter().all(|c| c["arguments"]["fixed"] == 1 && c["name"] == "lookup"));
        for id in ["a", "b", "c"] {
            let k = calls.iter().filter(|c| c["arguments"]["id"] == id).count();
            assert!((60..=140).contains(&k), "{id} drawn {k} of 300 times");
        }
        // Reproducible: the same call number draws the same value.
        let again = mix_of("{tool: lookup, arguments: {id: {$random: [a, b, c]}}}");
        let first = mix_of("{tool: lookup, arguments: {id: {$random: [a, b, c]}}}");
        assert_eq!(again.entries[0].params(7), first.entries[0].params(7));
    }

    #[test]
    fn shards_take_disjoint_parts_of_each_sequence_and_the_whole_mix() {
        let entries = "{tool: lookup, arguments: {n: {$sequence: {start: 100, step: 1}}}}, {tool: echo, weight: 2}";
        let mut seen = Vec::new();
        for k in 1..=3 {
            let mix = mix_of(entries).sharded(Some(crate::config::Shard::new(k, 3).unwrap()));
            assert_eq!(
                (0..6).map(|n| mix.pick(n)).collect::<Vec<_>>(),
                (0..6).map(|n| mix_of(entries).pick(n)).collect::<Vec<_>>()
            );
            for n in 0..4 {
                let call: Value = serde_json::from_str(&mix.entries[0].params(n)).unwrap();
                seen.push(call["arguments"]["n"].as_i64().unwrap());
            }
        }
        seen.sort();
        assert_eq!(seen, (100..112).collect::<Vec<_>>(), "three shards of four calls: the first twelve values");
    }
}
