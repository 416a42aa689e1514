"""`nas export`: a study's trial, or one seed of a `nas verify` run, as a standalone
``model.py`` (torch only) with its weights.

The module is generated from the spec with a template (not torch.fx): named layers in
``__init__``, one line per layer in ``forward``, and the same state_dict keys as the builder's.
The export is checked in a fresh process: same parameter count, same test accuracy, to the image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from nas.build import torch_layer
from nas.errors import NasError
from nas.report import summary_frame
from nas.runs import write_json
from nas.spec import ArchSpec, analyze, describe, layer_names

TEMPLATE = '''"""{title}

A standalone {dataset} classifier exported by nas: {n_params:,} parameters (every parameter, as
PyTorch counts them), {macs:,} MACs, receptive field {rf}x{rf}.
Architecture: {arch}

{table}

Needs torch{needs}. Evaluate the weights on the {dataset} test split:

    python model.py --data {data_help}

In your code: ``labels = predict(load(), images)`` with uint8 images, N x H x W or N x H x W x C.
"""

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

N_PARAMS = {n_params}
SHAPE = {shape!r}  # (channels, height, width) of one image
MEAN, STD = {mean!r}, {std!r}  # per channel, the training images' statistics, 0..1 scale
CLASSES = {classes!r}
SOURCE = {source!r}  # where the test split comes from: idx, npz or folder
DEFAULT_DATA = {default_data!r}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
{init}

    def forward(self, x):
{forward}
        return x{final}


def read_idx(folder: Path, name: str) -> torch.Tensor:
    for path in (folder / name, folder / (name + ".gz"), folder / "{kind}" / "raw" / name,
                 folder / "{kind}" / "raw" / (name + ".gz")):
        if path.is_file():
            data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
            ndim = data[3]
            shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).view(shape)
    sys.exit(f"error: {{name}}[.gz] not found in {{folder}} or {{folder}}/{kind}/raw")


def read_test(where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split as uint8 images (N x H x W or N x H x W x C) and int64 labels."""
    if SOURCE == "idx":
        folder = Path(where)
        return (read_idx(folder, "t10k-images-idx3-ubyte"),
                read_idx(folder, "t10k-labels-idx1-ubyte").long())
    if SOURCE == "npz":
        import numpy as np

        with np.load(where) as z:
            return torch.from_numpy(z["x_test"]), torch.from_numpy(z["y_test"]).long()
    from PIL import Image  # test/<class>/..., in torchvision ImageFolder's order

    images, labels = [], []
    exts = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
    for label, name in enumerate(CLASSES):
        for root, _, files in sorted(os.walk(Path(where) / "test" / name, followlinks=True)):
            for f in sorted(files):
                if not f.lower().endswith(exts):
                    continue
                with Image.open(os.path.join(root, f)) as im:
                    im = im.convert("L" if SHAPE[0] == 1 else "RGB")
                    images.append(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
                                  .view(im.height, im.width, -1))
                labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W or N x H x W x C -> the float N x C x H x W the net was trained on."""
    x = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean) / std


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


def load(weights: str = str(Path(__file__).with_name("weights.pt"))) -> nn.Module:
    model = Net()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class indices (CLASSES[i] names them) for raw uint8 images, N x H x W or N x H x W x C."""
    return model.eval()(normalize(images)).argmax(1)


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate this model on the {dataset} test split.")
    p.add_argument("--data", "--data-dir", dest="data",
                   default=DEFAULT_DATA or os.environ.get("NAS_DATA_DIR"),
                   help="{data_help} (default: %(default)s)")
    p.add_argument("--weights", default=str(Path(__file__).with_name("weights.pt")))
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--bf16", action="store_true",
                   help="evaluate in bf16 autocast + channels-last, as the model was trained")
    args = p.parse_args()
    if args.data is None:
        sys.exit("error: give --data {data_help}")
    images, y = read_test(args.data)
    x, y = normalize(images[: args.limit]), y[: args.limit]
    model = load(args.weights)
    n_params = sum(p.numel() for p in model.parameters())
    correct = evaluate(model, x, y, bf16=args.bf16)
    if args.json:
        print(json.dumps({{"n_params": n_params, "correct": correct, "total": len(y)}}))
    else:
        print(f"{{n_params:,}} parameters; test accuracy {{100 * correct / len(y):.2f}}% "
              f"({{correct}}/{{len(y)}})")


if __name__ == "__main__":
    main()
'''


def _init_line(layer, in_shape: tuple) -> str:
    cls, args, kwargs = torch_layer(layer, in_shape)
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"nn.{cls}({', '.join(parts)})"


IDX_KINDS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # built-in IDX datasets
DATA_HELP = {"idx": "DIR  (t10k-*-ubyte[.gz], directly or in {kind}/raw/)",
             "npz": "FILE.npz  (x_test, y_test)", "folder": "DIR  (DIR/test/<class>/*)"}


def data_source(dataset: str, data_dir: str | None) -> tuple[str, str, str | None]:
    """(source kind, IDX kind, where model.py finds the test split by default) for a dataset."""
    from nas.data import DEFAULT_SOURCES

    if dataset in IDX_KINDS:
        kind = IDX_KINDS[dataset]
        return "idx", kind, data_dir if data_dir else DEFAULT_SOURCES.get(kind)
    for prefix in ("npz", "folder"):
        if dataset.startswith(prefix + ":"):
            return prefix, "", str(Path(dataset[len(prefix) + 1:]).resolve())
    raise NasError(f"export cannot read dataset {dataset!r}")


def render_model(spec: ArchSpec, title: str, info=None, data_dir: str | None = None) -> str:
    """The source of a standalone model.py for ``spec``, normalizing as ``info`` (a dataset)
    and reading its test split from where the tool found it."""
    from nas.data import MNIST_INFO

    info_d = info or MNIST_INFO
    source, kind, default = data_source(info_d.name, data_dir)
    info = analyze(spec)
    shape: tuple = (spec.in_channels, spec.input_size, spec.input_size)
    init, forward = [], []
    for layer, name, li in zip(spec.layers, layer_names(spec), info.layers, strict=True):
        init.append(f"        self.{name} = {_init_line(layer, shape)}  "
                    f"# -> {'x'.join(map(str, li.out_shape))}")
        forward.append(f"        x = self.{name}(x)")
        shape = li.out_shape
    table = summary_frame(spec).to_string(index=False)
    return TEMPLATE.format(
        dataset=info_d.name, kind=kind or "MNIST", shape=tuple(info_d.shape),
        mean=list(info_d.mean), std=list(info_d.std), classes=list(info_d.classes),
        source=source, default_data=default, data_help=DATA_HELP[source].format(kind=kind),
        needs={"idx": "", "npz": " and numpy", "folder": " and Pillow"}[source],
        title=title, n_params=info.n_params, macs=info.macs, rf=info.rf, arch=describe(spec),
        table=table, init="\n".join(init), forward="\n".join(forward),
        final=".flatten(1)" if info.needs_flatten else "",
    )


def check_export(out: Path, data_root: Path | str, limit: int | None,
                 bf16: bool = False) -> dict:
    """Run the exported model.py in a fresh process; return its JSON result."""
    cmd = [sys.executable, str(out / "model.py"), "--data", str(data_root), "--json"]
    if limit:
        cmd += ["--limit", str(limit)]
    if bf16:
        cmd.append("--bf16")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise NasError(f"exported model failed to run: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _new_folder(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()) and not force:
        raise NasError(f"export folder {out} exists and is not empty (use --force to overwrite)")
    if out.exists() and force:
        shutil.rmtree(out)
    out.mkdir(parents=True)


def _write_and_check(out: Path, spec: ArchSpec, train_config: dict, weights: Path, title: str,
                     preset: dict, recorded: int, n_test: int, data_dir: str | None,
                     result: dict, dataset: str = "mnist", onnx: bool = False,
                     int8: bool = False, ran_bf16: bool | None = None) -> dict:
    """model.py, weights, spec, config and preset.json; then the fresh-process check.
    ``ran_bf16``: the precision the weights were evaluated in, where ``train_config`` says
    only "auto" (bf16 None); by default, what ``train_config`` says."""
    from nas.data import prepare_raw
    from nas.datasets import check_spec, load_data

    data = load_data(dataset, data_dir, "cpu", 0)
    info = data.info
    check_spec(spec, info)  # --dataset pointing at other images: one line
    (out / "model.py").write_text(render_model(spec, title, info, data_dir))
    torch.save(torch.load(weights, map_location="cpu", weights_only=True), out / "weights.pt")
    write_json(out / "spec.json", spec.to_dict())
    write_json(out / "train_config.json", train_config)
    # The same design as a preset file: copy it into nas/found/ to ship it as `--preset NAME`.
    write_json(out / "preset.json", {"spec": spec.to_dict(), "train": train_config, **preset})
    source, kind, where = data_source(dataset, data_dir)
    if source == "idx":  # the files the tool itself read (decompressed, size-checked)
        where = prepare_raw(data_dir, kind) / kind / "raw"
    limit = n_test if n_test < len(data.test) else None
    # Compare like with like: a model trained (and evaluated) in bf16 is checked in bf16;
    # its fp32 count is recorded too, since that is what `python model.py` prints by default.
    bf16 = bool(train_config.get("bf16") if ran_bf16 is None else ran_bf16)
    got = check_export(out, where, limit, bf16=bf16)
    fp32 = check_export(out, where, limit) if bf16 else got
    n_params = analyze(spec).n_params
    result = {
        **result, "dataset": dataset, "recorded_correct": recorded, "n_test": n_test,
        "exported_correct": got["correct"], "checked_in": "bf16" if bf16 else "fp32",
        "exported_correct_fp32": fp32["correct"], "n_params": n_params,
        "exported_n_params": got["n_params"],
    }
    if onnx or int8:  # ONNX Runtime's view of the same weights, checked on the test split
        from nas.build import build
        from nas.deploy import export_and_check

        net = build(spec)
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        result["deploy"] = export_and_check(out, net, info, data.test.x_at(slice(0, n_test)),
                                            data.test.y[:n_test],
                                            data.train.x_at(slice(0, 1000)) if int8 else None)
    write_json(out / "export.json", result)
    if got["n_params"] != n_params or got["correct"] != recorded:
        raise NasError(f"export check failed: recorded {n_params} params, "
                       f"{recorded}/{n_test} correct; exported {got['n_params']} params, "
                       f"{got['correct']}/{n_test}")
    return result


def export_trial(results_dir: Path, study_name: str, which: str, out: Path, force: bool,
                 data_dir: str | None, onnx: bool = False, int8: bool = False,
                 dataset: str | None = None) -> dict:
    from nas.studyio import get_trial, load_study, study_dir, weights_path

    study = load_study(results_dir, study_name)
    t = get_trial(study, which, study_dir(results_dir, study_name) / "study.json")
    weights = weights_path(study_dir(results_dir, study_name), t.number)
    if not weights.is_file():
        raise NasError(f"trial {t.number} has no weights at {weights}")
    _new_folder(out, force)
    spec = ArchSpec.from_dict(t.user_attrs["spec"])
    meta = json.loads((study_dir(results_dir, study_name) / "study.json").read_text())
    # Enqueued trials (known designs, anchors) were not proposed by the sampler: say so.
    origin = "enqueued" if "fixed_params" in t.system_attrs else "sampler"
    how = "found by the search" if origin == "sampler" else "enqueued by hand in"
    preset = {
        "about": f"{how} {study_name} trial {t.number}: "
                 f"{t.user_attrs['n_params']:,} params, val {t.values[0]:.2f}%",
        "source": {"study": study_name, "trial": t.number, "proposed_by": origin,
                   "enqueued": t.user_attrs.get("enqueued"), "val_acc": t.values[0],
                   "command": meta.get("command", "")},
    }
    dataset = dataset or meta.get("dataset", "mnist")
    from nas.datasets import check_spec, load_data

    data = load_data(dataset, data_dir, "cpu", 0)
    check_spec(spec, data.info)  # before the test accuracy below is computed on it
    n_all = len(data.test)
    n_test = min(meta.get("eval_limit") or n_all, n_all)
    if t.user_attrs.get("test_acc"):  # a search run with --record-test
        test_acc = t.user_attrs["test_acc"][-1]
    else:  # the search never looked: the export is the first to, with nas's own model
        test_acc = _test_acc(spec, t.user_attrs["train_config"], weights, data_dir, n_test,
                             dataset)
    result = {
        "study": study_name, "trial": t.number, "selection": which, "val_acc": t.values[0],
        "proposed_by": origin, "recorded_test_acc": test_acc,
    }
    return _write_and_check(out, spec, t.user_attrs["train_config"], weights,
                            f"{study_name} trial {t.number}: {describe(spec)}", preset,
                            round(test_acc * n_test / 100), n_test, data_dir, result,
                            dataset, onnx, int8)


def _test_acc(spec: ArchSpec, train_config: dict, weights: Path, data_dir: str | None,
              n_test: int, dataset: str = "mnist") -> float:
    """Test accuracy of the weights in nas's own built module (the export must match it)."""
    from nas.build import build
    from nas.config import TrainConfig
    from nas.datasets import load_data
    from nas.train import evaluate

    cfg = TrainConfig.from_dict(train_config)
    model = build(spec)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    test = load_data(dataset, data_dir, "cpu", 0).test.head(n_test)
    return evaluate(model, test, cfg)[1]


def export_verified(results_dir: Path, name: str, seed: int | None, out: Path, force: bool,
                    data_dir: str | None, onnx: bool = False, int8: bool = False,
                    dataset: str | None = None) -> dict:
    """A `nas verify` run's weights for one seed: trained on all 60,000 training images."""
    import pandas as pd

    folder = Path(results_dir) / "verify" / name
    if not (folder / "verify.json").is_file():
        raise NasError(f"no verify run {name!r} (no {folder}/verify.json; see `nas results`)")
    v = json.loads((folder / "verify.json").read_text())
    seeds = [int(s) for s in v["per_seed"]]
    seed = seeds[0] if seed is None else seed  # the first seed run, not the luckiest
    if seed not in seeds:
        raise NasError(f"verify run {name!r} has seeds {','.join(map(str, seeds))}, not {seed}")
    weights = folder / f"weights_seed{seed}.pt"
    if not weights.is_file():
        raise NasError(f"verify run {name!r} has no weights for seed {seed} at {weights}")
    _new_folder(out, force)
    spec = ArchSpec.from_dict(json.loads((folder / "spec.json").read_text()))
    shutil.copy(folder / "verify.json", out / "verify.json")
    last = pd.read_csv(folder / f"history_seed{seed}.csv").iloc[-1]
    n_test = int(last.get("test_n", 10000))  # runs from before test_n was recorded: all 10,000
    final = v["per_seed"][str(seed)]["final_acc"]
    preset = {
        "about": f"{v['name']}, verified by `nas verify` as {name}: {v['n_params']:,} params, "
                 f"final test {v['final_mean']:.2f} +- {v['final_std']:.2f}% over "
                 f"{len(seeds)} seeds",
        "source": {"verify": name, "design": v["name"], "seed": seed},
    }
    result = {
        "verify": name, "seed": seed, "recorded_test_acc": final,
        "final_mean": v["final_mean"], "final_std": v["final_std"], "seeds": seeds,
    }
    # verify.json keeps the recipe as asked (bf16 None: auto, which travels to preset.json);
    # train_config.json beside it says what the run resolved that to on its machine, and the
    # recorded accuracy was measured in that: an auto run in native bf16 is checked in bf16
    ran = folder / "train_config.json"
    ran_bf16 = json.loads(ran.read_text()).get("bf16") if ran.is_file() else None
    return _write_and_check(out, spec, v["train_config"], weights,
                            f"{v['name']} ({name}, seed {seed}, 60,000 training images): "
                            f"{describe(spec)}", preset, round(final * n_test / 100), n_test,
                            data_dir, result,
                            dataset or v.get("dataset", {}).get("name", "mnist"), onnx, int8,
                            ran_bf16)
