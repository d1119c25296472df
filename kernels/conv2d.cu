// conv2d.cu: 2-D convolution (stride, zero padding, groups), forward and both backward passes.
//
//   y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oh*sH - pH + i, ow*sW - pW + j]
//
// x (N, C, H, W), w (O, Cg, kH, kW) with Cg = C / groups, y (N, O, OH, OW), OH = (H + 2 pH - kH) / sH + 1;
// output channel o belongs to group g = o / Og (Og = O / groups) and sees input channels
// [g*Cg, (g+1)*Cg). All float32, contiguous. Per group this is a GEMM:
//   forward        Y_g  (Og x N*OH*OW)  = W_g (Og x Kg)     @ X^_g (Kg x N*OH*OW),  Kg = Cg*kH*kW
//   backward-data  dX_g (Cg x N*H*W)    = W_g^T (Cg x Og*kH*kW, gathered) @ dY^_g (gathered)
//   backward-weight dW_g (Og x Kg)      = dY_g (Og x N*OH*OW) @ X^_g^T (N*OH*OW x Kg)
// where X^ is the im2col matrix: row (c, i, j), column (n, oh, ow).
//
// Build:  nvcc -arch=sm_90 -Xptxas -v -c kernels/conv2d.cu      (registers/spills: kernels/README.md)
//         cupy.RawModule(code=src, options=("-std=c++17", "-I<kernels dir>"))   (minialex.cuda)
// Launch configurations (grid, block, arguments): minialex/cuda/launch/conv2d.py.
//
// | version | kernels                                   | idea                                      |
// |---------|-------------------------------------------|-------------------------------------------|
// | 1       | im2col_v1, col2im_v1                      | materialise X^ per image chunk and let    |
// |         |                                           | cuBLAS (cupy.matmul) do the GEMMs; col2im |
// |         |                                           | gathers per input pixel (no atomics)      |
// | 2       | conv2d_fwd_v2, conv2d_bwd_data_v2,        | implicit GEMM: X^ tiles built on the fly  |
// |         | conv2d_bwd_weight_v2                      | in shared memory; 64x64 block tile, K tile|
// |         |                                           | 16, 4x4 outputs per thread, 256 threads,  |
// |         |                                           | double-buffered shared memory            |
// | 3       | conv2d_fwd_v3, conv2d_bwd_data_v3,        | same engine, 128x128 block tile, K tile 8,|
// |         | conv2d_bwd_weight_v3                      | 8x8 outputs per thread (2x the FMAs per   |
// |         |                                           | shared-memory load of version 2)          |
//
// Backward-weight splits the reduction over N*OH*OW into `splits` chunks (grid z = groups*splits)
// when there are few output tiles; each split writes its own slice of a workspace and
// sum_partials (elementwise.cu) adds the slices in a fixed order: no atomics, reproducible.
// Backward-data gathers, per input pixel, the output pixels whose window covers it; with stride s
// only 1/s^2 of the gathered K entries are non-zero (fine for AlexNet: only conv1 has stride 4,
// and the input image needs no gradient).
#include "common.cuh"

// ---- version 1: im2col / col2im ---------------------------------------------------------------
// cols: (n_images, C*kH*kW, OH*OW), row (c, i, j) = c*kH*kW + i*kW + j. x points at the first image
// of the chunk. One thread per (n, c, oh, ow) writes its kH*kW entries (Caffe's layout).
extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
im2col_v1(const float* __restrict__ x, float* __restrict__ cols, int n_images, int C, int H,
          int W, int kH, int kW, int sH, int sW, int pH, int pW, int OH, int OW) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // (n, c, oh, ow)
    const int P = OH * OW;
    if (i >= (long long)n_images * C * P) return;
    const int p = (int)(i % P);
    const long long nc = i / P;  // n * C + c
    const int oh = p / OW, ow = p - (p / OW) * OW;
    const float* xp = x + nc * H * W;
    float* cp = cols + nc * kH * kW * P + p;  // row c*kH*kW of image n: (n*C + c)*kH*kW
    const int h0 = oh * sH - pH, w0 = ow * sW - pW;
    for (int r = 0; r < kH; ++r)
        for (int s = 0; s < kW; ++s) {
            const int h = h0 + r, w = w0 + s;
            const bool inside = (unsigned)h < (unsigned)H && (unsigned)w < (unsigned)W;
            cp[(long long)(r * kW + s) * P] = inside ? __ldg(&xp[h * W + w]) : 0.0f;
        }
}

// dx[n, c, h, w] = sum of cols[n, (c, i, j), (oh, ow)] over the (i, j) with h = oh*sH - pH + i and
// w = ow*sW - pW + j for an output pixel (oh, ow): a gather, one thread per input element.
extern "C" __global__ void __launch_bounds__(MINIALEX_THREADS)
col2im_v1(const float* __restrict__ cols, float* __restrict__ dx, int n_images, int C, int H,
          int W, int kH, int kW, int sH, int sW, int pH, int pW, int OH, int OW) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // (n, c, h, w)
    if (i >= (long long)n_images * C * H * W) return;
    const int hw = (int)(i % (H * W));
    const long long nc = i / (H * W);
    const int h = hw / W, w = hw - (hw / W) * W;
    const int P = OH * OW;
    const float* cp = cols + nc * kH * kW * P;
    float acc = 0.0f;
    for (int r = 0; r < kH; ++r) {
        const int th = h + pH - r;  // = oh * sH
        if (th < 0 || th % sH != 0 || th / sH >= OH) continue;
        for (int s = 0; s < kW; ++s) {
            const int tw = w + pW - s;
            if (tw < 0 || tw % sW != 0 || tw / sW >= OW) continue;
            acc += cp[(long long)(r * kW + s) * P + (th / sH) * OW + tw / sW];
        }
    }
    dx[i] = acc;
}

// ---- versions 2 and 3: implicit GEMM --------------------------------------------------------
// Offsets are 32-bit ints (fewer registers): every tensor must have fewer than 2^31 elements,
// which conv_geometry in minialex/cuda/launch/conv2d.py checks (AlexNet's largest, conv1's output
// at batch 128, has 37 M).
struct ConvGeom {
    int N, C, H, W, O, kH, kW, sH, sW, pH, pW, OH, OW, G;
    int Cg, Og, KK, P;  // derived: channels per group, kernel area, output plane size
    __device__ ConvGeom(int N_, int C_, int H_, int W_, int O_, int kH_, int kW_, int sH_, int sW_,
                        int pH_, int pW_, int OH_, int OW_, int G_)
        : N(N_), C(C_), H(H_), W(W_), O(O_), kH(kH_), kW(kW_), sH(sH_), sW(sW_), pH(pH_), pW(pW_),
          OH(OH_), OW(OW_), G(G_), Cg(C_ / G_), Og(O_ / G_), KK(kH_ * kW_), P(OH_ * OW_) {}
};

// The geometry arguments every conv kernel takes, in this order
// (minialex/cuda/launch/conv2d.py: ConvGeometry.args).
#define CONV_GEOM_PARAMS                                                                          \
    int N, int C, int H, int W, int O, int kH, int kW, int sH, int sW, int pH, int pW, int OH,   \
        int OW, int groups
#define CONV_GEOM_ARGS N, C, H, W, O, kH, kW, sH, sW, pH, pW, OH, OW, groups

// Block tile BM x BN of the output, K tile BK, TM x TN outputs per thread (in float4 groups).
template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
    static constexpr int THREADS = (BM / TM) * (BN / TN);
    static constexpr int RS = THREADS / BK;               // threads that share one k of a tile
    static constexpr int A_PER = BM * BK / THREADS;       // A-tile elements loaded per thread
    static constexpr int B_PER = BN * BK / THREADS;       // B-tile elements loaded per thread
    static constexpr int PAD = 4;                         // keeps float4 rows aligned, fewer conflicts
    static_assert(THREADS % BK == 0 && (BM * BK) % THREADS == 0 && (BN * BK) % THREADS == 0, "");
    static_assert(TM % 4 == 0 && TN % 4 == 0, "fragments are read as float4");
    // Loading: A element (k, m): k = t % BK, m = t / BK + j * RS for j < A_PER.
    __device__ static int a_k(int t) { return t % BK; }
    __device__ static int a_m(int t, int j) { return t / BK + j * RS; }
    // B element (k, n): n fastest across threads (coalesced along n), or k fastest.
    template <bool K_FASTEST> __device__ static int b_k(int t) { return K_FASTEST ? t % BK : t / RS; }
    template <bool K_FASTEST> __device__ static int b_n(int t, int j) {
        return (K_FASTEST ? t / BK : t % RS) + j * RS;
    }
    // Computing: thread (ty, tx) owns rows m_of(ty, i) and columns n_of(tx, j): float4 groups of
    // 4 consecutive rows/columns, BM/(TM/4) apart, so a warp's float4 reads are contiguous.
    __device__ static int m_of(int ty, int i) { return (i / 4) * (BM / (TM / 4)) + ty * 4 + i % 4; }
    __device__ static int n_of(int tx, int j) { return (j / 4) * (BN / (TN / 4)) + tx * 4 + j % 4; }
    // Shared memory of one block: two buffers of the A tile (transposed, [k][m]) and the B tile.
    struct Smem {
        float A[2][BK][BM + PAD];
        float B[2][BK][BN + PAD];
    };
};

using TileV2 = Tile<64, 64, 16, 4, 4>;
using TileV3 = Tile<128, 128, 8, 8, 8>;

// The GEMM main loop shared by the three passes. Loader::load(k0, ra, rb) fetches, into
// registers, this thread's elements of the A tile (BM x BK) and B tile (BK x BN) that start at
// reduction index k0 (zeros outside the matrices). Tiles go through two shared-memory buffers:
// while the tile in one is multiplied, the next is loaded from global memory into registers,
// then stored into the other buffer; one __syncthreads per K tile.
template <class T, class Loader>
__device__ __forceinline__ void gemm_mainloop(const Loader& ld, int k_begin, int k_end,
                                              typename T::Smem& smem, float (&acc)[T::TM][T::TN]) {
    auto& As = smem.A;
    auto& Bs = smem.B;
    const int t = threadIdx.x;
    const int ty = t / (T::BN / T::TN), tx = t % (T::BN / T::TN);
    constexpr bool KF = Loader::B_K_FASTEST;
    float ra[T::A_PER], rb[T::B_PER];
#pragma unroll
    for (int i = 0; i < T::TM; ++i)
#pragma unroll
        for (int j = 0; j < T::TN; ++j) acc[i][j] = 0.0f;
    const int tiles = k_end > k_begin ? ceil_div_i(k_end - k_begin, T::BK) : 0;
    if (tiles > 0) {
        ld.load(k_begin, ra, rb);
#pragma unroll
        for (int j = 0; j < T::A_PER; ++j) As[0][T::a_k(t)][T::a_m(t, j)] = ra[j];
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) Bs[0][T::template b_k<KF>(t)][T::template b_n<KF>(t, j)] = rb[j];
    }
    __syncthreads();
    for (int kt = 0; kt < tiles; ++kt) {
        const int cur = kt & 1;
        const bool more = kt + 1 < tiles;
        if (more) ld.load(k_begin + (kt + 1) * T::BK, ra, rb);  // in flight during the FMAs
#pragma unroll
        for (int kk = 0; kk < T::BK; ++kk) {
            float a[T::TM], b[T::TN];
#pragma unroll
            for (int q = 0; q < T::TM / 4; ++q) {
                const float4 v = *reinterpret_cast<const float4*>(&As[cur][kk][T::m_of(ty, 4 * q)]);
                a[4 * q] = v.x; a[4 * q + 1] = v.y; a[4 * q + 2] = v.z; a[4 * q + 3] = v.w;
            }
#pragma unroll
            for (int q = 0; q < T::TN / 4; ++q) {
                const float4 v = *reinterpret_cast<const float4*>(&Bs[cur][kk][T::n_of(tx, 4 * q)]);
                b[4 * q] = v.x; b[4 * q + 1] = v.y; b[4 * q + 2] = v.z; b[4 * q + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < T::TM; ++i)
#pragma unroll
                for (int j = 0; j < T::TN; ++j) acc[i][j] += a[i] * b[j];
        }
        if (more) {
#pragma unroll
            for (int j = 0; j < T::A_PER; ++j) As[cur ^ 1][T::a_k(t)][T::a_m(t, j)] = ra[j];
#pragma unroll
            for (int j = 0; j < T::B_PER; ++j)
                Bs[cur ^ 1][T::template b_k<KF>(t)][T::template b_n<KF>(t, j)] = rb[j];
        }
        __syncthreads();
    }
}

// Forward: A = W_g (Og x Kg, rows contiguous), B = X^_g (Kg x N*OH*OW, gathered from x).
template <class T>
struct FwdLoader {
    static constexpr bool B_K_FASTEST = false;
    const float* __restrict__ x;
    const float* __restrict__ w;
    int a_m0, a_row0;              // row (in the group) of this thread's first A element, its offset in w
    int b_base[T::B_PER];          // offset of x[n, g*Cg, 0, 0] of each B column this thread loads
    int b_ih0[T::B_PER], b_iw0[T::B_PER];  // top-left input pixel of that column's window
    int a_k, b_k, Og, Kg, KK, kW, H, W;

    __device__ FwdLoader(const ConvGeom& g, const float* __restrict__ x_, const float* __restrict__ w_,
                         int group, int m0, int n0)
        : x(x_), w(w_), Og(g.Og), Kg(g.Cg * g.KK), KK(g.KK), kW(g.kW), H(g.H), W(g.W) {
        const int t = threadIdx.x;
        a_k = T::a_k(t);
        b_k = T::template b_k<false>(t);
        a_m0 = m0 + T::a_m(t, 0);  // element j is row a_m0 + j * RS
        a_row0 = (group * g.Og + a_m0) * Kg;
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int n = n0 + T::template b_n<false>(t, j);  // (img, oh, ow)
            if (n < g.N * g.P) {
                const int img = n / g.P, p = n - (n / g.P) * g.P;
                const int oh = p / g.OW, ow = p - (p / g.OW) * g.OW;
                b_base[j] = (img * g.C + group * g.Cg) * g.H * g.W;
                b_ih0[j] = oh * g.sH - g.pH;
                b_iw0[j] = ow * g.sW - g.pW;
            } else {
                b_base[j] = 0;
                b_ih0[j] = -(1 << 30);  // every row test fails
                b_iw0[j] = 0;
            }
        }
    }

    __device__ void load(int k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
        const int ka = k0 + a_k;
#pragma unroll
        for (int j = 0; j < T::A_PER; ++j)
            ra[j] = (a_m0 + j * T::RS < Og && ka < Kg) ? __ldg(w + (a_row0 + j * T::RS * Kg + ka)) : 0.0f;
        const int kb = k0 + b_k;  // (c, i, j) of the im2col row
        const int c = kb / KK, r = kb - (kb / KK) * KK;
        const int kh = r / kW, kw = r - (r / kW) * kW;
        const int coff = c * H * W;
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int ih = b_ih0[j] + kh, iw = b_iw0[j] + kw;
            const bool ok = kb < Kg && (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W;
            rb[j] = ok ? __ldg(x + (b_base[j] + coff + ih * W + iw)) : 0.0f;
        }
    }
};

// Grid (ceil(N*OH*OW / BN), ceil(Og / BM), groups); block T::THREADS.
template <class T>
__device__ __forceinline__ void conv2d_fwd(const float* __restrict__ x, const float* __restrict__ w,
                                           const float* __restrict__ b, float* __restrict__ y,
                                           int has_bias, const ConvGeom& g,
                                           typename T::Smem& smem) {
    const int group = blockIdx.z, m0 = blockIdx.y * T::BM, n0 = blockIdx.x * T::BN;
    const FwdLoader<T> ld(g, x, w, group, m0, n0);
    float acc[T::TM][T::TN];
    gemm_mainloop<T>(ld, 0, g.Cg * g.KK, smem, acc);
    const int ty = threadIdx.x / (T::BN / T::TN), tx = threadIdx.x % (T::BN / T::TN);
#pragma unroll
    for (int j = 0; j < T::TN; ++j) {
        const int n = n0 + T::n_of(tx, j);
        if (n >= g.N * g.P) continue;
        const int img = n / g.P, p = n - (n / g.P) * g.P;
        float* yp = y + (img * g.O + group * g.Og) * g.P + p;
#pragma unroll
        for (int i = 0; i < T::TM; ++i) {
            const int m = m0 + T::m_of(ty, i);
            if (m < g.Og) yp[m * g.P] = acc[i][j] + (has_bias ? __ldg(&b[group * g.Og + m]) : 0.0f);
        }
    }
}

// Backward-data: rows m = input channel c of the group, columns n = (img, h, w), reduction
// k = (o, i, j) over the group's Og output channels and the kernel window.
//   A[c][k] = w[g*Og + o, c, i, j]
//   B[k][n] = dy[img, g*Og + o, oh, ow]  if h + pH - i = oh*sH and w + pW - j = ow*sW, in range; else 0
template <class T>
struct BwdDataLoader {
    static constexpr bool B_K_FASTEST = false;
    const float* __restrict__ w;
    const float* __restrict__ dy;
    int a_base;                    // w[g*Og, 0, 0, 0]
    int a_m0;                      // input channel (in the group) of this thread's first A element
    int b_base[T::B_PER];          // dy[img, g*Og, 0, 0] of each B column
    int b_hp[T::B_PER], b_wp[T::B_PER];  // h + pH, w + pW of that column
    int a_k, b_k, Kd, KK, kW, Cg, OH, OW, sH, sW;
    bool unit_stride;

    __device__ BwdDataLoader(const ConvGeom& g, const float* __restrict__ w_,
                             const float* __restrict__ dy_, int group, int m0, int n0)
        : w(w_), dy(dy_), a_base(group * g.Og * g.Cg * g.KK), Kd(g.Og * g.KK),
          KK(g.KK), kW(g.kW), Cg(g.Cg), OH(g.OH), OW(g.OW), sH(g.sH), sW(g.sW),
          unit_stride(g.sH == 1 && g.sW == 1) {
        const int t = threadIdx.x;
        a_k = T::a_k(t);
        b_k = T::template b_k<false>(t);
        a_m0 = m0 + T::a_m(t, 0);  // element j is channel a_m0 + j * RS
        const int HW = g.H * g.W;
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int n = n0 + T::template b_n<false>(t, j);  // (img, h, w)
            if (n < g.N * HW) {
                const int img = n / HW, hw = n - (n / HW) * HW;
                const int h = hw / g.W, ww = hw - (hw / g.W) * g.W;
                b_base[j] = (img * g.O + group * g.Og) * g.P;
                b_hp[j] = h + g.pH;
                b_wp[j] = ww + g.pW;
            } else {
                b_base[j] = 0;
                b_hp[j] = -(1 << 30);
                b_wp[j] = 0;
            }
        }
    }

    __device__ void load(int k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
        {
            const int k = k0 + a_k;
            const int o = k / KK, r = k - (k / KK) * KK;
            const int off = a_base + o * Cg * KK + r;  // + c * KK
#pragma unroll
            for (int j = 0; j < T::A_PER; ++j)
                ra[j] = (a_m0 + j * T::RS < Cg && k < Kd) ? __ldg(w + (off + (a_m0 + j * T::RS) * KK)) : 0.0f;
        }
        const int k = k0 + b_k;
        const int o = k / KK, r = k - (k / KK) * KK;
        const int kh = r / kW, kw = r - (r / kW) * kW;
        const int ooff = o * OH * OW;
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int th = b_hp[j] - kh, tw = b_wp[j] - kw;  // = oh*sH, ow*sW if they exist
            const int oh = unit_stride ? th : th / sH, ow = unit_stride ? tw : tw / sW;
            const bool ok = k < Kd && th >= 0 && tw >= 0 && oh < OH && ow < OW &&
                            oh * sH == th && ow * sW == tw;
            rb[j] = ok ? __ldg(dy + b_base[j] + ooff + oh * OW + ow) : 0.0f;
        }
    }
};

// Grid (ceil(N*H*W / BN), ceil(Cg / BM), groups).
template <class T>
__device__ __forceinline__ void conv2d_bwd_data(const float* __restrict__ dy,
                                                const float* __restrict__ w, float* __restrict__ dx,
                                                const ConvGeom& g, typename T::Smem& smem) {
    const int group = blockIdx.z, m0 = blockIdx.y * T::BM, n0 = blockIdx.x * T::BN;
    const BwdDataLoader<T> ld(g, w, dy, group, m0, n0);
    float acc[T::TM][T::TN];
    gemm_mainloop<T>(ld, 0, g.Og * g.KK, smem, acc);
    const int ty = threadIdx.x / (T::BN / T::TN), tx = threadIdx.x % (T::BN / T::TN);
    const int HW = g.H * g.W;
#pragma unroll
    for (int j = 0; j < T::TN; ++j) {
        const int n = n0 + T::n_of(tx, j);
        if (n >= g.N * HW) continue;
        const int img = n / HW, hw = n - (n / HW) * HW;
        float* dxp = dx + (img * g.C + group * g.Cg) * HW + hw;
#pragma unroll
        for (int i = 0; i < T::TM; ++i) {
            const int m = m0 + T::m_of(ty, i);
            if (m < g.Cg) dxp[m * HW] = acc[i][j];
        }
    }
}

// Backward-weight: rows m = output channel of the group, columns n = (c, i, j) in [0, Kg),
// reduction r = (img, oh, ow) in this split's range.
//   A[m][r] = dy[img, g*Og + m, oh, ow]
//   B[r][n] = x[img, g*Cg + c, oh*sH - pH + i, ow*sW - pW + j]
// A and B are both loaded r-fastest across threads (coalesced along ow), so each thread decodes
// one r per tile, shared by its A and B elements.
template <class T>
struct BwdWeightLoader {
    static constexpr bool B_K_FASTEST = true;
    const float* __restrict__ x;
    const float* __restrict__ dy;
    int a_m0;                       // output channel (in the group) of this thread's first A element
    int b_off[T::B_PER];            // c*H*W + i*W + j of each B column
    int b_kh[T::B_PER], b_kw[T::B_PER];
    int k_t;                        // this thread's r offset inside a tile (a_k == b_k here)
    int r_end, Og, P, OW, O, C, H, W, sH, sW, pH, pW, og0, cg0;

    __device__ BwdWeightLoader(const ConvGeom& g, const float* __restrict__ x_,
                               const float* __restrict__ dy_, int group, int m0, int n0, int r_end_)
        : x(x_), dy(dy_), r_end(r_end_), Og(g.Og), P(g.P), OW(g.OW), O(g.O), C(g.C), H(g.H), W(g.W),
          sH(g.sH), sW(g.sW), pH(g.pH), pW(g.pW), og0(group * g.Og), cg0(group * g.Cg) {
        const int t = threadIdx.x;
        k_t = T::a_k(t);
        a_m0 = m0 + T::a_m(t, 0);  // element j is channel a_m0 + j * RS
        const int Kg = g.Cg * g.KK;
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int n = n0 + T::template b_n<true>(t, j);  // (c, i, j)
            if (n < Kg) {
                const int c = n / g.KK, r = n - (n / g.KK) * g.KK;
                b_kh[j] = r / g.kW;
                b_kw[j] = r - (r / g.kW) * g.kW;
                b_off[j] = c * g.H * g.W + b_kh[j] * g.W + b_kw[j];
            } else {
                b_off[j] = 0;
                b_kh[j] = -(1 << 30);
                b_kw[j] = 0;
            }
        }
    }

    __device__ void load(int k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
        const int r = k0 + k_t;
        const bool in = r < r_end;
        const int img = r / P, p = r - (r / P) * P;
        const int oh = p / OW, ow = p - (p / OW) * OW;
        const int dy_base = (img * O + og0) * P + p;
#pragma unroll
        for (int j = 0; j < T::A_PER; ++j)
            ra[j] = (in && a_m0 + j * T::RS < Og) ? __ldg(dy + (dy_base + (a_m0 + j * T::RS) * P)) : 0.0f;
        const int ih0 = oh * sH - pH, iw0 = ow * sW - pW;
        const int x_base = (img * C + cg0) * H * W + ih0 * W + iw0;  // may be < 0: only used + b_off
#pragma unroll
        for (int j = 0; j < T::B_PER; ++j) {
            const int ih = ih0 + b_kh[j], iw = iw0 + b_kw[j];
            const bool ok = in && (unsigned)ih < (unsigned)H && (unsigned)iw < (unsigned)W;
            rb[j] = ok ? __ldg(x + (x_base + b_off[j])) : 0.0f;
        }
    }
};

// Grid (ceil(Kg / BN), ceil(Og / BM), groups * splits): block z = group * splits + split reduces
// r in [split * r_per_split, min(N*OH*OW, (split + 1) * r_per_split)) and writes
// out[split, g*Og + m, n] (out = dw when splits == 1, else a (splits, O, Kg) workspace).
template <class T>
__device__ __forceinline__ void conv2d_bwd_weight(const float* __restrict__ x,
                                                  const float* __restrict__ dy,
                                                  float* __restrict__ out, int splits,
                                                  int r_per_split, const ConvGeom& g,
                                                  typename T::Smem& smem) {
    const int group = blockIdx.z / splits, split = blockIdx.z - (blockIdx.z / splits) * splits;
    const int m0 = blockIdx.y * T::BM, n0 = blockIdx.x * T::BN;
    const int R = g.N * g.P, Kg = g.Cg * g.KK;
    const int r_begin = split * r_per_split;
    const int r_end = min(R, r_begin + r_per_split);
    const BwdWeightLoader<T> ld(g, x, dy, group, m0, n0, r_end);
    float acc[T::TM][T::TN];
    gemm_mainloop<T>(ld, r_begin, r_end, smem, acc);
    const int ty = threadIdx.x / (T::BN / T::TN), tx = threadIdx.x % (T::BN / T::TN);
    float* op = out + split * g.O * Kg + group * g.Og * Kg;
#pragma unroll
    for (int i = 0; i < T::TM; ++i) {
        const int m = m0 + T::m_of(ty, i);
        if (m >= g.Og) continue;
#pragma unroll
        for (int j = 0; j < T::TN; ++j) {
            const int n = n0 + T::n_of(tx, j);
            if (n < Kg) op[m * Kg + n] = acc[i][j];
        }
    }
}

// ---- the exported kernels (extern "C": unmangled names for CuPy and the emulator) -------------
extern "C" __global__ void __launch_bounds__(TileV2::THREADS)
conv2d_fwd_v2(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
              float* __restrict__ y, int has_bias, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV2::Smem smem;
    conv2d_fwd<TileV2>(x, w, b, y, has_bias, ConvGeom(CONV_GEOM_ARGS), smem);
}

extern "C" __global__ void __launch_bounds__(TileV2::THREADS)
conv2d_bwd_data_v2(const float* __restrict__ dy, const float* __restrict__ w,
                   float* __restrict__ dx, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV2::Smem smem;
    conv2d_bwd_data<TileV2>(dy, w, dx, ConvGeom(CONV_GEOM_ARGS), smem);
}

extern "C" __global__ void __launch_bounds__(TileV2::THREADS)
conv2d_bwd_weight_v2(const float* __restrict__ x, const float* __restrict__ dy,
                     float* __restrict__ out, int splits, int r_per_split, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV2::Smem smem;
    conv2d_bwd_weight<TileV2>(x, dy, out, splits, r_per_split, ConvGeom(CONV_GEOM_ARGS), smem);
}

// Version 3 asks for 2 blocks (16 warps) per SM, i.e. at most 128 registers: they fit, no spills
// (tests/test_kernels_compile.py checks, kernels/README.md has the counts).
extern "C" __global__ void __launch_bounds__(TileV3::THREADS, 2)
conv2d_fwd_v3(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
              float* __restrict__ y, int has_bias, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV3::Smem smem;
    conv2d_fwd<TileV3>(x, w, b, y, has_bias, ConvGeom(CONV_GEOM_ARGS), smem);
}

extern "C" __global__ void __launch_bounds__(TileV3::THREADS, 2)
conv2d_bwd_data_v3(const float* __restrict__ dy, const float* __restrict__ w,
                   float* __restrict__ dx, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV3::Smem smem;
    conv2d_bwd_data<TileV3>(dy, w, dx, ConvGeom(CONV_GEOM_ARGS), smem);
}

extern "C" __global__ void __launch_bounds__(TileV3::THREADS, 2)
conv2d_bwd_weight_v3(const float* __restrict__ x, const float* __restrict__ dy,
                     float* __restrict__ out, int splits, int r_per_split, CONV_GEOM_PARAMS) {
    __shared__ __align__(16) TileV3::Smem smem;
    conv2d_bwd_weight<TileV3>(x, dy, out, splits, r_per_split, ConvGeom(CONV_GEOM_ARGS), smem);
}
