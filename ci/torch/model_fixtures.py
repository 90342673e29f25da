"""PyTorch fixtures and checks for package model (alexcl's AlexNet).

Run with Debian's python3-torch (CPU):  /usr/bin/python3 ci/torch/model_fixtures.py MODE

Modes
  gen [--out DIR]        For each network description model/testdata/*_narrow.toml, build
                         the torch module from the same numbers, and write into DIR
                         (default model/testdata):
                           NAME_init.safetensors  the initial weights (state_dict names)
                           NAME_ref.safetensors   input (N,C,H,W), labels (N) I32,
                                                  logits (N,classes) of the initial weights,
                                                  grad.<param> of the first step,
                                                  losses (3) before each step,
                                                  final.<param> after 3 SGD steps
                         SGD: lr 0.01, momentum 0.9, weight decay 5e-4, mean cross-entropy,
                         the same batch every step, dropout 0. Deterministic (manual_seed).
  gen-full [--out DIR]   For the full-size reference presets paper() and mini() of
                         ci/torch/alexnet_torch.py (eval mode: dropout off), fill
                         every parameter and a batch-2 input with the deterministic
                         "full-weights formula" (see formula_tensor; package model's
                         full_test.go computes the same float32 values bit for bit), run
                         one forward pass and write into DIR (default model/testdata)
                           NAME_full_logits.safetensors  logits (2, classes) in float32,
                                                  logits_f64 (2, classes): the same forward
                                                  pass in float64, rounded to float32
                         No weights are written; the metadata holds the formula version and
                         a checksum of every generated tensor ("bits.NAME"), so a mismatch
                         in the formula shows as such and not as a logit difference.
  check-load PATH (--preset mini|paper | --config TOML)
                         load_state_dict(strict=True) of the safetensors file PATH into the
                         reference module (ci/torch/alexnet_torch.py) or the module
                         built from TOML, then run one forward pass. Exit 1 on failure.
  check-presets          build model/presets/*.toml and compare parameter names and shapes
                         with the reference modules. Exit 1 on a difference.
"""
import argparse
import os
import pathlib
import sys
import tomllib

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import st  # noqa: E402

MAGIC = 'alexcl-model-fixture'
VERSION = '1'
STEPS = 3
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def reference():
    """Imports the PyTorch reference, alexnet_torch.py: the project's copy
    beside this script, or $ALEXCL_SHARED/reference's when that is set."""
    where = HERE
    if os.environ.get('ALEXCL_SHARED'):
        where = pathlib.Path(os.environ['ALEXCL_SHARED']) / 'reference'
    sys.path.insert(0, str(where))
    import alexnet_torch
    return alexnet_torch


class Net(nn.Module):
    """features, flatten (C, H, W), classifier: the shape alexcl's Config describes."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def build(cfg):
    """Builds the torch module a Config describes, with the same defaults as package model."""
    c, h, w = cfg['input']['channels'], cfg['input']['height'], cfg['input']['width']
    dropout = cfg.get('dropout')
    feats = []
    for l in cfg.get('features', []):
        t = l['type']
        if t == 'conv':
            k, s, p, g = l['kernel'], l.get('stride', 1), l.get('pad', 0), l.get('groups', 1)
            feats.append(nn.Conv2d(c, l['out'], k, stride=s, padding=p, groups=g))
            c, h, w = l['out'], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t == 'relu':
            feats.append(nn.ReLU(inplace=True))
        elif t == 'lrn':
            feats.append(nn.LocalResponseNorm(l.get('size', 5), alpha=l.get('alpha', 1e-4),
                                              beta=l.get('beta', 0.75), k=l.get('k', 2.0)))
        elif t == 'maxpool':
            size, s = l['size'], l.get('stride', l['size'])
            feats.append(nn.MaxPool2d(size, s))
            h, w = (h - size) // s + 1, (w - size) // s + 1
        elif t == 'dropout':
            feats.append(nn.Dropout(dropout if dropout is not None else l.get('p', 0.0)))
        else:
            raise ValueError(f'features: layer type {t!r} not supported here')
    flat = c * h * w
    cls = []
    linears = [i for i, l in enumerate(cfg['classifier']) if l['type'] == 'linear']
    for i, l in enumerate(cfg['classifier']):
        t = l['type']
        if t == 'linear':
            out = l.get('out') or (cfg['classes'] if i == linears[-1] else cfg['hidden'])
            cls.append(nn.Linear(flat, out))
            flat = out
        elif t == 'relu':
            cls.append(nn.ReLU(inplace=True))
        elif t == 'dropout':
            cls.append(nn.Dropout(dropout if dropout is not None else l.get('p', 0.0)))
        else:
            raise ValueError(f'classifier: layer type {t!r} not supported here')
    return Net(nn.Sequential(*feats), nn.Sequential(*cls))


def load_toml(path):
    with open(path, 'rb') as f:
        return tomllib.load(f)


def gen(out):
    out = pathlib.Path(out)
    for i, path in enumerate(sorted((ROOT / 'model' / 'testdata').glob('*_narrow.toml'))):
        cfg = load_toml(path)
        name = path.stem
        torch.manual_seed(1234 + i)
        model = build(cfg)
        inp = cfg['input']
        n = 3 if 'paper' in name else 5
        x = torch.randn(n, inp['channels'], inp['height'], inp['width'])
        labels = torch.randint(0, cfg['classes'], (n,), dtype=torch.int64)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        meta = {'magic': MAGIC, 'version': VERSION, 'torch': torch.__version__, 'config': path.name,
                'sgd': f'lr={LR} momentum={MOMENTUM} weight_decay={WEIGHT_DECAY}', 'steps': str(STEPS)}
        st.save(init, out / f'{name}_init.safetensors', meta)

        model.train()  # dropout is 0 in the narrow configs, so train == eval
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        ref = {'input': x, 'labels': labels.to(torch.int32)}
        losses = []
        for step in range(STEPS):
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            if step == 0:
                ref['logits'] = logits.detach().clone()
                for k, p in model.named_parameters():
                    ref['grad.' + k] = p.grad.detach().clone()
            losses.append(loss.item())
            opt.step()
        ref['losses'] = torch.tensor(losses, dtype=torch.float32)
        for k, v in model.state_dict().items():
            ref['final.' + k] = v.clone()
        st.save(ref, out / f'{name}_ref.safetensors', meta)
        print(f'{name}: {sum(p.numel() for p in model.parameters())} parameters, batch {n}, '
              f'losses {" ".join(f"{l:.6f}" for l in losses)}')


FULL_MAGIC = 'alexcl-full-logits'
FORMULA_VERSION = '1'
FULL_BATCH = 2
INPUT_STREAM = 1000  # formula stream of the input; parameter tensor t uses stream t
BIAS_SCALE = 0.1


def mix32(x):
    """lowbias32 (Wellons): a 32-bit integer finaliser, on uint32 arrays (wrapping)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7feb352d)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846ca68b)
    return x ^ (x >> np.uint32(16))


def formula_uniform(stream, n):
    """The n values u(stream, i), i = 0..n-1, of formula version 1 as float32:

        key  = mix32(stream + 0x9e3779b9)                       (uint32, wrapping)
        h    = mix32(i XOR key)
        u    = ((h >> 8) - 2**23) / 2**23                       in [-1, 1)

    (h >> 8) - 2**23 is an integer of at most 24 bits and 2**23 a power of two,
    so u is exact in float32 on any implementation."""
    key = mix32(np.array([stream], dtype=np.uint32) + np.uint32(0x9e3779b9))[0]
    h = mix32(np.arange(n, dtype=np.uint32) ^ key)
    return ((h >> np.uint32(8)).astype(np.int32) - (1 << 23)).astype(np.float32) * np.float32(2.0 ** -23)


def formula_scale(name, shape):
    """float32 scale of a parameter: sqrt(6/fan_in) for weights (He-uniform:
    variance 2/fan_in, which keeps ReLU activations O(1) through the net),
    BIAS_SCALE for biases. fan_in is the product of shape[1:] (conv
    in/groups·kh·kw, linear in). Both are one correctly rounded float64 operation
    rounded once to float32, so Go and Python agree exactly."""
    if name.endswith('.bias'):
        return np.float32(BIAS_SCALE)
    return np.float32(math.sqrt(6.0 / math.prod(shape[1:])))


def formula_tensor(stream, name, shape):
    """Parameter tensor number stream (state_dict order): scale · u, one float32 product."""
    n = math.prod(shape)
    return torch.from_numpy(formula_uniform(stream, n) * formula_scale(name, shape)).reshape(shape)


def bits_checksum(t):
    """Sum of the float32 bit patterns as uint64, modulo 2**64: exact and order-free."""
    return int(t.contiguous().numpy().view(np.uint32).astype(np.uint64).sum(dtype=np.uint64))


def gen_full(out):
    out = pathlib.Path(out)
    skip_init()
    ref = reference()
    for name, mk, shape in (('paper', ref.paper, (3, 227, 227)), ('mini', ref.mini, (1, 28, 28))):
        model = mk()
        model.eval()  # dropout off
        meta = {'magic': FULL_MAGIC, 'formula': FORMULA_VERSION, 'torch': torch.__version__,
                'reference': 'alexnet_torch.' + name + '()', 'batch': str(FULL_BATCH),
                'input_stream': str(INPUT_STREAM), 'bias_scale': str(BIAS_SCALE)}
        sd = {}
        for t, (k, v) in enumerate(model.state_dict().items()):
            sd[k] = formula_tensor(t, k, list(v.shape))
            meta['bits.' + k] = str(bits_checksum(sd[k]))
        model.load_state_dict(sd, strict=True)
        n = FULL_BATCH * math.prod(shape)
        x = torch.from_numpy(formula_uniform(INPUT_STREAM, n)).reshape(FULL_BATCH, *shape)
        meta['bits.input'] = str(bits_checksum(x))
        with torch.no_grad():
            y = model(x)
            y64 = model.double()(x.double())
        err = (y.double() - y64).abs()
        meta['torch_f32_vs_f64_max_abs'] = f'{err.max().item():.3e}'
        meta['logits_f64_rms'] = f'{y64.pow(2).mean().sqrt().item():.6f}'
        st.save({'logits': y, 'logits_f64': y64.float()}, out / f'{name}_full_logits.safetensors', meta)
        print(f'{name}: logits {list(y.shape)}, rms {meta["logits_f64_rms"]}, '
              f'max |logit| {y64.abs().max().item():.4f}, torch float32 vs float64: max abs '
              f'{err.max().item():.3e}, max rel {(err / y64.abs()).max().item():.3e}')


def check_load(path, preset, config):
    skip_init()
    if config:
        model = build(load_toml(config))
        cfg = load_toml(config)
        shape = (1, cfg['input']['channels'], cfg['input']['height'], cfg['input']['width'])
    else:
        ref = reference()
        model = {'paper': ref.paper, 'mini': ref.mini}[preset]()
        shape = (1, 3, 227, 227) if preset == 'paper' else (1, 1, 28, 28)
    sd = st.load(path)
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(*shape))
    if not torch.isfinite(y).all():
        raise SystemExit(f'{path}: forward pass gives non-finite logits')
    print(f'{path}: load_state_dict(strict=True) OK, {len(sd)} tensors, logits {list(y.shape)}')


def skip_init():
    """Makes module construction skip the random init: these modes only compare
    names and shapes or overwrite every parameter with load_state_dict."""
    for cls in (nn.Conv2d, nn.Linear):
        cls.reset_parameters = lambda self: None


def check_presets():
    skip_init()
    ref = reference()
    bad = 0
    for name, mk in (('paper', ref.paper), ('mini', ref.mini)):
        ours = build(load_toml(ROOT / 'model' / 'presets' / f'{name}.toml'))
        theirs = mk()
        want = {k: list(v.shape) for k, v in theirs.state_dict().items()}
        got = {k: list(v.shape) for k, v in ours.state_dict().items()}
        if want != got:
            bad += 1
            print(f'{name}: preset differs from the reference:\n  want {want}\n  got  {got}')
        else:
            print(f'{name}: preset matches the reference, {sum(p.numel() for p in ours.parameters())} parameters')
        if [repr(m) for m in ours.modules()][1:] != [repr(m) for m in theirs.modules()][1:]:
            bad += 1
            print(f'{name}: layers or their hyper-parameters differ from the reference:\n{ours}\n{theirs}')
    if bad:
        raise SystemExit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='mode', required=True)
    g = sub.add_parser('gen')
    g.add_argument('--out', default=str(ROOT / 'model' / 'testdata'))
    c = sub.add_parser('check-load')
    c.add_argument('path')
    grp = c.add_mutually_exclusive_group(required=True)
    grp.add_argument('--preset', choices=['mini', 'paper'])
    grp.add_argument('--config')
    sub.add_parser('check-presets')
    gf = sub.add_parser('gen-full')
    gf.add_argument('--out', default=str(ROOT / 'model' / 'testdata'))
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic and quick on a shared CI machine
    if a.mode == 'gen':
        gen(a.out)
    elif a.mode == 'gen-full':
        gen_full(a.out)
    elif a.mode == 'check-load':
        check_load(a.path, a.preset, a.config)
    else:
        check_presets()


if __name__ == '__main__':
    main()
