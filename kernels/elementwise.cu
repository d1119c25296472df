// elementwise.cu: the small memory-bound kernels around AlexNet's GEMMs.
//
//   bias_act_forward         y = act(x + b)            act = ReLU or identity; b per channel
//   bias_act_backward_nchw   gx = gy * [y > 0] (ReLU), partial sums of the bias gradient  (S > 1)
//   bias_act_backward_nc     same for (N, C) activations of the fully connected layers    (S = 1)
//   sum_partials             db[c] = sum over chunks of partial[chunk, c] (fixed order)
//   dropout_apply            y = x * mask / (1 - p)   (inverted dropout; also its backward)
//   softmax_xent_forward     p = softmax(z), loss_n = logsumexp(z_n) - z_n[label_n]
//   softmax_xent_backward    gz = (p - onehot(label)) * grad_loss_n
//   sgd_momentum             v = m v - wd lr w - lr g;  w = w + v   (the paper's rule, one pass)
//
// Layout: x is (N, C, S) with S = H*W (S = 1 for fully connected layers), contiguous, float32.
// The bias gradient is reduced without atomics: each block owns one (channel, batch chunk) pair
// and writes one partial sum; sum_partials adds the chunks in a fixed order, so results are
// bitwise reproducible from run to run.
//
// Build:  nvcc -arch=sm_90 -c kernels/elementwise.cu            (a check that it compiles)
//         cupy.RawModule(code=src, options=("-std=c++17", "-I<kernels dir>"))   (minialex.cuda)
// Launch configurations: minialex/cuda/launch/elementwise.py.  Tests: tests/test_kernels_emulated.py.
//
// | version | kernels                         | idea                                               |
// |---------|---------------------------------|----------------------------------------------------|
// | 1       | all of the above                | grid-stride loops, one pass over memory, no atomics |
#include "common.cuh"

// ---- bias + activation -----------------------------------------------------------------------
// x, y: (rows, cols). bias_per_col = 0: rows = N*C, cols = S, channel = row % C.
//                     bias_per_col = 1: rows = N,   cols = C, channel = col.
// Grid: x strides over columns, y over rows (no division per element). y may alias x (in place).
extern "C" __global__ void bias_act_forward(const float* x, const float* __restrict__ b, float* y,
                                            int rows, int cols, int C, int bias_per_col,
                                            int has_bias, int relu) {
    for (int row = blockIdx.y; row < rows; row += gridDim.y) {
        const float row_bias = (has_bias && !bias_per_col) ? __ldg(&b[row % C]) : 0.0f;
        const long long base = (long long)row * cols;
        for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += gridDim.x * blockDim.x) {
            float v = x[base + col] + ((has_bias && bias_per_col) ? __ldg(&b[col]) : row_bias);
            if (relu) v = fmaxf(v, 0.0f);
            y[base + col] = v;
        }
    }
}

// Backward of bias_act_forward for (N, C, S) activations, S > 1 (convolutions).
// Grid (C, chunks): block (c, k) handles images [k*n_per_chunk, (k+1)*n_per_chunk) of channel c:
// gx = relu ? gy * [y > 0] : (not written), partial[k*C + c] = sum of the (masked) gradient.
extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
bias_act_backward_nchw(const float* __restrict__ gy, const float* __restrict__ y,
                       float* __restrict__ gx, float* __restrict__ partial, int N, int C, int S,
                       int n_per_chunk, int relu) {
    __shared__ float buf[MINIALEX_THREADS];
    const int c = blockIdx.x;
    const int n_begin = blockIdx.y * n_per_chunk;
    const int n_end = min(N, n_begin + n_per_chunk);
    // Walk the (n, s) pairs of this chunk with stride blockDim.x, carrying (n, s) incrementally.
    int n = n_begin, s = threadIdx.x;
    while (s >= S) { s -= S; ++n; }
    float acc = 0.0f;
    while (n < n_end) {
        const long long i = ((long long)n * C + c) * S + s;
        float g = gy[i];
        if (relu) {
            g = y[i] > 0.0f ? g : 0.0f;
            gx[i] = g;
        }
        acc += g;
        s += blockDim.x;
        while (s >= S) { s -= S; ++n; }
    }
    const float total = block_sum<MINIALEX_THREADS>(acc, buf);
    if (threadIdx.x == 0) partial[(long long)blockIdx.y * C + c] = total;
}

// Same for (N, C) activations (fully connected layers): a thread per channel, coalesced over C.
// Grid (ceil(C / blockDim.x), chunks).
extern "C" __global__ void bias_act_backward_nc(const float* __restrict__ gy,
                                                const float* __restrict__ y,
                                                float* __restrict__ gx,
                                                float* __restrict__ partial, int N, int C,
                                                int n_per_chunk, int relu) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int n_begin = blockIdx.y * n_per_chunk;
    const int n_end = min(N, n_begin + n_per_chunk);
    float acc = 0.0f;
    for (int n = n_begin; n < n_end; ++n) {
        const long long i = (long long)n * C + c;
        float g = gy[i];
        if (relu) {
            g = y[i] > 0.0f ? g : 0.0f;
            gx[i] = g;
        }
        acc += g;
    }
    partial[(long long)blockIdx.y * C + c] = acc;
}

// out[c] = sum_k partial[k*C + c], k = 0 .. chunks-1 in order.
extern "C" __global__ void sum_partials(const float* __restrict__ partial, float* __restrict__ out,
                                        int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; ++k) acc += partial[(long long)k * C + c];
    out[c] = acc;
}

// ---- dropout -----------------------------------------------------------------------------------
// y = x * mask * scale with mask a bool/uint8 array (1 = keep) and scale = 1 / (1 - p).
// The backward is the same call on the gradient with the same mask.
extern "C" __global__ void dropout_apply(const float* x, const unsigned char* __restrict__ mask,
                                         float* y, float scale, long long total) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        y[i] = mask[i] ? x[i] * scale : 0.0f;
}

// ---- softmax cross-entropy ---------------------------------------------------------------------
// logits, probs: (N, K); labels: (N,) int64; loss: (N,). One block per row:
//   m = max_j z_j,  l = sum_j exp(z_j - m),  p_j = exp(z_j - m) / l,
//   loss = log(l) + m - z_label   (NaN when the label is outside [0, K)).
extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
softmax_xent_forward(const float* __restrict__ logits, const long long* __restrict__ labels,
                     float* __restrict__ probs, float* __restrict__ loss, int N, int K) {
    __shared__ float buf[MINIALEX_THREADS];
    const int row = blockIdx.x;  // gridDim.x == N
    if (row >= N) return;        // (whole block: no thread is left waiting at a barrier)
    const float* z = logits + (long long)row * K;
    float m = -MINIALEX_INF;
    for (int j = threadIdx.x; j < K; j += blockDim.x) m = fmaxf(m, z[j]);
    m = block_max<MINIALEX_THREADS>(m, buf);
    float l = 0.0f;
    for (int j = threadIdx.x; j < K; j += blockDim.x) l += expf(z[j] - m);
    l = block_sum<MINIALEX_THREADS>(l, buf);
    const float inv_l = 1.0f / l;
    float* p = probs + (long long)row * K;
    for (int j = threadIdx.x; j < K; j += blockDim.x) p[j] = expf(z[j] - m) * inv_l;
    if (threadIdx.x == 0) {
        const long long label = labels[row];
        loss[row] = (label >= 0 && label < K) ? logf(l) + m - z[label] : __int_as_float(0x7fc00000);
    }
}

// gz[n, j] = (p[n, j] - [j == label_n]) * grad_loss[n]. Grid: x over classes, y over rows.
extern "C" __global__ void softmax_xent_backward(const float* __restrict__ probs,
                                                 const long long* __restrict__ labels,
                                                 const float* __restrict__ grad_loss,
                                                 float* __restrict__ gz, int N, int K) {
    for (int row = blockIdx.y; row < N; row += gridDim.y) {
        const long long label = labels[row];
        const float g = grad_loss[row];
        const long long base = (long long)row * K;
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < K; j += gridDim.x * blockDim.x)
            gz[base + j] = (probs[base + j] - (j == label ? 1.0f : 0.0f)) * g;
    }
}

// ---- momentum SGD ------------------------------------------------------------------------------
// The paper's update, exactly (Krizhevsky et al. 2012, section 5):
//   v <- momentum * v - weight_decay * lr * w - lr * g ;  w <- w + v
extern "C" __global__ void sgd_momentum(float* __restrict__ w, const float* __restrict__ g,
                                        float* __restrict__ v, float lr, float momentum,
                                        float weight_decay, long long total) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float wi = w[i];
        const float vi = momentum * v[i] - weight_decay * lr * wi - lr * g[i];
        v[i] = vi;
        w[i] = wi + vi;
    }
}
