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
// Kernels (each output element is written by one work item and summed in a
// fixed order, so nothing needs atomics):
//   conv2d_forward(x, w, b, y, ...)
//       y = conv(x, w) + b as an implicit GEMM per group g:
//         y_g (Kg, N*OH*OW) = w_g (Kg, Cg*R*S) · patches_g (Cg*R*S, N*OH*OW)
//       where the patch matrix is never stored: its tiles are gathered from
//       x (zero outside the image) straight into local memory. Tiling as
//       gemm.cl: a work-group computes a CONV_TSM x CONV_TSN tile of y_g,
//       each work item a CONV_WPTM x CONV_WPTN register block. Every output
//       is summed from the bias in (c, r, s) order, as the Go reference.
//       Where the work-group size is a multiple of CONV_TSN, each work item
//       gathers one column of the patch tile, whose image and pixel it
//       finds once (CONV_ONECOL), and a row's tap (c, r, s) by two
//       divisions through float reciprocals (conv_div): no integer
//       division per staged element where there were 7 to 8.
//       NDRange: 3-D (ceil(N*OH*OW/TSN)*RTSN, ceil(Kg/TSM)*RTSM, groups),
//       local (RTSN, RTSM, 1), RTSM = TSM/WPTM, RTSN = TSN/WPTN (16 x 16).
//       The GPU path of Conv2DForward; CPUs take im2col + gemm_vec.
//   conv2d_forward_blk(...)
//       The same, arranged as gemm_blk (the blocked GEMM family); see its
//       comment. The host picks one of the two (CONV_KIND).
//   conv_im2col(x, col, n0, nc, ..., transposed)
//       Unrolls the patches of images n0 .. n0+nc-1 of x into col, zero
//       outside the image. With Q = Cg*R*S, q = (c*R + r)*S + s and
//       p = oh*OW + ow:
//         transposed == 0: col is (nc, groups, Q, OH*OW)   ("im2col")
//         transposed != 0: col is (nc, groups, OH*OW, Q)   ("im2row")
//       1-D, one work item per row of col (nc*groups*Q, or nc*groups*OH*OW
//       when transposed).
//   conv_col2im(dcol, dx, n0, nc, ...)
//       The adjoint of im2col: dx (images n0 .. n0+nc-1) overwritten with
//       the sum, over the taps (r, s) in order, of the dcol entries
//       (nc, groups, Q, OH*OW) that read this pixel. One work item per row
//       (image, channel, xh) of dx; it gathers, so no atomics.
//   conv_im2col_gpu, conv_col2im_gpu
//       conv_im2col (untransposed) and conv_col2im with one work item per
//       element instead of per row, for GPUs; see their comments.
//   conv_sum_images(part, dw, nimg, len)
//       dw (len) += Σ_{i < nimg} part (nimg, len), in i order: the fixed-order
//       reduction of the partial filter gradients of a GPU's runs of images.
//   conv_flip_weights(w, wt, K, Cg, R, S, groups)
//       wt (C, Kg, R, S) = w with input and output channels swapped within
//       each group and the taps turned by 180 degrees: the filters of the
//       data gradient of a stride-1 convolution as a forward convolution
//       of dy (Conv2DBackwardData on GPUs with the host-only define
//       CONV_BWDATA=implicit). One work item per element.
//   conv2d_forward_direct, conv2d_backward_data_direct,
//   conv2d_backward_filter_direct
//       Direct gathers, one work item per output element, 1-D, rounded up:
//       the readable versions, kept as the checks of the GEMM ones
//       (backward_filter_direct accumulates into dw like the op).
//   conv2d_backward_bias(dy, db, ...)
//       db += Σ_{n,oh,ow} dy. One work-group of CONV_BIAS_WG work items per
//       output channel, tree-reduced in local memory (deterministic).
//       Launched by Conv2DBackwardFilter after the filter gradient;
//       conv2d_backward_bias_vec (below) on CPU devices.
//
// Conv2DBackwardData is dcol_g = w_gᵀ · dy_g (gemm.cl) then conv_col2im;
// Conv2DBackwardFilter is dw_g += Σ_n dy_g · im2row(x)_g (gemm.cl, the sum
// over images inside the GEMM on CPUs; on GPUs inside the GEMM per run of
// consecutive images, then conv_sum_images over the runs). ops.go splits
// the batch into chunks whose col fits its workspace. 3x3 and 5x5
// convolutions of stride 1 that keep the image size may take Winograd
// instead, op by op (wino.cl, whose header lists the host-only Winograd
// defines).
//
// Tunables (-D, through Options.Defines; ops.go reads the same values to launch):
//   CONV_TSM, CONV_TSN, CONV_TSK, CONV_WPTM, CONV_WPTN
//                 conv2d_forward's tiling, as GEMM_* in gemm.cl
//                 (defaults 64, 64, 16, 4, 4)
//   CONV_KU       conv2d_forward_blk's K steps per unrolled run, as GEMM_KU
//                 (default 2, or 1 for an odd CONV_TSK)
//   CONV_KIND     (host only) tiled or blocked: which forward kernel runs
//                 (default: blocked where GEMM_KIND is, else tiled)
//   CONV_BIAS_WG  work-group size of conv2d_backward_bias, a power of two
//                 (default 256)
//   CONV_FILTER_GROUPS (host only) the work-groups per compute unit that
//                 the filter gradient's runs of images aim at (default 4)

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
#ifndef CONV_KU
#define CONV_KU (CONV_TSK % 2 == 0 ? 2 : 1)
#endif
#if CONV_KU < 1 || CONV_TSK % CONV_KU != 0
#error "CONV_KU must divide CONV_TSK"
#endif
#ifndef CONV_BIAS_WG
#define CONV_BIAS_WG 256
#endif

// CONV_ONECOL: the work-group size is a multiple of CONV_TSN, so that in
// the implicit-GEMM kernels each work item stages patch entries of one
// column of the tile only (rows tid / TSN + i * WG / TSN), whose image
// and pixel it finds once, before the K loop.
#define CONV_ONECOL (CONV_WG % CONV_TSN == 0)

// conv_div returns a / b for 0 <= a < 2^20 and 1 <= b <= 1024 given
// inv = 1.0f/b, which OpenCL 1.2 allows to be 2.5 ulp off: (a + 0.5)/b is
// at least 0.5/b away from an integer, and the roundings of the sum, the
// product and an inv up to 3 ulp off move it by less than that below
// 2^20 (TestConvDiv checks every quotient boundary; the first one missed,
// with inv 3 ulp off, is near a = 1.07e6). A GPU divides integers in
// software, some 20 instructions; this is 3.
int conv_div(int a, float inv) { return (int)(((float)a + 0.5f) * inv); }

// CONV_COL_SETUP declares, for a CONV_ONECOL kernel with tid, j0, P,
// OHW, Cg, HW and g in scope, the column j0 + tid % TSN that this work
// item stages: jok (inside the matrix), the top-left input pixel of its
// patch (ih0, iw0) and xcol, its image's first channel of group g.
#define CONV_COL_SETUP                                                      \
    const int jcol = j0 + tid % CONV_TSN;                                   \
    const int jok = jcol < P;                                               \
    const int ncol = jok ? jcol / OHW : 0, pcol = jok ? jcol - ncol * OHW : 0; \
    const int ohc = pcol / OW;                                              \
    const int ih0 = ohc * stride - pad, iw0 = (pcol - ohc * OW) * stride - pad; \
    __global const float *xcol = x + (ncol * C + g * Cg) * HW;

// CONV_TAP_SETUP declares what CONV_TAP needs (in a kernel where RS, S
// and Q are in scope); CONV_TAP(q, c, r, s) sets the tap (channel c, row
// r, column s) of patch row q: through conv_div when Q < 2^20, else (and
// always with -D CONV_INTDIV, for tests) by integer division.
#ifdef CONV_INTDIV
#define CONV_TAP_FAST 0
#else
#define CONV_TAP_FAST (Q < (1 << 20))
#endif
#define CONV_TAP_SETUP                                                      \
    const int fastq = CONV_TAP_FAST;                                        \
    const float invRS = 1.0f / (float)RS, invS = 1.0f / (float)S;
#define CONV_TAP(q, c, r, s)                                                \
    {                                                                       \
        c = fastq ? conv_div(q, invRS) : (q) / RS;                          \
        const int rs_ = (q) - c * RS;                                       \
        r = fastq ? conv_div(rs_, invS) : rs_ / S;                          \
        s = rs_ - r * S;                                                    \
    }

// CONV_GEMM_SETUP declares what the implicit-GEMM kernels share: the
// group's shapes (Cg, Kg, Q = Cg*R*S rows of the patch matrix, P =
// N*OH*OW columns), the group g, the work item (tx, ty, tid), its tile's
// first row m0 and column j0, the group's filters wg (Kg, Q), and what
// CONV_TAP needs.
#define CONV_GEMM_SETUP                                                     \
    const int Cg = C / groups, Kg = K / groups;                             \
    const int RS = R * S, Q = Cg * RS;                                      \
    const int OHW = OH * OW, P = N * OHW, HW = H * W;                       \
    const int g = get_global_id(2);                                         \
    const int tx = get_local_id(0), ty = get_local_id(1);                   \
    const int tid = ty * CONV_RTSN + tx;                                    \
    const int m0 = get_group_id(1) * CONV_TSM;                              \
    const int j0 = get_group_id(0) * CONV_TSN;                              \
    __global const float *wg = w + g * Kg * Q; /* (Kg, Q) */                \
    CONV_TAP_SETUP

// CONV_COL_PATCH(q, v) sets v to row q of this work item's column of the
// patch matrix (CONV_COL_SETUP), 0 outside it or the image;
// CONV_PATCH(q, j, v) to entry (q, j) of the matrix, found from j.
#define CONV_COL_PATCH(q, v)                                                \
    {                                                                       \
        v = 0.0f;                                                           \
        if (jok && (q) < Q) {                                               \
            int c_, r_, s_;                                                 \
            CONV_TAP(q, c_, r_, s_)                                         \
            const int xh_ = ih0 + r_, xw_ = iw0 + s_;                       \
            if (xh_ >= 0 && xh_ < H && xw_ >= 0 && xw_ < W)                 \
                v = xcol[c_ * HW + xh_ * W + xw_];                          \
        }                                                                   \
    }
#define CONV_PATCH(q, j, v)                                                 \
    {                                                                       \
        v = 0.0f;                                                           \
        if ((q) < Q && (j) < P) {                                           \
            int c_, r_, s_;                                                 \
            CONV_TAP(q, c_, r_, s_)                                         \
            const int n_ = (j) / OHW, p_ = (j) % OHW;                       \
            const int xh_ = (p_ / OW) * stride - pad + r_;                  \
            const int xw_ = (p_ % OW) * stride - pad + s_;                  \
            if (xh_ >= 0 && xh_ < H && xw_ >= 0 && xw_ < W)                 \
                v = x[((n_ * C + g * Cg + c_) * H + xh_) * W + xw_];        \
        }                                                                   \
    }

// The shape arguments that end the convolution kernels' lists (the
// host's convArgs).
#define CONV_SHAPE_ARGS                                                     \
    const int N, const int C, const int H, const int W,                     \
    const int K, const int R, const int S,                                  \
    const int stride, const int pad, const int groups,                      \
    const int OH, const int OW

// The arguments that follow the buffers of the im2col and col2im kernels:
// the chunk of images n0 .. n0+nc-1, then the shape (the host's order).
#define CONV_CHUNK_ARGS                                                     \
    const int n0, const int nc,                                             \
    const int C, const int H, const int W,                                  \
    const int R, const int S,                                               \
    const int stride, const int pad, const int groups,                      \
    const int OH, const int OW

#define CONV_RTSM (CONV_TSM / CONV_WPTM)
#define CONV_RTSN (CONV_TSN / CONV_WPTN)
#define CONV_WG (CONV_RTSM * CONV_RTSN)

__kernel __attribute__((reqd_work_group_size(CONV_RTSN, CONV_RTSM, 1)))
void conv2d_forward(__global const float *x, // (N, C, H, W)
                    __global const float *w, // (K, Cg, R, S)
                    __global const float *b, // (K)
                    __global float *y,       // (N, K, OH, OW)
                    CONV_SHAPE_ARGS)
{
    // The GEMM of group g: rows m = output channel within the group (Kg),
    // columns j = (n, oh, ow) flattened (P = N*OH*OW), reduction q = (c, r, s)
    // flattened (Q = Cg*R*S).
    __local float As[CONV_TSK][CONV_TSM + 1]; // As[q][m] = w[g*Kg + m0+m][q0+q]
    __local float Bs[CONV_TSK][CONV_TSN + 1]; // Bs[q][j] = patch (q0+q) of column j0+j

    CONV_GEMM_SETUP
#if CONV_ONECOL
    CONV_COL_SETUP
#endif

    // Every loop over the register block is unrolled, so that acc, a and
    // bv are registers: an array indexed by a loop variable that a
    // compiler leaves rolled lives in per-thread memory (PTX .local), one
    // load and store per multiply-add (TestKernelISA checks).
    float acc[CONV_WPTM][CONV_WPTN];
#pragma unroll
    for (int i = 0; i < CONV_WPTM; i++) {
        const int m = m0 + ty + i * CONV_RTSM;
        const float bias = m < Kg ? b[g * Kg + m] : 0.0f;
#pragma unroll
        for (int jj = 0; jj < CONV_WPTN; jj++)
            acc[i][jj] = bias;
    }

    for (int q0 = 0; q0 < Q; q0 += CONV_TSK) {
        // Weights: row-major (Kg, Q), staged along q (BLK_ALONG_K).
        for (int l = tid; l < CONV_TSM * CONV_TSK; l += CONV_WG) {
            const int mm = l / CONV_TSK, qq = l % CONV_TSK;
            const int m = m0 + mm, q = q0 + qq;
            As[qq][mm] = (m < Kg && q < Q) ? wg[m * Q + q] : 0.0f;
        }
        // Patches: consecutive work items along j, i.e. along ow.
#if CONV_ONECOL
        for (int qq = tid / CONV_TSN; qq < CONV_TSK; qq += CONV_WG / CONV_TSN) {
            float v;
            CONV_COL_PATCH(q0 + qq, v)
            Bs[qq][tid % CONV_TSN] = v;
        }
#else
        for (int l = tid; l < CONV_TSN * CONV_TSK; l += CONV_WG) {
            const int qq = l / CONV_TSN, jj = l % CONV_TSN;
            float v;
            CONV_PATCH(q0 + qq, j0 + jj, v)
            Bs[qq][jj] = v;
        }
#endif
        barrier(CLK_LOCAL_MEM_FENCE);

        for (int qq = 0; qq < CONV_TSK; qq++) {
            float a[CONV_WPTM], bv[CONV_WPTN];
#pragma unroll
            for (int i = 0; i < CONV_WPTM; i++)
                a[i] = As[qq][ty + i * CONV_RTSM];
#pragma unroll
            for (int jj = 0; jj < CONV_WPTN; jj++)
                bv[jj] = Bs[qq][tx + jj * CONV_RTSN];
#pragma unroll
            for (int i = 0; i < CONV_WPTM; i++)
#pragma unroll
                for (int jj = 0; jj < CONV_WPTN; jj++)
                    acc[i][jj] += a[i] * bv[jj];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int i = 0; i < CONV_WPTM; i++) {
        const int m = m0 + ty + i * CONV_RTSM;
        if (m >= Kg)
            continue;
#pragma unroll
        for (int jj = 0; jj < CONV_WPTN; jj++) {
            const int j = j0 + tx + jj * CONV_RTSN;
            if (j >= P)
                continue;
            const int n = j / OHW, p = j % OHW;
            y[(n * K + g * Kg + m) * OHW + p] = acc[i][jj];
        }
    }
}

// conv2d_forward_blk: conv2d_forward arranged as gemm_blk: 4 x 4 pieces of register block read from local memory as
// float4s, double-buffered tiles with the next one staged in registers,
// one barrier per K step. The patch gather is conv2d_forward's. Every
// output is summed from the bias in q order with the same expression as
// conv2d_forward's.
// Built only in programs whose forward convolution is blocked
// (CONV_BLOCKED, which the host defines for CONV_KIND=blocked, or with no
// CONV_KIND for GEMM_KIND=blocked) and whose CONV_WPTM and CONV_WPTN are
// multiples of 4.
#if defined(CONV_BLOCKED) && CONV_WPTM % 4 == 0 && CONV_WPTN % 4 == 0
#define CONVB_PAD 4
#define CONVB_ATILE (CONV_TSM * CONV_TSK)
#define CONVB_BTILE (CONV_TSN * CONV_TSK)
#define CONVB_LA ((CONVB_ATILE + CONV_WG - 1) / CONV_WG)
#define CONVB_LB ((CONVB_BTILE + CONV_WG - 1) / CONV_WG)

__kernel __attribute__((reqd_work_group_size(CONV_RTSN, CONV_RTSM, 1)))
void conv2d_forward_blk(__global const float *x, // (N, C, H, W)
                        __global const float *w, // (K, Cg, R, S)
                        __global const float *b, // (K)
                        __global float *y,       // (N, K, OH, OW)
                        CONV_SHAPE_ARGS)
{
    // As[.][q][m] = w[g*Kg + m0+m][q0+q], Bs[.][q][j] = patch (q0+q) of column j0+j
    __local float As[2][CONV_TSK][CONV_TSM + CONVB_PAD] __attribute__((aligned(16)));
    __local float Bs[2][CONV_TSK][CONV_TSN + CONVB_PAD] __attribute__((aligned(16)));

    CONV_GEMM_SETUP

#if CONV_ONECOL
    CONV_COL_SETUP // staging rows tid / TSN + i * (WG / TSN) of each tile
    const int qrow = tid / CONV_TSN;
#endif

    float acc[CONV_WPTM][CONV_WPTN];
#pragma unroll
    for (int i = 0; i < CONV_WPTM; i++) {
        const int m = m0 + BLK_INDEX(i, CONV_RTSM, ty);
        const float bias = m < Kg ? b[g * Kg + m] : 0.0f;
#pragma unroll
        for (int jj = 0; jj < CONV_WPTN; jj++)
            acc[i][jj] = bias;
    }
    float ra[CONVB_LA], rb[CONVB_LB];

#if CONV_ONECOL
#define CONVB_FETCH_B(q0)                                                   \
        _Pragma("unroll") for (int i = 0; i < CONVB_LB; i++) {              \
            const int qq = qrow + i * (CONV_WG / CONV_TSN);                 \
            float v = 0.0f;                                                 \
            if (qq < CONV_TSK)                                              \
                CONV_COL_PATCH((q0) + qq, v)                                \
            rb[i] = v;                                                      \
        }
#define CONVB_STORE_B(buf)                                                  \
        _Pragma("unroll") for (int i = 0; i < CONVB_LB; i++) {              \
            const int qq = qrow + i * (CONV_WG / CONV_TSN);                 \
            if (qq < CONV_TSK)                                              \
                Bs[buf][qq][tid % CONV_TSN] = rb[i];                        \
        }
#else
#define CONVB_FETCH_B(q0)                                                   \
        _Pragma("unroll") for (int i = 0; i < CONVB_LB; i++) {              \
            const int l = tid + i * CONV_WG;                                \
            float v = 0.0f;                                                 \
            if (l < CONVB_BTILE)                                            \
                CONV_PATCH((q0) + l / CONV_TSN, j0 + l % CONV_TSN, v)       \
            rb[i] = v;                                                      \
        }
#define CONVB_STORE_B(buf)                                                  \
        _Pragma("unroll") for (int i = 0; i < CONVB_LB; i++) {              \
            const int l = tid + i * CONV_WG;                                \
            if (l < CONVB_BTILE)                                            \
                Bs[buf][l / CONV_TSN][l % CONV_TSN] = rb[i];                \
        }
#endif
    // Weights: row-major (Kg, Q), consecutive work items along q.
#define CONVB_FETCH(q0)                                                     \
    {                                                                       \
        _Pragma("unroll") for (int i = 0; i < CONVB_LA; i++) {              \
            const int l = tid + i * CONV_WG;                                \
            int mm, qq;                                                     \
            BLK_ALONG_K(l, CONV_TSM, CONV_TSK, mm, qq)                      \
            const int m = m0 + mm, q = (q0) + qq;                           \
            ra[i] = (l < CONVB_ATILE && m < Kg && q < Q) ? wg[m * Q + q] : 0.0f; \
        }                                                                   \
        CONVB_FETCH_B(q0)                                                   \
    }
#define CONVB_STORE(buf)                                                    \
    {                                                                       \
        _Pragma("unroll") for (int i = 0; i < CONVB_LA; i++) {              \
            const int l = tid + i * CONV_WG;                                \
            int mm, qq;                                                     \
            BLK_ALONG_K(l, CONV_TSM, CONV_TSK, mm, qq)                      \
            if (l < CONVB_ATILE)                                            \
                As[buf][qq][mm] = ra[i];                                    \
        }                                                                   \
        CONVB_STORE_B(buf)                                                  \
    }

    CONVB_FETCH(0)
    CONVB_STORE(0)
    barrier(CLK_LOCAL_MEM_FENCE);
    int cur = 0;
    for (int q0 = 0; q0 < Q; q0 += CONV_TSK) {
        const int more = q0 + CONV_TSK < Q;
        if (more)
            CONVB_FETCH(q0 + CONV_TSK)
        BLK_KU_LOOP(qq0, qqu, CONV_TSK, CONV_KU) {
            const int qq = qq0 + qqu;
            float a[CONV_WPTM], bv[CONV_WPTN];
            BLK_PIECES(a, CONV_WPTM, As[cur][qq], CONV_RTSM, ty)
            BLK_PIECES(bv, CONV_WPTN, Bs[cur][qq], CONV_RTSN, tx)
#pragma unroll
            for (int i = 0; i < CONV_WPTM; i++)
#pragma unroll
                for (int jj = 0; jj < CONV_WPTN; jj++)
                    acc[i][jj] += a[i] * bv[jj];
        }
        if (more)
            CONVB_STORE(cur ^ 1)
        barrier(CLK_LOCAL_MEM_FENCE);
        cur ^= 1;
    }
#undef CONVB_FETCH_B
#undef CONVB_STORE_B
#undef CONVB_FETCH
#undef CONVB_STORE

#pragma unroll
    for (int jj = 0; jj < CONV_WPTN; jj++) {
        const int j = j0 + BLK_INDEX(jj, CONV_RTSN, tx);
        if (j >= P)
            continue;
        const int n = j / OHW, p = j - n * OHW;
#pragma unroll
        for (int i = 0; i < CONV_WPTM; i++) {
            const int m = m0 + BLK_INDEX(i, CONV_RTSM, ty);
            if (m < Kg)
                y[(n * K + g * Kg + m) * OHW + p] = acc[i][jj];
        }
    }
}
#endif // CONV_BLOCKED, CONV_WPTM and CONV_WPTN multiples of 4

__kernel void conv2d_forward_direct(__global const float *x, // (N, C, H, W)
                                    __global const float *w, // (K, Cg, R, S)
                                    __global const float *b, // (K)
                                    __global float *y,       // (N, K, OH, OW)
                                    CONV_SHAPE_ARGS)
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

__kernel void conv2d_backward_data_direct(__global const float *dy, // (N, K, OH, OW)
                                          __global const float *w,  // (K, Cg, R, S)
                                          __global float *dx,       // (N, C, H, W)
                                          CONV_SHAPE_ARGS)
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

__kernel void conv2d_backward_filter_direct(__global const float *x,  // (N, C, H, W)
                                            __global const float *dy, // (N, K, OH, OW)
                                            __global float *dw,       // (K, Cg, R, S), accumulated
                                            CONV_SHAPE_ARGS)
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

// conv2d_backward_bias_vec: the CPU form (devices that use gemm_vec) of
// conv2d_backward_bias: one work item per output channel k, summing each
// image's plane of dy 16 floats at a time (the last, partial vector
// element by element), then the 16 lanes in order. Under POCL the
// work-group form, with its local-memory tree, took 16 ms a step for
// mini's five bias gradients at batch 128 and 21 ms for paper's at 32;
// this one 2.3-2.9 and 3.5-3.7 ms. NDRange: K, 1-D, rounded up.
__kernel void conv2d_backward_bias_vec(__global const float *dy, // (N, K, OH, OW)
                                       __global float *db,       // (K), accumulated
                                       const int N, const int K, const int OH, const int OW)
{
    const int k = get_global_id(0);
    if (k >= K)
        return;
    const int P = OH * OW, Pv = P / 16 * 16;
    float16 acc = (float16)(0.0f);
    float tail = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *plane = dy + ((size_t)n * K + k) * P;
        for (int p = 0; p < Pv; p += 16)
            acc += vload16(0, plane + p);
        for (int p = Pv; p < P; p++)
            tail += plane[p];
    }
    float lanes[16];
    vstore16(acc, 0, lanes);
    float sum = 0.0f;
    for (int i = 0; i < 16; i++)
        sum += lanes[i];
    db[k] += sum + tail;
}

__kernel void conv_im2col(__global const float *x, // (N, C, H, W)
                          __global float *col,     // see the header
                          CONV_CHUNK_ARGS, const int transposed)
{
    // One work item per row of col: (image, group, q) when not transposed,
    // (image, group, p) when transposed. The loops inside are free of
    // divisions, which CPUs (POCL) run far faster than an element-wise
    // version.
    const int Cg = C / groups, RS = R * S, Q = Cg * RS, OHW = OH * OW;
    const int i = get_global_id(0);
    if (i >= nc * groups * (transposed ? OHW : Q))
        return;
    if (!transposed) {
        const int q = i % Q, ng = i / Q;
        const int n = n0 + ng / groups, g = ng % groups;
        const int c = g * Cg + q / RS, r = (q / S) % R, s = q % S;
        __global const float *xc = x + (n * C + c) * H * W;
        __global float *out = col + i * OHW;
        for (int oh = 0; oh < OH; oh++, out += OW) {
            const int xh = oh * stride - pad + r;
            if (xh < 0 || xh >= H) {
                for (int ow = 0; ow < OW; ow++)
                    out[ow] = 0.0f;
                continue;
            }
            __global const float *xr = xc + xh * W;
            for (int ow = 0; ow < OW; ow++) {
                const int xw = ow * stride - pad + s;
                out[ow] = (xw >= 0 && xw < W) ? xr[xw] : 0.0f;
            }
        }
        return;
    }
    const int p = i % OHW, ng = i / OHW;
    const int n = n0 + ng / groups, g = ng % groups;
    const int h0 = (p / OW) * stride - pad, w0 = (p % OW) * stride - pad;
    __global const float *xg = x + (n * C + g * Cg) * H * W;
    __global float *out = col + i * Q;
    for (int c = 0; c < Cg; c++)
        for (int r = 0; r < R; r++) {
            const int xh = h0 + r;
            const bool rowIn = xh >= 0 && xh < H;
            for (int s = 0; s < S; s++) {
                const int xw = w0 + s;
                *out++ = (rowIn && xw >= 0 && xw < W) ? xg[(c * H + xh) * W + xw] : 0.0f;
            }
        }
}

__kernel void conv_col2im(__global const float *dcol, // (nc, groups, Q, OH*OW)
                          __global float *dx,         // (N, C, H, W)
                          CONV_CHUNK_ARGS)
{
    // One work item per row (image, channel, xh) of dx. Each pixel's sum
    // runs over the taps (r, s) in order; a tap (r, s) reaches pixel
    // xw = ow*stride - pad + s from output column ow, so the inner loop
    // walks ow with no division.
    const int i = get_global_id(0);
    if (i >= nc * C * H)
        return;
    const int xh = i % H, nch = i / H;
    const int c = nch % C, n = nch / C;
    const int Cg = C / groups, g = c / Cg, cc = c % Cg;
    const int Q = Cg * R * S, OHW = OH * OW;
    __global const float *d = dcol + ((n * groups + g) * Q + cc * R * S) * OHW;
    __global float *out = dx + (((n0 + n) * C + c) * H + xh) * W;
    for (int xw = 0; xw < W; xw++)
        out[xw] = 0.0f;
    for (int r = 0; r < R; r++) {
        const int th = xh + pad - r; // = oh*stride
        if (th < 0)
            break;
        if (th % stride != 0 || th / stride >= OH)
            continue;
        const int oh = th / stride;
        for (int s = 0; s < S; s++) {
            __global const float *drow = d + (r * S + s) * OHW + oh * OW;
            for (int ow = 0; ow < OW; ow++) {
                const int xw = ow * stride - pad + s;
                if (xw >= 0 && xw < W)
                    out[xw] += drow[ow];
            }
        }
    }
}

// conv_im2col_gpu(x, col, n0, nc, ...)
//     conv_im2col's untransposed layout (nc, groups, Q, OH*OW) for GPUs:
//     one work item per (image, channel c, output pixel p) writes the R*S
//     entries of its column, rows q = (c % Cg)*R*S + r*S + s of its group,
//     so neighbouring work items (p, p+1) write neighbouring addresses
//     (conv_im2col's row per work item suits CPUs, where a GPU would write
//     32 rows apart at every store). That row of col starts at
//     ((n*C + c)*R*S + r*S + s)*OH*OW: groups need no arithmetic.
//     1-D over nc*C rows of ohwPad work items (OH*OW rounded up to the
//     work-group size, so that a group stays in one row).
__kernel void conv_im2col_gpu(__global const float *x, // (N, C, H, W)
                              __global float *col,     // (nc, groups, Q, OH*OW)
                              CONV_CHUNK_ARGS, const int ohwPad)
{
    const int OHW = OH * OW;
    const int p = get_global_id(0) % ohwPad, nci = get_global_id(0) / ohwPad; // nci = n*C + c
    if (p >= OHW || nci >= nc * C)
        return;
    const int oh = p / OW;
    const int h0 = oh * stride - pad, w0 = (p - oh * OW) * stride - pad;
    __global const float *xc = x + (n0 * C + nci) * H * W;
    __global float *out = col + nci * R * S * OHW + p;
    for (int r = 0; r < R; r++) {
        const int xh = h0 + r;
        const bool rowIn = xh >= 0 && xh < H;
        for (int s = 0; s < S; s++, out += OHW) {
            const int xw = w0 + s;
            *out = (rowIn && xw >= 0 && xw < W) ? xc[xh * W + xw] : 0.0f;
        }
    }
}

// conv_col2im_gpu(dcol, dx, n0, nc, ...)
//     conv_col2im for GPUs: one work item per pixel of dx (images n0 ..
//     n0+nc-1) gathers the dcol entries of the taps (r, s) that read it,
//     in the same (r, s) order as conv_col2im (so the same sums), and
//     neighbouring work items read neighbouring entries. It visits only
//     those taps, four divisions in all. 1-D over nc*C*H*W, rounded up.
__kernel void conv_col2im_gpu(__global const float *dcol, // (nc, groups, Q, OH*OW)
                              __global float *dx,         // (N, C, H, W)
                              CONV_CHUNK_ARGS)
{
    const int i = get_global_id(0);
    if (i >= nc * C * H * W)
        return;
    const int xw = i % W, t = i / W;
    const int xh = t % H, nci = t / H; // nci = n*C + c
    const int OHW = OH * OW;
    __global const float *d = dcol + nci * R * S * OHW;
    // Only the taps r = xh + pad - oh*stride reach this pixel: r0 and then
    // every stride-th, with oh falling by one each time (likewise s, ow).
    const int r0 = (xh + pad) % stride, s0 = (xw + pad) % stride;
    const int ow0 = (xw + pad - s0) / stride;
    float sum = 0.0f;
    int oh = (xh + pad - r0) / stride;
    for (int r = r0; r < R && oh >= 0; r += stride, oh--) {
        if (oh >= OH)
            continue;
        int ow = ow0;
        for (int s = s0; s < S && ow >= 0; s += stride, ow--) {
            if (ow < OW)
                sum += d[(r * S + s) * OHW + oh * OW + ow];
        }
    }
    dx[n0 * C * H * W + i] = sum;
}

__kernel void conv_flip_weights(__global const float *w, // (K, Cg, R, S)
                                __global float *wt,      // (groups*Cg, Kg, R, S)
                                const int K, const int Cg, const int R, const int S,
                                const int groups)
{
    const int i = get_global_id(0);
    const int Kg = K / groups, RS = R * S;
    if (i >= K * Cg * RS)
        return;
    const int rs = i % RS, t = i / RS; // t = (g*Cg + c)*Kg + k
    const int k = t % Kg, gc = t / Kg;
    const int g = gc / Cg, c = gc - g * Cg;
    const int r = rs / S, s = rs - r * S;
    wt[i] = w[((g * Kg + k) * Cg + c) * RS + (R - 1 - r) * S + (S - 1 - s)];
}

__kernel void conv_sum_images(__global const float *part, // (nimg, len)
                              __global float *dw,         // (len), accumulated
                              const int nimg, const int len)
{
    const int i = get_global_id(0);
    if (i >= len)
        return;
    float sum = 0.0f;
    for (int n = 0; n < nimg; n++)
        sum += part[n * len + i];
    dw[i] += sum;
}
