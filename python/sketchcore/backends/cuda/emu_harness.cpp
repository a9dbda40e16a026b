// C entry points running sketch.cu's kernels under cuda_emu.h (tests only).
#include "cuda_emu.h"
#include "sketch.cu"

template <class T, class K>
static void run(K kernel, const T* x, long long rs, long long cs, int n, int d, const T* omega, const T* dither,
                const double* weights, int m, int quantize, int rows_per_block, double* out) {
    const int row_blocks = n > 0 ? (n + rows_per_block - 1) / rows_per_block : 0;
    std::vector<double> partial((size_t)row_blocks * 2 * m, 0.0);
    if (row_blocks > 0) {
        dim3 grid{(unsigned)((m + SC_BF - 1) / SC_BF), (unsigned)row_blocks, 1};
        sc_emu_launch(grid, dim3{(unsigned)SC_DENSE_THREADS, 1, 1}, SC_DENSE_SHARED(T), [&] {
            kernel(x, rs, cs, n, d, omega, dither, weights, m, rows_per_block, quantize, partial.data());
        });
    }
    const int m2 = 2 * m;
    sc_emu_launch(dim3{(unsigned)((m2 + 127) / 128), 1, 1}, dim3{128, 1, 1}, 0,
                  [&] { reduce_partials(partial.data(), row_blocks, m2, out); });
}

extern "C" void emu_sketch_dense_f32(const float* x, long long rs, long long cs, int n, int d, const float* omega,
                                     const float* dither, const double* weights, int m, int quantize,
                                     int rows_per_block, double* out) {
    run<float>(sketch_dense_f32, x, rs, cs, n, d, omega, dither, weights, m, quantize, rows_per_block, out);
}

extern "C" void emu_sketch_dense_f64(const double* x, long long rs, long long cs, int n, int d, const double* omega,
                                     const double* dither, const double* weights, int m, int quantize,
                                     int rows_per_block, double* out) {
    run<double>(sketch_dense_f64, x, rs, cs, n, d, omega, dither, weights, m, quantize, rows_per_block, out);
}

template <class T, class K>
static void run_structured(K kernel, const T* x, long long rs, long long cs, int n, int d, int p, const T* signs,
                           const T* scales, const T* dither, const double* weights, int m, int quantize, int threads,
                           int rows_per_block, double* out) {
    const int row_blocks = n > 0 ? (n + rows_per_block - 1) / rows_per_block : 0;
    const int op_blocks = (m + p - 1) / p;
    std::vector<double> partial((size_t)row_blocks * 2 * m, 0.0);
    if (row_blocks > 0) {
        dim3 grid{(unsigned)op_blocks, (unsigned)row_blocks, 1};
        sc_emu_launch(grid, dim3{(unsigned)threads, 1, 1}, (size_t)p * sizeof(T), [&] {
            kernel(x, rs, cs, n, d, p, signs, scales, dither, weights, m, rows_per_block, quantize, partial.data());
        });
    }
    const int m2 = 2 * m;
    sc_emu_launch(dim3{(unsigned)((m2 + threads - 1) / threads), 1, 1}, dim3{(unsigned)threads, 1, 1}, 0,
                  [&] { reduce_partials(partial.data(), row_blocks, m2, out); });
}

extern "C" void emu_sketch_structured_f32(const float* x, long long rs, long long cs, int n, int d, int p,
                                          const float* signs, const float* scales, const float* dither,
                                          const double* weights, int m, int quantize, int threads,
                                          int rows_per_block, double* out) {
    run_structured<float>(sketch_structured_f32, x, rs, cs, n, d, p, signs, scales, dither, weights, m, quantize,
                          threads, rows_per_block, out);
}

extern "C" void emu_sketch_structured_f64(const double* x, long long rs, long long cs, int n, int d, int p,
                                          const double* signs, const double* scales, const double* dither,
                                          const double* weights, int m, int quantize, int threads,
                                          int rows_per_block, double* out) {
    run_structured<double>(sketch_structured_f64, x, rs, cs, n, d, p, signs, scales, dither, weights, m, quantize,
                           threads, rows_per_block, out);
}

template <class T, class K>
static void run_atoms(K kernel, const T* omega, const T* omega_sq, const T* dither, int d, int m, const double* means,
                      const double* variances, const double* alpha, int n_atoms, double gain, const double* z_re,
                      const double* z_im, int threads, double* out) {
    const int blocks = (m + threads - 1) / threads;
    const int total = 1 + n_atoms * (1 + 2 * d);
    std::vector<double> partial((size_t)blocks * total, 0.0);
    if (blocks > 0) {
        sc_emu_launch(dim3{(unsigned)blocks, 1, 1}, dim3{(unsigned)threads, 1, 1},
                      (size_t)SC_GRAD_CHUNK * threads * sizeof(double), [&] {
                          kernel(omega, omega_sq, dither, d, m, means, variances, alpha, n_atoms, gain, z_re, z_im,
                                 partial.data());
                      });
    }
    sc_emu_launch(dim3{(unsigned)((total + threads - 1) / threads), 1, 1}, dim3{(unsigned)threads, 1, 1}, 0,
                  [&] { reduce_partials(partial.data(), blocks, total, out); });
}

extern "C" void emu_atom_objective_f32(const float* omega, const float* omega_sq, const float* dither, int d, int m,
                                       const double* means, const double* variances, const double* alpha, int n_atoms,
                                       double gain, const double* z_re, const double* z_im, int threads, double* out) {
    run_atoms<float>(atom_objective_f32, omega, omega_sq, dither, d, m, means, variances, alpha, n_atoms, gain, z_re,
                     z_im, threads, out);
}

extern "C" void emu_atom_objective_f64(const double* omega, const double* omega_sq, const double* dither, int d, int m,
                                       const double* means, const double* variances, const double* alpha, int n_atoms,
                                       double gain, const double* z_re, const double* z_im, int threads, double* out) {
    run_atoms<double>(atom_objective_f64, omega, omega_sq, dither, d, m, means, variances, alpha, n_atoms, gain, z_re,
                      z_im, threads, out);
}

// Raw launches with a caller-given grid (the CuPy stand-in of the tests calls
// these exactly as sketch_cupy calls the real kernels).
#define SC_EMU_LAUNCHER(KERNEL, PARAMS, ARGS)                                                    \
    extern "C" void emu_launch_##KERNEL(unsigned gx, unsigned gy, unsigned bx, size_t shared, PARAMS) { \
        sc_emu_launch(dim3{gx, gy, 1}, dim3{bx, 1, 1}, shared, [&] { KERNEL ARGS; });             \
    }
#define SC_P(...) __VA_ARGS__

#define SC_DENSE_PARAMS(T) SC_P(const T* x, long long rs, long long cs, int n, int d, const T* omega, const T* dither, \
    const double* weights, int m, int rows_per_block, int quantize, double* partial)
#define SC_DENSE_ARGS (x, rs, cs, n, d, omega, dither, weights, m, rows_per_block, quantize, partial)
SC_EMU_LAUNCHER(sketch_dense_f32, SC_DENSE_PARAMS(float), SC_DENSE_ARGS)
SC_EMU_LAUNCHER(sketch_dense_f64, SC_DENSE_PARAMS(double), SC_DENSE_ARGS)

#define SC_BOX_PARAMS(T) SC_P(const T* x, long long rs, long long cs, int n, int d, int rows_per_block, \
    double* lower, double* upper)
#define SC_BOX_ARGS (x, rs, cs, n, d, rows_per_block, lower, upper)
SC_EMU_LAUNCHER(data_box_f32, SC_BOX_PARAMS(float), SC_BOX_ARGS)
SC_EMU_LAUNCHER(data_box_f64, SC_BOX_PARAMS(double), SC_BOX_ARGS)

#define SC_STRUCT_PARAMS(T) SC_P(const T* x, long long rs, long long cs, int n, int d, int p, const T* signs, \
    const T* scales, const T* dither, const double* weights, int m, int rows_per_block, int quantize, double* partial)
#define SC_STRUCT_ARGS (x, rs, cs, n, d, p, signs, scales, dither, weights, m, rows_per_block, quantize, partial)
SC_EMU_LAUNCHER(sketch_structured_f32, SC_STRUCT_PARAMS(float), SC_STRUCT_ARGS)
SC_EMU_LAUNCHER(sketch_structured_f64, SC_STRUCT_PARAMS(double), SC_STRUCT_ARGS)

#define SC_ATOM_PARAMS(T) SC_P(const T* omega, const T* omega_sq, const T* dither, int d, int m, const double* means, \
    const double* variances, const double* alpha, int n_atoms, double gain, const double* z_re, const double* z_im, \
    double* partial)
#define SC_ATOM_ARGS (omega, omega_sq, dither, d, m, means, variances, alpha, n_atoms, gain, z_re, z_im, partial)
SC_EMU_LAUNCHER(atom_objective_f32, SC_ATOM_PARAMS(float), SC_ATOM_ARGS)
SC_EMU_LAUNCHER(atom_objective_f64, SC_ATOM_PARAMS(double), SC_ATOM_ARGS)

SC_EMU_LAUNCHER(reduce_partials, SC_P(const double* partial, int row_blocks, int m2, double* out),
                (partial, row_blocks, m2, out))
