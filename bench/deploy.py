"""Deployment figures of verified designs: size, peak memory, int8 accuracy, batch-1 latency.

For each `nas verify` run named, exports its seed (`nas export --verify NAME --int8`) into a
temporary folder and prints one row: parameters, MACs, peak activation bytes (fp32 / int8, from
the spec), model bytes (the ONNX files, and their stored tensors), fp32 and int8 test accuracy
from ONNX Runtime, and ONNX Runtime's batch-1 latency against PyTorch eager, in the same run.

    python bench/deploy.py s8koc-t4 s5koc-t4 ref4k-oc frontier-t12 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from nas.cli import main as nas
from nas.spec import ArchSpec, analyze


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="names under results/verify/")
    p.add_argument("--seeds", default="0", help="comma-separated; seeds without weights skip")
    p.add_argument("--results-dir", default="results")
    args = p.parse_args()
    print("| run | params | MACs | peak bytes fp32 / int8 | ONNX bytes fp32 / int8 (tensors) "
          "| test fp32 / int8 | drop | batch-1 ms ORT | PyTorch / ORT |")
    print("| --- | ---: | ---: | --- | --- | --- | ---: | ---: | ---: |")
    jobs = [(name, int(seed)) for name in args.runs for seed in args.seeds.split(",")
            if (Path(args.results_dir) / "verify" / name / f"weights_seed{seed}.pt").is_file()]
    for name, seed in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "e"
            rc = nas(["export", "--verify", name, "--seed", str(seed), "--out", str(out),
                      "--int8", "--results-dir", args.results_dir])
            if rc:
                sys.exit(rc)
            d = json.loads((out / "export.json").read_text())["deploy"]
            info = analyze(ArchSpec.from_dict(json.loads((out / "spec.json").read_text())))
        lat = d["latency_ms_batch1"]
        print(f"| {name} seed {seed} | {info.n_params:,} | {info.macs:,} | "
              f"{info.peak_bytes(4):,} / {info.peak_bytes(1):,} | "
              f"{d['onnx_file_bytes']:,} ({d['onnx_weight_bytes']:,}) / "
              f"{d['int8_file_bytes']:,} ({d['int8_weight_bytes']:,}) | "
              f"{d['onnx_acc']:.2f} / {d['int8_acc']:.2f} | {d['int8_drop_points']:.2f} | "
              f"{lat['onnxruntime']:.3f} | {lat['torch_over_ort']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
