//! The reference server's tools. Each is small and deterministic, so that a change in its cost
//! is a change in the server, not in the data.

use std::hint::black_box;

/// Deterministic CPU work: `iterations` rounds of the SplitMix64 mixer, chained so that no
/// round can be skipped or vectorised away.
pub fn compute(iterations: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..iterations {
        x = splitmix64(x ^ black_box(i));
    }
    x
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_is_deterministic_and_depends_on_the_work() {
        assert_eq!(compute(1000), compute(1000));
        assert_ne!(compute(1000), compute(1001));
        assert_eq!(compute(0), 0x9E37_79B9_7F4A_7C15);
    }
}
