// loss.cl: softmax cross-entropy with top-k rank, for
// Device.SoftmaxCrossEntropy.
//
// Shapes:
//   logits  is (N, classes)
//   labels  is (N) int
//   loss    is (N)          -log softmax(logits)[label], per sample
//   rank    is (N) int      #classes ranked above the label: logit greater,
//                           or equal with a lower class index, or NaN (a
//                           NaN label logit: every class, rank = classes)
//   dlogits is (N, classes) (softmax - onehot(label)) / N, written only when
//                           write_grad != 0 (else any buffer may be passed)
//   status  is (1) int      set to 1 when any label is outside [0, classes);
//                           never cleared here (the host reads and clears it)
// A label outside [0, classes) gives loss NaN, rank = classes and dlogits =
// softmax/N, and sets status[0] = 1: the kernel cannot return an error, so
// the host checks status when it next waits (Device.Sync or Read), instead
// of reading the labels back before every launch. Several work-groups may
// store the same 1: a benign race, not a read-modify-write.
//
// Kernels:
//   softmax_cross_entropy(logits, labels, loss, rank, dlogits, status, n, classes, write_grad)
//       One work-group of LOSS_WG work items per sample: max, Σ exp and the
//       rank count are strided over the classes and tree-reduced in local
//       memory in a fixed order (deterministic, stable log-softmax).
//       NDRange: global n*LOSS_WG, local LOSS_WG.
//
// Tunables (-D, through Options.Defines; ops.go reads the same value to launch):
//   LOSS_WG  work-group size, a power of two (default 64)

#ifndef LOSS_WG
#define LOSS_WG 64
#endif

__kernel __attribute__((reqd_work_group_size(LOSS_WG, 1, 1)))
void softmax_cross_entropy(__global const float *logits, // (N, classes)
                           __global const int *labels,   // (N)
                           __global float *loss,         // (N)
                           __global int *rank,           // (N)
                           __global float *dlogits,      // (N, classes)
                           __global int *status,         // (1)
                           const int n, const int classes, const int write_grad)
{
    __local float fscratch[LOSS_WG];
    __local int iscratch[LOSS_WG];
    const int smp = get_group_id(0); // the NDRange is exactly n groups
    const int lid = get_local_id(0);
    __global const float *row = logits + smp * classes;
    const int label = labels[smp];
    const bool valid = label >= 0 && label < classes;

    // Row maximum, for a stable exp.
    float m = -INFINITY;
    for (int j = lid; j < classes; j += LOSS_WG)
        m = fmax(m, row[j]);
    fscratch[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = LOSS_WG / 2; span > 0; span /= 2) {
        if (lid < span)
            fscratch[lid] = fmax(fscratch[lid], fscratch[lid + span]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = fscratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);

    // Σ exp(x - max).
    float e = 0.0f;
    for (int j = lid; j < classes; j += LOSS_WG)
        e += exp(row[j] - m);
    const float sum = reduce_sum_local(fscratch, e);

    // Rank of the label: classes strictly above it, ties to the lower index.
    const float xl = valid ? row[label] : 0.0f;
    int cnt = 0;
    if (valid)
        for (int j = lid; j < classes; j += LOSS_WG) {
            const float v = row[j];
            // !(v < xl): a NaN ranks above the label; a NaN label logit
            // puts every class above it (ref.rankedAbove).
            cnt += (!(v < xl) && !(v == xl && j >= label)) ? 1 : 0;
        }
    iscratch[lid] = cnt;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = LOSS_WG / 2; span > 0; span /= 2) {
        if (lid < span)
            iscratch[lid] += iscratch[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    if (lid == 0) {
        if (!valid)
            status[0] = 1;
        loss[smp] = valid ? log(sum) - (xl - m) : NAN;
        rank[smp] = valid ? iscratch[0] : classes;
    }
    if (write_grad) {
        __global float *drow = dlogits + smp * classes;
        for (int j = lid; j < classes; j += LOSS_WG) {
            float p = exp(row[j] - m) / sum;
            if (j == label)
                p -= 1.0f;
            drow[j] = p / (float)n;
        }
    }
}
