//! Run-time SIMD dispatch and the small vector abstraction the kernels are written in.
//!
//! Kernels are generic over [`Vector`]; each instruction set gets one
//! implementation per element type, and the generic code is monomorphised
//! inside a `#[target_feature]` function (see `dense.rs`), so one binary carries
//! AVX-512, AVX2+FMA and portable code and picks one at run time.
//!
//! All methods are `#[inline(always)]` and `unsafe`: they are only sound when
//! the CPU supports the instruction set of the implementing type, which the
//! dispatcher guarantees by checking [`SimdLevel::is_available`] first.

use std::fmt;

/// Instruction-set level a kernel runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Portable code, one lane at a time (any CPU; what aarch64 uses today).
    Scalar,
    /// x86-64 AVX2 with FMA: 8 f32 / 4 f64 lanes.
    Avx2,
    /// x86-64 AVX-512F: 16 f32 / 8 f64 lanes.
    Avx512,
}

impl SimdLevel {
    /// All levels, weakest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

    /// Stable lower-case name (`"scalar"`, `"avx2"`, `"avx512"`).
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Parses a name produced by [`SimdLevel::name`].
    pub fn from_name(name: &str) -> Option<SimdLevel> {
        SimdLevel::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether this CPU can run kernels of this level.
    pub fn is_available(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best level this CPU supports.
    pub fn detect() -> SimdLevel {
        *SimdLevel::available().last().expect("scalar is always available")
    }

    /// Every level this CPU supports, weakest first.
    pub fn available() -> Vec<SimdLevel> {
        SimdLevel::ALL.into_iter().filter(|l| l.is_available()).collect()
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Element types the kernels compute in, with the constants of the sin/cos
/// approximation (Cody-Waite reduction by pi/2, Cephes minimax polynomials on
/// [-pi/4, pi/4]).
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const TWO_OVER_PI: Self;
    /// pi/2 rounded to this type; with FMA, `t - k*PIO2_HI` is exact.
    const PIO2_HI: Self;
    /// pi/2 - PIO2_HI rounded to this type.
    const PIO2_LO: Self;
    /// Coefficients (highest degree first) of P with sin(r) = r + r^3 P(r^2).
    const SIN_POLY: &'static [Self];
    /// Coefficients (highest degree first) of Q with cos(r) = 1 - r^2/2 + r^4 Q(r^2).
    const COS_POLY: &'static [Self];
    /// Above this |t| the two-constant reduction loses accuracy; such lanes take
    /// the scalar float64 path.
    const REDUCTION_LIMIT: Self;
    /// Reduction by pi instead of pi/2 (cheaper fix-up, longer polynomials):
    /// `(PI_HI, PI_LO, sin P, cos Q)` with sin r = r + r^3 P(r^2) and
    /// cos r = 1 + r^2 Q(r^2) on [-pi/2, pi/2], highest degree first; `None`
    /// keeps the pi/2 scheme.
    const PI_REDUCTION: Option<(Self, Self, &'static [Self], &'static [Self])>;
    /// 1.5 * 2^(mantissa bits): adding it rounds to an integer held in the low bits.
    const ROUND_MAGIC: Self;
    /// log2(e), and ln 2 split in two for the Cody-Waite reduction of `exp`.
    const LOG2E: Self;
    const LN2_HI: Self;
    const LN2_LO: Self;
    /// Taylor coefficients 1/i! of exp on [-ln2/2, ln2/2], highest degree first.
    const EXP_POLY: &'static [Self];
    /// Arguments of `exp` are clamped to [EXP_MIN, EXP_MAX] (normal results).
    const EXP_MIN: Self;
    const EXP_MAX: Self;

    fn to_f64(self) -> f64;
    fn from_f64(x: f64) -> Self;
    fn is_finite(self) -> bool;
    fn abs(self) -> Self;
}

// Constants are quoted as published (Cephes); extra digits are harmless.
#[allow(clippy::excessive_precision)]
impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
    const PIO2_HI: f32 = std::f32::consts::FRAC_PI_2;
    const PIO2_LO: f32 = -4.371_138_8e-8;
    const SIN_POLY: &'static [f32] = &[-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1];
    const COS_POLY: &'static [f32] = &[2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2];
    const REDUCTION_LIMIT: f32 = 262_144.0;
    // Near-minimax fits (Lawson iterations) on [-pi/2, pi/2]: approximation
    // error 4.6e-9 (sin) and 2.4e-10 (cos), below float32 rounding.
    const ROUND_MAGIC: f32 = 12_582_912.0;
    const PI_REDUCTION: Option<(f32, f32, &'static [f32], &'static [f32])> = Some((
        std::f32::consts::PI,
        -8.742_278e-8,
        &[2.600_075_9e-6, -1.980_662_5e-4, 8.333_017_4e-3, -1.666_665_7e-1],
        &[-2.607_726_5e-7, 2.476_189_5e-5, -1.388_840_4e-3, 4.166_664_1e-2, -4.999_999_955e-1],
    ));
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_751_953_125;
    const LN2_LO: f32 = 1.428_606_765_330_187e-6;
    const EXP_POLY: &'static [f32] = &[1.984126984e-04, 1.388888889e-03, 8.333333333e-03, 4.166666667e-02, 1.666666667e-01, 5.000000000e-01, 1.000000000e+00, 1.000000000e+00];
    const EXP_MIN: f32 = -87.0;
    const EXP_MAX: f32 = 88.0;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
}

#[allow(clippy::excessive_precision)]
impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
    const PIO2_HI: f64 = std::f64::consts::FRAC_PI_2;
    const PIO2_LO: f64 = 6.123_233_995_736_766e-17;
    const SIN_POLY: &'static [f64] = &[
        1.589_623_015_765_465_7e-10,
        -2.505_074_776_285_780_7e-8,
        2.755_731_362_138_572_5e-6,
        -1.984_126_982_958_954e-4,
        8.333_333_333_322_118e-3,
        -1.666_666_666_666_663e-1,
    ];
    const COS_POLY: &'static [f64] = &[
        -1.135_853_652_138_768_2e-11,
        2.087_570_084_197_473_2e-9,
        -2.755_731_417_929_674e-7,
        2.480_158_728_885_170_5e-5,
        -1.388_888_888_887_305_6e-3,
        4.166_666_666_666_659_3e-2,
    ];
    const REDUCTION_LIMIT: f64 = 1.0e8;
    const PI_REDUCTION: Option<(f64, f64, &'static [f64], &'static [f64])> = None;
    const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const EXP_POLY: &'static [f64] = &[
        2.08767569878681002e-09,
        2.50521083854417202e-08,
        2.75573192239858883e-07,
        2.75573192239858925e-06,
        2.48015873015873016e-05,
        1.98412698412698413e-04,
        1.38888888888888894e-03,
        8.33333333333333322e-03,
        4.16666666666666644e-02,
        1.66666666666666657e-01,
        5.00000000000000000e-01,
        1.00000000000000000e+00,
        1.00000000000000000e+00,
    ];
    const EXP_MIN: f64 = -708.0;
    const EXP_MAX: f64 = 709.0;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
}

/// A SIMD vector of `LANES` elements of type `E`.
///
/// # Safety
/// (This contract covers every method; hence the per-method lint is allowed.)
/// Every method requires the CPU to support the implementing type's
/// instruction set; pointers must be valid for `LANES` elements.
#[allow(clippy::missing_safety_doc)]
pub trait Vector: Copy {
    type E: Real;
    /// The rounded quotient t / (pi/2) as integers, for the quadrant fix-up.
    type Quadrant: Copy;
    const LANES: usize;
    const LEVEL: SimdLevel;

    unsafe fn splat(x: Self::E) -> Self;
    unsafe fn load(p: *const Self::E) -> Self;
    unsafe fn store(self, p: *mut Self::E);
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn sub(self, b: Self) -> Self;
    /// +1 or -1 with the sign of each lane (the 1-bit quantizer).
    unsafe fn sign_unit(self) -> Self;
    /// Sum of the lanes, in float64.
    unsafe fn sum_f64(self) -> f64;
    /// `self * b + c` with a single rounding.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c - self * b` with a single rounding.
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self;
    /// Rounds to the nearest integer (ties to even), as a float and as integers.
    unsafe fn round_quadrant(self) -> (Self, Self::Quadrant);
    /// Given sin(r), cos(r) and the quadrant k of t = k pi/2 + r, returns (sin t, cos t).
    unsafe fn apply_quadrant(k: Self::Quadrant, sin_r: Self, cos_r: Self) -> (Self, Self);
    /// The lanes' bit patterns as integers (no conversion).
    unsafe fn to_bits(self) -> Self::Quadrant;
    /// Negates the lanes where the integer lane of `n` is odd (t = n pi + r).
    unsafe fn negate_if_odd(n: Self::Quadrant, a: Self) -> Self;
    /// Whether any lane has |x| > limit (or is NaN).
    unsafe fn any_abs_gt(self, limit: Self::E) -> bool;
    /// `dst[i] += self[i] as f64` for every lane.
    unsafe fn add_to_f64(self, dst: *mut f64);
    /// Lane-wise maximum (`b` where either is NaN is not relied upon).
    unsafe fn max(self, b: Self) -> Self;
    /// `self * 2^n` for lanes of `n` holding integers within the exponent
    /// range of normal numbers (used by `exp`).
    unsafe fn scale_pow2(self, n: Self) -> Self;
}

// ---------------------------------------------------------------------------
// Portable implementation: one lane.
// ---------------------------------------------------------------------------

/// One-lane portable vector.
#[derive(Clone, Copy, Debug)]
pub struct Scalar<E>(pub E);

macro_rules! impl_scalar {
    ($t:ty, $int:ty, $bits:ty, $bias:expr, $mant:expr) => {
        impl Vector for Scalar<$t> {
            type E = $t;
            type Quadrant = $int;
            const LANES: usize = 1;
            const LEVEL: SimdLevel = SimdLevel::Scalar;

            #[inline(always)]
            unsafe fn splat(x: $t) -> Self {
                Scalar(x)
            }
            #[inline(always)]
            unsafe fn load(p: *const $t) -> Self {
                // SAFETY: `p` is valid for `LANES` reads (the caller's contract).
                unsafe {
                    Scalar(*p)
                }
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $t) {
                // SAFETY: `p` is valid for `LANES` writes (the caller's contract).
                unsafe {
                    *p = self.0
                }
            }
            #[inline(always)]
            unsafe fn mul(self, b: Self) -> Self {
                Scalar(self.0 * b.0)
            }
            #[inline(always)]
            unsafe fn add(self, b: Self) -> Self {
                Scalar(self.0 + b.0)
            }
            #[inline(always)]
            unsafe fn sub(self, b: Self) -> Self {
                Scalar(self.0 - b.0)
            }
            #[inline(always)]
            unsafe fn sign_unit(self) -> Self {
                Scalar((1.0 as $t).copysign(self.0))
            }
            #[inline(always)]
            unsafe fn sum_f64(self) -> f64 {
                self.0 as f64
            }
            #[inline(always)]
            unsafe fn mul_add(self, b: Self, c: Self) -> Self {
                Scalar(self.0.mul_add(b.0, c.0))
            }
            #[inline(always)]
            unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
                Scalar((-self.0).mul_add(b.0, c.0))
            }
            #[inline(always)]
            unsafe fn round_quadrant(self) -> (Self, $int) {
                // Through the integer, as the SIMD paths do: -0.0 becomes +0.0,
                // which keeps sin(-0.0) = -0.0.
                let k = self.0.round_ties_even() as $int;
                (Scalar(k as $t), k)
            }
            #[inline(always)]
            unsafe fn apply_quadrant(k: $int, s: Self, c: Self) -> (Self, Self) {
                let (s, c) = if k & 1 != 0 { (c.0, s.0) } else { (s.0, c.0) };
                let s = if k & 2 != 0 { -s } else { s };
                let c = if k.wrapping_add(1) & 2 != 0 { -c } else { c };
                (Scalar(s), Scalar(c))
            }
            #[inline(always)]
            unsafe fn to_bits(self) -> $int {
                self.0.to_bits() as $int
            }
            #[inline(always)]
            unsafe fn negate_if_odd(n: $int, a: Self) -> Self {
                if n & 1 != 0 {
                    Scalar(-a.0)
                } else {
                    a
                }
            }
            #[inline(always)]
            unsafe fn any_abs_gt(self, limit: $t) -> bool {
                self.0.is_nan() || self.0.abs() > limit
            }
            #[inline(always)]
            unsafe fn add_to_f64(self, dst: *mut f64) {
                // SAFETY: `dst` is valid for `LANES` reads and writes (the caller's contract).
                unsafe {
                    *dst += self.0 as f64
                }
            }
            #[inline(always)]
            unsafe fn max(self, b: Self) -> Self {
                Scalar(if self.0 > b.0 { self.0 } else { b.0 })
            }
            #[inline(always)]
            unsafe fn scale_pow2(self, n: Self) -> Self {
                Scalar(self.0 * <$t>::from_bits(((n.0 as $int + $bias) as $bits) << $mant))
            }
        }
    };
}
impl_scalar!(f32, i32, u32, 127, 23);
impl_scalar!(f64, i64, u64, 1023, 52);

// ---------------------------------------------------------------------------
// x86-64: AVX2 + FMA and AVX-512F.
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2F32, Avx2F64, Avx512F32, Avx512F64};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{SimdLevel, Vector};
    use std::arch::x86_64::*;

    const SIGN32: i32 = i32::MIN;

    /// 8 x f32 in a ymm register.
    #[derive(Clone, Copy)]
    pub struct Avx2F32(__m256);
    /// 4 x f64 in a ymm register.
    #[derive(Clone, Copy)]
    pub struct Avx2F64(__m256d);
    /// 16 x f32 in a zmm register.
    #[derive(Clone, Copy)]
    pub struct Avx512F32(__m512);
    /// 8 x f64 in a zmm register.
    #[derive(Clone, Copy)]
    pub struct Avx512F64(__m512d);

    impl Vector for Avx2F32 {
        type E = f32;
        type Quadrant = __m256i;
        const LANES: usize = 8;
        const LEVEL: SimdLevel = SimdLevel::Avx2;

        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_set1_ps(x))
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `p` is valid for `LANES` reads.
            unsafe {
                Avx2F32(_mm256_loadu_ps(p))
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `p` is valid for `LANES` writes.
            unsafe {
                _mm256_storeu_ps(p, self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_mul_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_add_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_sub_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sign_unit(self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let sign = _mm256_and_ps(self.0, _mm256_set1_ps(-0.0));
                Avx2F32(_mm256_or_ps(sign, _mm256_set1_ps(1.0)))
            }
        }
        #[inline(always)]
        unsafe fn sum_f64(self) -> f64 {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let mut buf = [0f32; 8];
                _mm256_storeu_ps(buf.as_mut_ptr(), self.0);
                buf.iter().map(|&v| v as f64).sum()
            }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_fmadd_ps(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_fnmadd_ps(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn round_quadrant(self) -> (Self, __m256i) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                // cvtps uses the default rounding mode: nearest, ties to even.
                let k = _mm256_cvtps_epi32(self.0);
                (Avx2F32(_mm256_cvtepi32_ps(k)), k)
            }
        }
        #[inline(always)]
        unsafe fn apply_quadrant(k: __m256i, s: Self, c: Self) -> (Self, Self) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                // blendv selects on the top bit: move bit 0 of k there.
                let swap = _mm256_castsi256_ps(_mm256_slli_epi32::<31>(k));
                let ss = _mm256_blendv_ps(s.0, c.0, swap);
                let cc = _mm256_blendv_ps(c.0, s.0, swap);
                let sign = _mm256_set1_epi32(SIGN32);
                let sin_flip = _mm256_and_si256(_mm256_slli_epi32::<30>(k), sign);
                let k1 = _mm256_add_epi32(k, _mm256_set1_epi32(1));
                let cos_flip = _mm256_and_si256(_mm256_slli_epi32::<30>(k1), sign);
                (
                    Avx2F32(_mm256_xor_ps(ss, _mm256_castsi256_ps(sin_flip))),
                    Avx2F32(_mm256_xor_ps(cc, _mm256_castsi256_ps(cos_flip))),
                )
            }
        }
        #[inline(always)]
        unsafe fn to_bits(self) -> __m256i {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                _mm256_castps_si256(self.0)
            }
        }
        #[inline(always)]
        unsafe fn negate_if_odd(n: __m256i, a: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_xor_ps(a.0, _mm256_castsi256_ps(_mm256_slli_epi32::<31>(n))))
            }
        }
        #[inline(always)]
        unsafe fn any_abs_gt(self, limit: f32) -> bool {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0);
                // Not-less-or-equal, unordered: true for NaN too.
                let m = _mm256_cmp_ps::<_CMP_NLE_UQ>(abs, _mm256_set1_ps(limit));
                _mm256_movemask_ps(m) != 0
            }
        }
        #[inline(always)]
        unsafe fn add_to_f64(self, dst: *mut f64) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `dst` is valid for `LANES` reads and writes.
            unsafe {
                let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(self.0));
                let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(self.0));
                _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), lo));
                _mm256_storeu_pd(dst.add(4), _mm256_add_pd(_mm256_loadu_pd(dst.add(4)), hi));
            }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F32(_mm256_max_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn scale_pow2(self, n: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n.0), _mm256_set1_epi32(127)));
                Avx2F32(_mm256_mul_ps(self.0, _mm256_castsi256_ps(e)))
            }
        }
    }

    impl Vector for Avx2F64 {
        type E = f64;
        type Quadrant = __m256i; // 4 x i64
        const LANES: usize = 4;
        const LEVEL: SimdLevel = SimdLevel::Avx2;

        #[inline(always)]
        unsafe fn splat(x: f64) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_set1_pd(x))
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `p` is valid for `LANES` reads.
            unsafe {
                Avx2F64(_mm256_loadu_pd(p))
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `p` is valid for `LANES` writes.
            unsafe {
                _mm256_storeu_pd(p, self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_mul_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_add_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_sub_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sign_unit(self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let sign = _mm256_and_pd(self.0, _mm256_set1_pd(-0.0));
                Avx2F64(_mm256_or_pd(sign, _mm256_set1_pd(1.0)))
            }
        }
        #[inline(always)]
        unsafe fn sum_f64(self) -> f64 {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let mut buf = [0f64; 4];
                _mm256_storeu_pd(buf.as_mut_ptr(), self.0);
                buf.iter().sum()
            }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_fmadd_pd(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_fnmadd_pd(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn round_quadrant(self) -> (Self, __m256i) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let kf = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0);
                let k = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(kf));
                (Avx2F64(kf), k)
            }
        }
        #[inline(always)]
        unsafe fn apply_quadrant(k: __m256i, s: Self, c: Self) -> (Self, Self) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let swap = _mm256_castsi256_pd(_mm256_slli_epi64::<63>(k));
                let ss = _mm256_blendv_pd(s.0, c.0, swap);
                let cc = _mm256_blendv_pd(c.0, s.0, swap);
                let sign = _mm256_set1_epi64x(i64::MIN);
                let sin_flip = _mm256_and_si256(_mm256_slli_epi64::<62>(k), sign);
                let k1 = _mm256_add_epi64(k, _mm256_set1_epi64x(1));
                let cos_flip = _mm256_and_si256(_mm256_slli_epi64::<62>(k1), sign);
                (
                    Avx2F64(_mm256_xor_pd(ss, _mm256_castsi256_pd(sin_flip))),
                    Avx2F64(_mm256_xor_pd(cc, _mm256_castsi256_pd(cos_flip))),
                )
            }
        }
        #[inline(always)]
        unsafe fn to_bits(self) -> __m256i {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                _mm256_castpd_si256(self.0)
            }
        }
        #[inline(always)]
        unsafe fn negate_if_odd(n: __m256i, a: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_xor_pd(a.0, _mm256_castsi256_pd(_mm256_slli_epi64::<63>(n))))
            }
        }
        #[inline(always)]
        unsafe fn any_abs_gt(self, limit: f64) -> bool {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0);
                let m = _mm256_cmp_pd::<_CMP_NLE_UQ>(abs, _mm256_set1_pd(limit));
                _mm256_movemask_pd(m) != 0
            }
        }
        #[inline(always)]
        unsafe fn add_to_f64(self, dst: *mut f64) {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract); `dst` is valid for `LANES` reads and writes.
            unsafe {
                _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), self.0));
            }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                Avx2F64(_mm256_max_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn scale_pow2(self, n: Self) -> Self {
            // SAFETY: the CPU supports AVX2 and FMA (`Vector`'s contract).
            unsafe {
                let n64 = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n.0));
                let e = _mm256_slli_epi64::<52>(_mm256_add_epi64(n64, _mm256_set1_epi64x(1023)));
                Avx2F64(_mm256_mul_pd(self.0, _mm256_castsi256_pd(e)))
            }
        }
    }

    impl Vector for Avx512F32 {
        type E = f32;
        type Quadrant = __m512i;
        const LANES: usize = 16;
        const LEVEL: SimdLevel = SimdLevel::Avx512;

        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_set1_ps(x))
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `p` is valid for `LANES` reads.
            unsafe {
                Avx512F32(_mm512_loadu_ps(p))
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `p` is valid for `LANES` writes.
            unsafe {
                _mm512_storeu_ps(p, self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_mul_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_add_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_sub_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sign_unit(self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let bits = _mm512_castps_si512(self.0);
                let sign = _mm512_and_si512(bits, _mm512_set1_epi32(SIGN32));
                Avx512F32(_mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0)))))
            }
        }
        #[inline(always)]
        unsafe fn sum_f64(self) -> f64 {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(self.0));
                let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0))));
                _mm512_reduce_add_pd(_mm512_add_pd(lo, hi))
            }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_fmadd_ps(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_fnmadd_ps(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn round_quadrant(self) -> (Self, __m512i) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let k = _mm512_cvtps_epi32(self.0);
                (Avx512F32(_mm512_cvtepi32_ps(k)), k)
            }
        }
        #[inline(always)]
        unsafe fn apply_quadrant(k: __m512i, s: Self, c: Self) -> (Self, Self) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let swap = _mm512_test_epi32_mask(k, _mm512_set1_epi32(1));
                let ss = _mm512_mask_blend_ps(swap, s.0, c.0);
                let cc = _mm512_mask_blend_ps(swap, c.0, s.0);
                let two = _mm512_set1_epi32(2);
                let sin_flip = _mm512_slli_epi32::<30>(_mm512_and_si512(k, two));
                let k1 = _mm512_add_epi32(k, _mm512_set1_epi32(1));
                let cos_flip = _mm512_slli_epi32::<30>(_mm512_and_si512(k1, two));
                (
                    Avx512F32(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(ss), sin_flip))),
                    Avx512F32(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cc), cos_flip))),
                )
            }
        }
        #[inline(always)]
        unsafe fn to_bits(self) -> __m512i {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                _mm512_castps_si512(self.0)
            }
        }
        #[inline(always)]
        unsafe fn negate_if_odd(n: __m512i, a: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.0), _mm512_slli_epi32::<31>(n))))
            }
        }
        #[inline(always)]
        unsafe fn any_abs_gt(self, limit: f32) -> bool {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let abs = _mm512_abs_ps(self.0);
                _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(abs, _mm512_set1_ps(limit)) != 0
            }
        }
        #[inline(always)]
        unsafe fn add_to_f64(self, dst: *mut f64) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `dst` is valid for `LANES` reads and writes.
            unsafe {
                let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(self.0));
                let hi_bits = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0));
                let hi = _mm512_cvtps_pd(_mm256_castpd_ps(hi_bits));
                _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), lo));
                _mm512_storeu_pd(dst.add(8), _mm512_add_pd(_mm512_loadu_pd(dst.add(8)), hi));
            }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_max_ps(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn scale_pow2(self, n: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F32(_mm512_scalef_ps(self.0, n.0))
            }
        }
    }

    impl Vector for Avx512F64 {
        type E = f64;
        type Quadrant = __m512i; // 8 x i64
        const LANES: usize = 8;
        const LEVEL: SimdLevel = SimdLevel::Avx512;

        #[inline(always)]
        unsafe fn splat(x: f64) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_set1_pd(x))
            }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `p` is valid for `LANES` reads.
            unsafe {
                Avx512F64(_mm512_loadu_pd(p))
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `p` is valid for `LANES` writes.
            unsafe {
                _mm512_storeu_pd(p, self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_mul_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_add_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_sub_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn sign_unit(self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let bits = _mm512_castpd_si512(self.0);
                let sign = _mm512_and_si512(bits, _mm512_set1_epi64(i64::MIN));
                Avx512F64(_mm512_castsi512_pd(_mm512_or_si512(sign, _mm512_castpd_si512(_mm512_set1_pd(1.0)))))
            }
        }
        #[inline(always)]
        unsafe fn sum_f64(self) -> f64 {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                _mm512_reduce_add_pd(self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_fmadd_pd(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_fnmadd_pd(self.0, b.0, c.0))
            }
        }
        #[inline(always)]
        unsafe fn round_quadrant(self) -> (Self, __m512i) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let k32 = _mm512_cvtpd_epi32(self.0);
                (Avx512F64(_mm512_cvtepi32_pd(k32)), _mm512_cvtepi32_epi64(k32))
            }
        }
        #[inline(always)]
        unsafe fn apply_quadrant(k: __m512i, s: Self, c: Self) -> (Self, Self) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let swap = _mm512_test_epi64_mask(k, _mm512_set1_epi64(1));
                let ss = _mm512_mask_blend_pd(swap, s.0, c.0);
                let cc = _mm512_mask_blend_pd(swap, c.0, s.0);
                let two = _mm512_set1_epi64(2);
                let sin_flip = _mm512_slli_epi64::<62>(_mm512_and_si512(k, two));
                let k1 = _mm512_add_epi64(k, _mm512_set1_epi64(1));
                let cos_flip = _mm512_slli_epi64::<62>(_mm512_and_si512(k1, two));
                (
                    Avx512F64(_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(ss), sin_flip))),
                    Avx512F64(_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(cc), cos_flip))),
                )
            }
        }
        #[inline(always)]
        unsafe fn to_bits(self) -> __m512i {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                _mm512_castpd_si512(self.0)
            }
        }
        #[inline(always)]
        unsafe fn negate_if_odd(n: __m512i, a: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a.0), _mm512_slli_epi64::<63>(n))))
            }
        }
        #[inline(always)]
        unsafe fn any_abs_gt(self, limit: f64) -> bool {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                let abs = _mm512_abs_pd(self.0);
                _mm512_cmp_pd_mask::<_CMP_NLE_UQ>(abs, _mm512_set1_pd(limit)) != 0
            }
        }
        #[inline(always)]
        unsafe fn add_to_f64(self, dst: *mut f64) {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract); `dst` is valid for `LANES` reads and writes.
            unsafe {
                _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), self.0));
            }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_max_pd(self.0, b.0))
            }
        }
        #[inline(always)]
        unsafe fn scale_pow2(self, n: Self) -> Self {
            // SAFETY: the CPU supports AVX-512F (`Vector`'s contract).
            unsafe {
                Avx512F64(_mm512_scalef_pd(self.0, n.0))
            }
        }
    }
}
