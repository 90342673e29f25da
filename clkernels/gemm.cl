// gemm.cl: batched, strided matrix multiply for Device.Gemm and for the
// im2col convolutions of conv.cl (Conv2DForward on CPUs, Conv2DBackwardData
// and Conv2DBackwardFilter everywhere).
//
// Every kernel here computes, for each batch entry z (z = b1*nb2 + b2,
// b1 < nb1, b2 < nb2; the NDRange's third dimension is z*ks + r, r the run
// of K under split K below, 0 without):
//
//   C[z] = alpha * Σ_{t<nt} opA[z,t] · opB[z,t]  +  beta * C[z]  +  bias[z]
//
// with opA[z,t] (M, K), opB[z,t] (K, N), C[z] (M, N) addressed by strides
// in elements (a GEMM view of NCHW tensors needs no copies):
//
//   opA[z,t](m, k) = A[aoff + b1*as1 + b2*as2 + t*ast + m*sam + k*sak]
//   opB[z,t](k, n) = B[boff + b1*bs1 + b2*bs2 + t*bst + k*sbk + n*sbn]
//   C[z](m, n)     = C[coff + b1*cs1 + b2*cs2 + m*ldc + n]
//   bias[z](m)     = bias[biasoff + b2*biass2 + m]   (only when hasbias != 0)
//
// Split K: with ks > 1 the NDRange's third dimension is nb1*nb2*ks, and
// run r < ks of entry z sums only k in [r*kc, min(K, (r+1)*kc)), writing
// its partial product to C[z] + r*cks; the host passes alpha 1, beta 0 and
// no bias, and adds the runs with gemm_sum_splits. ks = 1, kc = K is the
// whole product.
// The sum over t (nt >= 1) is a reduction over a batch inside one launch,
// in t order (Conv2DBackwardFilter sums its images so). A plain row-major
// Gemm is nb1 = nb2 = nt = 1, sam = K, sak = 1 (or sam = 1, sak = M when
// transposed), likewise B. When beta == 0, C is not read (it may hold NaN),
// as in BLAS. K == 0 gives C = beta*C (+ bias). Sums run in a fixed order,
// so results are the same bits run after run; no atomics.
//
// Kernels (same arguments, GEMM_ARGS below):
//   gemm      For GPUs: a work-group computes a GEMM_TSM x GEMM_TSN tile of
//             C[z], walking K in steps of GEMM_TSK through local memory;
//             each work item keeps a GEMM_WPTM x GEMM_WPTN register block.
//             Work item (tx, ty) owns rows ty + i*RTSM and columns
//             tx + j*RTSN of the tile, so neighbouring work items write
//             neighbouring columns (coalesced); tiles are loaded along
//             whichever of A's and B's dimensions has stride 1.
//             NDRange: (ceil(N/TSN)*RTSN, ceil(M/TSM)*RTSM, nb1*nb2*ks), local
//             (RTSN, RTSM, 1), RTSM = TSM/WPTM, RTSN = TSN/WPTN.
//   gemm_vec  For CPUs (POCL and the like): no local memory, no barriers;
//             each work item computes a GEMMV_MR x (2*GEMMV_VW) block of
//             C[z] with 2*MR vector accumulators of GEMMV_VW floats
//             (AVX-512 holds 16): per k, two vector loads of a row of opB
//             and MR scalar broadcasts of opA. Needs sbn == 1. The last
//             column block is shifted left to stay a full vector block (it
//             stores only its own columns); N < 2*VW takes a scalar path.
//             NDRange: (ceil(N/(2*VW)), ceil(M/MR) rounded up to GEMMV_LM,
//             nb1*nb2*ks), local (1, GEMMV_LM, 1): the LM work items of a
//             group share one panel of B, which stays in cache.
//   gemm_dot  For CPUs when opB is B transposed and both operands are
//             contiguous along k (sak == sbk == 1, as in a linear layer's
//             forward x·Wᵀ): each work item computes a 4 x 4 block of C as
//             dot products vectorised along k, GEMMV_VW floats at a time,
//             reduced in a fixed order. NDRange (ceil(N/4), ceil(M/4)
//             rounded up to the group height, nb1*nb2*ks), local (1, up to
//             GEMMV_LM, 1): a group's work items share 4 rows of B, read
//             from memory about once.
//   gemm_sum_splits(part, C, M, N, ldc, splits, alpha, beta)
//             Not a GEMM: the sum of the partial products of a split K
//             (below).
//   gemm_transpose(src, dst, rows, cols, beta)
//             Not a GEMM: dst (cols, rows) = srcᵀ + beta * dst, src (rows,
//             cols) row-major; dst is not read when beta is 0. One work
//             item per element of dst, 1-D, rounded up. Device.Gemm on CPU
//             devices takes C = A·Bᵀ (a linear layer's forward) as
//             (B·Aᵀ)ᵀ: Aᵀ by this kernel, B·Aᵀ by gemm_vec, then C by this
//             kernel again, as gemm_dot ran at about a fifth of gemm_vec's
//             speed under POCL (device/opencl/ops.go).
//
// Tunables (-D, through Options.Defines; ops.go reads the same values to launch):
//   GEMM_TSM  tile rows of C            (default 64)
//   GEMM_TSN  tile columns of C         (default 64)
//   GEMM_TSK  K step held in local mem  (default 16)
//   GEMM_WPTM rows per work item        (default 4)
//   GEMM_WPTN columns per work item     (default 4)
//   GEMM_KU   gemm_blk's K steps per unrolled run, dividing GEMM_TSK
//             (default 2, or 1 for an odd GEMM_TSK; GEMM_TSK unrolls a
//             tile's steps whole, see BLK_KU_LOOP)
//   GEMMV_VW  vector width of gemm_vec and gemm_dot: 4, 8 or 16 (default 16)
//   GEMMV_MR  rows per gemm_vec work item, 1 to 8 (default 6)
//   GEMMV_LM  (host only) gemm_vec work-group height (default 8)
//   GEMM_SPLIT_GROUPS (host only) the work-groups per compute unit that
//             split K aims at (default 4)
//   GEMMS_KIND, GEMMS_TSM, GEMMS_TSN, GEMMS_TSK, GEMMS_WPTM, GEMMS_WPTN,
//   GEMMS_KU  (host only) the small tile set: this file built a second
//             time with these as GEMM_* (device/opencl/gemmset.go)
// TSM must be a multiple of WPTM and TSN of WPTN.

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
#ifndef GEMM_KU
#define GEMM_KU (GEMM_TSK % 2 == 0 ? 2 : 1)
#endif
#if GEMM_KU < 1 || GEMM_TSK % GEMM_KU != 0
#error "GEMM_KU must divide GEMM_TSK"
#endif
#ifndef GEMMV_VW
#define GEMMV_VW 16
#endif
#ifndef GEMMV_MR
#define GEMMV_MR 6
#endif
#ifndef GEMMV_PF
#define GEMMV_PF 8
#endif

#define GEMM_RTSM (GEMM_TSM / GEMM_WPTM)
#define GEMM_RTSN (GEMM_TSN / GEMM_WPTN)
#define GEMM_WG (GEMM_RTSM * GEMM_RTSN)

#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define floatv GEMM_CAT(float, GEMMV_VW)
#define vloadv GEMM_CAT(vload, GEMMV_VW)
#define vstorev GEMM_CAT(vstore, GEMMV_VW)
#define GEMMV_NR (2 * GEMMV_VW)

#define GEMM_ARGS                                                           \
    const int M, const int N, const int K, const float alpha,               \
    __global const float *A, const int aoff, const int sam, const int sak,  \
    __global const float *B, const int boff, const int sbk, const int sbn,  \
    const float beta, __global float *C, const int coff, const int ldc,     \
    __global const float *bias, const int biasoff, const int hasbias,       \
    const int nb2, const int as1, const int as2, const int bs1,             \
    const int bs2, const int cs1, const int cs2, const int biass2,          \
    const int nt, const int ast, const int bst,                             \
    const int ks, const int kc, const int cks

// GEMM_BATCH() moves A, B, C and bias to batch entry z and run r of K
// (get_global_id(2) = z*ks + r), and sets KR, the run's length: the
// kernels below walk k < KR of A and B so moved.
#define GEMM_BATCH()                                                        \
    const int zr_ = get_global_id(2);                                       \
    const int z_ = zr_ / ks, r_ = zr_ - z_ * ks;                            \
    const int b1_ = z_ / nb2, b2_ = z_ % nb2;                               \
    const int KR = min(K - r_ * kc, kc);                                    \
    A += aoff + b1_ * as1 + b2_ * as2 + r_ * kc * sak;                      \
    B += boff + b1_ * bs1 + b2_ * bs2 + r_ * kc * sbk;                      \
    C += coff + b1_ * cs1 + b2_ * cs2 + r_ * cks;                           \
    if (hasbias)                                                            \
        bias += biasoff + b2_ * biass2;

// gemm_out is the value stored at C(m, n) for the sum acc.
float gemm_out(float acc, float alpha, float beta, __global const float *C,
                      int idx, __global const float *bias, int hasbias, int m)
{
    float v = alpha * acc;
    if (beta != 0.0f)
        v += beta * C[idx];
    if (hasbias)
        v += bias[m];
    return v;
}

__kernel __attribute__((reqd_work_group_size(GEMM_RTSN, GEMM_RTSM, 1)))
void gemm(GEMM_ARGS)
{
    // +1 column of padding keeps transposing stores off a single bank.
    __local float As[GEMM_TSK][GEMM_TSM + 1]; // As[k][m] = opA(m0+m, k0+k)
    __local float Bs[GEMM_TSK][GEMM_TSN + 1]; // Bs[k][n] = opB(k0+k, n0+n)

    GEMM_BATCH()
    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int tid = ty * GEMM_RTSN + tx;
    const int m0 = get_group_id(1) * GEMM_TSM;
    const int n0 = get_group_id(0) * GEMM_TSN;

    // Every loop over the register block is unrolled, so that acc, a and
    // b are registers: an array indexed by a loop variable that a
    // compiler leaves rolled lives in per-thread memory (PTX .local), one
    // load and store per multiply-add (TestKernelISA checks).
    float acc[GEMM_WPTM][GEMM_WPTN];
#pragma unroll
    for (int i = 0; i < GEMM_WPTM; i++)
#pragma unroll
        for (int j = 0; j < GEMM_WPTN; j++)
            acc[i][j] = 0.0f;

    for (int t = 0; t < nt; t++, A += ast, B += bst) {
        for (int k0 = 0; k0 < KR; k0 += GEMM_TSK) {
            // Load the tiles so that consecutive work items read
            // consecutive addresses where a stride is 1.
            for (int l = tid; l < GEMM_TSM * GEMM_TSK; l += GEMM_WG) {
                int mm, kk;
                if (sak == 1) { mm = l / GEMM_TSK; kk = l % GEMM_TSK; }
                else          { kk = l / GEMM_TSM; mm = l % GEMM_TSM; }
                const int m = m0 + mm, k = k0 + kk;
                As[kk][mm] = (m < M && k < KR) ? A[m * sam + k * sak] : 0.0f;
            }
            for (int l = tid; l < GEMM_TSN * GEMM_TSK; l += GEMM_WG) {
                int nn, kk;
                if (sbn == 1) { kk = l / GEMM_TSN; nn = l % GEMM_TSN; }
                else          { nn = l / GEMM_TSK; kk = l % GEMM_TSK; }
                const int n = n0 + nn, k = k0 + kk;
                Bs[kk][nn] = (n < N && k < KR) ? B[k * sbk + n * sbn] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);

            for (int kk = 0; kk < GEMM_TSK; kk++) {
                float a[GEMM_WPTM], b[GEMM_WPTN];
#pragma unroll
                for (int i = 0; i < GEMM_WPTM; i++)
                    a[i] = As[kk][ty + i * GEMM_RTSM];
#pragma unroll
                for (int j = 0; j < GEMM_WPTN; j++)
                    b[j] = Bs[kk][tx + j * GEMM_RTSN];
#pragma unroll
                for (int i = 0; i < GEMM_WPTM; i++)
#pragma unroll
                    for (int j = 0; j < GEMM_WPTN; j++)
                        acc[i][j] = fma(a[i], b[j], acc[i][j]);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }

#pragma unroll
    for (int i = 0; i < GEMM_WPTM; i++) {
        const int m = m0 + ty + i * GEMM_RTSM;
        if (m >= M)
            continue;
#pragma unroll
        for (int j = 0; j < GEMM_WPTN; j++) {
            const int n = n0 + tx + j * GEMM_RTSN;
            if (n >= N)
                continue;
            C[m * ldc + n] = gemm_out(acc[i][j], alpha, beta, C, m * ldc + n, bias, hasbias, m);
        }
    }
}

// gemm_blk: the GPU kernel of the "blocked" family (GEMM_KIND=blocked),
// the same product as gemm with the same tunables, arranged for the
// memory system of a GPU:
//   - each work item's register block is made of 4 x 4 pieces: rows
//     ty*4 + i*4*RTSM + {0..3} and columns tx*4 + j*4*RTSN + {0..3}, so
//     each k step reads its WPTM + WPTN operands from local memory as
//     float4s (a quarter of gemm's scalar loads; the tiles are 16-byte
//     aligned so that compilers emit vector loads);
//   - the local tiles are double-buffered, and the next tile is read from
//     global memory into registers before the current one is multiplied,
//     so its latency hides behind the arithmetic and one barrier per K step
//     suffices;
//   - the local rows are padded by 4 floats, which keeps float4 alignment;
//     an operand read along k is staged 8 k by 4 rows per 32 work items
//     (BLK_ALONG_K, common.cl), whose transposing stores then hit 32 different
//     banks, and each row's 8 floats are one 32-byte sector in memory.
// For every C entry the products are summed in the same order as gemm's
// (t, then k ascending), so both kernels give the same bits.
// Built only in programs of the blocked family (GEMM_BLOCKED, which the
// host defines with GEMM_KIND=blocked) whose WPTM and WPTN are multiples
// of 4.
#if defined(GEMM_BLOCKED) && GEMM_WPTM % 4 == 0 && GEMM_WPTN % 4 == 0
#define GEMMB_PAD 4
#define GEMMB_ATILE (GEMM_TSM * GEMM_TSK)
#define GEMMB_BTILE (GEMM_TSN * GEMM_TSK)
#define GEMMB_LA ((GEMMB_ATILE + GEMM_WG - 1) / GEMM_WG) // A elements a work item stages
#define GEMMB_LB ((GEMMB_BTILE + GEMM_WG - 1) / GEMM_WG)

__kernel __attribute__((reqd_work_group_size(GEMM_RTSN, GEMM_RTSM, 1)))
void gemm_blk(GEMM_ARGS)
{
    // As[.][k][m] = opA(m0+m, k0+k), Bs[.][k][n] = opB(k0+k, n0+n)
    __local float As[2][GEMM_TSK][GEMM_TSM + GEMMB_PAD] __attribute__((aligned(16)));
    __local float Bs[2][GEMM_TSK][GEMM_TSN + GEMMB_PAD] __attribute__((aligned(16)));

    GEMM_BATCH()
    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int tid = ty * GEMM_RTSN + tx;
    const int m0 = get_group_id(1) * GEMM_TSM;
    const int n0 = get_group_id(0) * GEMM_TSN;
    const int ktiles = (KR + GEMM_TSK - 1) / GEMM_TSK;
    const int iters = nt * ktiles;

    float acc[GEMM_WPTM][GEMM_WPTN];
#pragma unroll
    for (int i = 0; i < GEMM_WPTM; i++)
#pragma unroll
        for (int j = 0; j < GEMM_WPTN; j++)
            acc[i][j] = 0.0f;
    float ra[GEMMB_LA], rb[GEMMB_LB];

    // A's and B's place in their tiles of staged element l: along
    // whichever dimension has stride 1 (k for A when sak == 1, n for B
    // when sbn == 1), so that consecutive work items read consecutive
    // addresses.
#define GEMMB_PLACE_A(l, mm, kk)                                            \
    if (sak == 1) BLK_ALONG_K(l, GEMM_TSM, GEMM_TSK, mm, kk)                \
    else          BLK_ALONG_MN(l, GEMM_TSM, mm, kk)
#define GEMMB_PLACE_B(l, nn, kk)                                            \
    if (sbn == 1) BLK_ALONG_MN(l, GEMM_TSN, nn, kk)                         \
    else          BLK_ALONG_K(l, GEMM_TSN, GEMM_TSK, nn, kk)
    // Stage tile it (t = it / ktiles, k0 = (it % ktiles) * TSK) in ra, rb.
#define GEMMB_FETCH(it)                                                     \
    {                                                                       \
        const int t_ = (it) / ktiles;                                       \
        const int k0_ = ((it) - t_ * ktiles) * GEMM_TSK;                    \
        __global const float *At_ = A + t_ * ast;                           \
        __global const float *Bt_ = B + t_ * bst;                           \
        _Pragma("unroll") for (int i = 0; i < GEMMB_LA; i++) {              \
            const int l = tid + i * GEMM_WG;                                \
            int mm, kk;                                                     \
            GEMMB_PLACE_A(l, mm, kk)                                        \
            const int m = m0 + mm, k = k0_ + kk;                            \
            ra[i] = (l < GEMMB_ATILE && m < M && k < KR) ? At_[m * sam + k * sak] : 0.0f; \
        }                                                                   \
        _Pragma("unroll") for (int i = 0; i < GEMMB_LB; i++) {              \
            const int l = tid + i * GEMM_WG;                                \
            int nn, kk;                                                     \
            GEMMB_PLACE_B(l, nn, kk)                                        \
            const int n = n0 + nn, k = k0_ + kk;                            \
            rb[i] = (l < GEMMB_BTILE && n < N && k < KR) ? Bt_[k * sbk + n * sbn] : 0.0f; \
        }                                                                   \
    }
    // Store the staged tile into local buffer buf.
#define GEMMB_STORE(buf)                                                    \
    {                                                                       \
        _Pragma("unroll") for (int i = 0; i < GEMMB_LA; i++) {              \
            const int l = tid + i * GEMM_WG;                                \
            int mm, kk;                                                     \
            GEMMB_PLACE_A(l, mm, kk)                                        \
            if (l < GEMMB_ATILE)                                            \
                As[buf][kk][mm] = ra[i];                                    \
        }                                                                   \
        _Pragma("unroll") for (int i = 0; i < GEMMB_LB; i++) {              \
            const int l = tid + i * GEMM_WG;                                \
            int nn, kk;                                                     \
            GEMMB_PLACE_B(l, nn, kk)                                        \
            if (l < GEMMB_BTILE)                                            \
                Bs[buf][kk][nn] = rb[i];                                    \
        }                                                                   \
    }

    if (iters > 0) {
        GEMMB_FETCH(0)
        GEMMB_STORE(0)
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int cur = 0;
    for (int it = 0; it < iters; it++) {
        const int more = it + 1 < iters;
        if (more)
            GEMMB_FETCH(it + 1)
        // The K steps in unrolled runs of GEMM_KU (BLK_KU_LOOP).
        BLK_KU_LOOP(kk0, kku, GEMM_TSK, GEMM_KU) {
            const int kk = kk0 + kku;
            float a[GEMM_WPTM], b[GEMM_WPTN];
            BLK_PIECES(a, GEMM_WPTM, As[cur][kk], GEMM_RTSM, ty)
            BLK_PIECES(b, GEMM_WPTN, Bs[cur][kk], GEMM_RTSN, tx)
#pragma unroll
            for (int i = 0; i < GEMM_WPTM; i++)
#pragma unroll
                for (int j = 0; j < GEMM_WPTN; j++)
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        if (more)
            GEMMB_STORE(cur ^ 1)
        barrier(CLK_LOCAL_MEM_FENCE);
        cur ^= 1;
    }
#undef GEMMB_PLACE_A
#undef GEMMB_PLACE_B
#undef GEMMB_FETCH
#undef GEMMB_STORE

#pragma unroll
    for (int i = 0; i < GEMM_WPTM; i++) {
        const int m = m0 + BLK_INDEX(i, GEMM_RTSM, ty);
        if (m >= M)
            continue;
#pragma unroll
        for (int j = 0; j < GEMM_WPTN; j++) {
            const int n = n0 + BLK_INDEX(j, GEMM_RTSN, tx);
            if (n >= N)
                continue;
            C[m * ldc + n] = gemm_out(acc[i][j], alpha, beta, C, m * ldc + n, bias, hasbias, m);
        }
    }
}
#endif // GEMM_BLOCKED, WPTM and WPTN multiples of 4

__kernel void gemm_vec(GEMM_ARGS)
{
    GEMM_BATCH()
    const int m0 = get_global_id(1) * GEMMV_MR;
    const int nfirst = get_global_id(0) * GEMMV_NR; // first column stored
    if (m0 >= M || nfirst >= N)
        return;
    // Rows past M repeat row M-1 (computed, never stored).
    int arow[GEMMV_MR];
    for (int i = 0; i < GEMMV_MR; i++)
        arow[i] = min(m0 + i, M - 1) * sam;

    if (N < GEMMV_NR) { // narrower than one vector block: plain loops
        for (int i = 0; i < GEMMV_MR && m0 + i < M; i++)
            for (int n = nfirst; n < N; n++) {
                float s = 0.0f;
                for (int t = 0; t < nt; t++)
                    for (int k = 0; k < KR; k++)
                        s = fma(A[t * ast + arow[i] + k * sak], B[t * bst + k * sbk + n], s);
                const int idx = (m0 + i) * ldc + n;
                C[idx] = gemm_out(s, alpha, beta, C, idx, bias, hasbias, m0 + i);
            }
        return;
    }

    const int n0 = min(nfirst, N - GEMMV_NR); // the last block overlaps its neighbour
    floatv acc0[GEMMV_MR], acc1[GEMMV_MR];
    for (int i = 0; i < GEMMV_MR; i++) {
        acc0[i] = (floatv)(0.0f);
        acc1[i] = (floatv)(0.0f);
    }
    for (int t = 0; t < nt; t++) {
        __global const float *At = A + t * ast;
        __global const float *Bt = B + t * bst + n0;
        for (int k = 0; k < KR; k++) {
            prefetch(Bt + (k + GEMMV_PF) * sbk, GEMMV_NR);
            const floatv b0 = vloadv(0, Bt + k * sbk);
            const floatv b1 = vloadv(1, Bt + k * sbk);
#pragma unroll
            for (int i = 0; i < GEMMV_MR; i++) {
                const floatv a = (floatv)(At[arow[i] + k * sak]);
                acc0[i] = fma(a, b0, acc0[i]);
                acc1[i] = fma(a, b1, acc1[i]);
            }
        }
    }

    for (int i = 0; i < GEMMV_MR; i++) {
        const int m = m0 + i;
        if (m >= M)
            break;
        __global float *c = C + m * ldc + n0;
        const float bi = hasbias ? bias[m] : 0.0f;
        if (n0 == nfirst) {
            floatv v0 = alpha * acc0[i] + bi, v1 = alpha * acc1[i] + bi;
            if (beta != 0.0f) {
                v0 += beta * vloadv(0, c);
                v1 += beta * vloadv(1, c);
            }
            vstorev(v0, 0, c);
            vstorev(v1, 1, c);
        } else {
            float out[GEMMV_NR];
            vstorev(acc0[i], 0, out);
            vstorev(acc1[i], 1, out);
            for (int j = nfirst - n0; j < GEMMV_NR; j++)
                c[j] = gemm_out(out[j], alpha, beta, c, j, bias, hasbias, m);
        }
    }
}

// gemm_hsum adds up the lanes of v in a fixed order.
float gemm_hsum(floatv v)
{
    float l[GEMMV_VW];
    vstorev(v, 0, l);
    float s = 0.0f;
    for (int i = 0; i < GEMMV_VW; i++)
        s += l[i];
    return s;
}

__kernel void gemm_dot(GEMM_ARGS)
{
    GEMM_BATCH()
    const int m0 = get_global_id(1) * 4, n0 = get_global_id(0) * 4;
    if (m0 >= M || n0 >= N)
        return;
    int arow[4], bcol[4];
    for (int i = 0; i < 4; i++) {
        arow[i] = min(m0 + i, M - 1) * sam;
        bcol[i] = min(n0 + i, N - 1) * sbn;
    }
    floatv acc[4][4];
    float tail[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            acc[i][j] = (floatv)(0.0f);
            tail[i][j] = 0.0f;
        }
    const int Kv = KR / GEMMV_VW * GEMMV_VW;
    for (int t = 0; t < nt; t++) {
        __global const float *At = A + t * ast, *Bt = B + t * bst;
        for (int k = 0; k < Kv; k += GEMMV_VW) {
            floatv a[4], b[4];
            for (int i = 0; i < 4; i++) {
                a[i] = vloadv(0, At + arow[i] + k);
                b[i] = vloadv(0, Bt + bcol[i] + k);
            }
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        for (int k = Kv; k < KR; k++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    tail[i][j] = fma(At[arow[i] + k], Bt[bcol[j] + k], tail[i][j]);
    }
    for (int i = 0; i < 4 && m0 + i < M; i++)
        for (int j = 0; j < 4 && n0 + j < N; j++) {
            const int idx = (m0 + i) * ldc + n0 + j;
            C[idx] = gemm_out(gemm_hsum(acc[i][j]) + tail[i][j], alpha, beta, C, idx, bias, hasbias, m0 + i);
        }
}

__kernel void gemm_transpose(__global const float *src, // (rows, cols)
                             __global float *dst,       // (cols, rows)
                             const int rows, const int cols, const float beta)
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    const int c = i / rows, r = i - c * rows;
    const float v = src[(size_t)r * cols + c];
    dst[i] = beta == 0.0f ? v : v + beta * dst[i];
}

// gemm_sum_splits: the last step of a product whose K the host cut into
// runs (split K, above; device/opencl/gemm.go): C (M, N), row stride ldc,
// = alpha * Σ_{s < splits} part[s] + beta * C, with part (splits, M, N)
// the runs' partial products, summed in s order (a batch of products
// whose C[z] follow each other is one tall C). C is not read when beta is
// 0. One work item per element of C, 1-D, rounded up.
__kernel void gemm_sum_splits(__global const float *part, __global float *C,
                              const int M, const int N, const int ldc,
                              const int splits, const float alpha, const float beta)
{
    const int i = get_global_id(0);
    if (i >= M * N)
        return;
    const int m = i / N, n = i - m * N;
    float s = 0.0f;
    for (int j = 0; j < splits; j++)
        s += part[(size_t)j * M * N + i];
    float v = alpha * s;
    if (beta != 0.0f)
        v += beta * C[m * ldc + n];
    C[m * ldc + n] = v;
}
