"""s8koc-trial4 (s8koc-t4, seed 0, 60,000 training images): C10p C10p C10p M C12 C12 C8 C8 T16 T24 G T10

A standalone MNIST classifier exported by nas: 6,678 parameters (every parameter, as
PyTorch counts them), 1,861,584 MACs, receptive field 34x34.
Architecture: C10p C10p C10p M C12 C12 C8 C8 T16 T24 G T10

 #     name                 layer   output  params   MACs  RF
 0    conv1  conv 3x3 1->10 pad 1 10x28x28      90  70560   3
 1      bn1         batch norm 10 10x28x28      20      0   3
 2    relu1                  relu 10x28x28       0      0   3
 3    conv2 conv 3x3 10->10 pad 1 10x28x28     900 705600   5
 4      bn2         batch norm 10 10x28x28      20      0   5
 5    relu2                  relu 10x28x28       0      0   5
 6    conv3 conv 3x3 10->10 pad 1 10x28x28     900 705600   7
 7      bn3         batch norm 10 10x28x28      20      0   7
 8    relu3                  relu 10x28x28       0      0   7
 9 maxpool1            max-pool 2 10x14x14       0      0   8
10    conv4       conv 3x3 10->12 12x12x12    1080 155520  12
11      bn4         batch norm 12 12x12x12      24      0  12
12    relu4                  relu 12x12x12       0      0  12
13    conv5       conv 3x3 12->12 12x10x10    1296 129600  16
14      bn5         batch norm 12 12x10x10      24      0  16
15    relu5                  relu 12x10x10       0      0  16
16    conv6        conv 3x3 12->8    8x8x8     864  55296  20
17      bn6          batch norm 8    8x8x8      16      0  20
18    relu6                  relu    8x8x8       0      0  20
19    conv7         conv 3x3 8->8    8x6x6     576  20736  24
20      bn7          batch norm 8    8x6x6      16      0  24
21    relu7                  relu    8x6x6       0      0  24
22    conv8        conv 1x1 8->16   16x6x6     128   4608  24
23      bn8         batch norm 16   16x6x6      32      0  24
24    relu8                  relu   16x6x6       0      0  24
25    conv9       conv 1x1 16->24   24x6x6     384  13824  24
26      bn9         batch norm 24   24x6x6      48      0  24
27    relu9                  relu   24x6x6       0      0  24
28     gap1       global avg pool   24x1x1       0      0  34
29   conv10       conv 1x1 24->10   10x1x1     240    240  34

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

N_PARAMS = 6678
MEAN, STD = 0.1307, 0.3081  # MNIST train-set pixel statistics; inputs are normalized with them


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=3, padding=1, bias=False)  # -> 10x28x28
        self.bn1 = nn.BatchNorm2d(10)  # -> 10x28x28
        self.relu1 = nn.ReLU(inplace=True)  # -> 10x28x28
        self.conv2 = nn.Conv2d(10, 10, kernel_size=3, padding=1, bias=False)  # -> 10x28x28
        self.bn2 = nn.BatchNorm2d(10)  # -> 10x28x28
        self.relu2 = nn.ReLU(inplace=True)  # -> 10x28x28
        self.conv3 = nn.Conv2d(10, 10, kernel_size=3, padding=1, bias=False)  # -> 10x28x28
        self.bn3 = nn.BatchNorm2d(10)  # -> 10x28x28
        self.relu3 = nn.ReLU(inplace=True)  # -> 10x28x28
        self.maxpool1 = nn.MaxPool2d(2)  # -> 10x14x14
        self.conv4 = nn.Conv2d(10, 12, kernel_size=3, padding=0, bias=False)  # -> 12x12x12
        self.bn4 = nn.BatchNorm2d(12)  # -> 12x12x12
        self.relu4 = nn.ReLU(inplace=True)  # -> 12x12x12
        self.conv5 = nn.Conv2d(12, 12, kernel_size=3, padding=0, bias=False)  # -> 12x10x10
        self.bn5 = nn.BatchNorm2d(12)  # -> 12x10x10
        self.relu5 = nn.ReLU(inplace=True)  # -> 12x10x10
        self.conv6 = nn.Conv2d(12, 8, kernel_size=3, padding=0, bias=False)  # -> 8x8x8
        self.bn6 = nn.BatchNorm2d(8)  # -> 8x8x8
        self.relu6 = nn.ReLU(inplace=True)  # -> 8x8x8
        self.conv7 = nn.Conv2d(8, 8, kernel_size=3, padding=0, bias=False)  # -> 8x6x6
        self.bn7 = nn.BatchNorm2d(8)  # -> 8x6x6
        self.relu7 = nn.ReLU(inplace=True)  # -> 8x6x6
        self.conv8 = nn.Conv2d(8, 16, kernel_size=1, padding=0, bias=False)  # -> 16x6x6
        self.bn8 = nn.BatchNorm2d(16)  # -> 16x6x6
        self.relu8 = nn.ReLU(inplace=True)  # -> 16x6x6
        self.conv9 = nn.Conv2d(16, 24, kernel_size=1, padding=0, bias=False)  # -> 24x6x6
        self.bn9 = nn.BatchNorm2d(24)  # -> 24x6x6
        self.relu9 = nn.ReLU(inplace=True)  # -> 24x6x6
        self.gap1 = nn.AdaptiveAvgPool2d(1)  # -> 24x1x1
        self.conv10 = nn.Conv2d(24, 10, kernel_size=1, padding=0, bias=False)  # -> 10x1x1

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.relu2(x)
        x = self.conv3(x)
        x = self.bn3(x)
        x = self.relu3(x)
        x = self.maxpool1(x)
        x = self.conv4(x)
        x = self.bn4(x)
        x = self.relu4(x)
        x = self.conv5(x)
        x = self.bn5(x)
        x = self.relu5(x)
        x = self.conv6(x)
        x = self.bn6(x)
        x = self.relu6(x)
        x = self.conv7(x)
        x = self.bn7(x)
        x = self.relu7(x)
        x = self.conv8(x)
        x = self.bn8(x)
        x = self.relu8(x)
        x = self.conv9(x)
        x = self.bn9(x)
        x = self.relu9(x)
        x = self.gap1(x)
        x = self.conv10(x)
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
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000,
             bf16: bool = False) -> int:
    model.eval()
    if bf16:  # as trained with bf16 autocast and channels-last
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(
            memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                   for i in range(0, len(y), batch))


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate this model on the MNIST test set.")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--weights", default=str(Path(__file__).with_name("weights.pt")))
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--bf16", action="store_true",
                   help="evaluate in bf16 autocast + channels-last, as the model was trained")
    args = p.parse_args()
    folder = Path(args.data_dir)
    x = read_idx(folder, "t10k-images-idx3-ubyte")[: args.limit]
    y = read_idx(folder, "t10k-labels-idx1-ubyte")[: args.limit].long()
    x = ((x.float() / 255.0 - MEAN) / STD).unsqueeze(1)
    model = Net()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    n_params = sum(p.numel() for p in model.parameters())
    correct = evaluate(model, x, y, bf16=args.bf16)
    if args.json:
        print(json.dumps({"n_params": n_params, "correct": correct, "total": len(y)}))
    else:
        print(f"{n_params:,} parameters; test accuracy {100 * correct / len(y):.2f}% "
              f"({correct}/{len(y)})")


if __name__ == "__main__":
    main()
