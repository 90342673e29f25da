// pool.cl: max pooling without padding, for Device.MaxPoolForward and
// MaxPoolBackward (AlexNet's overlapping pool is size 3, stride 2).
//
// Shapes:
//   x, dx   are (N, C, H, W)
//   y, dy   are (N, C, OH, OW), OH = (H - size)/stride + 1, OW likewise
//   idx     is (N, C, OH, OW) int: h*W + w of the window's first maximum
//
// Kernels:
//   max_pool_forward(x, y, idx, ...)
//       One work item per element of y. The window is scanned in row-major
//       order and a later element replaces the best only when strictly
//       greater, so idx is the first maximum. A NaN beats every number and
//       the first NaN is kept, so NaNs propagate as in PyTorch.
//   max_pool_backward(idx, dy, dx, ...)
//       dx overwritten. One work item per element of dx; it sums, in
//       (oh, ow) order, the dy of every window whose idx is its position.
//       A gather, so overlapping windows need no atomics.
// NDRange: 1-D, rounded up.
// Tunables: none.

__kernel void max_pool_forward(__global const float *x, // (N, C, H, W)
                               __global float *y,       // (N, C, OH, OW)
                               __global int *idx,       // (N, C, OH, OW)
                               const int N, const int C, const int H, const int W,
                               const int size, const int stride,
                               const int OH, const int OW)
{
    const int i = get_global_id(0);
    if (i >= N * C * OH * OW)
        return;
    const int ow = i % OW;
    const int t = i / OW;
    const int oh = t % OH;
    const int plane = t / OH; // n*C + c
    __global const float *xp = x + plane * H * W;

    const int h0 = oh * stride, w0 = ow * stride;
    int best = h0 * W + w0;
    float m = xp[best];
    for (int r = 0; r < size; r++)
        for (int s = 0; s < size; s++) {
            const int p = (h0 + r) * W + w0 + s;
            const float v = xp[p];
            if (v > m || (isnan(v) && !isnan(m))) {
                m = v;
                best = p;
            }
        }
    y[i] = m;
    idx[i] = best;
}

__kernel void max_pool_backward(__global const int *idx,  // (N, C, OH, OW)
                                __global const float *dy, // (N, C, OH, OW)
                                __global float *dx,       // (N, C, H, W)
                                const int N, const int C, const int H, const int W,
                                const int size, const int stride,
                                const int OH, const int OW)
{
    const int i = get_global_id(0);
    if (i >= N * C * H * W)
        return;
    const int xw = i % W;
    const int t = i / W;
    const int xh = t % H;
    const int plane = t / H;
    const int pos = xh * W + xw;

    // Windows (oh, ow) with oh*stride <= xh <= oh*stride + size - 1.
    const int ohlo = xh >= size ? (xh - size + stride) / stride : 0;
    const int ohhi = min(xh / stride, OH - 1);
    const int owlo = xw >= size ? (xw - size + stride) / stride : 0;
    const int owhi = min(xw / stride, OW - 1);

    __global const int *ip = idx + plane * OH * OW;
    __global const float *dp = dy + plane * OH * OW;
    float sum = 0.0f;
    for (int oh = ohlo; oh <= ohhi; oh++)
        for (int ow = owlo; ow <= owhi; ow++)
            if (ip[oh * OW + ow] == pos)
                sum += dp[oh * OW + ow];
    dx[i] = sum;
}

// The CPU forms (on devices that use gemm_vec): one work item per plane
// (image, channel), looping over the plane with no division per element.
//   max_pool_forward_plane(x, y, idx, ...)
//       The same windows, scan order and NaN rule as max_pool_forward.
//       For 3x3 windows of stride 2 (AlexNet's) it takes 8 outputs of a
//       row at a time, as the even and odd lanes of two 16-float loads per
//       window row: under POCL paper's three pools at batch 32 went from
//       40 to 14 ms; other windows, and a row's last outputs, one by one.
//   max_pool_backward_plane(idx, dy, dx, ...)
//       Zeroes the plane of dx, then adds each dy to dx[idx] in (oh, ow)
//       order: the same sums, in the same order, as max_pool_backward's
//       gather; one work item owns the plane, so no atomics.
// NDRange: N*C, 1-D, rounded up.

__kernel void max_pool_forward_plane(__global const float *x, // (N, C, H, W)
                                     __global float *y,       // (N, C, OH, OW)
                                     __global int *idx,       // (N, C, OH, OW)
                                     const int N, const int C, const int H, const int W,
                                     const int size, const int stride,
                                     const int OH, const int OW)
{
    const int plane = get_global_id(0);
    if (plane >= N * C)
        return;
    __global const float *xp = x + plane * H * W;
    __global float *yp = y + plane * OH * OW;
    __global int *ip = idx + plane * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
        int ow = 0;
        if (size == 3 && stride == 2) {
            // AlexNet's pool, 8 outputs of the row at a time: the window
            // columns 2ow, 2ow+1, 2ow+2 are the even and odd lanes of two
            // loads, scanned in the scalar loop's order with the same rule
            // (lane-wise selects, so POCL need not vectorise across planes).
            const int h0 = oh * 2;
            for (; ow + 8 <= OW && 2 * ow + 18 <= W; ow += 8) {
                const int8 lane = (int8)(0, 2, 4, 6, 8, 10, 12, 14);
                float8 m = (float8)(0.0f);
                int8 best = (int8)(0);
                for (int r = 0; r < 3; r++) {
                    const int p0 = (h0 + r) * W + 2 * ow;
                    const float16 a = vload16(0, xp + p0), b = vload16(0, xp + p0 + 2);
                    const float8 v[3] = {a.even, a.odd, b.even};
                    for (int s = 0; s < 3; s++) {
                        const int8 p = (int8)(p0 + s) + lane;
                        if (r == 0 && s == 0) {
                            m = v[0];
                            best = p;
                            continue;
                        }
                        const int8 take = isgreater(v[s], m) | (isnan(v[s]) & ~isnan(m));
                        m = select(m, v[s], take);
                        best = select(best, p, take);
                    }
                }
                vstore8(m, 0, yp + oh * OW + ow);
                vstore8(best, 0, ip + oh * OW + ow);
            }
        }
        for (; ow < OW; ow++) {
            const int h0 = oh * stride, w0 = ow * stride;
            int best = h0 * W + w0;
            float m = xp[best];
            for (int r = 0; r < size; r++)
                for (int s = 0; s < size; s++) {
                    const int p = (h0 + r) * W + w0 + s;
                    const float v = xp[p];
                    if (v > m || (isnan(v) && !isnan(m))) {
                        m = v;
                        best = p;
                    }
                }
            yp[oh * OW + ow] = m;
            ip[oh * OW + ow] = best;
        }
    }
}

__kernel void max_pool_backward_plane(__global const int *idx,  // (N, C, OH, OW)
                                      __global const float *dy, // (N, C, OH, OW)
                                      __global float *dx,       // (N, C, H, W)
                                      const int N, const int C, const int H, const int W,
                                      const int size, const int stride,
                                      const int OH, const int OW)
{
    const int plane = get_global_id(0);
    if (plane >= N * C)
        return;
    __global float *dp = dx + plane * H * W;
    __global const int *ip = idx + plane * OH * OW;
    __global const float *gp = dy + plane * OH * OW;
    for (int p = 0; p < H * W; p++)
        dp[p] = 0.0f;
    for (int o = 0; o < OH * OW; o++) {
        const int p = ip[o];
        if (p >= 0 && p < H * W) // idx from elsewhere than the forward pass must not write out of the plane
            dp[p] += gp[o];
    }
}
