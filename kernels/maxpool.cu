// maxpool.cu: 2-D max-pooling, forward (with argmax) and a deterministic backward.
//
// Forward, one thread per output element (n, c, oh, ow):
//   y[n, c, oh, ow] = max over (i, j) in [0, kH) x [0, kW) of x[n, c, oh*sH - pH + i, ow*sW - pW + j]
//   argmax[n, c, oh, ow] = h * W + w of that maximum, an int32 index into the (H, W) plane
//   (PyTorch's convention). Positions in the padding count as -inf (they are skipped). Ties: the
//   first maximum in scan order (row by row) wins. NaN propagates: the first NaN in the window
//   becomes the maximum. A window lying entirely in the padding gives y = -inf and argmax = -1.
// Output sizes (floor or ceil_mode, as PyTorch computes them): minialex/shapes.py, pool_output_size;
// launch configurations: minialex/cuda/launch/maxpool.py.
// AlexNet's pooling is overlapping, kernel 3, stride 2 (Krizhevsky et al. 2012, section 3.4).
//
// Backward, one thread per input element (n, c, h, w): gather
//   dx[n, c, h, w] = sum of dy[n, c, oh, ow] over the output windows containing (h, w) whose
//   argmax is (h, w), visited in a fixed order: no atomics, bitwise reproducible.
//   The windows containing row h are oh in [oh_lo, oh_hi] with
//   oh_lo = h + pH < kH ? 0 : (h + pH - kH) / sH + 1,  oh_hi = min((h + pH) / sH, OH - 1).
//
// Build:  nvcc -arch=sm_90 -c kernels/maxpool.cu
//         cupy.RawModule(code=src, options=("-std=c++17", "-I<kernels dir>"))   (minialex.cuda)
//
// | version | kernels                                  | idea                                    |
// |---------|------------------------------------------|-----------------------------------------|
// | 1       | maxpool_forward_v1, maxpool_backward_v1  | thread per output / per input element,  |
// |         |                                          | argmax saved, gather backward           |
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
maxpool_forward_v1(const float* __restrict__ x, float* __restrict__ y, int* __restrict__ argmax,
                   int planes, int H, int W, int OH, int OW, int kH, int kW, int sH, int sW,
                   int pH, int pW) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // (plane, oh, ow)
    if (i >= (long long)planes * OH * OW) return;
    const int ow = (int)(i % OW);
    const long long t = i / OW;
    const int oh = (int)(t % OH);
    const long long plane = t / OH;
    const float* xp = x + plane * H * W;
    const int h0 = oh * sH - pH, w0 = ow * sW - pW;
    float best = -MINIALEX_INF;
    int arg = -1;
    for (int h = max(h0, 0); h < min(h0 + kH, H); ++h) {
        for (int w = max(w0, 0); w < min(w0 + kW, W); ++w) {
            const float v = __ldg(&xp[h * W + w]);
            // Strict '>': the first maximum wins. The first in-window element is always taken,
            // so a window of -inf still points at a real element; a NaN wins and then stays.
            if (arg < 0 || v > best || (v != v && best == best)) {
                best = v;
                arg = h * W + w;
            }
        }
    }
    y[i] = best;
    argmax[i] = arg;
}

extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
maxpool_backward_v1(const float* __restrict__ gy, const int* __restrict__ argmax,
                    float* __restrict__ gx, int planes, int H, int W, int OH, int OW, int kH,
                    int kW, int sH, int sW, int pH, int pW) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // (plane, h, w)
    if (i >= (long long)planes * H * W) return;
    const int w = (int)(i % W);
    const long long t = i / W;
    const int h = (int)(t % H);
    const long long plane = t / H;
    const int hp = h + pH, wp = w + pW;
    const int oh_lo = hp < kH ? 0 : (hp - kH) / sH + 1;
    const int oh_hi = min(hp / sH, OH - 1);
    const int ow_lo = wp < kW ? 0 : (wp - kW) / sW + 1;
    const int ow_hi = min(wp / sW, OW - 1);
    const long long obase = plane * OH * OW;
    const int me = h * W + w;
    float acc = 0.0f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
        for (int ow = ow_lo; ow <= ow_hi; ++ow) {
            const long long o = obase + (long long)oh * OW + ow;
            if (__ldg(&argmax[o]) == me) acc += __ldg(&gy[o]);
        }
    gx[i] = acc;
}
