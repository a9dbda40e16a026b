// sketchcore CUDA kernels: fused dense random-Fourier-feature sketch.
//
// Compiled by NVRTC (cupy.RawModule at run time; sm_80 and sm_90 checked in CI)
// and, unchanged, by a C++ compiler with cuda_emu.h for the host emulation
// harness the tests run on machines without a GPU. The kernels therefore use
// no warp-synchronous tricks: the only synchronisation is __syncthreads.
//
// Dense layout, blocked like a matrix product: a block of SC_DENSE_THREADS =
// SC_GX x SC_GY threads computes the phases of SC_BF = SC_GX * SC_TF
// frequencies for SC_BR = SC_GY * SC_TR rows at a time, each thread a
// SC_TR x SC_TF tile of them in registers (its rows ty * SC_TR + p, its
// frequencies tx + q * SC_GX). The inner product over the d features runs
// SC_KD features at a time from shared memory (the X tile transposed and the
// Omega tile), so each thread reads SC_TR + SC_TF values per SC_TR * SC_TF
// multiply-adds. Grid: (ceil(m / SC_BF), row_blocks); a block walks the rows
// [blockIdx.y * rows_per_block, ...) (a multiple of SC_BR rows).
// Phases t = x . omega_j + xi_j are computed in the input precision, sin/cos
// with the accurate sincosf/sincos (no fast-math intrinsics), and
// accumulated in float64; the SC_GY row groups are added in a fixed order
// at the end. Each block writes its partial sums to
// partial[blockIdx.y][0|1][j]; reduce_partials adds them in block order, so
// the result does not depend on scheduling.

#ifndef SC_EMULATION
#define SC_DECLARE_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
// Loops over a compile-time count, unrolled so the arrays they index stay in
// registers (a runtime-indexed local array spills to local memory).
#define SC_UNROLL _Pragma("unroll")
#define SC_INF __longlong_as_double(0x7ff0000000000000LL)
#endif

#define SC_GX 32                       /* threads along frequencies */
#define SC_GY 4                        /* threads along rows */
#define SC_TF 4                        /* frequencies per thread */
#define SC_TR 8                        /* rows per thread */
#define SC_KD 16                       /* features staged per step */
#define SC_BF (SC_GX * SC_TF)          /* frequencies per block: 128 */
#define SC_BR (SC_GY * SC_TR)          /* rows per tile: 32 */
#define SC_XS (SC_BR + 4)              /* padded row of the transposed X tile */
#define SC_DENSE_THREADS (SC_GX * SC_GY)

// Shared memory of the dense kernel for element type T, in bytes:
// X tile [SC_KD][SC_XS] and Omega tile [SC_KD][SC_BF] (T), then the row
// weights [SC_BR] and the row groups' sums [SC_GY][2][SC_BF] (double).
#define SC_DENSE_SHARED(T) \
    (sizeof(T) * (SC_KD * SC_XS + SC_KD * SC_BF) + sizeof(double) * (SC_BR + SC_GY * 2 * SC_BF))

#define SC_SKETCH_KERNEL(NAME, T, SINCOS)                                                        \
extern "C" __global__ void NAME(                                                                 \
    const T* __restrict__ x, long long row_stride, long long col_stride, int n, int d,          \
    const T* __restrict__ omega, const T* __restrict__ dither, const double* __restrict__ weights, \
    int m, int rows_per_block, int quantize, double* __restrict__ partial)                      \
{                                                                                                \
    SC_DECLARE_SHARED(sc_smem);                                                                  \
    T* xs = reinterpret_cast<T*>(sc_smem);                 /* [SC_KD][SC_XS] */                  \
    T* os = xs + SC_KD * SC_XS;                            /* [SC_KD][SC_BF] */                  \
    double* ws = reinterpret_cast<double*>(os + SC_KD * SC_BF); /* [SC_BR] */                    \
    double* red = ws + SC_BR;                              /* [SC_GY][2][SC_BF] */               \
    const int tx = threadIdx.x % SC_GX, ty = threadIdx.x / SC_GX;                                \
    const int j0 = blockIdx.x * SC_BF;                                                           \
    const long long row0 = (long long)blockIdx.y * rows_per_block;                               \
    long long row_end = row0 + rows_per_block;                                                   \
    if (row_end > n) row_end = n;                                                                \
    T xi[SC_TF];                                                                                 \
    double acc_cos[SC_TF], acc_sin[SC_TF];                                                       \
    SC_UNROLL for (int q = 0; q < SC_TF; ++q) {                                                  \
        const int j = j0 + tx + q * SC_GX;                                                       \
        xi[q] = (j < m && dither != 0) ? dither[j] : (T)0;                                       \
        acc_cos[q] = 0.0;                                                                        \
        acc_sin[q] = 0.0;                                                                        \
    }                                                                                            \
    for (long long r0 = row0; r0 < row_end; r0 += SC_BR) {                                       \
        const int rows = (int)((row_end - r0) < SC_BR ? (row_end - r0) : SC_BR);                 \
        T t[SC_TR][SC_TF];                                                                       \
        SC_UNROLL for (int p = 0; p < SC_TR; ++p) {                                              \
            SC_UNROLL for (int q = 0; q < SC_TF; ++q) t[p][q] = xi[q];                           \
        }                                                                                        \
        for (int l0 = 0; l0 < d; l0 += SC_KD) {                                                  \
            const int kd = d - l0 < SC_KD ? d - l0 : SC_KD;                                      \
            /* consecutive threads read consecutive features of a row (coalesced) */             \
            for (int k = threadIdx.x; k < SC_BR * SC_KD; k += SC_DENSE_THREADS) {                \
                const int r = k / SC_KD, l = k - r * SC_KD;                                      \
                xs[l * SC_XS + r] = (r < rows && l < kd)                                         \
                    ? x[(r0 + r) * row_stride + (long long)(l0 + l) * col_stride] : (T)0;        \
            }                                                                                    \
            for (int k = threadIdx.x; k < SC_KD * SC_BF; k += SC_DENSE_THREADS) {                \
                const int l = k / SC_BF, f = k - l * SC_BF;                                      \
                os[k] = (l < kd && j0 + f < m) ? omega[(long long)(l0 + l) * m + j0 + f] : (T)0; \
            }                                                                                    \
            __syncthreads();                                                                     \
            for (int l = 0; l < kd; ++l) {                                                       \
                T xv[SC_TR], ov[SC_TF];                                                          \
                SC_UNROLL for (int p = 0; p < SC_TR; ++p) xv[p] = xs[l * SC_XS + ty * SC_TR + p]; \
                SC_UNROLL for (int q = 0; q < SC_TF; ++q) ov[q] = os[l * SC_BF + tx + q * SC_GX]; \
                SC_UNROLL for (int p = 0; p < SC_TR; ++p) {                                      \
                    SC_UNROLL for (int q = 0; q < SC_TF; ++q) t[p][q] += xv[p] * ov[q];          \
                }                                                                                \
            }                                                                                    \
            __syncthreads();                                                                     \
        }                                                                                        \
        for (int r = threadIdx.x; r < SC_BR; r += SC_DENSE_THREADS)                              \
            ws[r] = r < rows ? (weights != 0 ? weights[r0 + r] : 1.0) : 0.0;                     \
        __syncthreads();                                                                         \
        SC_UNROLL for (int p = 0; p < SC_TR; ++p) {                                              \
            const int r = ty * SC_TR + p;                                                        \
            if (r >= rows) continue;                                                             \
            const double w = ws[r];                                                              \
            SC_UNROLL for (int q = 0; q < SC_TF; ++q) {                                          \
                T s, c;                                                                          \
                SINCOS(t[p][q], &s, &c);                                                         \
                if (quantize) {                                                                  \
                    s = s < (T)0 || (s == (T)0 && signbit(s)) ? (T)-1 : (T)1;                    \
                    c = c < (T)0 || (c == (T)0 && signbit(c)) ? (T)-1 : (T)1;                    \
                }                                                                                \
                acc_cos[q] += w * (double)c;                                                     \
                acc_sin[q] += w * (double)s;                                                     \
            }                                                                                    \
        }                                                                                        \
        __syncthreads(); /* ws is rewritten by the next tile */                                  \
    }                                                                                            \
    SC_UNROLL for (int q = 0; q < SC_TF; ++q) {                                                  \
        red[(ty * 2) * SC_BF + tx + q * SC_GX] = acc_cos[q];                                     \
        red[(ty * 2 + 1) * SC_BF + tx + q * SC_GX] = acc_sin[q];                                 \
    }                                                                                            \
    __syncthreads();                                                                             \
    for (int k = threadIdx.x; k < 2 * SC_BF; k += SC_DENSE_THREADS) {                            \
        const int c = k / SC_BF, f = k - c * SC_BF;                                              \
        if (j0 + f >= m) continue;                                                               \
        double v = 0.0;                                                                          \
        for (int g = 0; g < SC_GY; ++g) v += red[(g * 2 + c) * SC_BF + f]; /* fixed order */     \
        partial[((long long)blockIdx.y * 2 + c) * m + j0 + f] = v;                               \
    }                                                                                            \
}

SC_SKETCH_KERNEL(sketch_dense_f32, float, sincosf)
SC_SKETCH_KERNEL(sketch_dense_f64, double, sincos)

// The data box: per row block, the smallest and largest value of each
// feature. NaN is sticky (a NaN makes both bounds NaN) and infinities show as
// such, so a box of finite numbers is the finiteness check too: one read of
// X instead of three reductions. Grid (ceil(d / SC_GX), row_blocks),
// SC_BOX_THREADS threads: tx picks the feature (consecutive threads read
// consecutive features of a row), ty the rows ty, ty + SC_BOX_LANES, ...;
// the lanes are combined in a fixed order.
#define SC_BOX_THREADS 256
#define SC_BOX_LANES (SC_BOX_THREADS / SC_GX)
#define SC_BOX_SHARED (2 * SC_BOX_THREADS * sizeof(double))

#define SC_BOX_KERNEL(NAME, T)                                                                   \
extern "C" __global__ void NAME(                                                                 \
    const T* __restrict__ x, long long row_stride, long long col_stride, int n, int d,          \
    int rows_per_block, double* __restrict__ lower, double* __restrict__ upper)                  \
{                                                                                                \
    SC_DECLARE_SHARED(sc_smem);                                                                  \
    double* lo_s = reinterpret_cast<double*>(sc_smem);      /* [SC_BOX_LANES][SC_GX] */          \
    double* hi_s = lo_s + SC_BOX_THREADS;                                                        \
    const int tx = threadIdx.x % SC_GX, ty = threadIdx.x / SC_GX;                                \
    const int c = blockIdx.x * SC_GX + tx;                                                       \
    const long long row0 = (long long)blockIdx.y * rows_per_block;                               \
    long long row_end = row0 + rows_per_block;                                                   \
    if (row_end > n) row_end = n;                                                                \
    T lo = (T)SC_INF, hi = -(T)SC_INF;                                                           \
    if (c < d)                                                                                   \
        for (long long r = row0 + ty; r < row_end; r += SC_BOX_LANES) {                          \
            const T v = x[r * row_stride + (long long)c * col_stride];                           \
            lo = (v < lo || v != v) ? v : lo;                                                    \
            hi = (v > hi || v != v) ? v : hi;                                                    \
        }                                                                                        \
    lo_s[ty * SC_GX + tx] = (double)lo;                                                          \
    hi_s[ty * SC_GX + tx] = (double)hi;                                                          \
    __syncthreads();                                                                             \
    if (ty == 0 && c < d) {                                                                      \
        double a = lo_s[tx], b = hi_s[tx];                                                       \
        for (int g = 1; g < SC_BOX_LANES; ++g) {                                                 \
            const double u = lo_s[g * SC_GX + tx], w = hi_s[g * SC_GX + tx];                     \
            a = (u < a || u != u) ? u : a;                                                       \
            b = (w > b || w != w) ? w : b;                                                       \
        }                                                                                        \
        lower[(long long)blockIdx.y * d + c] = a;                                                \
        upper[(long long)blockIdx.y * d + c] = b;                                                \
    }                                                                                            \
}

SC_BOX_KERNEL(data_box_f32, float)
SC_BOX_KERNEL(data_box_f64, double)

// out[k] = sum over row blocks b (in order) of partial[b][k], k < 2m.
extern "C" __global__ void reduce_partials(const double* __restrict__ partial, int row_blocks, int m2,
                                           double* __restrict__ out)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= m2) return;
    double acc = 0.0;
    for (int b = 0; b < row_blocks; ++b) acc += partial[(long long)b * m2 + k];
    out[k] = acc;
}

// Structured operator (blocks of H D3 H D2 H D1 over x padded to p = 2^k).
//
// Layout: grid (operator blocks, row_blocks); the block for operator block b
// walks its rows one at a time: the padded row times D1 goes to shared
// memory (p values), three in-place Walsh-Hadamard transforms run there (one
// butterfly stage per __syncthreads, sign multiplications between them), and
// each thread then takes the outputs r = threadIdx.x + o * blockDim.x
// (o < SC_MAX_OWN) of its block: phase scale_j * y_r + xi_j, sincos, float64
// accumulation. Partial sums go to partial[blockIdx.y][0|1][j] like the dense
// kernel's, reduced by reduce_partials. p <= SC_MAX_OWN * blockDim.x.

#define SC_MAX_OWN 16

#define SC_STRUCTURED_KERNEL(NAME, T, SINCOS)                                                    \
extern "C" __global__ void NAME(                                                                 \
    const T* __restrict__ x, long long row_stride, long long col_stride, int n, int d, int p,   \
    const T* __restrict__ signs, const T* __restrict__ scales, const T* __restrict__ dither,     \
    const double* __restrict__ weights, int m, int rows_per_block, int quantize,                 \
    double* __restrict__ partial)                                                                \
{                                                                                                \
    SC_DECLARE_SHARED(sc_smem);                                                                  \
    T* buf = reinterpret_cast<T*>(sc_smem);                                                      \
    const int b = blockIdx.x;                                                                    \
    const T* d1 = signs + (long long)3 * b * p;                                                  \
    const T* d2 = d1 + p;                                                                        \
    const T* d3 = d2 + p;                                                                        \
    const long long row0 = (long long)blockIdx.y * rows_per_block;                               \
    long long row_end = row0 + rows_per_block;                                                   \
    if (row_end > n) row_end = n;                                                                \
    const int own = (p + blockDim.x - 1) / blockDim.x;                                           \
    double acc_cos[SC_MAX_OWN], acc_sin[SC_MAX_OWN];                                             \
    for (int o = 0; o < SC_MAX_OWN; ++o) { acc_cos[o] = 0.0; acc_sin[o] = 0.0; }                 \
    for (long long i = row0; i < row_end; ++i) {                                                 \
        for (int k = threadIdx.x; k < p; k += blockDim.x)                                        \
            buf[k] = k < d ? x[i * row_stride + (long long)k * col_stride] * d1[k] : (T)0;       \
        __syncthreads();                                                                         \
        for (int stage = 0; stage < 3; ++stage) {                                                \
            for (int h = 1; h < p; h *= 2) {                                                     \
                for (int q = threadIdx.x; q < p / 2; q += blockDim.x) {                          \
                    const int lo = (q / h) * 2 * h + (q % h), hi = lo + h;                       \
                    const T u = buf[lo], v = buf[hi];                                            \
                    buf[lo] = u + v;                                                             \
                    buf[hi] = u - v;                                                             \
                }                                                                                \
                __syncthreads();                                                                 \
            }                                                                                    \
            if (stage < 2) {                                                                     \
                const T* sg = stage == 0 ? d2 : d3;                                              \
                for (int k = threadIdx.x; k < p; k += blockDim.x) buf[k] *= sg[k];               \
                __syncthreads();                                                                 \
            }                                                                                    \
        }                                                                                        \
        const double w = weights != 0 ? weights[i] : 1.0;                                        \
        for (int o = 0; o < own; ++o) {                                                          \
            const int r = threadIdx.x + o * blockDim.x;                                          \
            const long long j = (long long)b * p + r;                                            \
            if (r < p && j < m) {                                                                \
                const T t = buf[r] * scales[j] + (dither != 0 ? dither[j] : (T)0);              \
                T s, c;                                                                          \
                SINCOS(t, &s, &c);                                                               \
                if (quantize) {                                                                  \
                    s = s < (T)0 || (s == (T)0 && signbit(s)) ? (T)-1 : (T)1;                    \
                    c = c < (T)0 || (c == (T)0 && signbit(c)) ? (T)-1 : (T)1;                    \
                }                                                                                \
                acc_cos[o] += w * (double)c;                                                     \
                acc_sin[o] += w * (double)s;                                                     \
            }                                                                                    \
        }                                                                                        \
        __syncthreads();                                                                         \
    }                                                                                            \
    for (int o = 0; o < own; ++o) {                                                              \
        const int r = threadIdx.x + o * blockDim.x;                                              \
        const long long j = (long long)b * p + r;                                                \
        if (r < p && j < m) {                                                                    \
            partial[((long long)blockIdx.y * 2) * m + j] = acc_cos[o];                           \
            partial[((long long)blockIdx.y * 2 + 1) * m + j] = acc_sin[o];                       \
        }                                                                                        \
    }                                                                                            \
}

SC_STRUCTURED_KERNEL(sketch_structured_f32, float, sincosf)
SC_STRUCTURED_KERNEL(sketch_structured_f64, double, sincos)

// Decoder atoms: f = ||z - sum_k alpha_k a_k||^2 and its gradient, as the
// Rust kernel `atoms::objective_grad` (same formulas). Each thread owns one
// frequency j: it builds the K atoms at j (twice, to keep no K-sized local
// array), the residual r_j, and its contributions p_kj = conj(a_kj) r_j to
// the sums over j, which each block reduces in shared memory (tree, fixed
// order) SC_GRAD_CHUNK values at a time. Block b writes
// partial[b][0] = sum |r_j|^2 and partial[b][1 + k (2d + 1) + q] with q = 0:
// Re p, q = 1 + l: omega_lj Im p, q = 1 + d + l: omega_lj^2 Re p; the host
// reduces blocks in order (reduce_partials) and applies the -2 alpha factors.
// Parameters are float64; frequencies and phases in T.

#define SC_GRAD_CHUNK 32

#define SC_ATOM_KERNEL(NAME, T, SINCOS, EXP)                                                     \
extern "C" __global__ void NAME(                                                                 \
    const T* __restrict__ omega, const T* __restrict__ omega_sq, const T* __restrict__ dither,   \
    int d, int m, const double* __restrict__ means, const double* __restrict__ variances,         \
    const double* __restrict__ alpha, int n_atoms, double gain,                                  \
    const double* __restrict__ z_re, const double* __restrict__ z_im,                            \
    double* __restrict__ partial)                                                                \
{                                                                                                \
    SC_DECLARE_SHARED(sc_smem);                                                                  \
    double* red = reinterpret_cast<double*>(sc_smem); /* SC_GRAD_CHUNK x blockDim.x */           \
    const int j = blockIdx.x * blockDim.x + threadIdx.x;                                         \
    const bool active = j < m;                                                                   \
    const int per_atom = 1 + 2 * d;                                                              \
    const long long out0 = (long long)blockIdx.x * (1 + (long long)n_atoms * per_atom);          \
    double r_re = 0.0, r_im = 0.0;                                                               \
    if (active) {                                                                                \
        r_re = z_re[j];                                                                          \
        r_im = z_im[j];                                                                          \
        for (int k = 0; k < n_atoms; ++k) {                                                      \
            double a_re, a_im;                                                                   \
            SC_ATOM_AT(T, SINCOS, EXP);                                                          \
            r_re -= alpha[k] * a_re;                                                             \
            r_im -= alpha[k] * a_im;                                                             \
        }                                                                                        \
    }                                                                                            \
    /* slot 0: sum of |r|^2, then every atom's 2d + 1 sums, a chunk at a time */                 \
    const int total = 1 + n_atoms * per_atom;                                                   \
    int cached_k = -1;                                                                           \
    double p_re = 0.0, p_im = 0.0;                                                               \
    for (int c0 = 0; c0 < total; c0 += SC_GRAD_CHUNK) {                                          \
        const int cn = total - c0 < SC_GRAD_CHUNK ? total - c0 : SC_GRAD_CHUNK;                  \
        for (int c = 0; c < cn; ++c) {                                                           \
            const int slot = c0 + c;                                                             \
            double v = 0.0;                                                                      \
            if (active) {                                                                        \
                if (slot == 0) {                                                                 \
                    v = r_re * r_re + r_im * r_im;                                               \
                } else {                                                                         \
                    const int k = (slot - 1) / per_atom, q = (slot - 1) - k * per_atom;          \
                    if (k != cached_k) { /* an atom's 2d + 1 slots are consecutive */            \
                        double a_re, a_im;                                                       \
                        SC_ATOM_AT(T, SINCOS, EXP);                                              \
                        p_re = a_re * r_re + a_im * r_im;                                        \
                        p_im = a_re * r_im - a_im * r_re;                                        \
                        cached_k = k;                                                            \
                    }                                                                            \
                    if (q == 0) v = p_re;                                                        \
                    else if (q <= d) v = (double)omega[(long long)(q - 1) * m + j] * p_im;       \
                    else v = (double)omega_sq[(long long)(q - 1 - d) * m + j] * p_re;            \
                }                                                                                \
            }                                                                                    \
            red[c * blockDim.x + threadIdx.x] = v;                                               \
        }                                                                                        \
        __syncthreads();                                                                         \
        for (int s = blockDim.x / 2; s > 0; s /= 2) {                                            \
            if (threadIdx.x < s)                                                                 \
                for (int c = 0; c < cn; ++c)                                                     \
                    red[c * blockDim.x + threadIdx.x] += red[c * blockDim.x + threadIdx.x + s];  \
            __syncthreads();                                                                     \
        }                                                                                        \
        if (threadIdx.x == 0)                                                                    \
            for (int c = 0; c < cn; ++c) partial[out0 + c0 + c] = red[c * blockDim.x];           \
        __syncthreads();                                                                         \
    }                                                                                            \
}

// Atom k at frequency j into (a_re, a_im): amplitude gain * exp(-0.5 s2 . omega_j^2)
// (Gaussians, when variances != 0), phase mu . omega_j + xi_j.
#define SC_ATOM_AT(T, SINCOS, EXP)                                                               \
    do {                                                                                         \
        T phase = dither[j];                                                                     \
        T expo = (T)0;                                                                           \
        for (int l = 0; l < d; ++l) {                                                            \
            phase += (T)means[(long long)k * d + l] * omega[(long long)l * m + j];               \
            if (variances != 0)                                                                  \
                expo += (T)(-0.5 * variances[(long long)k * d + l]) * omega_sq[(long long)l * m + j]; \
        }                                                                                        \
        T s_, c_;                                                                                \
        SINCOS(phase, &s_, &c_);                                                                 \
        const double amp = variances != 0 ? gain * (double)EXP(expo) : gain;                     \
        a_re = amp * (double)c_;                                                                 \
        a_im = amp * (double)s_;                                                                 \
    } while (0)

SC_ATOM_KERNEL(atom_objective_f32, float, sincosf, expf)
SC_ATOM_KERNEL(atom_objective_f64, double, sincos, exp)
