// conv.cl: 2-D convolution with square stride, symmetric zero padding and
// groups, as torch.nn.Conv2d, for Device.Conv2DForward, Conv2DBackwardData
// and Conv2DBackwardFilter.
//
// Shapes (Cg = C/groups, Kg = K/groups; output channel k belongs to group
// g = k/Kg and reads input channels g*Cg .. g*Cg+Cg-1):
//   x  is (N, C, H, W)      dx is (N, C, H, W)
//   w  is (K, Cg, R, S)     dw is (K, Cg, R, S)
//   b  is (K)               db is (K)
//   y  is (N, K, OH, OW)    dy is (N, K, OH, OW)
// OH = (H + 2*pad - R)/stride + 1, OW likewise; the host passes them.
//
// Kernels (direct gather formulations: each work item computes one output
// element and sums in a fixed order, so nothing needs atomics):
//   conv2d_forward(x, w, b, y, ...)
//       y = conv(x, w) + b as an implicit GEMM per group g:
//         y_g (Kg, N*OH*OW) = w_g (Kg, Cg*R*S) · patches_g (Cg*R*S, N*OH*OW)
//       where the patch matrix is never stored: its tiles are gathered from
//       x (zero outside the image) straight into local memory. Tiling as
//       gemm.cl: a work-group computes a CONV_TSM x CONV_TSN tile of y_g,
//       each work item a CONV_WPTM x CONV_WPTN register block. Every output
//       is summed from the bias in (c, r, s) order, as the Go reference.
//       NDRange: 3-D (ceil(N*OH*OW/TSN)*RTSN, ceil(Kg/TSM)*RTSM, groups),
//       local (RTSN, RTSM, 1), RTSM = TSM/WPTM, RTSN = TSN/WPTN (16 x 16).
//   conv2d_forward_direct(x, w, b, y, ...)
//       The same result, one work item per element of y, 1-D, rounded up:
//       the readable version, kept as the check of the tiled one.
//   conv2d_backward_data(dy, w, dx, ...)
//       dx overwritten. One work item per element of dx; it gathers dy over
//       the (k, r, s) whose window covers its pixel, honouring the stride.
//   conv2d_backward_filter(x, dy, dw, ...)
//       dw += Σ_{n,oh,ow} dy * x. One work item per element of dw.
//   conv2d_backward_bias(dy, db, ...)
//       db += Σ_{n,oh,ow} dy. One work-group of CONV_BIAS_WG work items per
//       output channel, tree-reduced in local memory (deterministic).
//       Launched by Conv2DBackwardFilter after conv2d_backward_filter.
//
// Tunables (-D, through Options.Defines; ops.go reads the same values to launch):
//   CONV_TSM, CONV_TSN, CONV_TSK, CONV_WPTM, CONV_WPTN
//                 conv2d_forward's tiling, as GEMM_* in gemm.cl
//                 (defaults 64, 64, 16, 4, 4)
//   CONV_BIAS_WG  work-group size of conv2d_backward_bias, a power of two
//                 (default 256)
//
// TODO(perf): the backward pair are still direct gathers; both are implicit
// GEMMs too (data: dy_g^T-like product with w_g, filter: dy_g · patches_g^T
// reduced over N*OH*OW) and should get conv2d_forward's tiling next.

#ifndef CONV_TSM
#define CONV_TSM 64
#endif
#ifndef CONV_TSN
#define CONV_TSN 64
#endif
#ifndef CONV_TSK
#define CONV_TSK 16
#endif
#ifndef CONV_WPTM
#define CONV_WPTM 4
#endif
#ifndef CONV_WPTN
#define CONV_WPTN 4
#endif
#ifndef CONV_BIAS_WG
#define CONV_BIAS_WG 256
#endif

#define CONV_RTSM (CONV_TSM / CONV_WPTM)
#define CONV_RTSN (CONV_TSN / CONV_WPTN)
#define CONV_WG (CONV_RTSM * CONV_RTSN)

__kernel __attribute__((reqd_work_group_size(CONV_RTSN, CONV_RTSM, 1)))
void conv2d_forward(__global const float *x, // (N, C, H, W)
                    __global const float *w, // (K, Cg, R, S)
                    __global const float *b, // (K)
                    __global float *y,       // (N, K, OH, OW)
                    const int N, const int C, const int H, const int W,
                    const int K, const int R, const int S,
                    const int stride, const int pad, const int groups,
                    const int OH, const int OW)
{
    // The GEMM of group g: rows m = output channel within the group (Kg),
    // columns j = (n, oh, ow) flattened (P = N*OH*OW), reduction q = (c, r, s)
    // flattened (Q = Cg*R*S).
    __local float As[CONV_TSK][CONV_TSM + 1]; // As[q][m] = w[g*Kg + m0+m][q0+q]
    __local float Bs[CONV_TSK][CONV_TSN + 1]; // Bs[q][j] = patch (q0+q) of column j0+j

    const int Cg = C / groups, Kg = K / groups;
    const int RS = R * S, Q = Cg * RS;
    const int OHW = OH * OW, P = N * OHW;
    const int g = get_global_id(2);
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * CONV_RTSN + tx;
    const int m0 = get_group_id(1) * CONV_TSM;
    const int j0 = get_group_id(0) * CONV_TSN;
    __global const float *wg = w + g * Kg * Q; // (Kg, Q)

    float acc[CONV_WPTM][CONV_WPTN];
    for (int i = 0; i < CONV_WPTM; i++) {
        const int m = m0 + ty + i * CONV_RTSM;
        const float bias = m < Kg ? b[g * Kg + m] : 0.0f;
        for (int jj = 0; jj < CONV_WPTN; jj++)
            acc[i][jj] = bias;
    }

    for (int q0 = 0; q0 < Q; q0 += CONV_TSK) {
        // Weights: row-major (Kg, Q), consecutive work items along q.
        for (int l = tid; l < CONV_TSM * CONV_TSK; l += CONV_WG) {
            const int mm = l / CONV_TSK, qq = l % CONV_TSK;
            const int m = m0 + mm, q = q0 + qq;
            As[qq][mm] = (m < Kg && q < Q) ? wg[m * Q + q] : 0.0f;
        }
        // Patches: consecutive work items along j, i.e. along ow.
        for (int l = tid; l < CONV_TSN * CONV_TSK; l += CONV_WG) {
            const int qq = l / CONV_TSN, jj = l % CONV_TSN;
            const int q = q0 + qq, j = j0 + jj;
            float v = 0.0f;
            if (q < Q && j < P) {
                const int c = q / RS, r = (q / S) % R, s = q % S;
                const int n = j / OHW, p = j % OHW;
                const int xh = (p / OW) * stride - pad + r;
                const int xw = (p % OW) * stride - pad + s;
                if (xh >= 0 && xh < H && xw >= 0 && xw < W)
                    v = x[((n * C + g * Cg + c) * H + xh) * W + xw];
            }
            Bs[qq][jj] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        for (int qq = 0; qq < CONV_TSK; qq++) {
            float a[CONV_WPTM], bv[CONV_WPTN];
            for (int i = 0; i < CONV_WPTM; i++)
                a[i] = As[qq][ty + i * CONV_RTSM];
            for (int jj = 0; jj < CONV_WPTN; jj++)
                bv[jj] = Bs[qq][tx + jj * CONV_RTSN];
            for (int i = 0; i < CONV_WPTM; i++)
                for (int jj = 0; jj < CONV_WPTN; jj++)
                    acc[i][jj] += a[i] * bv[jj];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < CONV_WPTM; i++) {
        const int m = m0 + ty + i * CONV_RTSM;
        if (m >= Kg)
            continue;
        for (int jj = 0; jj < CONV_WPTN; jj++) {
            const int j = j0 + tx + jj * CONV_RTSN;
            if (j >= P)
                continue;
            const int n = j / OHW, p = j % OHW;
            y[(n * K + g * Kg + m) * OHW + p] = acc[i][jj];
        }
    }
}

__kernel void conv2d_forward_direct(__global const float *x, // (N, C, H, W)
                                    __global const float *w, // (K, Cg, R, S)
                                    __global const float *b, // (K)
                                    __global float *y,       // (N, K, OH, OW)
                                    const int N, const int C, const int H, const int W,
                                    const int K, const int R, const int S,
                                    const int stride, const int pad, const int groups,
                                    const int OH, const int OW)
{
    const int i = get_global_id(0);
    if (i >= N * K * OH * OW)
        return;
    const int ow = i % OW;
    int t = i / OW;
    const int oh = t % OH;
    t /= OH;
    const int k = t % K;
    const int n = t / K;

    const int Cg = C / groups, Kg = K / groups;
    const int g = k / Kg;
    const int h0 = oh * stride - pad, w0 = ow * stride - pad;
    // Filter taps that land inside the image; the rest read zero padding.
    const int rlo = max(0, -h0), rhi = min(R, H - h0);
    const int slo = max(0, -w0), shi = min(S, W - w0);

    float sum = b[k]; // the bias first, as the Go reference sums
    for (int c = 0; c < Cg; c++) {
        // Index arithmetic rather than a pointer to (h0, w0), which may lie
        // before the buffer when padding.
        const int xc = ((n * C + g * Cg + c) * H + h0) * W + w0;
        __global const float *wc = w + (k * Cg + c) * R * S;
        for (int r = rlo; r < rhi; r++)
            for (int s = slo; s < shi; s++)
                sum += x[xc + r * W + s] * wc[r * S + s];
    }
    y[i] = sum;
}

__kernel void conv2d_backward_data(__global const float *dy, // (N, K, OH, OW)
                                   __global const float *w,  // (K, Cg, R, S)
                                   __global float *dx,       // (N, C, H, W)
                                   const int N, const int C, const int H, const int W,
                                   const int K, const int R, const int S,
                                   const int stride, const int pad, const int groups,
                                   const int OH, const int OW)
{
    const int i = get_global_id(0);
    if (i >= N * C * H * W)
        return;
    const int xw = i % W;
    int t = i / W;
    const int xh = t % H;
    t /= H;
    const int c = t % C;
    const int n = t / C;

    const int Cg = C / groups, Kg = K / groups;
    const int g = c / Cg, cc = c % Cg;
    // Output (oh, ow) reads this pixel through tap r = hp - oh*stride,
    // s = wp - ow*stride, which must lie in [0, R) x [0, S).
    const int hp = xh + pad, wp = xw + pad;
    const int ohlo = hp >= R ? (hp - R + stride) / stride : 0; // ceil((hp-R+1)/stride)
    const int ohhi = min(hp / stride, OH - 1);
    const int owlo = wp >= S ? (wp - S + stride) / stride : 0;
    const int owhi = min(wp / stride, OW - 1);

    float sum = 0.0f;
    for (int k = g * Kg; k < (g + 1) * Kg; k++) {
        __global const float *dyk = dy + (n * K + k) * OH * OW;
        __global const float *wk = w + (k * Cg + cc) * R * S;
        for (int oh = ohlo; oh <= ohhi; oh++) {
            const int r = hp - oh * stride;
            for (int ow = owlo; ow <= owhi; ow++) {
                const int s = wp - ow * stride;
                sum += dyk[oh * OW + ow] * wk[r * S + s];
            }
        }
    }
    dx[i] = sum;
}

// out_range sets [lo, hi] to the output positions o (0 <= o < O) for which
// o*stride - pad + tap lies inside [0, extent); empty when lo > hi.
void out_range(int tap, int extent, int stride, int pad, int O, int *lo, int *hi)
{
    const int a = pad - tap;              // need o*stride >= a
    const int bnd = extent - 1 + pad - tap; // need o*stride <= bnd
    *lo = a > 0 ? (a + stride - 1) / stride : 0;
    *hi = bnd < 0 ? -1 : min(bnd / stride, O - 1);
}

__kernel void conv2d_backward_filter(__global const float *x,  // (N, C, H, W)
                                     __global const float *dy, // (N, K, OH, OW)
                                     __global float *dw,       // (K, Cg, R, S), accumulated
                                     const int N, const int C, const int H, const int W,
                                     const int K, const int R, const int S,
                                     const int stride, const int pad, const int groups,
                                     const int OH, const int OW)
{
    const int Cg = C / groups, Kg = K / groups;
    const int i = get_global_id(0);
    if (i >= K * Cg * R * S)
        return;
    const int s = i % S;
    int t = i / S;
    const int r = t % R;
    t /= R;
    const int cc = t % Cg;
    const int k = t / Cg;
    const int c = (k / Kg) * Cg + cc;

    int ohlo, ohhi, owlo, owhi;
    out_range(r, H, stride, pad, OH, &ohlo, &ohhi);
    out_range(s, W, stride, pad, OW, &owlo, &owhi);

    float sum = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *dyk = dy + (n * K + k) * OH * OW;
        __global const float *xc = x + (n * C + c) * H * W;
        for (int oh = ohlo; oh <= ohhi; oh++) {
            const int xh = oh * stride - pad + r;
            for (int ow = owlo; ow <= owhi; ow++)
                sum += dyk[oh * OW + ow] * xc[xh * W + ow * stride - pad + s];
        }
    }
    dw[i] += sum;
}

__kernel __attribute__((reqd_work_group_size(CONV_BIAS_WG, 1, 1)))
void conv2d_backward_bias(__global const float *dy, // (N, K, OH, OW)
                          __global float *db,       // (K), accumulated
                          const int N, const int K, const int OH, const int OW)
{
    __local float scratch[CONV_BIAS_WG];
    const int k = get_group_id(0); // the NDRange is exactly K groups
    const int lid = get_local_id(0);
    const int P = OH * OW;
    float sum = 0.0f;
    for (int j = lid; j < N * P; j += CONV_BIAS_WG) {
        const int n = j / P, p = j % P;
        sum += dy[(n * K + k) * P + p];
    }
    sum = reduce_sum_local(scratch, sum);
    if (lid == 0)
        db[k] += sum;
}
