"""Datasets by name: ``mnist``, ``fashion-mnist``, or a user's ``npz:PATH`` / ``folder:PATH``.

``load_data(name, data_dir, device, val_size)`` returns a ``nas.data.Data``: normalized splits on
the device and a ``DatasetInfo`` (image shape, class names, per-channel mean and std computed
from the training images). Everything downstream takes shapes and classes from the info.

- ``mnist``: the four IDX files from --data-dir / NAS_DATA_DIR (see nas.data.prepare_raw).
- ``fashion-mnist``: the same four file names, from --data-dir or, by default, from
  /usr/share/datasets/fashion-mnist/ (Debian's ``dataset-fashion-mnist`` package).
- ``npz:PATH``: an .npz with x_train, y_train, x_test, y_test; uint8 images HxW or HxWxC.
- ``folder:PATH``: PATH/train/<class>/*.png and PATH/test/<class>/*.png, read with torchvision's
  ImageFolder; grayscale or RGB, one size for all.
Bad data gives one NasError line.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from nas.data import MNIST_INFO, Data, DatasetInfo, read_idx_dataset, split_data
from nas.errors import NasError
from nas.registry import Registry
from nas.spec import ArchSpec

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

# name -> loader(data_dir) returning (x_train, y_train, x_test, y_test, info without stats)
DATASETS: Registry = Registry("dataset")


@DATASETS.register("mnist")
def _mnist(data_dir: str | None) -> tuple:
    return (*read_idx_dataset(data_dir, "MNIST"), MNIST_INFO)


@DATASETS.register("fashion-mnist")
def _fashion(data_dir: str | None) -> tuple:
    xtr, ytr, xte, yte = read_idx_dataset(data_dir, "FashionMNIST")
    return xtr, ytr, xte, yte, DatasetInfo("fashion-mnist", (1, 28, 28), FASHION_CLASSES,
                                           *_stats(xtr), mirror=True)


def _stats(x: torch.Tensor) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 (N, C, H, W) images on the 0..1 scale."""
    xf = x.double() / 255.0
    return (tuple(round(v, 4) for v in xf.mean(dim=(0, 2, 3)).tolist()),
            tuple(round(v, 4) for v in xf.std(dim=(0, 2, 3)).tolist()))


def _images(x, where: str) -> torch.Tensor:
    """uint8 HxW or HxWxC arrays -> (N, C, H, W) uint8 tensor, or a one-line error."""
    t = torch.as_tensor(x)
    if t.dtype != torch.uint8:
        raise NasError(f"{where}: images must be uint8, got {t.dtype}")
    if t.dim() == 3:
        t = t.unsqueeze(1)
    elif t.dim() == 4:
        t = t.permute(0, 3, 1, 2).contiguous()
    else:
        raise NasError(f"{where}: images must be N x H x W or N x H x W x C, got shape "
                       f"{tuple(t.shape)}")
    return t


def _checked(name: str, xtr, ytr, xte, yte, classes=None) -> tuple:
    """Shapes, labels and classes made consistent, or one NasError line naming the problem."""
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if len(x) == 0:
            raise NasError(f"{name}: the {split} split is empty")
        if len(x) != len(y):
            raise NasError(f"{name}: {len(x)} {split} images but {len(y)} labels")
    if xtr.shape[1:] != xte.shape[1:]:
        raise NasError(f"{name}: train images are {tuple(xtr.shape[1:])}, test images "
                       f"{tuple(xte.shape[1:])} (C, H, W)")
    c, h, w = xtr.shape[1:]
    if h != w:
        raise NasError(f"{name}: images must be square, got {h}x{w}")
    ytr, yte = torch.as_tensor(ytr).long(), torch.as_tensor(yte).long()
    n = int(max(ytr.max(), yte.max())) + 1 if classes is None else len(classes)
    if int(min(ytr.min(), yte.min())) < 0 or int(max(ytr.max(), yte.max())) >= n:
        raise NasError(f"{name}: labels must be in 0..{n - 1}, got "
                       f"{int(min(ytr.min(), yte.min()))}..{int(max(ytr.max(), yte.max()))}")
    if n < 2 or len(ytr.unique()) < 2:
        raise NasError(f"{name}: a classifier needs at least 2 classes in the training split")
    classes = tuple(classes) if classes is not None else tuple(str(i) for i in range(n))
    return xtr, ytr, xte, yte, DatasetInfo(name, (c, h, w), classes, *_stats(xtr))


def _npz(path: str) -> tuple:
    import numpy as np

    try:
        with np.load(path) as z:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
            if missing:
                raise NasError(f"npz:{path} lacks {', '.join(sorted(missing))}")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError) as e:
        raise NasError(f"cannot read npz:{path}: {e}") from None
    name = f"npz:{path}"
    return _checked(name, _images(arrays["x_train"], name), arrays["y_train"],
                    _images(arrays["x_test"], name), arrays["y_test"])


def _folder(path: str) -> tuple:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    name = f"folder:{path}"
    splits = {}
    for split in ("train", "test"):
        root = Path(path) / split
        if not root.is_dir():
            raise NasError(f"{name}: no {root}/ (expected train/<class>/*.png and "
                           "test/<class>/*.png)")
        try:
            ds = ImageFolder(str(root))
        except (FileNotFoundError, RuntimeError) as e:
            raise NasError(f"{name}: {e}") from None
        splits[split] = ds
    classes = splits["train"].classes
    if splits["test"].classes != classes:
        raise NasError(f"{name}: train classes {classes} differ from test classes "
                       f"{splits['test'].classes}")
    out = []
    for split in ("train", "test"):
        images, labels = [], []
        for file, label in splits[split].samples:
            from PIL import Image

            with Image.open(file) as im:
                mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
                images.append(pil_to_tensor(im.convert(mode)))
            labels.append(label)
        sizes = {tuple(t.shape) for t in images}
        if len(sizes) > 1:
            raise NasError(f"{name}: {split} images have mixed sizes or modes: "
                           f"{', '.join(map(str, sorted(sizes)[:4]))} (C, H, W)")
        out += [torch.stack(images), torch.tensor(labels)]
    return _checked(name, *out, classes=classes)


@functools.lru_cache(maxsize=4)
def load_data(dataset: str = "mnist", data_dir: str | None = None, device: str = "cpu",
              val_size: int = 0, val_fold: int = 0) -> Data:
    """A dataset by name, normalized on ``device``, ``val_size`` training images held out
    (``val_fold``: which block of them, see ``nas.data.split_data``)."""
    if dataset.startswith("npz:"):
        xtr, ytr, xte, yte, info = _npz(dataset[4:])
    elif dataset.startswith("folder:"):
        xtr, ytr, xte, yte, info = _folder(dataset[7:])
    elif dataset in DATASETS:
        xtr, ytr, xte, yte, info = DATASETS.get(dataset)(data_dir)
    else:
        raise NasError(f"unknown dataset {dataset!r} (valid: {', '.join(DATASETS.names())}, "
                       "npz:PATH, folder:PATH)")
    return split_data(xtr, ytr, xte, yte, info, device, val_size, val_fold)


def check_spec(spec: ArchSpec, info: DatasetInfo) -> None:
    """One-line error when a spec does not fit the data's images or classes."""
    c, h, _ = info.shape
    wrong = [f"{what} {got} (the data has {want})" for what, got, want in (
        ("in_channels", spec.in_channels, c), ("input_size", spec.input_size, h),
        ("num_classes", spec.num_classes, info.num_classes)) if got != want]
    if wrong:
        raise NasError(f"spec does not fit dataset {info.name}: {', '.join(wrong)}")
