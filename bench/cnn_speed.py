"""CNN training speed: gradus against PyTorch (CPU), side by side in one run, both
single-threaded, the same network, batch, optimizer and images; prints the ratio
(PyTorch time / gradus time) per repeat and the median.

Network: the default of `gradus train --model cnn` on MNIST —
  Conv2d(1, 32, 5, padding=2) ReLU MaxPool2d(2) Conv2d(32, 64, 5, padding=2) ReLU
  MaxPool2d(2) Flatten Linear(3136, 128) ReLU Linear(128, 10)
Adam lr 1e-3, batch 64, softmax cross-entropy, pixels / 255, one epoch over the
first N training images of the full MNIST (data/mnist), no validation rows.
gradus's time is the training loop's own (`train_seconds` of `train --json`), PyTorch's
the epoch loop's; neither counts reading the files.

Usage:  bash bench/setup.sh   # once: torch into bench/.venv
        cargo build --release
        bench/.venv/bin/python bench/cnn_speed.py [--images 10000] [--repeats 3]
"""
import argparse, gzip, json, os, statistics, subprocess, tempfile, time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
import numpy as np
import torch

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MNIST = os.path.join(ROOT, "data", "mnist")
BIN = os.path.join(ROOT, "target", "release", "gradus")


def read_idx(name):
    with gzip.open(os.path.join(MNIST, name), "rb") as f:
        data = f.read()
    dims = data[3]
    sizes = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(sizes)


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        for s in array.shape:
            f.write(int(s).to_bytes(4, "big"))
        f.write(array.astype(np.uint8).tobytes())


def net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    )


def torch_epoch(images, labels, batch, seed):
    torch.manual_seed(seed)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
    y = torch.tensor(labels, dtype=torch.int64)
    order = torch.randperm(len(y))
    start = time.perf_counter()
    for i in range(0, len(y), batch):
        idx = order[i:i + batch]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start, loss.item()


def gradus_epoch(directory, batch, seed):
    out = subprocess.run(
        [BIN, "train", "--model", "cnn", "--data", os.path.join(directory, "sub-images-idx3-ubyte"),
         "--epochs", "1", "--valid-fraction", "0", "--batch-size", str(batch), "--lr", "0.001",
         "--seed", str(seed), "--json"],
        check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    return report["train_seconds"], report["loss_curve"][-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images = read_idx("train-images-idx3-ubyte.gz")[: args.images]
    labels = read_idx("train-labels-idx1-ubyte.gz")[: args.images]
    print(f"torch {torch.__version__}, one thread each; {args.images} MNIST images, batch {args.batch}, one epoch")
    ratios = []
    with tempfile.TemporaryDirectory() as d:
        write_idx(os.path.join(d, "sub-images-idx3-ubyte"), images)
        write_idx(os.path.join(d, "sub-labels-idx1-ubyte"), labels)
        for r in range(args.repeats):
            g, g_loss = gradus_epoch(d, args.batch, r)
            t, t_loss = torch_epoch(images, labels, args.batch, r)
            ratios.append(t / g)
            print(f"repeat {r}: gradus {g:.2f} s (epoch loss {g_loss:.3f}), "
                  f"pytorch {t:.2f} s (last batch loss {t_loss:.3f}): pytorch/gradus {t / g:.2f}")
    print(f"median pytorch/gradus: {statistics.median(ratios):.2f} (the issue's target: >= 2)")


if __name__ == "__main__":
    main()
