// dropout.cl: inverted dropout with a counter-based mask, for
// Device.DropoutForward and DropoutBackward.
//
// Element i is kept iff (philox4x32_10(ctr, key).x >> 8) >= threshold with
//   ctr = (i, layer, step_lo, step_hi),  key = (seed_lo, seed_hi),
// the same function as device.Philox4x32 / device.DropoutKeep in Go, so
// every device draws the same mask and the backward pass recomputes it.
// threshold = device.DropoutThreshold(p) and scale = device.DropoutScale(p)
// are computed on the host and passed in.
//
// Shapes: x, y, dy, dx are (n), any activation flattened.
//
// Kernels:
//   dropout_forward(x, y, n, threshold, scale, seed_lo, seed_hi, layer, step_lo, step_hi)
//       y = kept ? x*scale : 0;  x and y may alias.
//   dropout_backward(dy, dx, n, threshold, scale, seed_lo, seed_hi, layer, step_lo, step_hi)
//       dx = kept ? dy*scale : 0;  dy and dx may alias.
//   philox4x32_10_kat(in, out, n)
//       test hook: in is (n, 6) uint (ctr[4], key[2]), out is (n, 4) uint.
// NDRange: 1-D, one work item per element, rounded up.
// Tunables: none.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// philox4x32_10 is Philox4x32 with ten rounds (Salmon et al., SC'11).
uint4 philox4x32_10(uint4 ctr, uint2 key)
{
    for (int rnd = 0; rnd < 10; rnd++) {
        const uint lo0 = PHILOX_M0 * ctr.x, hi0 = mul_hi(PHILOX_M0, ctr.x);
        const uint lo1 = PHILOX_M1 * ctr.z, hi1 = mul_hi(PHILOX_M1, ctr.z);
        ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
        key.x += PHILOX_W0;
        key.y += PHILOX_W1;
    }
    return ctr;
}

bool dropout_keep(uint i, uint threshold, uint seed_lo, uint seed_hi,
                         uint layer, uint step_lo, uint step_hi)
{
    const uint4 r = philox4x32_10((uint4)(i, layer, step_lo, step_hi),
                                  (uint2)(seed_lo, seed_hi));
    return (r.x >> 8) >= threshold;
}

__kernel void dropout_forward(__global const float *x, // (n)
                              __global float *y,       // (n)
                              const int n, const uint threshold, const float scale,
                              const uint seed_lo, const uint seed_hi, const uint layer,
                              const uint step_lo, const uint step_hi)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const bool keep = dropout_keep((uint)i, threshold, seed_lo, seed_hi, layer, step_lo, step_hi);
    y[i] = keep ? x[i] * scale : 0.0f;
}

__kernel void dropout_backward(__global const float *dy, // (n)
                               __global float *dx,       // (n)
                               const int n, const uint threshold, const float scale,
                               const uint seed_lo, const uint seed_hi, const uint layer,
                               const uint step_lo, const uint step_hi)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const bool keep = dropout_keep((uint)i, threshold, seed_lo, seed_hi, layer, step_lo, step_hi);
    dx[i] = keep ? dy[i] * scale : 0.0f;
}

// The CPU forms (on devices that use gemm_vec): 16 elements per work item,
// the 16 Philox streams as the lanes of uint16 vectors (the same rounds, so
// the same mask), then the elements as one float16. Under POCL the scalar
// kernels took 6 ms for 131,072 elements (paper's fc6 output at batch
// 32), these 0.35: POCL did not vectorise the scalar kernels' Philox
// across work items. A last, partial block runs the scalar form element
// by element.
//   dropout_forward_vec(x, y, ...), dropout_backward_vec(dy, dx, ...):
//       the arguments of dropout_forward and dropout_backward.
// NDRange: ceil(n / 16), 1-D, rounded up.

// philox4x32_10_x16 is philox4x32_10 of the counters (c0 + j, c1, c2, c3)
// for j = 0 .. 15, as lanes, with key (k0, k1); it returns the x words.
uint16 philox4x32_10_x16(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
{
    uint16 x = (uint16)(c0) + (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint16 y = (uint16)(c1), z = (uint16)(c2), w = (uint16)(c3);
    for (int rnd = 0; rnd < 10; rnd++) {
        const uint16 lo0 = PHILOX_M0 * x, hi0 = mul_hi((uint16)(PHILOX_M0), x);
        const uint16 lo1 = PHILOX_M1 * z, hi1 = mul_hi((uint16)(PHILOX_M1), z);
        x = hi1 ^ y ^ k0;
        y = lo1;
        z = hi0 ^ w ^ k1;
        w = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return x;
}

// dropout_vec writes out = kept ? in*scale : 0 for elements i0 .. i0+15
// of n, the body of both vector kernels.
void dropout_vec(__global const float *in, __global float *out, const int i0,
                 const int n, const uint threshold, const float scale,
                 const uint seed_lo, const uint seed_hi, const uint layer,
                 const uint step_lo, const uint step_hi)
{
    if (n - i0 >= 16) { /* not i0 + 16 <= n, which overflows near 2^31 */
        const uint16 r = philox4x32_10_x16((uint)i0, layer, step_lo, step_hi, seed_lo, seed_hi);
        const int16 keep = (r >> 8) >= (uint16)(threshold);
        const float16 v = vload16(0, in + i0) * scale;
        vstore16(select((float16)(0.0f), v, keep), 0, out + i0);
        return;
    }
    for (int i = i0; i < n; i++) {
        const bool keep = dropout_keep((uint)i, threshold, seed_lo, seed_hi, layer, step_lo, step_hi);
        out[i] = keep ? in[i] * scale : 0.0f;
    }
}

__kernel void dropout_forward_vec(__global const float *x, // (n)
                                  __global float *y,       // (n)
                                  const int n, const uint threshold, const float scale,
                                  const uint seed_lo, const uint seed_hi, const uint layer,
                                  const uint step_lo, const uint step_hi)
{
    const int i0 = get_global_id(0) * 16;
    if (i0 < n)
        dropout_vec(x, y, i0, n, threshold, scale, seed_lo, seed_hi, layer, step_lo, step_hi);
}

__kernel void dropout_backward_vec(__global const float *dy, // (n)
                                   __global float *dx,       // (n)
                                   const int n, const uint threshold, const float scale,
                                   const uint seed_lo, const uint seed_hi, const uint layer,
                                   const uint step_lo, const uint step_hi)
{
    const int i0 = get_global_id(0) * 16;
    if (i0 < n)
        dropout_vec(dy, dx, i0, n, threshold, scale, seed_lo, seed_hi, layer, step_lo, step_hi);
}

__kernel void philox4x32_10_kat(__global const uint *in, // (n, 6)
                                __global uint *out,      // (n, 4)
                                const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    __global const uint *p = in + 6 * i;
    const uint4 r = philox4x32_10((uint4)(p[0], p[1], p[2], p[3]), (uint2)(p[4], p[5]));
    out[4 * i + 0] = r.x;
    out[4 * i + 1] = r.y;
    out[4 * i + 2] = r.z;
    out[4 * i + 3] = r.w;
}
