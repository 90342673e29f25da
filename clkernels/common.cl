// common.cl: definitions shared by every kernel file; Sources() puts it
// first in the program. OpenCL C 1.2 only (NVIDIA's driver has no 2.0).
//
// No kernels. Tunables: none. Also the macros of the blocked GPU kernels
// (BLK_*, at the end).
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

// Helpers of the blocked GPU kernels (gemm_blk, conv2d_forward_blk), whose
// work items own register blocks of 4 x 4 pieces of a tile.
//
// BLK_PIECES reads the n values (n a multiple of 4) that work item t owns
// in one row of a 16-byte aligned local tile: pieces of 4 at i*4*rt + t*4,
// as float4s. BLK_INDEX is the tile row (or column) of value i of work
// item t.
#define BLK_PIECES(dst, n, row, rt, t)                                      \
    for (int i_ = 0; i_ < (n) / 4; i_++) {                                  \
        const float4 v_ = *(__local const float4 *)&(row)[i_ * 4 * (rt) + (t) * 4]; \
        dst[4 * i_] = v_.x; dst[4 * i_ + 1] = v_.y;                         \
        dst[4 * i_ + 2] = v_.z; dst[4 * i_ + 3] = v_.w;                     \
    }
#define BLK_INDEX(i, rt, t) (((i) / 4) * 4 * (rt) + (t) * 4 + (i) % 4)

// BLK_ALONG_K sets (mm, kk), the place in a T x TSK tile of the l-th
// element a work-group stages reading along k: 8 consecutive k of a row,
// then the next row, T rows, then the next 8 k. So 32 work items read 4
// rows' 32-byte sectors and store to 32 different banks of rows padded to
// a multiple of 4 plus 4 floats. When TSK is not a multiple of 8, plain
// row-major. BLK_ALONG_MN stages along the rows (m or n) instead.
#define BLK_ALONG_K(l, T, TSK, mm, kk)                                      \
    {                                                                       \
        if ((TSK) % 8 == 0) {                                               \
            kk = ((l) / (8 * (T))) * 8 + (l) % 8;                           \
            mm = ((l) / 8) % (T);                                           \
        } else {                                                            \
            mm = (l) / (TSK);                                               \
            kk = (l) % (TSK);                                               \
        }                                                                   \
    }
#define BLK_ALONG_MN(l, T, mm, kk) { kk = (l) / (T); mm = (l) % (T); }

// BLK_KU_LOOP(k0, ku, TSK, KU) runs the statement after it for the K
// steps k0 + ku = 0 .. TSK-1 of a local tile, as TSK/KU iterations of a
// loop whose body is KU unrolled steps (KU divides TSK; KU = TSK unrolls
// them all). A compiler that sees all TSK steps at once may load every
// step's operands from local memory up front, which costs registers: on
// AMD GPUs the blocked kernels unrolled whole need about 190 registers
// (64 x 64 tiles of 4 x 4 blocks) where runs of 2 need about 70, and
// larger tiles spill (TestKernelISA). Runs of 2 are the kernels' default;
// the tuner also tries whole tiles.
#define BLK_KU_LOOP(k0, ku, TSK, KU)                                        \
    _Pragma("unroll 1") for (int k0 = 0; k0 < (TSK); k0 += (KU))          \
    _Pragma("unroll") for (int ku = 0; ku < (KU); ku++)
