// Host emulation of the CUDA built-ins sketch.cu uses, so the very same
// kernel source runs on a CPU in the tests: every CUDA thread of a block is a
// std::thread, __syncthreads is a std::barrier, shared memory a per-block buffer.
#pragma once
#define SC_EMULATION 1
#include <barrier>
#include <cmath>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline thread_local unsigned char* sc_emu_shared_ptr = nullptr;
inline thread_local std::barrier<>* sc_emu_barrier = nullptr;

#define __global__
#define __restrict__
#define __align__(n)
#define SC_DECLARE_SHARED(name) unsigned char* name = sc_emu_shared_ptr
#define SC_UNROLL
#define SC_INF (std::numeric_limits<double>::infinity())

inline void __syncthreads() { sc_emu_barrier->arrive_and_wait(); }
inline void sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
inline void sincos(double x, double* s, double* c) { *s = std::sin(x); *c = std::cos(x); }
using std::signbit;

// Runs `kernel` over the grid, one block at a time, its threads concurrently.
inline void sc_emu_launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = block;
    const unsigned nthreads = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::vector<unsigned char> shared(shared_bytes + 16);
                std::barrier<> bar(nthreads);
                std::vector<std::thread> threads;
                threads.reserve(nthreads);
                for (unsigned tz = 0; tz < block.z; ++tz)
                    for (unsigned ty = 0; ty < block.y; ++ty)
                        for (unsigned tx = 0; tx < block.x; ++tx)
                            threads.emplace_back([&, tx, ty, tz, bx, by, bz] {
                                threadIdx = dim3{tx, ty, tz};
                                blockIdx = dim3{bx, by, bz};
                                sc_emu_shared_ptr = shared.data();
                                sc_emu_barrier = &bar;
                                kernel();
                            });
                for (auto& t : threads) t.join();
            }
}
