"""Reference values for gradus's BatchNorm layer (crates/gradus-train/src/batchnorm.rs).

torch.nn.BatchNorm2d(2) (eps 1e-5, momentum 0.1) on x(i) = sin(0.7·i), i = 0 … 23,
shaped (3, 2, 2, 2), with γ = (1.5, −0.5) and β = (0.1, 0.2): the training
output's first row (8 values), the running mean and variance after that one
training step, and the inference output's first row with them.

  bench/.venv/bin/python bench/reference/torch_batchnorm.py
"""
import math

import torch

x = torch.tensor([math.sin(0.7 * i) for i in range(24)], dtype=torch.float64).float().reshape(3, 2, 2, 2)
bn = torch.nn.BatchNorm2d(2)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.5, -0.5]))
    bn.bias.copy_(torch.tensor([0.1, 0.2]))
bn.train()
out = bn(x)
print("train out[0]:", [f"{v:.8}" for v in out.reshape(3, 8)[0].tolist()])
print("running mean:", [f"{v:.8}" for v in bn.running_mean.tolist()])
print("running var:", [f"{v:.8}" for v in bn.running_var.tolist()])
bn.eval()
with torch.no_grad():
    ev = bn(x)
print("eval out[0]:", [f"{v:.8}" for v in ev.reshape(3, 8)[0].tolist()])
