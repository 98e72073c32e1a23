"""Reference values for gradus's Conv2d, MaxPool2d, AvgPool2d and global average pooling tests (crates/gradus-train/src/conv.rs,
`conv2d_and_pooling_match_pytorch`): PyTorch's forward outputs and gradients on fixed inputs.

Inputs are v(i, c) = sin(0.7·i + c) computed in float64 and rounded to float32, which the
Rust test computes the same way. The loss is sum(out · r), so the gradient flowing into
the layer's output is r.

Run: bench/.venv/bin/python bench/reference/torch_conv2d.py   (after `bash bench/setup.sh`)
"""
import numpy as np
import torch

torch.set_default_dtype(torch.float32)


def v(n, c):
    return torch.tensor(np.sin(0.7 * np.arange(n, dtype=np.float64) + c).astype(np.float32))


def show(name, t):
    print(f"// {name}")
    print("&[" + ", ".join(f"{x:.7e}" for x in t.detach().flatten().tolist()) + "],")


# Conv2d(2 -> 3, kernel 3, stride 2, padding 1) on 2 images of 2x4x5.
x = v(2 * 2 * 4 * 5, 0.0).reshape(2, 2, 4, 5).requires_grad_()
conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
with torch.no_grad():
    conv.weight.copy_(v(3 * 2 * 3 * 3, 1.0).reshape(3, 2, 3, 3))
    conv.bias.copy_(v(3, 2.0))
out = conv(x)
r = v(out.numel(), 3.0).reshape(out.shape)
(out * r).sum().backward()
print("// conv: out shape", list(out.shape))
show("conv output", out)
show("conv weight gradient", conv.weight.grad)
show("conv bias gradient", conv.bias.grad)
show("conv input gradient", x.grad)

# MaxPool2d(2) (stride 2) on 2 images of 2x5x4 (the last row is dropped).
x = v(2 * 2 * 5 * 4, 4.0).reshape(2, 2, 5, 4).requires_grad_()
out = torch.nn.MaxPool2d(2)(x)
r = v(out.numel(), 5.0).reshape(out.shape)
(out * r).sum().backward()
print("// pool: out shape", list(out.shape))
show("pool output", out)
show("pool input gradient", x.grad)

# AvgPool2d(3, stride=2) on 2 images of 2x5x6, then global average pooling of 2x5x6.
x = v(2 * 2 * 5 * 6, 6.0).reshape(2, 2, 5, 6).requires_grad_()
out = torch.nn.AvgPool2d(3, stride=2)(x)
r = v(out.numel(), 7.0).reshape(out.shape)
(out * r).sum().backward()
print("// avg pool: out shape", list(out.shape))
show("avg pool output", out)
show("avg pool input gradient", x.grad)
x = v(2 * 2 * 5 * 6, 8.0).reshape(2, 2, 5, 6).requires_grad_()
out = torch.nn.AdaptiveAvgPool2d(1)(x).flatten(1)
r = v(out.numel(), 9.0).reshape(out.shape)
(out * r).sum().backward()
show("global avg pool output", out)
show("global avg pool input gradient", x.grad)
