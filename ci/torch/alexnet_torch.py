"""PyTorch reference definitions of the two AlexNet variants alexcl implements.

They fix the layer order, hyper-parameters and parameter names/layouts that alexcl's
safetensors checkpoints must match, so a model trained by alexcl loads into PyTorch
(`model.load_state_dict(safetensors.torch.load_file(...))`) and back.

- paper: Krizhevsky, Sutskever, Hinton 2012. 227x227x3 input, conv1 96@11x11/4,
  LRN(n=5, alpha=1e-4, beta=0.75, k=2) after conv1 and conv2, overlapping max-pool 3/2,
  the paper's two GPU towers expressed as groups=2 on conv2, conv4 and conv5,
  dropout 0.5 before fc6 and fc7, 1000 classes.
- mini: the same structure scaled to 28x28x1 (MNIST), 10 classes, no groups.

Layouts: conv weight [out, in/groups, kh, kw]; linear weight [out, in]; all float32.
Flatten order between features and classifier is channel-major (C, H, W), as in PyTorch.
Run on a machine with Debian's python3-torch: `python3 alexnet_torch.py` prints the names.

(alexcl's copy of the user's reference, shared/reference/alexnet_torch.py, unchanged
but for this line, so that a clone holds it: model_fixtures.py and the README use it.)
"""
import torch.nn as nn


def lrn():
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    def __init__(self, features, flat, hidden, num_classes, dropout=0.5):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def paper(num_classes=1000, dropout=0.5):
    f = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),          # 0-3
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),  # 4-7
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),                               # 8-9
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),                     # 10-11
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))  # 12-14
    return AlexNet(f, 256 * 6 * 6, 4096, num_classes, dropout)


def mini(num_classes=10, dropout=0.5):
    f = nn.Sequential(
        nn.Conv2d(1, 64, 5, padding=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),       # 28 -> 13
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),     # 13 -> 6
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))           # 6 -> 2
    return AlexNet(f, 256 * 2 * 2, 1024, num_classes, dropout)


if __name__ == '__main__':
    for name, m in (('paper', paper()), ('mini', mini())):
        print(name, sum(p.numel() for p in m.parameters()), 'parameters')
        for k, v in m.state_dict().items():
            print(' ', k, list(v.shape))
