//! The seeded randomness of jitter (breaker open times, retry delays): reproducible, so that a
//! test or a replay sees the same waits.

/// A step of splitmix64: a well-mixed `u64` from a counter.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform value in [0, 1) from a counter.
pub(crate) fn unit(counter: u64) -> f64 {
    (splitmix(counter) >> 11) as f64 / (1u64 << 53) as f64
}

/// A seed of this instance's own: the process, the time and a counter, mixed, so that breakers
/// and retries in a fleet (or in one process) do not draw the same jitter in step.
pub(crate) fn instance_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    splitmix(nanos ^ (u64::from(std::process::id()) << 32) ^ splitmix(n))
}
