"""Minimal safetensors reader/writer on plain torch, so the fixture scripts
need nothing beyond Debian's python3-torch. Format: 8-byte little-endian
header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
raw little-endian tensor bytes."""
import json
import struct

import torch

_DT = {torch.float32: 'F32', torch.int32: 'I32', torch.int64: 'I64', torch.float64: 'F64'}
_TD = {v: k for k, v in _DT.items()}


def save(tensors, path, metadata=None):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        b = t.numpy().tobytes()
        header[name] = {'dtype': _DT[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, v in header.items():
        if name == '__metadata__':
            continue
        a, b = v['data_offsets']
        buf = bytearray(data[base + a:base + b])
        t = torch.frombuffer(buf, dtype=_TD[v['dtype']]) if b > a else torch.empty(0, dtype=_TD[v['dtype']])
        out[name] = t.reshape(v['shape']).clone()
    return out
