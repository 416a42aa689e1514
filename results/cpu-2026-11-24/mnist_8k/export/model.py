"""mnist_8k trial 0: C8d C16d M T8 C16d C16d C16pd G T10

A standalone MNIST classifier exported by nas: 7,416 parameters (every parameter, as
PyTorch counts them), 1,140,928 MACs, receptive field 32x32.
Architecture: C8d C16d M T8 C16d C16d C16pd G T10

 #     name                 layer   output  params   MACs  RF
 0    conv1         conv 3x3 1->8  8x26x26      72  48672   3
 1      bn1          batch norm 8  8x26x26      16      0   3
 2    relu1                  relu  8x26x26       0      0   3
 3 dropout1          dropout 0.05  8x26x26       0      0   3
 4    conv2        conv 3x3 8->16 16x24x24    1152 663552   5
 5      bn2         batch norm 16 16x24x24      32      0   5
 6    relu2                  relu 16x24x24       0      0   5
 7 dropout2          dropout 0.05 16x24x24       0      0   5
 8 maxpool1            max-pool 2 16x12x12       0      0   6
 9    conv3        conv 1x1 16->8  8x12x12     128  18432   6
10    conv4        conv 3x3 8->16 16x10x10    1152 115200  10
11      bn3         batch norm 16 16x10x10      32      0  10
12    relu3                  relu 16x10x10       0      0  10
13 dropout3          dropout 0.05 16x10x10       0      0  10
14    conv5       conv 3x3 16->16   16x8x8    2304 147456  14
15      bn4         batch norm 16   16x8x8      32      0  14
16    relu4                  relu   16x8x8       0      0  14
17 dropout4          dropout 0.05   16x8x8       0      0  14
18    conv6 conv 3x3 16->16 pad 1   16x8x8    2304 147456  18
19      bn5         batch norm 16   16x8x8      32      0  18
20    relu5                  relu   16x8x8       0      0  18
21 dropout5          dropout 0.05   16x8x8       0      0  18
22     gap1       global avg pool   16x1x1       0      0  32
23    conv7       conv 1x1 16->10   10x1x1     160    160  32

Needs torch only. Evaluate the weights on the MNIST test set:

    python model.py --data-dir DIR   # DIR holds t10k-*-ubyte[.gz], directly or in MNIST/raw/
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

import torch
from torch import nn

N_PARAMS = 7416
MEAN, STD = 0.1307, 0.3081  # MNIST train-set pixel statistics; inputs are normalized with them


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=0, bias=False)  # -> 8x26x26
        self.bn1 = nn.BatchNorm2d(8)  # -> 8x26x26
        self.relu1 = nn.ReLU(inplace=True)  # -> 8x26x26
        self.dropout1 = nn.Dropout(0.05)  # -> 8x26x26
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=0, bias=False)  # -> 16x24x24
        self.bn2 = nn.BatchNorm2d(16)  # -> 16x24x24
        self.relu2 = nn.ReLU(inplace=True)  # -> 16x24x24
        self.dropout2 = nn.Dropout(0.05)  # -> 16x24x24
        self.maxpool1 = nn.MaxPool2d(2)  # -> 16x12x12
        self.conv3 = nn.Conv2d(16, 8, kernel_size=1, padding=0, bias=False)  # -> 8x12x12
        self.conv4 = nn.Conv2d(8, 16, kernel_size=3, padding=0, bias=False)  # -> 16x10x10
        self.bn3 = nn.BatchNorm2d(16)  # -> 16x10x10
        self.relu3 = nn.ReLU(inplace=True)  # -> 16x10x10
        self.dropout3 = nn.Dropout(0.05)  # -> 16x10x10
        self.conv5 = nn.Conv2d(16, 16, kernel_size=3, padding=0, bias=False)  # -> 16x8x8
        self.bn4 = nn.BatchNorm2d(16)  # -> 16x8x8
        self.relu4 = nn.ReLU(inplace=True)  # -> 16x8x8
        self.dropout4 = nn.Dropout(0.05)  # -> 16x8x8
        self.conv6 = nn.Conv2d(16, 16, kernel_size=3, padding=1, bias=False)  # -> 16x8x8
        self.bn5 = nn.BatchNorm2d(16)  # -> 16x8x8
        self.relu5 = nn.ReLU(inplace=True)  # -> 16x8x8
        self.dropout5 = nn.Dropout(0.05)  # -> 16x8x8
        self.gap1 = nn.AdaptiveAvgPool2d(1)  # -> 16x1x1
        self.conv7 = nn.Conv2d(16, 10, kernel_size=1, padding=0, bias=False)  # -> 10x1x1

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.dropout1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.relu2(x)
        x = self.dropout2(x)
        x = self.maxpool1(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.bn3(x)
        x = self.relu3(x)
        x = self.dropout3(x)
        x = self.conv5(x)
        x = self.bn4(x)
        x = self.relu4(x)
        x = self.dropout4(x)
        x = self.conv6(x)
        x = self.bn5(x)
        x = self.relu5(x)
        x = self.dropout5(x)
        x = self.gap1(x)
        x = self.conv7(x)
        return x.flatten(1)


def read_idx(folder: Path, name: str) -> torch.Tensor:
    for path in (folder / name, folder / (name + ".gz"), folder / "MNIST" / "raw" / name,
                 folder / "MNIST" / "raw" / (name + ".gz")):
        if path.is_file():
            data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
            ndim = data[3]
            shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).view(shape)
    sys.exit(f"error: {name}[.gz] not found in {folder} or {folder}/MNIST/raw")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> int:
    model.eval()
    return sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
               for i in range(0, len(y), batch))


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate this model on the MNIST test set.")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--weights", default=str(Path(__file__).with_name("weights.pt")))
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    folder = Path(args.data_dir)
    x = read_idx(folder, "t10k-images-idx3-ubyte")[: args.limit]
    y = read_idx(folder, "t10k-labels-idx1-ubyte")[: args.limit].long()
    x = ((x.float() / 255.0 - MEAN) / STD).unsqueeze(1)
    model = Net()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    n_params = sum(p.numel() for p in model.parameters())
    correct = evaluate(model, x, y)
    if args.json:
        print(json.dumps({"n_params": n_params, "correct": correct, "total": len(y)}))
    else:
        print(f"{n_params:,} parameters; test accuracy {100 * correct / len(y):.2f}% "
              f"({correct}/{len(y)})")


if __name__ == "__main__":
    main()
