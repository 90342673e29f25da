// sgd.cl: the paper's momentum SGD with weight decay, for Device.SGDUpdate.
//
// Kernels:
//   sgd_update(w, g, v, n, lr, momentum, weight_decay)
//       v = momentum*v - weight_decay*lr*w - lr*g;  w = w + v
//       w, g, v are (n): any parameter tensor, flat.
//       The expression is evaluated left to right as written, with
//       floating-point contraction (fused multiply-add) off, so it rounds
//       like the Go reference.
// NDRange: 1-D, one work item per element, rounded up.
// Tunables: none.

__kernel void sgd_update(__global float *w,       // (n)
                         __global const float *g, // (n)
                         __global float *v,       // (n) velocity
                         const int n,
                         const float lr, const float momentum,
                         const float weight_decay)
{
#pragma OPENCL FP_CONTRACT OFF
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float wi = w[i];
    const float vi = momentum * v[i] - weight_decay * lr * wi - lr * g[i];
    v[i] = vi;
    w[i] = wi + vi;
}
