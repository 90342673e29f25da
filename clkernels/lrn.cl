// lrn.cl: local response normalisation across channels, as PyTorch's
// torch.nn.LocalResponseNorm, for Device.LRNForward and LRNBackward.
//
//   scale[c] = k + alpha/size * Σ_{c' in win(c)} x[c']²
//   y[c]     = x[c] * scale[c]^-beta
//   win(c)   = [c - size/2, c + (size-1)/2] ∩ [0, C)
//   dx[c]    = dy[c] * scale[c]^-beta
//              - 2*alpha*beta/size * x[c] * Σ_{c' : c in win(c')} dy[c']*y[c']/scale[c']
//   where c in win(c') iff c' in [c - (size-1)/2, c + size/2].
//
// Shapes: x, y, scale, dy, dx are all (N, C, H, W).
//
// Kernels:
//   lrn_forward(x, y, scale, N, C, H, W, size, alpha, beta, k)
//       writes y and scale (kept for the backward pass).
//   lrn_backward(x, y, scale, dy, dx, N, C, H, W, size, alpha, beta, k)
//       dx overwritten.
// One work item per element, 1-D, rounded up; it walks its channel window
// with stride H*W (neighbouring work items read neighbouring pixels).
// scale^-beta is computed as exp(-beta * log(scale)) (scale >= k > 0):
// pow() has no vector form in POCL's library and was most of the time of
// a training step there; the two differ by a few ulp.
// Tunables: none.

// lrn_pow_neg returns s^-beta for s > 0.
float lrn_pow_neg(float s, float beta)
{
    return exp(-beta * log(s));
}

__kernel void lrn_forward(__global const float *x, // (N, C, H, W)
                          __global float *y,       // (N, C, H, W)
                          __global float *scale,   // (N, C, H, W)
                          const int N, const int C, const int H, const int W,
                          const int size, const float alpha, const float beta,
                          const float k)
{
    const int i = get_global_id(0);
    const int HW = H * W;
    if (i >= N * C * HW)
        return;
    const int c = (i / HW) % C;
    const int base = i - c * HW; // channel 0 of this sample and pixel
    const int lo = max(0, c - size / 2);
    const int hi = min(C - 1, c + (size - 1) / 2);
    float sum = 0.0f;
    for (int cc = lo; cc <= hi; cc++) {
        const float v = x[base + cc * HW];
        sum += v * v;
    }
    const float sc = k + alpha / (float)size * sum;
    scale[i] = sc;
    y[i] = x[i] * lrn_pow_neg(sc, beta);
}

__kernel void lrn_backward(__global const float *x,     // (N, C, H, W)
                           __global const float *y,     // (N, C, H, W)
                           __global const float *scale, // (N, C, H, W)
                           __global const float *dy,    // (N, C, H, W)
                           __global float *dx,          // (N, C, H, W)
                           const int N, const int C, const int H, const int W,
                           const int size, const float alpha, const float beta,
                           const float k)
{
    const int i = get_global_id(0);
    const int HW = H * W;
    if (i >= N * C * HW)
        return;
    const int c = (i / HW) % C;
    const int base = i - c * HW;
    const int lo = max(0, c - (size - 1) / 2);
    const int hi = min(C - 1, c + size / 2);
    float acc = 0.0f;
    for (int cc = lo; cc <= hi; cc++) {
        const int j = base + cc * HW;
        acc += dy[j] * y[j] / scale[j];
    }
    dx[i] = dy[i] * lrn_pow_neg(scale[i], beta)
            - 2.0f * alpha * beta / (float)size * x[i] * acc;
}

// The CPU forms (Device.LRN* on devices that use gemm_vec): one work item
// per image and block of LRNV_VW consecutive pixels, walking every channel
// with explicit vectors (exp and log then run LRNV_VW lanes at a time);
// the last, partial block of an image runs the same sums pixel by pixel.
// NDRange: N * ceil(H*W / LRNV_VW), 1-D, rounded up. The sums are the
// scalar kernels' sums, in the same order (a compiler may still fuse
// the forward's v*v + sum into one fma in one form and not the other).
// For windows of up to LRNV_RING channels, lrn_forward_vec computes each
// channel's x*x, and lrn_backward_vec its dy*y/scale, once, into a ring
// of the last LRNV_RING channels, where the scalar forms compute them once
// per window they fall in (size times): under POCL mini's two LRN
// backward passes at batch 128 went from 11-13 and 11-14 ms to 5.0 and
// 6.7-8.6 ms, paper's two forward passes at batch 32 from 23.4 to
// 10.5 ms; wider windows take the loops without the ring.
//   lrn_forward_vec(x, y, scale, N, C, H, W, size, alpha, beta, k)
//   lrn_backward_vec(x, y, scale, dy, dx, N, C, H, W, size, alpha, beta, k)
// Tunable: LRNV_VW vector width, 4, 8 or 16 (default 16).

#ifndef LRNV_VW
#define LRNV_VW 16
#endif
#define LRNV_CAT_(a, b) a##b
#define LRNV_CAT(a, b) LRNV_CAT_(a, b)
#define lrnv LRNV_CAT(float, LRNV_VW)
#define lrnv_load LRNV_CAT(vload, LRNV_VW)
#define lrnv_store LRNV_CAT(vstore, LRNV_VW)
// The widest window lrn_forward_vec and lrn_backward_vec keep in their
// rings (AlexNet's is 5).
#define LRNV_RING 8

__kernel void lrn_forward_vec(__global const float *x, // (N, C, H, W)
                              __global float *y,       // (N, C, H, W)
                              __global float *scale,   // (N, C, H, W)
                              const int N, const int C, const int H, const int W,
                              const int size, const float alpha, const float beta,
                              const float k)
{
    const int HW = H * W, nb = (HW + LRNV_VW - 1) / LRNV_VW;
    const int i = get_global_id(0);
    if (i >= N * nb)
        return;
    const int n = i / nb, p0 = (i % nb) * LRNV_VW;
    const int base = n * C * HW + p0;
    const float as = alpha / (float)size;
    if (p0 + LRNV_VW <= HW && size <= LRNV_RING) {
        // Each channel's square computed once, into a ring of the window's
        // last LRNV_RING channels, then summed as below.
        lrnv ring[LRNV_RING];
        int next = 0; // the next channel whose square is not in the ring
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - size / 2), hi = min(C - 1, c + (size - 1) / 2);
            for (; next <= hi; next++) {
                const lrnv v = lrnv_load(0, x + base + next * HW);
                ring[next % LRNV_RING] = v * v;
            }
            lrnv sum = (lrnv)(0.0f);
            for (int cc = lo; cc <= hi; cc++)
                sum += ring[cc % LRNV_RING];
            const lrnv sc = k + as * sum;
            lrnv_store(sc, 0, scale + base + c * HW);
            lrnv_store(lrnv_load(0, x + base + c * HW) * exp(-beta * log(sc)), 0, y + base + c * HW);
        }
        return;
    }
    if (p0 + LRNV_VW <= HW) {
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - size / 2), hi = min(C - 1, c + (size - 1) / 2);
            lrnv sum = (lrnv)(0.0f);
            for (int cc = lo; cc <= hi; cc++) {
                const lrnv v = lrnv_load(0, x + base + cc * HW);
                sum += v * v;
            }
            const lrnv sc = k + as * sum;
            lrnv_store(sc, 0, scale + base + c * HW);
            lrnv_store(lrnv_load(0, x + base + c * HW) * exp(-beta * log(sc)), 0, y + base + c * HW);
        }
        return;
    }
    for (int p = 0; p < HW - p0; p++)
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - size / 2), hi = min(C - 1, c + (size - 1) / 2);
            float sum = 0.0f;
            for (int cc = lo; cc <= hi; cc++) {
                const float v = x[base + cc * HW + p];
                sum += v * v;
            }
            const float sc = k + as * sum;
            scale[base + c * HW + p] = sc;
            y[base + c * HW + p] = x[base + c * HW + p] * lrn_pow_neg(sc, beta);
        }
}

__kernel void lrn_backward_vec(__global const float *x,     // (N, C, H, W)
                               __global const float *y,     // (N, C, H, W)
                               __global const float *scale, // (N, C, H, W)
                               __global const float *dy,    // (N, C, H, W)
                               __global float *dx,          // (N, C, H, W)
                               const int N, const int C, const int H, const int W,
                               const int size, const float alpha, const float beta,
                               const float k)
{
    const int HW = H * W, nb = (HW + LRNV_VW - 1) / LRNV_VW;
    const int i = get_global_id(0);
    if (i >= N * nb)
        return;
    const int n = i / nb, p0 = (i % nb) * LRNV_VW;
    const int base = n * C * HW + p0;
    const float coef = 2.0f * alpha * beta / (float)size;
    if (p0 + LRNV_VW <= HW && size <= LRNV_RING) {
        // Each channel's dy*y/scale computed once, into a ring of the
        // window's last LRNV_RING channels, then summed as below.
        lrnv ring[LRNV_RING];
        int next = 0; // the next channel whose term is not in the ring
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - (size - 1) / 2), hi = min(C - 1, c + size / 2);
            for (; next <= hi; next++) {
                const int j = base + next * HW;
                ring[next % LRNV_RING] = lrnv_load(0, dy + j) * lrnv_load(0, y + j) / lrnv_load(0, scale + j);
            }
            lrnv acc = (lrnv)(0.0f);
            for (int cc = lo; cc <= hi; cc++)
                acc += ring[cc % LRNV_RING];
            const int j = base + c * HW;
            const lrnv d = lrnv_load(0, dy + j) * exp(-beta * log(lrnv_load(0, scale + j)))
                           - coef * lrnv_load(0, x + j) * acc;
            lrnv_store(d, 0, dx + j);
        }
        return;
    }
    if (p0 + LRNV_VW <= HW) {
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - (size - 1) / 2), hi = min(C - 1, c + size / 2);
            lrnv acc = (lrnv)(0.0f);
            for (int cc = lo; cc <= hi; cc++) {
                const int j = base + cc * HW;
                acc += lrnv_load(0, dy + j) * lrnv_load(0, y + j) / lrnv_load(0, scale + j);
            }
            const int j = base + c * HW;
            const lrnv d = lrnv_load(0, dy + j) * exp(-beta * log(lrnv_load(0, scale + j)))
                           - coef * lrnv_load(0, x + j) * acc;
            lrnv_store(d, 0, dx + j);
        }
        return;
    }
    for (int p = 0; p < HW - p0; p++)
        for (int c = 0; c < C; c++) {
            const int lo = max(0, c - (size - 1) / 2), hi = min(C - 1, c + size / 2);
            float acc = 0.0f;
            for (int cc = lo; cc <= hi; cc++) {
                const int j = base + cc * HW + p;
                acc += dy[j] * y[j] / scale[j];
            }
            const int j = base + c * HW + p;
            dx[j] = dy[j] * lrn_pow_neg(scale[j], beta) - coef * x[j] * acc;
        }
}
