// common.cuh: small helpers shared by the minialex kernels.
//
// Everything here must compile three ways: with nvcc, with NVRTC (CuPy's RawModule, which has no
// C/C++ standard headers, so nothing here includes any), and with g++ against kernels/emu/cuda_emu.h
// (the CPU emulation used by tests/test_kernels_emulated.py). Hence: no <cmath>, no INFINITY, no
// isnan, no size_t; 64-bit offsets are `long long`.
#pragma once

// +infinity as a float, without math.h (NVRTC has none).
#define MINIALEX_INF (__int_as_float(0x7f800000))

// Threads per block used by every 1-D kernel; THREADS in minialex/cuda/launch/common.py is the same number.
#define MINIALEX_THREADS 256

__device__ __forceinline__ int ceil_div_i(int a, int b) { return (a + b - 1) / b; }

struct SumOp { __device__ float operator()(float a, float b) const { return a + b; } };
struct MaxOp { __device__ float operator()(float a, float b) const { return fmaxf(a, b); } };

// Reduce one float per thread over a block of exactly BLOCK threads (a power of two) through
// shared memory: a plain tree, deterministic (the order of operations depends only on BLOCK).
// Every thread of the block must call it (it contains __syncthreads); every thread gets the
// result. `buf` is a __shared__ array of BLOCK floats declared by the calling kernel.
template <int BLOCK, class Op>
__device__ __forceinline__ float block_reduce(float v, float* buf, Op op) {
    const int t = threadIdx.x;
    buf[t] = v;
    __syncthreads();
    for (int half = BLOCK / 2; half > 0; half /= 2) {
        if (t < half) buf[t] = op(buf[t], buf[t + half]);
        __syncthreads();
    }
    const float total = buf[0];
    __syncthreads();  // buf may be reused by the caller right after
    return total;
}

template <int BLOCK>
__device__ __forceinline__ float block_sum(float v, float* buf) { return block_reduce<BLOCK>(v, buf, SumOp()); }

template <int BLOCK>
__device__ __forceinline__ float block_max(float v, float* buf) { return block_reduce<BLOCK>(v, buf, MaxOp()); }
