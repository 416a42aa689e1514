"""Text tables and data summaries (the HTML study report lives in nas/study_report.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas.data import Data
from nas.spec import ArchSpec, analyze


def summary_frame(spec: ArchSpec) -> pd.DataFrame:
    info = analyze(spec)
    return pd.DataFrame(
        [
            {"#": li.index, "name": li.name, "layer": li.text,
             "output": "x".join(map(str, li.out_shape)), "params": li.n_params,
             "MACs": li.macs, "RF": li.rf}
            for li in info.layers
        ]
    )


def summary_table(spec: ArchSpec, name: str = "") -> str:
    info = analyze(spec)
    df = summary_frame(spec)
    body = df.to_string(index=False, formatters={"params": "{:,}".format, "MACs": "{:,}".format})
    head = f"{name}\n" if name else ""
    return (
        f"{head}{body}\n"
        f"total: {info.n_params:,} params ({info.n_params}), {info.macs:,} MACs, "
        f"receptive field {info.rf}x{info.rf}\n"
        f"deployed (BN folded, one image): peak activations {info.peak_bytes(4):,} bytes fp32, "
        f"{info.peak_bytes(1):,} int8; model size {info.fp32_bytes:,} bytes fp32, "
        f"{info.int8_bytes:,} int8"
    )


def data_stats(data: Data, full: Data | None = None) -> pd.DataFrame:
    """Per split: count, pixel mean/std/min/max on the 0..1 scale, images per class.

    ``full`` (loaded without a validation split) adds the row for all 60,000 training images.
    """
    rows = {}
    splits = [("train (all)", full.train)] if full is not None else []
    splits += [(n, getattr(data, n)) for n in ("train", "val", "test")]
    for name, split in splits:
        if split is None:
            continue
        px = split.images.float() / 255.0  # the 0..1 scale
        row = {"count": len(split), "mean": round(px.mean().item(), 4),
               "std": round(px.std().item(), 4), "min": round(px.min().item(), 4),
               "max": round(px.max().item(), 4)}
        counts = split.y.bincount(minlength=data.info.num_classes).tolist()
        row.update({f"class {c}": n for c, n in enumerate(counts)})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def save_sample_grid(data: Data, out_dir: Path, per_class: int = 8, max_classes: int = 20) -> Path:
    """A PNG with one row per class: its name, then its first ``per_class`` training images.

    Up to ``max_classes`` rows; small images are enlarged (nearest neighbour) to about 56 px.
    """
    from PIL import Image, ImageDraw, ImageFont

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "samples.png"
    c, h, w = data.info.shape
    zoom = max(1, 56 // max(h, w))
    tile_h, tile_w, pad = h * zoom, w * zoom, 4
    try:
        font = ImageFont.load_default(size=max(12, tile_h // 4))
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    classes = list(enumerate(data.info.classes))[:max_classes]
    label_w = int(max(font.getlength(name) for _, name in classes)) + 2 * pad
    sheet = Image.new("RGB", (label_w + per_class * (tile_w + pad) + pad,
                              len(classes) * (tile_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (k, name) in enumerate(classes):
        top = pad + row * (tile_h + pad)
        draw.text((pad, top + tile_h // 2), name, fill="black", font=font, anchor="lm")
        idx = (data.train.y == k).nonzero().flatten()[:per_class]
        for col, i in enumerate(idx.tolist()):
            img = data.train.images[i].cpu()
            arr = img[0].numpy() if c == 1 else img.permute(1, 2, 0).numpy()
            tile = Image.fromarray(arr).resize((tile_w, tile_h), Image.NEAREST)
            sheet.paste(tile, (label_w + col * (tile_w + pad), top))
    sheet.save(path)
    return path


def verify_frame(results_dir: Path) -> pd.DataFrame:
    """One row per ``nas verify`` run under results_dir/verify/, fewest parameters last."""
    import json

    rows = []
    for path in sorted(Path(results_dir).glob("verify/*/verify.json")):
        v = json.loads(path.read_text())
        seeds = v["per_seed"]
        best_seed = max(seeds, key=lambda s: seeds[s]["best_acc"])
        finals = [seeds[s]["final_acc"] for s in seeds]
        name = path.parent.name  # the --name it ran under; v["name"] is the design
        if v.get("limits"):  # a quick run on part of the data must not pass for a real one
            name += " (" + ", ".join(f"{k} {n:,}" for k, n in v["limits"].items()) + ")"
        rows.append({
            "name": name,
            "params": v["n_params"], "epochs": v["epochs"],
            "best": f"{seeds[best_seed]['best_acc']:.2f}% ({seeds[best_seed]['best_epoch']})",
            "final": f"{v['final_mean']:.2f} ± {v['final_std']:.2f}% "
                     f"({', '.join(f'{a:.2f}' for a in finals)})",
            "min": f"{v['final_min']:.2f}", "seeds": len(finals), "minutes": round(v["minutes"], 1),
            "device": v.get("device", "?"), "threads": v.get("environment", {}).get("threads"),
            "precision": "bf16" if v["train_config"].get("bf16") else "fp32",
        })
    df = pd.DataFrame(rows)
    return df.sort_values("params", ascending=False, kind="stable") if len(df) else df


def markdown(df: pd.DataFrame) -> str:
    """A GitHub table without the optional tabulate dependency."""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + " --- |" * len(df.columns)]
    for row in df.itertuples(index=False):
        cells = [f"{v:,}" if isinstance(v, int) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
