// Package model builds AlexNet-style networks, described as data, on any
// device.Device and trains them.
//
// A Config (TOML; presets "paper" and "mini" in model/presets) lists the
// layers of PyTorch's two nn.Sequentials, features and classifier, so that
// parameter names, shapes and layouts are PyTorch's: a checkpoint written by
// Net.Save loads into ci/torch/alexnet_torch.py with
// load_state_dict, and a PyTorch state_dict saved as safetensors loads with
// Net.Load. Config.Layers and Config.Summary give per-layer output shapes,
// parameter counts and forward FLOPs (a multiply-add counts as 2 FLOPs;
// only conv and linear layers are counted).
//
// New allocates every buffer a training step needs once, for a maximum
// batch; Forward, Loss, Backward and Step only queue device work, and
// ReadLoss reads back the per-sample losses and ranks. The same code runs
// on every device: it never asks which one it has.
//
// Tests compare logits, first-step gradients and the weights after three
// SGD steps with PyTorch on narrow variants of both presets
// (model/testdata, made by ci/torch/model_fixtures.py), on the CPU device
// and, where one opens, on OpenCL device 0.
package model
