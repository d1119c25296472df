// lrn.cu: local response normalisation across channels, forward and backward, each one kernel.
//
// Convention: PyTorch's (torch.nn.functional.local_response_norm), also Caffe's and cuDNN's:
//   s_c = k + (alpha / size) * sum_{c' = c - lo}^{c + hi} x_{c'}^2,   lo = size / 2, hi = (size - 1) / 2
//   y_c = x_c * s_c^(-beta)
// with channels outside [0, C) counting as zeros and the divisor staying `size` at the edges
// (lo != hi when size is even). The paper's alpha = 1e-4 (k = 2, size = 5, beta = 0.75) is
// alpha = 5e-4 here: the paper does not divide by size (Krizhevsky et al. 2012, section 3.3).
//
// Backward: channel c lies in the window of c' iff c' in [c - hi, c + lo] (the mirrored window), so
//   dx_c = g_c s_c^(-beta) - (2 alpha beta / size) x_c * sum_{c' = c - hi}^{c + lo} g_{c'} y_{c'} / s_{c'}
// and y_{c'} / s_{c'} = x_{c'} s_{c'}^(-beta - 1) is recomputed from the saved scale s instead of
// reading y: the backward reads x, g, s and writes dx (4 streams instead of 5).
//
// Layout: x, y, s, g, dx are (N, C, H, W) contiguous float32. One thread per (n, h, w) column walks
// the C channels, sliding the window sum: add the channel that enters, subtract the one that
// leaves. Consecutive threads hold consecutive w, so every load and store is coalesced; the second
// read of a channel (when it leaves the window, `size` channels later) hits L1, so DRAM sees x read
// once and y, s written once. The sliding sums are float32: their rounding error is relative to
// the largest window sum met along the column (negligible against k >= 1; see kernels/README.md).
//
// Build:  nvcc -arch=sm_90 -c kernels/lrn.cu
//         cupy.RawModule(code=src, options=("-std=c++17", "-I<kernels dir>"))   (minialex.cuda)
//
// | version | kernels                          | idea                                             |
// |---------|----------------------------------|--------------------------------------------------|
// | 1       | lrn_forward_v1, lrn_backward_v1  | thread per column, sliding window over channels, |
// |         |                                  | y and s written in the same pass                 |
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
lrn_forward_v1(const float* __restrict__ x, float* __restrict__ y, float* __restrict__ scale,
               int N, int C, int HW, int size, float alpha, float beta, float k) {
    const long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // (n, hw)
    if (col >= (long long)N * HW) return;
    const int n = (int)(col / HW);
    const int hw = (int)(col - (long long)n * HW);
    const long long base = (long long)n * C * HW + hw;  // x[n, 0, h, w]
    const int lo = size / 2, hi = (size - 1) / 2;
    const float a = alpha / size;
    // Window of channel 0: [-lo, hi] clipped to [0, C).
    float sum = 0.0f;
    for (int c = 0; c <= min(hi, C - 1); ++c) {
        const float v = __ldg(&x[base + (long long)c * HW]);
        sum += v * v;
    }
    for (int c = 0; c < C; ++c) {
        const float xc = __ldg(&x[base + (long long)c * HW]);
        const float s = k + a * sum;
        y[base + (long long)c * HW] = xc * __powf(s, -beta);
        scale[base + (long long)c * HW] = s;
        // Slide to c + 1: channel c + 1 + hi enters, channel c - lo leaves.
        const int enter = c + 1 + hi, leave = c - lo;
        if (enter < C) {
            const float v = __ldg(&x[base + (long long)enter * HW]);
            sum += v * v;
        }
        if (leave >= 0) {
            const float v = __ldg(&x[base + (long long)leave * HW]);
            sum -= v * v;
        }
    }
}

// t_c = g_c * x_c * s_c^(-beta - 1)  (= g_c y_c / s_c)
__device__ __forceinline__ float lrn_t(const float* __restrict__ x, const float* __restrict__ s,
                                       const float* __restrict__ g, long long i, float beta) {
    return __ldg(&g[i]) * __ldg(&x[i]) * __powf(__ldg(&s[i]), -beta - 1.0f);
}

extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
lrn_backward_v1(const float* __restrict__ x, const float* __restrict__ scale,
                const float* __restrict__ g, float* __restrict__ dx, int N, int C, int HW,
                int size, float alpha, float beta) {
    const long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= (long long)N * HW) return;
    const int n = (int)(col / HW);
    const int hw = (int)(col - (long long)n * HW);
    const long long base = (long long)n * C * HW + hw;
    const int lo = size / 2, hi = (size - 1) / 2;
    const float coef = 2.0f * alpha * beta / size;
    // Mirrored window of channel 0: [-hi, lo] clipped to [0, C).
    float sum = 0.0f;
    for (int c = 0; c <= min(lo, C - 1); ++c) sum += lrn_t(x, scale, g, base + (long long)c * HW, beta);
    for (int c = 0; c < C; ++c) {
        const long long i = base + (long long)c * HW;
        const float xc = __ldg(&x[i]);
        dx[i] = __ldg(&g[i]) * __powf(__ldg(&scale[i]), -beta) - coef * xc * sum;
        const int enter = c + 1 + lo, leave = c - hi;
        if (enter < C) sum += lrn_t(x, scale, g, base + (long long)enter * HW, beta);
        if (leave >= 0) sum -= lrn_t(x, scale, g, base + (long long)leave * HW, beta);
    }
}
