//! Seeded random inputs: one run seed, printed and accepted back with `--seed`, and a stream
//! per case derived from it and the case's name, so `--ops` selects cases without changing the
//! inputs of the others.

/// A random source for one case.
pub struct CaseRng(fastrand::Rng);

impl CaseRng {
    /// The stream of case `name` under run seed `seed` (FNV-1a of the name, mixed with it).
    pub fn new(seed: u64, name: &str) -> CaseRng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        CaseRng(fastrand::Rng::with_seed(seed ^ h))
    }

    /// Uniform in [-scale, scale).
    pub fn uniform(&mut self, scale: f64) -> f64 {
        (self.0.f64() * 2.0 - 1.0) * scale
    }

    /// `len` values uniform in [-scale, scale).
    pub fn vec(&mut self, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| self.uniform(scale)).collect()
    }
}

/// A seed from the clock, for runs that give none.
pub fn fresh_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Low bits of the nanoseconds, kept below 2^53 so JSON readers keep every digit.
    (now.as_nanos() as u64) & ((1 << 53) - 1)
}
