// common.cl: definitions shared by every kernel file; Sources() puts it
// first in the program. OpenCL C 1.2 only (NVIDIA's driver has no 2.0).
//
// No kernels. Tunables: none.
//
// Conventions every kernel file keeps:
//   - Integer shape arguments are int; element counts fit in int (the Go
//     side checks every buffer's element count against MaxInt32).
//   - Global sizes may be rounded up to a multiple of the work-group size,
//     so every kernel guards with `if (i >= n) return;` (or, in kernels
//     with barriers, keeps idle work items in the loop and skips the stores).
//   - No atomics: each output element is written by exactly one work item,
//     and reductions run in a fixed order, so results are deterministic.
//   - No native_/half_ math and no -cl-fast-relaxed-math.

// reduce_sum_local sums v over the work-group with a tree in scratch
// (get_local_size(0) floats) and returns the total to every work item. The
// work-group size must be a power of two; the order of additions depends
// only on it, so the result is the same bits run after run. Every work item
// of the group must call it.
float reduce_sum_local(__local float *scratch, float v)
{
    const int lid = get_local_id(0);
    const int ls = get_local_size(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = ls / 2; span > 0; span /= 2) {
        if (lid < span)
            scratch[lid] += scratch[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE); // scratch may be reused right after
    return total;
}
