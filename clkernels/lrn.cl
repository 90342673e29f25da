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
// Tunables: none.

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
    y[i] = x[i] * pow(sc, -beta);
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
    dx[i] = dy[i] * pow(scale[i], -beta)
            - 2.0f * alpha * beta / (float)size * x[i] * acc;
}
