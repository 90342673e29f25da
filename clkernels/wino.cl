// wino.cl: Winograd F(2x2, 3x3) for 3x3 convolutions of stride 1 and
// padding 1 (OH = H, OW = W), for Device.Conv2DForward, Conv2DBackwardData
// and Conv2DBackwardFilter when the host takes that path (ops.go,
// winograd; shapes as in conv.cl).
//
// The output is cut into 2x2 tiles, th = ceil(H/2) by tw = ceil(W/2) per
// image; tile t = (n*th + ty)*tw + tx of a chunk of nc images reads the
// 4x4 input patch at (2*ty - 1, 2*tx - 1), zero outside the image. With
//   Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   At = [1 1 1 0; 0 1 -1 -1]
// each group's convolution is, for each of the 16 entries e of a 4x4
// transformed tile, one product over the group's input channels:
//   U_e (Kg, Cg) = (G w[k][c] Gt)_e                      wino_filter
//   V_e (C, T)   = (Bt d[c][t] B)_e, T = nc*th*tw         wino_input
//   M_e (Kg, T)  = U_e,g · V_e,g  (16*groups GEMMs, gemm.cl)
//   y[k][tile]   = At M[k][t] A + b[k]                    wino_output
// The data gradient is the same convolution of dy with the filters turned
// by 180 degrees and input and output channels swapped (wino_filter with
// back != 0). The filter gradient is the adjoint of the forward:
//   Z_e (K, T)   = (A dy[k][t] At)_e                      wino_dy
//   dU_e (Kg, Cg) = Σ_t Z_e,g · V_e,gᵀ  (gemm.cl, summed over the chunks)
//   dw[k][c]    += Gt dU[k][c] G                          wino_filter_grad
//
// Kernels (1-D, one work item per output element or tile, rounded up;
// every value is written by one work item, in a fixed order):
//   wino_filter(w, u, K, Cg, groups, back)
//       u (16, K*Cg): entry e of the transformed filter of (k, c) at
//       e*K*Cg + k*Cg + c, so that e's matrix of group g is (Kg, Cg) at
//       g*Kg*Cg; with back != 0 the flipped, swapped filter of (c, k) at
//       e*K*Cg + (g*Cg + c)*Kg + k, group g's matrix (Cg, Kg). K*Cg items.
//   wino_input(x, v, n0, nc, C, H, W, th, tw)
//       v (16, C, T) from images n0 .. n0+nc-1 of x (N, C, H, W). C*T
//       items, t fastest, so that neighbouring items write neighbours.
//   wino_output(m, b, y, n0, nc, K, H, W, th, tw, hasbias)
//       y (images n0 .. n0+nc-1 of (N, K, H, W)) overwritten from
//       m (16, K, T), plus b (K) when hasbias. K*T items.
//   wino_dy(dy, z, n0, nc, K, H, W, th, tw)
//       z (16, K, T) from images n0 .. n0+nc-1 of dy (N, K, H, W), zero
//       outside the image. K*T items.
//   wino_filter_grad(du, dw, K, Cg)
//       dw (K, Cg, 3, 3) += Gt dU G, du (16, K*Cg) as wino_filter's
//       forward layout. K*Cg items.
//
// Tunables: none. Host-only define CONV_WINO: on, off, or the ops that
// take Winograd joined by "+" (forward, data, filter); the tuner sets it
// from timings on the device (device/opencl/wino.go, tune_paths.go).

// WINO_G applies G to the column (a, b, c).
#define WINO_G(a, b, c, o0, o1, o2, o3) \
    do { o0 = (a); o1 = 0.5f * ((a) + (b) + (c)); o2 = 0.5f * ((a) - (b) + (c)); o3 = (c); } while (0)

// WINO_BT applies Bt to the column (d0, d1, d2, d3).
#define WINO_BT(d0, d1, d2, d3, o0, o1, o2, o3) \
    do { o0 = (d0) - (d2); o1 = (d1) + (d2); o2 = (d2) - (d1); o3 = (d1) - (d3); } while (0)

__kernel void wino_filter(__global const float *w, // (K, Cg, 3, 3)
                          __global float *u,       // (16, K*Cg)
                          const int K, const int Cg, const int groups,
                          const int back)
{
    const int i = get_global_id(0);
    const int n = K * Cg;
    if (i >= n)
        return;
    const int k = i / Cg, c = i - k * Cg;
    float g[9];
    for (int j = 0; j < 9; j++)
        g[j] = back ? w[i * 9 + 8 - j] : w[i * 9 + j];
    int o = i;
    if (back) { // filter of (c, k) in group g's (Cg, Kg) matrix
        const int Kg = K / groups, grp = k / Kg, kk = k - grp * Kg;
        o = (grp * Cg + c) * Kg + kk;
    }
    float t[4][3]; // G g
    for (int s = 0; s < 3; s++)
        WINO_G(g[s], g[3 + s], g[6 + s], t[0][s], t[1][s], t[2][s], t[3][s]);
    for (int r = 0; r < 4; r++) { // (G g) Gt, row r
        float o0, o1, o2, o3;
        WINO_G(t[r][0], t[r][1], t[r][2], o0, o1, o2, o3);
        u[(r * 4 + 0) * n + o] = o0;
        u[(r * 4 + 1) * n + o] = o1;
        u[(r * 4 + 2) * n + o] = o2;
        u[(r * 4 + 3) * n + o] = o3;
    }
}

__kernel void wino_input(__global const float *x, // (N, C, H, W)
                         __global float *v,       // (16, C, T)
                         const int n0, const int nc, const int C,
                         const int H, const int W, const int th, const int tw)
{
    const int T = nc * th * tw;
    const int i = get_global_id(0);
    if (i >= C * T)
        return;
    const int c = i / T, t = i - c * T;
    const int n = t / (th * tw), tile = t - n * (th * tw);
    const int ty = tile / tw, tx = tile - ty * tw;
    const int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
    __global const float *xc = x + ((size_t)(n0 + n) * C + c) * H * W;
    float d[4][4];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const int yy = y0 + a, xx = x0 + b;
            d[a][b] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? xc[yy * W + xx] : 0.0f;
        }
    float e[4][4]; // Bt d
    for (int b = 0; b < 4; b++)
        WINO_BT(d[0][b], d[1][b], d[2][b], d[3][b], e[0][b], e[1][b], e[2][b], e[3][b]);
    const size_t CT = (size_t)C * T;
    for (int a = 0; a < 4; a++) { // (Bt d) B, row a
        float o0, o1, o2, o3;
        WINO_BT(e[a][0], e[a][1], e[a][2], e[a][3], o0, o1, o2, o3);
        v[(a * 4 + 0) * CT + i] = o0;
        v[(a * 4 + 1) * CT + i] = o1;
        v[(a * 4 + 2) * CT + i] = o2;
        v[(a * 4 + 3) * CT + i] = o3;
    }
}

__kernel void wino_output(__global const float *m, // (16, K, T)
                          __global const float *b, // (K), read when hasbias
                          __global float *y,       // (N, K, H, W)
                          const int n0, const int nc, const int K,
                          const int H, const int W, const int th, const int tw,
                          const int hasbias)
{
    const int T = nc * th * tw;
    const int i = get_global_id(0);
    if (i >= K * T)
        return;
    const int k = i / T, t = i - k * T;
    const int n = t / (th * tw), tile = t - n * (th * tw);
    const int ty = tile / tw, tx = tile - ty * tw;
    const size_t KT = (size_t)K * T;
    float r[2][4]; // At M
    for (int j = 0; j < 4; j++) {
        const float m0 = m[(0 * 4 + j) * KT + i], m1 = m[(1 * 4 + j) * KT + i];
        const float m2 = m[(2 * 4 + j) * KT + i], m3 = m[(3 * 4 + j) * KT + i];
        r[0][j] = m0 + m1 + m2;
        r[1][j] = m1 - m2 - m3;
    }
    const float bias = hasbias ? b[k] : 0.0f;
    __global float *yk = y + ((size_t)(n0 + n) * K + k) * H * W;
    for (int a = 0; a < 2; a++) { // (At M) A, row a
        const int yy = 2 * ty + a;
        if (yy >= H)
            break;
        const float o0 = r[a][0] + r[a][1] + r[a][2] + bias;
        const float o1 = r[a][1] - r[a][2] - r[a][3] + bias;
        yk[yy * W + 2 * tx] = o0;
        if (2 * tx + 1 < W)
            yk[yy * W + 2 * tx + 1] = o1;
    }
}

__kernel void wino_dy(__global const float *dy, // (N, K, H, W)
                      __global float *z,        // (16, K, T)
                      const int n0, const int nc, const int K,
                      const int H, const int W, const int th, const int tw)
{
    const int T = nc * th * tw;
    const int i = get_global_id(0);
    if (i >= K * T)
        return;
    const int k = i / T, t = i - k * T;
    const int n = t / (th * tw), tile = t - n * (th * tw);
    const int ty = tile / tw, tx = tile - ty * tw;
    __global const float *dk = dy + ((size_t)(n0 + n) * K + k) * H * W;
    float g[2][2];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const int yy = 2 * ty + a, xx = 2 * tx + b;
            g[a][b] = (yy < H && xx < W) ? dk[yy * W + xx] : 0.0f;
        }
    // A g At with A = [1 0; 1 1; 1 -1; 0 -1]: A (p, q) = (p, p+q, p-q, -q).
    float e[4][2]; // A g
    for (int b = 0; b < 2; b++) {
        e[0][b] = g[0][b];
        e[1][b] = g[0][b] + g[1][b];
        e[2][b] = g[0][b] - g[1][b];
        e[3][b] = -g[1][b];
    }
    const size_t KT = (size_t)K * T;
    for (int a = 0; a < 4; a++) { // (A g) At, row a
        z[(a * 4 + 0) * KT + i] = e[a][0];
        z[(a * 4 + 1) * KT + i] = e[a][0] + e[a][1];
        z[(a * 4 + 2) * KT + i] = e[a][0] - e[a][1];
        z[(a * 4 + 3) * KT + i] = -e[a][1];
    }
}

__kernel void wino_filter_grad(__global const float *du, // (16, K*Cg)
                               __global float *dw,       // (K, Cg, 3, 3), accumulated
                               const int K, const int Cg)
{
    const int i = get_global_id(0);
    const int n = K * Cg;
    if (i >= n)
        return;
    // Gt (u0, u1, u2, u3) = (u0 + (u1+u2)/2, (u1-u2)/2, (u1+u2)/2 + u3).
    float t[3][4]; // Gt dU
    for (int j = 0; j < 4; j++) {
        const float u0 = du[(0 * 4 + j) * n + i], u1 = du[(1 * 4 + j) * n + i];
        const float u2 = du[(2 * 4 + j) * n + i], u3 = du[(3 * 4 + j) * n + i];
        t[0][j] = u0 + 0.5f * (u1 + u2);
        t[1][j] = 0.5f * (u1 - u2);
        t[2][j] = 0.5f * (u1 + u2) + u3;
    }
    for (int r = 0; r < 3; r++) { // (Gt dU) G, row r
        dw[i * 9 + r * 3 + 0] += t[r][0] + 0.5f * (t[r][1] + t[r][2]);
        dw[i * 9 + r * 3 + 1] += 0.5f * (t[r][1] - t[r][2]);
        dw[i * 9 + r * 3 + 2] += 0.5f * (t[r][1] + t[r][2]) + t[r][3];
    }
}
