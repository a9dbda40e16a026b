#![allow(dead_code)]
//! Seeded test data without extra dependencies.

/// SplitMix64: small, seeded, platform-independent.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Approximately standard normal (sum of 12 uniforms minus 6).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

use sketchcore_core::SketchSums;

/// max over j of |a - b| / (weight of the data): the error per unit weight.
pub fn rel_err(a: &SketchSums, b: &SketchSums) -> f64 {
    let scale = b.weight.max(1e-300);
    let num: f64 = a.cos.iter().zip(&b.cos).chain(a.sin.iter().zip(&b.sin)).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.cos.iter().chain(&b.sin).map(|y| y * y).sum::<f64>().max(scale * scale * 1e-12).max(1e-300);
    (num / den).sqrt()
}

