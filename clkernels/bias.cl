// bias.cl: bias add and bias gradient of fully connected layers, for
// Device.AddBias and Device.BiasGrad. (Convolutions add and reduce their
// bias in conv.cl.)
//
// Kernels:
//   add_bias(y, b, rows, cols)
//       y (rows, cols) += b (cols) broadcast over rows.
//       NDRange: 1-D, one work item per element of y, rounded up.
//   bias_grad(dy, db, rows, cols)
//       db (cols) += Σ_rows dy (rows, cols). One work item per column sums
//       its rows in order, so the result is deterministic without atomics;
//       neighbouring work items read neighbouring columns (coalesced).
//       NDRange: 1-D, one work item per column, rounded up.
//
// In the FC layers rows is the batch N and cols the outputs K.
// Tunables: none.

__kernel void add_bias(__global float *y,        // (rows, cols)
                       __global const float *b,  // (cols)
                       const int rows, const int cols)
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    y[i] += b[i % cols];
}

__kernel void bias_grad(__global const float *dy, // (rows, cols)
                        __global float *db,       // (cols), accumulated
                        const int rows, const int cols)
{
    const int c = get_global_id(0);
    if (c >= cols)
        return;
    float sum = 0.0f;
    for (int r = 0; r < rows; r++)
        sum += dy[r * cols + c];
    db[c] += sum;
}
