"""int8 accuracy of verified designs under ONNX Runtime's calibration settings, in one run.

For each `nas verify` run and seed: export the weights to ONNX once (nas.deploy.export_onnx),
then quantize it with onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights,
uint8 activations, 1,000 training images, as `nas export --int8`) under each setting, and
count test accuracy with ONNX Runtime. Settings:

  minmax          the calibration `nas export --int8` used up to 2026-11-29 (ORT's default)
  percentile      activation ranges from the 99.999th percentile instead of the extremes
  minmax_bnfp32   MinMax, with the BatchNormalization nodes the exporter could not fold into a
                  conv (ReLU before BN) left in float: ORT can quantize a BN's rank-1 scale only
                  per tensor (the guess behind it; it did not help, bench/RESULTS.md)
  percentile_bnfp32  both changes

    python bench/int8_calibration.py s8koc-t4 fashion-25k-winner-seeds0-1-2 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from nas.build import build
from nas.datasets import load_data
from nas.deploy import Deployable, export_onnx, onnx_predict, quantize_int8
from nas.spec import ArchSpec

SETTINGS = ("minmax", "percentile", "minmax_bnfp32", "percentile_bnfp32")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="names under results/verify/")
    p.add_argument("--seeds", default="0", help="comma-separated; seeds without weights skip")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    print("| run | seed | BN left unfolded | fp32 | " + " | ".join(SETTINGS) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in SETTINGS) + " |")
    drops: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for name in args.runs:
        folder = Path(args.results_dir) / "verify" / name
        v = json.loads((folder / "verify.json").read_text())
        dataset = (v.get("dataset") or {}).get("name", "mnist")
        data = load_data(dataset, args.data_dir, "cpu", 0)
        images, y = data.test.images.numpy(), data.test.y.numpy()
        calib = data.train.images[:1000].numpy()
        spec = ArchSpec.from_dict(json.loads((folder / "spec.json").read_text()))
        for seed in [int(s) for s in args.seeds.split(",")]:
            weights = folder / f"weights_seed{seed}.pt"
            if not weights.is_file():
                continue
            net = build(spec)
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            deploy = Deployable(net.eval(), data.info.mean, data.info.std)
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = export_onnx(deploy, data.info.shape, Path(tmp) / "model.onnx")
                acc = 100 * float(np.mean(onnx_predict(fp32, images) == y))
                row = []
                n_bn = sum(n.op_type == "BatchNormalization"
                           for n in onnx.load(str(fp32)).graph.node)
                for s in SETTINGS:
                    q = quantize_int8(fp32, calib, Path(tmp) / f"{s}.onnx",
                                      calibration_method=s.split("_")[0],
                                      bn_float=s.endswith("bnfp32"))
                    a = 100 * float(np.mean(onnx_predict(q, images) == y))
                    drops[s].append(acc - a)
                    row.append(f"{a:.2f}")
            print(f"| {name} | {seed} | {n_bn} | {acc:.2f} | " + " | ".join(row) + " |",
                  flush=True)
    print("| **mean drop, points** | | | | " + " | ".join(
        f"**{np.mean(d):.3f}** (max {np.max(d):.2f})" for d in drops.values()) + " |")


if __name__ == "__main__":
    main()
