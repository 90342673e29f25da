"""Per-layer PyTorch fixtures for alexcl's device suite.

Writes one safetensors file per case into device/devicetest/testdata/torch/
(relative to the repository root, or the directory given as the first
argument). Every Device implementation is compared against them by
devicetest.RunTorch, in addition to the Go references of device/ref.

Run with Debian's python3-torch:  /usr/bin/python3 ci/torch/layer_fixtures.py
The output is deterministic (torch.manual_seed, CPU only), so rerunning the
script with the same torch version rewrites identical files.

Conventions
- Inputs are drawn in float32 and stored as such; the outputs and gradients
  are computed in float64 from those exact float32 inputs and then rounded to
  float32, so the fixtures are closer to the true values than any float32
  implementation and the Go tolerance measures the device's own error.
- Every file's __metadata__ carries magic=alexcl-layer-fixture, version=1,
  the torch version, the op and its shape parameters as decimal strings.
- Gradients are given an upstream gradient `dy` drawn at random: dx etc. are
  the vector-Jacobian products torch.autograd computes for that dy.
- Max pooling uses distinct input values: PyTorch does not specify which of
  several equal maxima it routes to, so ties are left to the Go reference test.
- SGD: torch.optim.SGD(momentum=m, weight_decay=wd) keeps a buffer b with
      b <- m*b + (g + wd*w)       (b = g + wd*w on the first step)
      w <- w - lr*b
  alexcl uses the paper's form (device.SGDParams)
      v <- m*v - wd*lr*w - lr*g ;  w <- w + v.
  While lr is constant, v = -lr*b satisfies the paper's recurrence exactly:
  -lr*(m*b + g + wd*w) = m*(-lr*b) - wd*lr*w - lr*g. The fixture stores
  v = -lr*b after each of two steps (the second starts from a non-zero v).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

MAGIC = 'alexcl-layer-fixture'
VERSION = '1'


def save(outdir, name, op, tensors, **params):
    """Writes tensors (cast to float32 unless integer) with the metadata."""
    out = {}
    for k, v in tensors.items():
        v = v.detach()
        out[k] = v.to(torch.int32) if not v.is_floating_point() else v.to(torch.float32)
    meta = {'magic': MAGIC, 'version': VERSION, 'torch': torch.__version__, 'op': op}
    meta.update({k: str(v) for k, v in params.items()})
    path = os.path.join(outdir, name + '.safetensors')
    st.save(out, path, meta)
    print(f'{path}: {os.path.getsize(path)} bytes')


def f32(*shape, scale=1.0):
    """Float32 normal samples, returned as float64 holding the exact values."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).double()


def conv(outdir, name, N, C, H, W, K, R, S, stride, pad, groups):
    x = f32(N, C, H, W).requires_grad_()
    w = f32(K, C // groups, R, S, scale=0.2).requires_grad_()
    b = f32(K, scale=0.5).requires_grad_()
    y = F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)
    dy = f32(*y.shape)
    dx, dw, db = torch.autograd.grad(y, (x, w, b), dy)
    save(outdir, name, 'conv2d', dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db),
         N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride, pad=pad, groups=groups)


def maxpool(outdir, name, N, C, H, W, size, stride):
    # Distinct values: a random permutation of a grid with step 1/8, exact in float32.
    x = (torch.randperm(N * C * H * W).double() / 8 - N * C * H * W / 16).reshape(N, C, H, W)
    x.requires_grad_()
    y, idx = F.max_pool2d(x, size, stride, return_indices=True)
    dy = f32(*y.shape)
    dx, = torch.autograd.grad(y, x, dy)
    save(outdir, name, 'max_pool2d', dict(x=x, y=y, idx=idx, dy=dy, dx=dx),
         N=N, C=C, H=H, W=W, size=size, stride=stride)


def lrn(outdir, name, N, C, H, W, size, alpha, beta, k, scale):
    x = f32(N, C, H, W, scale=scale).requires_grad_()
    y = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)
    dy = f32(*y.shape)
    dx, = torch.autograd.grad(y, x, dy)
    save(outdir, name, 'local_response_norm', dict(x=x, y=y, dy=dy, dx=dx),
         N=N, C=C, H=H, W=W, size=size, alpha=repr(alpha), beta=repr(beta), k=repr(k))


def relu(outdir, name, n):
    x = f32(n)
    x[::7] = 0  # exact zeros: the gradient at 0 is 0 in PyTorch and in alexcl
    x.requires_grad_()
    y = F.relu(x)
    dy = f32(n)
    dx, = torch.autograd.grad(y, x, dy)
    save(outdir, name, 'relu', dict(x=x, y=y, dy=dy, dx=dx), n=n)


def linear(outdir, name, N, IN, OUT):
    # alexcl computes y = x·Wᵀ + b as Gemm(tB) + AddBias, dx = dy·W,
    # dW = dyᵀ·x (Gemm tA) and db = Σ_N dy (BiasGrad).
    x = f32(N, IN).requires_grad_()
    w = f32(OUT, IN, scale=0.3).requires_grad_()
    b = f32(OUT).requires_grad_()
    y = F.linear(x, w, b)
    dy = f32(N, OUT)
    dx, dw, db = torch.autograd.grad(y, (x, w, b), dy)
    save(outdir, name, 'linear', dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db), N=N, IN=IN, OUT=OUT)


def cross_entropy(outdir, name, N, classes):
    logits = f32(N, classes, scale=3.0)
    logits[1] *= 200  # logits of several hundred: a naive exp overflows float32
    logits[2] = logits[2].round()  # small integers: ties among the classes
    labels = torch.randint(0, classes, (N,))
    # Row 2: its label (5) ties with class 3 for first place, and class 3's
    # lower index ranks it above the label: rank 1, a top-1 miss.
    labels[2] = 5
    logits[2, 3] = logits[2, 5] = logits[2].max() + 1
    logits.requires_grad_()
    loss = F.cross_entropy(logits, labels, reduction='none')
    mean = loss.mean()
    dlogits, = torch.autograd.grad(mean, logits)
    # rank: classes strictly above the label plus equal ones with a lower
    # index (device.Device.SoftmaxCrossEntropy's definition).
    lab = logits.detach().gather(1, labels[:, None])
    cls = torch.arange(classes)[None, :]
    rank = (logits.detach() > lab).sum(1) + ((logits.detach() == lab) & (cls < labels[:, None])).sum(1)
    top1 = (rank < 1).to(torch.int32)
    top5 = (rank < 5).to(torch.int32)
    # Cross-check against torch.topk on the rows without ties.
    for i in range(N):
        if logits[i].unique().numel() == classes:
            t5 = logits[i].topk(5).indices
            assert bool(top1[i]) == bool(t5[0] == labels[i]) and bool(top5[i]) == bool((t5 == labels[i]).any())
    save(outdir, name, 'cross_entropy', dict(logits=logits, labels=labels, loss=loss, mean=mean.reshape(1),
                                             dlogits=dlogits, rank=rank, top1=top1, top5=top5),
         N=N, classes=classes)


def sgd(outdir, name, n, lr, momentum, wd):
    w0 = f32(n)
    g1, g2 = f32(n), f32(n)
    p = torch.nn.Parameter(w0.clone())
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum, weight_decay=wd)
    out = dict(w0=w0, g1=g1, g2=g2)
    for step, g in ((1, g1), (2, g2)):
        p.grad = g.clone()
        opt.step()
        out[f'w{step}'] = p.detach().clone()
        out[f'v{step}'] = -lr * opt.state[p]['momentum_buffer']  # the paper's v
    save(outdir, name, 'sgd', out, n=n, lr=repr(lr), momentum=repr(momentum), weight_decay=repr(wd))


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, 'device', 'devicetest', 'testdata', 'torch')
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(1234)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    conv(outdir, 'conv_groups', N=2, C=4, H=9, W=9, K=6, R=3, S=3, stride=1, pad=1, groups=2)
    conv(outdir, 'conv_stride', N=1, C=3, H=23, W=19, K=5, R=5, S=5, stride=3, pad=2, groups=1)
    conv(outdir, 'conv_alexnet2', N=1, C=8, H=13, W=13, K=6, R=5, S=5, stride=1, pad=2, groups=2)
    maxpool(outdir, 'maxpool', N=2, C=3, H=13, W=11, size=3, stride=2)
    lrn(outdir, 'lrn_paper', N=2, C=7, H=5, W=3, size=5, alpha=1e-4, beta=0.75, k=2.0, scale=3.0)
    lrn(outdir, 'lrn_strong', N=2, C=9, H=4, W=3, size=5, alpha=2.0, beta=0.75, k=1.0, scale=1.5)
    relu(outdir, 'relu', n=257)
    linear(outdir, 'linear', N=3, IN=37, OUT=11)
    cross_entropy(outdir, 'cross_entropy', N=7, classes=13)
    sgd(outdir, 'sgd', n=101, lr=0.01, momentum=0.9, wd=5e-4)


if __name__ == '__main__':
    main()
