// gemm.cl: general matrix multiply for Device.Gemm.
//
// Kernels:
//   gemm(ta, tb, M, N, K, alpha, A, B, beta, C)
//       C = alpha * op(A) * op(B) + beta * C, all row-major.
//       op(A) is (M, K): A is (M, K), or (K, M) when ta != 0.
//       op(B) is (K, N): B is (K, N), or (N, K) when tb != 0.
//       C is (M, N). When beta == 0, C is not read (it may hold NaN), as in BLAS.
//
// Tiling: a work-group computes a GEMM_TSM x GEMM_TSN tile of C, walking K in
// steps of GEMM_TSK through local memory; each work item keeps a
// GEMM_WPTM x GEMM_WPTN block of C in registers. Work item (tx, ty) owns rows
// ty + i*RTSM and columns tx + j*RTSN of the tile, so neighbouring work items
// write neighbouring columns (coalesced). Edge tiles load zeros and skip
// stores, so any M, N, K >= 0 works (K == 0 gives C = beta * C).
//
// NDRange: global (ceil(N/TSN)*RTSN, ceil(M/TSM)*RTSM), local (RTSN, RTSM),
// with RTSM = TSM/WPTM and RTSN = TSN/WPTN (16 x 16 = 256 by default).
//
// Tunables (-D, through Options.Defines; ops.go reads the same values to launch):
//   GEMM_TSM  tile rows of C            (default 64)
//   GEMM_TSN  tile columns of C         (default 64)
//   GEMM_TSK  K step held in local mem  (default 16)
//   GEMM_WPTM rows per work item        (default 4)
//   GEMM_WPTN columns per work item     (default 4)
// TSM*TSK and TSN*TSK must be multiples of the work-group size RTSM*RTSN.

#ifndef GEMM_TSM
#define GEMM_TSM 64
#endif
#ifndef GEMM_TSN
#define GEMM_TSN 64
#endif
#ifndef GEMM_TSK
#define GEMM_TSK 16
#endif
#ifndef GEMM_WPTM
#define GEMM_WPTM 4
#endif
#ifndef GEMM_WPTN
#define GEMM_WPTN 4
#endif

#define GEMM_RTSM (GEMM_TSM / GEMM_WPTM)
#define GEMM_RTSN (GEMM_TSN / GEMM_WPTN)
#define GEMM_WG (GEMM_RTSM * GEMM_RTSN)

__kernel __attribute__((reqd_work_group_size(GEMM_RTSN, GEMM_RTSM, 1)))
void gemm(const int ta, const int tb,
          const int M, const int N, const int K,
          const float alpha,
          __global const float *A,   // (M, K), or (K, M) when ta
          __global const float *B,   // (K, N), or (N, K) when tb
          const float beta,
          __global float *C)         // (M, N)
{
    // +1 column of padding keeps transposing stores off a single bank.
    __local float As[GEMM_TSK][GEMM_TSM + 1]; // As[k][m] = op(A)[m0+m][k0+k]
    __local float Bs[GEMM_TSK][GEMM_TSN + 1]; // Bs[k][n] = op(B)[k0+k][n0+n]

    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int tid = ty * GEMM_RTSN + tx;
    const int m0 = get_group_id(1) * GEMM_TSM;
    const int n0 = get_group_id(0) * GEMM_TSN;

    float acc[GEMM_WPTM][GEMM_WPTN];
    for (int i = 0; i < GEMM_WPTM; i++)
        for (int j = 0; j < GEMM_WPTN; j++)
            acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += GEMM_TSK) {
        // Load the A tile. The index order is chosen so that consecutive
        // work items read consecutive addresses of A in both layouts.
        for (int l = tid; l < GEMM_TSM * GEMM_TSK; l += GEMM_WG) {
            int mm, kk;
            if (ta) { kk = l / GEMM_TSM; mm = l % GEMM_TSM; }
            else    { mm = l / GEMM_TSK; kk = l % GEMM_TSK; }
            const int m = m0 + mm, k = k0 + kk;
            float v = 0.0f;
            if (m < M && k < K)
                v = ta ? A[k * M + m] : A[m * K + k];
            As[kk][mm] = v;
        }
        // Load the B tile likewise.
        for (int l = tid; l < GEMM_TSN * GEMM_TSK; l += GEMM_WG) {
            int nn, kk;
            if (tb) { nn = l / GEMM_TSK; kk = l % GEMM_TSK; }
            else    { kk = l / GEMM_TSN; nn = l % GEMM_TSN; }
            const int n = n0 + nn, k = k0 + kk;
            float v = 0.0f;
            if (n < N && k < K)
                v = tb ? B[n * K + k] : B[k * N + n];
            Bs[kk][nn] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        for (int kk = 0; kk < GEMM_TSK; kk++) {
            float a[GEMM_WPTM], b[GEMM_WPTN];
            for (int i = 0; i < GEMM_WPTM; i++)
                a[i] = As[kk][ty + i * GEMM_RTSM];
            for (int j = 0; j < GEMM_WPTN; j++)
                b[j] = Bs[kk][tx + j * GEMM_RTSN];
            for (int i = 0; i < GEMM_WPTM; i++)
                for (int j = 0; j < GEMM_WPTN; j++)
                    acc[i][j] += a[i] * b[j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < GEMM_WPTM; i++) {
        const int m = m0 + ty + i * GEMM_RTSM;
        if (m >= M)
            continue;
        for (int j = 0; j < GEMM_WPTN; j++) {
            const int n = n0 + tx + j * GEMM_RTSN;
            if (n >= N)
                continue;
            float v = alpha * acc[i][j];
            if (beta != 0.0f)
                v += beta * C[m * N + n];
            C[m * N + n] = v;
        }
    }
}
