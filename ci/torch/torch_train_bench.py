"""Peer benchmark: PyTorch training throughput of the reference AlexNets (../reference).

One training step = forward, cross-entropy loss, backward, SGD (momentum 0.9, weight decay
5e-4) update; random inputs, dropout on. Prints images/s per model and batch.

    python3 torch_train_bench.py cpu            # this machine: paper b32, mini b128
    python3 torch_train_bench.py cuda 128 256   # a CUDA machine: fp32, then TF32

(alexcl's copy of the user's peer benchmark, shared/anchors/torch_train_bench.py, so that a
clone can run the ratio rounds: only the import path of alexnet_torch changed.)
"""
import os, sys, time
import torch, torch.nn as nn
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # alexnet_torch.py is beside it here
import alexnet_torch as ref


def bench(model, shape, classes, dev, steps, warm=2):
    model = model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(*shape, device=dev)
    y = torch.randint(0, classes, (shape[0],), device=dev)
    loss = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        opt.step()
    for _ in range(warm):
        step()
    if dev == 'cuda':
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if dev == 'cuda':
        torch.cuda.synchronize()
    return shape[0] * steps / (time.perf_counter() - t)


if __name__ == '__main__':
    dev = sys.argv[1] if len(sys.argv) > 1 else 'cpu'
    batches = [int(b) for b in sys.argv[2:]] or ([128, 256] if dev == 'cuda' else [32])
    torch.manual_seed(0)
    print('torch', torch.__version__, 'threads', torch.get_num_threads(), 'device', dev)
    for tf32 in ([False, True] if dev == 'cuda' else [False]):
        if dev == 'cuda':
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        steps = 20 if dev == 'cuda' else 3
        for b in batches:
            r = bench(ref.paper(), (b, 3, 227, 227), 1000, dev, steps)
            print(f'paper 227x227x3 batch {b} tf32={tf32}: {r:.1f} img/s', flush=True)
            mb = b * 4 if dev == 'cuda' else 128
            r = bench(ref.mini(), (mb, 1, 28, 28), 10, dev, steps * 2)
            print(f'mini 28x28x1 batch {mb} tf32={tf32}: {r:.1f} img/s', flush=True)
