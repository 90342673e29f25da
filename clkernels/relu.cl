// relu.cl: rectified linear unit, for Device.ReLUForward and ReLUBackward.
//
// Kernels:
//   relu_forward(x, y, n)        y (n) = x > 0 ? x : 0;   x and y may alias.
//   relu_backward(y, dy, dx, n)  dx (n) = y > 0 ? dy : 0; dy and dx may alias.
// Buffers are flat: any (N, C, H, W) or (N, K) activation, n elements.
// NDRange: 1-D, one work item per element, rounded up.
// Tunables: none.

__kernel void relu_forward(__global const float *x, // (n)
                           __global float *y,       // (n)
                           const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;
}

__kernel void relu_backward(__global const float *y,  // (n) forward output
                            __global const float *dy, // (n)
                            __global float *dx,       // (n), overwritten
                            const int n)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
