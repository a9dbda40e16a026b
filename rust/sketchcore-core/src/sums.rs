//! The mergeable sufficient statistics of a sketch.

/// Float64 sums defining a sketch: `cos[j] = sum_i w_i cos(omega_j . x_i + xi_j)`,
/// `sin[j]` likewise, the total weight, the sample count and the data box
/// (per-coordinate minimum and maximum; +inf / -inf when empty).
#[derive(Clone, Debug, PartialEq)]
pub struct SketchSums {
    pub cos: Vec<f64>,
    pub sin: Vec<f64>,
    pub weight: f64,
    pub count: u64,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl SketchSums {
    /// The sums of no data: the identity of [`SketchSums::merge`].
    pub fn empty(dim: usize, sketch_size: usize) -> Self {
        SketchSums {
            cos: vec![0.0; sketch_size],
            sin: vec![0.0; sketch_size],
            weight: 0.0,
            count: 0,
            lower: vec![f64::INFINITY; dim],
            upper: vec![f64::NEG_INFINITY; dim],
        }
    }

    /// Adds the sums of a disjoint part of the data.
    ///
    /// # Panics
    /// If the shapes differ (callers compare operator fingerprints first).
    pub fn merge(&mut self, other: &SketchSums) {
        assert_eq!(self.cos.len(), other.cos.len(), "sketch sizes differ");
        assert_eq!(self.lower.len(), other.lower.len(), "dimensions differ");
        self.add_partial(other);
    }

    /// `merge` without the shape checks (crate-internal hot path).
    pub(crate) fn add_partial(&mut self, other: &SketchSums) {
        for (a, b) in self.cos.iter_mut().zip(&other.cos) {
            *a += b;
        }
        for (a, b) in self.sin.iter_mut().zip(&other.sin) {
            *a += b;
        }
        self.weight += other.weight;
        self.count += other.count;
        for (a, b) in self.lower.iter_mut().zip(&other.lower) {
            *a = a.min(*b);
        }
        for (a, b) in self.upper.iter_mut().zip(&other.upper) {
            *a = a.max(*b);
        }
    }
}
