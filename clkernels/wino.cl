// wino.cl: Winograd F(MxM, RxR) for RxR convolutions of stride 1 that keep
// the image size (padding P = (R-1)/2: OH = H, OW = W): F(2x2, 3x3),
// F(4x4, 3x3), F(2x2, 5x5) and F(3x3, 5x5), for Device.Conv2DForward,
// Conv2DBackwardData and Conv2DBackwardFilter when the host takes that
// path (device/opencl/wino.go; shapes as in conv.cl).
//
// The output is cut into MxM tiles, th = ceil(H/M) by tw = ceil(W/M) per
// image; tile t = (n*th + ty)*tw + tx of a chunk of nc images reads the
// AxA input patch (A = M+R-1) at (M*ty - P, M*tx - P), zero outside the
// image. With the transform matrices Bt (AxA), G (AxR) and At (MxA) below,
// each group's convolution is, for each of the E = A*A entries e of a
// transformed tile, one product over the group's input channels:
//   U_e (Kg, Cg)  = (G w[k][c] Gt)_e                     wino<R>_filter
//   V_e (C, T)    = (Bt d[c][t] B)_e, T = nc*th*tw        wino<R>_input
//   M_e (Kg, T)   = U_e,g · V_e,g  (E*groups GEMMs, gemm.cl)
//   y[k][tile]    = At M[k][t] A + b[k]                   wino<R>_output
// The data gradient is the same convolution of dy with the filters turned
// by 180 degrees and input and output channels swapped (wino<R>_filter
// with back != 0). The filter gradient is the adjoint of the forward:
//   Z_e (K, T)    = (A dy[k][t] At)_e                     wino<R>_dy
//   dU_e (Kg, Cg) = Σ_t Z_e,g · V_e,gᵀ  (gemm.cl, summed over the chunks)
//   dw[k][c]     += Gt dU[k][c] G                         wino<R>_filter_grad
// A tile's R*R*M*M multiply-adds become A*A: F(2x2, 3x3) 36 -> 16 (2.25x
// fewer), F(4x4, 3x3) 144 -> 36 (4x), F(2x2, 5x5) 100 -> 36 (2.8x),
// F(3x3, 5x5) 225 -> 49 (4.6x), at the price of larger rounding errors
// for larger tiles: on random data F(2x2, 3x3)'s came to 0.12 of the
// device suite's bound for a sum in any order, F(4x4, 3x3)'s to 0.79,
// F(2x2, 5x5)'s to 0.29 and F(3x3, 5x5)'s to 0.39.
//
// Matrices: F(2,3) on the points 0, 1, -1 and infinity (Lavin's):
//   Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   At = [1 1 1 0; 0 1 -1 -1]
// F(2,5) on 0, 1, -1, 2, -2 and infinity (Toom-Cook, derived and checked
// exactly by ci/wino_matrices.py; clkernels/wino_test.go checks the
// tables below, as written, in CI):
//   Bt = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//         0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [1/4 0 0 0 0; -1/6 -1/6 -1/6 -1/6 -1/6; -1/6 1/6 -1/6 1/6 -1/6;
//         1/24 1/12 1/6 1/3 2/3; 1/24 -1/12 1/6 -1/3 2/3; 0 0 0 0 1]
//   At = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
// F(4,3) on 0, -1, 1, 1/2, -2 and infinity (Toom-Cook, the most accurate
// points of Barabasz et al. 2020; also derived by ci/wino_matrices.py):
//   Bt = [1 -3/2 -2 3/2 1 0; 0 1 -5/2 1/2 1 0; 0 -1 1/2 5/2 1 0;
//         0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0; 0 1 -3/2 -2 3/2 1]
//   G  = [1 0 0; -1/3 1/3 -1/3; 1/3 1/3 1/3; -16/15 -8/15 -4/15;
//         1/15 -2/15 4/15; 0 0 1]
//   At = [1 1 1 1 1 0; 0 -1 1 1/2 -2 0; 0 1 1 1/4 4 0; 0 -1 1 1/8 -8 1]
// F(3,5) on 0, -1, 1, 1/2, -2, -1/2 and infinity (Toom-Cook, likewise):
// the tables wino35_bt, wino35_g and wino35_at below, as
// ci/wino_matrices.py prints them.
//
// Kernels, for F(2x2, 3x3) (wino3_*), F(4x4, 3x3) (wino43_*), F(2x2, 5x5)
// (wino5_*) and F(3x3, 5x5) (wino35_*; wino<R> below stands for each
// prefix); 1-D, one work item per
// output element or tile, rounded up; every value is written by one work
// item, in a fixed order; the loops over the matrices are unrolled, and
// their zero coefficients drop out at compile time:
//   wino<R>_filter(w, u, K, Cg, groups, back)
//       u (E, K*Cg): entry e of the transformed filter of (k, c) at
//       e*K*Cg + k*Cg + c, so that e's matrix of group g is (Kg, Cg) at
//       g*Kg*Cg; with back != 0 the flipped, swapped filter of (c, k) at
//       e*K*Cg + (g*Cg + c)*Kg + k, group g's matrix (Cg, Kg). K*Cg items.
//   wino<R>_input(x, v, n0, nc, C, H, W, th, tw, tmajor)
//       v (E, C, T) from images n0 .. n0+nc-1 of x (N, C, H, W). C*T
//       items, t fastest, so that neighbouring items write neighbours.
//       With tmajor != 0, v (E, T, C) instead, the filter gradient's Vᵀ
//       row-major, which the vector family's gemm_vec wants
//       (device/opencl/wino.go), and c fastest: under POCL, mini conv2's
//       F(3x3, 5x5) transform took 26 ms with t fastest (writes C apart)
//       and 4.2 ms with c fastest, as long as the forward's.
//   wino<R>_output(m, b, y, n0, nc, K, H, W, th, tw, hasbias)
//       y (images n0 .. n0+nc-1 of (N, K, H, W)) overwritten from
//       m (E, K, T), plus b (K) when hasbias. K*T items.
//   wino<R>_dy(dy, z, n0, nc, K, H, W, th, tw)
//       z (E, K, T) from images n0 .. n0+nc-1 of dy (N, K, H, W), zero
//       outside the image. K*T items.
//   wino<R>_filter_grad(du, dw, K, Cg)
//       dw (K, Cg, R, R) += Gt dU G, du (E, K*Cg) as the forward layout
//       of wino<R>_filter. K*Cg items.
//
// Tunables: none. Host-only defines CONV_WINO (3x3 by F(2x2, 3x3)),
// CONV_WINO43 (3x3 by F(4x4, 3x3), before CONV_WINO), CONV_WINO5 (5x5 by
// F(2x2, 5x5)) and CONV_WINO35 (5x5 by F(3x3, 5x5), before CONV_WINO5):
// on, off, or the ops that take Winograd joined by "+" (forward, data,
// filter); the tuner sets them from timings on the device
// (device/opencl/wino.go, tune_paths.go). CONV_WINO_MINCH (host only,
// default 16): layers with fewer input or output channels per group keep
// their usual paths, whose transforms would cost more than they save.

__constant float wino3_bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
__constant float wino3_g[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
__constant float wino3_at[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

__constant float wino5_bt[6][6] = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                   {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
__constant float wino5_g[6][5] = {{1.0f / 4, 0, 0, 0, 0},
                                  {-1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6},
                                  {-1.0f / 6, 1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6},
                                  {1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 3, 2.0f / 3},
                                  {1.0f / 24, -1.0f / 12, 1.0f / 6, -1.0f / 3, 2.0f / 3},
                                  {0, 0, 0, 0, 1}};
__constant float wino5_at[2][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}};

__constant float wino43_bt[6][6] = {{1, -1.5f, -2, 1.5f, 1, 0}, {0, 1, -2.5f, 0.5f, 1, 0}, {0, -1, 0.5f, 2.5f, 1, 0},
                                    {0, -2, -1, 2, 1, 0}, {0, 0.5f, -1, -0.5f, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1}};
__constant float wino43_g[6][3] = {{1, 0, 0},
                                   {-1.0f / 3, 1.0f / 3, -1.0f / 3},
                                   {1.0f / 3, 1.0f / 3, 1.0f / 3},
                                   {-16.0f / 15, -8.0f / 15, -4.0f / 15},
                                   {1.0f / 15, -2.0f / 15, 4.0f / 15},
                                   {0, 0, 1}};
__constant float wino43_at[4][6] = {{1, 1, 1, 1, 1, 0}, {0, -1, 1, 0.5f, -2, 0}, {0, 1, 1, 0.25f, 4, 0}, {0, -1, 1, 0.125f, -8, 1}};

__constant float wino35_bt[7][7] = {{0.5f, 0.25f, -2.5f, -1.25f, 2, 1, 0}, {0, 0.5f, -0.25f, -2.25f, 1, 1, 0}, {0, -0.5f, -0.75f, 1.75f, 3, 1, 0},
                                    {0, -1, -2.5f, 0, 2.5f, 1, 0}, {0, 0.25f, 0, -1.25f, 0, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1, 0},
                                    {0, 0.5f, 0.25f, -2.5f, -1.25f, 2, 1}};
__constant float wino35_g[7][5] = {{2, 0, 0, 0, 0},
                                   {2.0f / 3, -2.0f / 3, 2.0f / 3, -2.0f / 3, 2.0f / 3},
                                   {2.0f / 9, 2.0f / 9, 2.0f / 9, 2.0f / 9, 2.0f / 9},
                                   {-16.0f / 15, -8.0f / 15, -4.0f / 15, -2.0f / 15, -1.0f / 15},
                                   {-2.0f / 45, 4.0f / 45, -8.0f / 45, 16.0f / 45, -32.0f / 45},
                                   {-16.0f / 9, 8.0f / 9, -4.0f / 9, 2.0f / 9, -1.0f / 9},
                                   {0, 0, 0, 0, 1}};
__constant float wino35_at[3][7] = {{1, 1, 1, 1, 1, 1, 0}, {0, -1, 1, 0.5f, -2, -0.5f, 0}, {0, 1, 1, 0.25f, 4, 0.25f, 1}};

// WINO_SUM(acc, n, j, coef, value): acc = Σ_{j < n} coef·value, unrolled,
// skipping the terms whose coef (a __constant matrix entry, known at
// compile time once unrolled) is zero.
#define WINO_SUM(acc, n, j, coef, value)                                     \
    do {                                                                     \
        acc = 0.0f;                                                          \
        _Pragma("unroll") for (int j = 0; j < (n); j++) if ((coef) != 0.0f)  \
            acc += (coef) * (value);                                         \
    } while (0)

// WINO_TILE(CH, c, n, ty, tx) starts a kernel with a work item per
// (channel, tile) of a chunk: T = nc*th*tw tiles per channel, i the work
// item (returning when past CH*T, the global size being rounded up), its
// channel c, and its tile (ty, tx) of image n of the chunk.
#define WINO_TILE(CH, c, n, ty, tx)                                          \
    const int T = nc * th * tw;                                              \
    const int i = get_global_id(0);                                          \
    if (i >= (CH) * T)                                                       \
        return;                                                              \
    const int c = i / T, t_ = i - c * T;                                     \
    const int n = t_ / (th * tw), tile_ = t_ - n * (th * tw);                \
    const int ty = tile_ / tw, tx = tile_ - ty * tw

// WINO_KERNELS(R, M, A, BT, G, AT, PREFIX) defines the five kernels of
// F(MxM, RxR) (A = M+R-1) with the transform matrices BT, G, AT, named
// PREFIX##_filter and so on; see the header.
#define WINO_KERNELS(R, M, A, BT, G, AT, PREFIX)                                                  \
__kernel void PREFIX##_filter(__global const float *w, /* (K, Cg, R, R) */                     \
                              __global float *u,       /* (A*A, K*Cg) */                       \
                              const int K, const int Cg, const int groups, const int back)     \
{                                                                                              \
    const int i = get_global_id(0);                                                            \
    const int n = K * Cg;                                                                      \
    if (i >= n)                                                                                \
        return;                                                                                \
    float g[R][R];                                                                             \
    _Pragma("unroll") for (int j = 0; j < R * R; j++)                                          \
        g[j / R][j % R] = w[i * R * R + (back ? R * R - 1 - j : j)];                           \
    int o = i;                                                                                 \
    if (back) { /* filter of (c, k) in group g's (Cg, Kg) matrix */                            \
        const int k = i / Cg, c = i - k * Cg;                                                  \
        const int Kg = K / groups, grp = k / Kg, kk = k - grp * Kg;                            \
        o = (grp * Cg + c) * Kg + kk;                                                          \
    }                                                                                          \
    float t[A][R]; /* G g */                                                                   \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int s = 0; s < R; s++)                                              \
        WINO_SUM(t[a][s], R, q, G[a][q], g[q][s]);                                             \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < A; b++) { /* (G g) Gt */                             \
        float v;                                                                               \
        WINO_SUM(v, R, s, G[b][s], t[a][s]);                                                   \
        u[(a * A + b) * n + o] = v;                                                            \
    }                                                                                          \
}                                                                                              \
                                                                                               \
__kernel void PREFIX##_input(__global const float *x, /* (N, C, H, W) */                       \
                             __global float *v,  /* (A*A, C, T), or (A*A, T, C) when tmajor */ \
                             const int n0, const int nc, const int C,                          \
                             const int H, const int W, const int th, const int tw,             \
                             const int tmajor)                                                 \
{                                                                                              \
    /* Item i writes entry i of each (C, T) or (T, C) plane: t fastest, */                     \
    /* or c fastest when tmajor, so that neighbouring items write neighbours. */               \
    const int T = nc * th * tw;                                                                \
    const int i = get_global_id(0);                                                            \
    if (i >= C * T)                                                                            \
        return;                                                                                \
    const int c = tmajor ? i % C : i / T, t_ = tmajor ? i / C : i - c * T;                     \
    const int n = t_ / (th * tw), tile_ = t_ - n * (th * tw);                                  \
    const int ty = tile_ / tw, tx = tile_ - ty * tw;                                           \
    const int y0 = M * ty - (R - 1) / 2, x0 = M * tx - (R - 1) / 2;                            \
    __global const float *xc = x + ((size_t)(n0 + n) * C + c) * H * W;                         \
    float d[A][A];                                                                             \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < A; b++) {                                            \
        const int yy = y0 + a, xx = x0 + b;                                                    \
        d[a][b] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? xc[yy * W + xx] : 0.0f;           \
    }                                                                                          \
    float e[A][A]; /* Bt d */                                                                  \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < A; b++)                                              \
        WINO_SUM(e[a][b], A, r, BT[a][r], d[r][b]);                                            \
    const size_t CT = (size_t)C * T;                                                           \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < A; b++) { /* (Bt d) B */                             \
        float o;                                                                               \
        WINO_SUM(o, A, r, BT[b][r], e[a][r]);                                                  \
        v[(a * A + b) * CT + i] = o;                                                           \
    }                                                                                          \
}                                                                                              \
                                                                                               \
__kernel void PREFIX##_output(__global const float *m, /* (A*A, K, T) */                       \
                              __global const float *bias, /* (K), read when hasbias */         \
                              __global float *y,       /* (N, K, H, W) */                      \
                              const int n0, const int nc, const int K,                         \
                              const int H, const int W, const int th, const int tw,            \
                              const int hasbias)                                               \
{                                                                                              \
    WINO_TILE(K, k, n, ty, tx);                                                                \
    const size_t KT = (size_t)K * T;                                                           \
    float mt[A][A];                                                                            \
    _Pragma("unroll") for (int e = 0; e < A * A; e++)                                          \
        mt[e / A][e % A] = m[e * KT + i];                                                      \
    float r[M][A]; /* At M */                                                                  \
    _Pragma("unroll") for (int a = 0; a < M; a++)                                              \
    _Pragma("unroll") for (int j = 0; j < A; j++)                                              \
        WINO_SUM(r[a][j], A, q, AT[a][q], mt[q][j]);                                           \
    const float b0 = hasbias ? bias[k] : 0.0f;                                                 \
    __global float *yk = y + ((size_t)(n0 + n) * K + k) * H * W;                               \
    _Pragma("unroll") for (int a = 0; a < M; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < M; b++) { /* (At M) A */                             \
        float o;                                                                               \
        WINO_SUM(o, A, j, AT[b][j], r[a][j]);                                                  \
        const int yy = M * ty + a, xx = M * tx + b;                                            \
        if (yy < H && xx < W)                                                                  \
            yk[yy * W + xx] = o + b0;                                                          \
    }                                                                                          \
}                                                                                              \
                                                                                               \
__kernel void PREFIX##_dy(__global const float *dy, /* (N, K, H, W) */                         \
                          __global float *z,        /* (A*A, K, T) */                          \
                          const int n0, const int nc, const int K,                             \
                          const int H, const int W, const int th, const int tw)                \
{                                                                                              \
    WINO_TILE(K, k, n, ty, tx);                                                                \
    __global const float *dk = dy + ((size_t)(n0 + n) * K + k) * H * W;                        \
    float g[M][M];                                                                             \
    _Pragma("unroll") for (int a = 0; a < M; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < M; b++) {                                            \
        const int yy = M * ty + a, xx = M * tx + b;                                            \
        g[a][b] = (yy < H && xx < W) ? dk[yy * W + xx] : 0.0f;                                 \
    }                                                                                          \
    float e[A][M]; /* A g, A = Atᵀ */                                                          \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < M; b++)                                              \
        WINO_SUM(e[a][b], M, q, AT[q][a], g[q][b]);                                            \
    const size_t KT = (size_t)K * T;                                                           \
    _Pragma("unroll") for (int a = 0; a < A; a++)                                              \
    _Pragma("unroll") for (int b = 0; b < A; b++) { /* (A g) At */                             \
        float o;                                                                               \
        WINO_SUM(o, M, q, AT[q][b], e[a][q]);                                                  \
        z[(a * A + b) * KT + i] = o;                                                           \
    }                                                                                          \
}                                                                                              \
                                                                                               \
__kernel void PREFIX##_filter_grad(__global const float *du, /* (A*A, K*Cg) */                 \
                                   __global float *dw,       /* (K, Cg, R, R), accumulated */  \
                                   const int K, const int Cg)                                  \
{                                                                                              \
    const int i = get_global_id(0);                                                            \
    const int n = K * Cg;                                                                      \
    if (i >= n)                                                                                \
        return;                                                                                \
    float ut[A][A];                                                                            \
    _Pragma("unroll") for (int e = 0; e < A * A; e++)                                          \
        ut[e / A][e % A] = du[e * n + i];                                                      \
    float t[R][A]; /* Gt dU */                                                                 \
    _Pragma("unroll") for (int r = 0; r < R; r++)                                              \
    _Pragma("unroll") for (int j = 0; j < A; j++)                                              \
        WINO_SUM(t[r][j], A, a, G[a][r], ut[a][j]);                                            \
    _Pragma("unroll") for (int r = 0; r < R; r++)                                              \
    _Pragma("unroll") for (int s = 0; s < R; s++) { /* (Gt dU) G */                            \
        float o;                                                                               \
        WINO_SUM(o, A, j, G[j][s], t[r][j]);                                                   \
        dw[i * R * R + r * R + s] += o;                                                        \
    }                                                                                          \
}

WINO_KERNELS(3, 2, 4, wino3_bt, wino3_g, wino3_at, wino3)
WINO_KERNELS(5, 2, 6, wino5_bt, wino5_g, wino5_at, wino5)
WINO_KERNELS(3, 4, 6, wino43_bt, wino43_g, wino43_at, wino43)
WINO_KERNELS(5, 3, 7, wino35_bt, wino35_g, wino35_at, wino35)
