"""MNIST, loaded once per process into uint8 tensors on the device, normalized per batch.

The source folder (``--data-dir`` or ``NAS_DATA_DIR``) holds the four IDX files, gzipped or not,
either directly or under ``MNIST/raw/``. They are decompressed once into our own cache
(``NAS_CACHE_DIR``, default ``~/.cache/nas``), never into the source, and read here.
With no source folder torchvision downloads into the cache, if there is a network.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from nas.errors import NasError

MEAN, STD = 0.1307, 0.3081  # train-set pixel statistics on a 0..1 scale
VAL_SEED = 0  # the validation split is the same for every run and every process
# decompressed IDX file -> its exact size in bytes (header + payload)
FILES = {
    "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise NasError(f"unknown device {device!r} (valid: auto, cpu, cuda)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NasError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    return torch.device(device)


def cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR", Path.home() / ".cache" / "nas"))


def _find(source: Path, name: str, kind: str = "MNIST") -> Path | None:
    for folder in (source / kind / "raw", source):
        for cand in (folder / name, folder / f"{name}.gz"):
            if cand.is_file():
                return cand
    return None


# Where a dataset's IDX files are looked for when no --data-dir is given (after NAS_DATA_DIR,
# for MNIST): Debian's dataset-fashion-mnist package installs Fashion-MNIST here.
DEFAULT_SOURCES = {"FashionMNIST": "/usr/share/datasets/fashion-mnist"}


def prepare_raw(data_dir: str | os.PathLike | None, kind: str = "MNIST") -> Path:
    """Make <cache>/<kind>/raw/ hold the four decompressed, size-checked IDX files; return
    <cache>. ``kind`` is torchvision's class name: MNIST or FashionMNIST (same file names)."""
    root = cache_dir()
    raw = root / kind / "raw"
    source = data_dir if data_dir is not None else (
        os.environ.get("NAS_DATA_DIR") if kind == "MNIST" else DEFAULT_SOURCES.get(kind))
    if source is None:
        if all((raw / n).is_file() and (raw / n).stat().st_size == s for n, s in FILES.items()):
            return root
        return _download(root)
    source = Path(source)
    found = {name: _find(source, name, kind) for name in FILES}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        hint = " (Debian: apt-get install dataset-fashion-mnist)" if kind != "MNIST" else ""
        raise NasError(
            f"no {kind} in {source}: expected {', '.join(n + '.gz' for n in FILES)} "
            f"in {source}/{kind}/raw/ or {source}/ (missing {', '.join(missing)}){hint}"
        )
    raw.mkdir(parents=True, exist_ok=True)
    for name, size in FILES.items():
        src, dst = found[name], raw / name
        # Reuse the cache only if it came from this very source file (same size and mtime).
        stamp = raw / f".{name}.source"
        tag = f"{src.resolve()} {src.stat().st_size} {src.stat().st_mtime_ns}"
        if dst.is_file() and dst.stat().st_size == size and stamp.is_file() \
                and stamp.read_text() == tag:
            continue
        # A name of this process's own: two runs started at once on an empty cache would
        # otherwise write (and one delete) the same temp file. os.replace is atomic.
        tmp = dst.with_name(f"{name}.{os.getpid()}.tmp")
        try:
            opener = gzip.open if src.suffix == ".gz" else open
            with opener(src, "rb") as f, open(tmp, "wb") as g:
                shutil.copyfileobj(f, g)
        except (OSError, EOFError) as e:
            tmp.unlink(missing_ok=True)
            raise NasError(f"corrupt {kind} file {src}: {e}") from None
        if tmp.stat().st_size != size:
            got = tmp.stat().st_size
            tmp.unlink()
            raise NasError(
                f"corrupt {kind} file {src}: {got} bytes once decompressed, expected {size}"
            )
        tmp.replace(dst)
        stamp.write_text(tag)
    return root


def _download(root: Path) -> Path:
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(root, train=train, download=True)
    except Exception as e:  # torchvision raises a mix of URLError / RuntimeError
        raise NasError(
            f"no MNIST data folder given (--data-dir or NAS_DATA_DIR) and the download failed "
            f"({type(e).__name__}); point --data-dir at a folder with "
            f"MNIST/raw/{{{','.join(FILES)}}}.gz"
        ) from None
    return root


@dataclass
class Split:
    """One split on the device: images kept as uint8 (4x less memory than a float copy) and
    normalized batch by batch with the dataset's per-channel mean and std."""

    images: torch.Tensor  # (N, C, H, W) uint8
    y: torch.Tensor  # (N,) int64
    mean: tuple = (MEAN,)  # per channel, on the 0..1 scale
    std: tuple = (STD,)

    def __post_init__(self):
        if self.images.dtype != torch.uint8:  # x_at normalizes a copy in place: never the data
            raise TypeError(f"Split keeps uint8 images, got {self.images.dtype}")
        if len(self.mean) == 1:  # python floats: MNIST's numbers, exactly as earlier versions
            self._m, self._s = self.mean[0], self.std[0]
        else:
            self._m = per_channel(self.mean).to(self.images.device)
            self._s = per_channel(self.std).to(self.images.device)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def x_at(self, idx) -> torch.Tensor:
        """Normalized float32 images ``images[idx]``: idx is a slice or an index tensor."""
        # the same three operations as ever, in place on the fresh float copy: no temporaries
        # per batch
        return self.images[idx].float().div_(255.0).sub_(self._m).div_(self._s)

    @property
    def x(self) -> torch.Tensor:
        """The whole split normalized: a float copy, for small uses (reports, checks)."""
        return self.x_at(slice(None))

    def head(self, n: int | None) -> Split:
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.y[:n], self.mean, self.std)


def per_channel(values: tuple, like: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) tensor, on ``like``'s device and dtype."""
    kw = {"device": like.device, "dtype": like.dtype} if like is not None else {}
    return torch.tensor(values, **kw).view(1, -1, 1, 1)


@dataclass(frozen=True)
class DatasetInfo:
    """What everything downstream needs to know about a dataset, besides its tensors."""

    name: str  # mnist, fashion-mnist, npz:PATH, folder:PATH
    shape: tuple  # (channels, height, width) of one image
    classes: tuple  # class names, index = label
    mean: tuple  # per channel, on the 0..1 scale, from the training images (never the test)
    std: tuple
    # whether a left-right mirror keeps an image's label: False for digits (a mirrored 2 is no
    # digit), True for clothes, None when nobody said (a search then tries both)
    mirror: bool | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "classes": list(self.classes),
                "mean": list(self.mean), "std": list(self.std), "mirror": self.mirror}


MNIST_INFO = DatasetInfo("mnist", (1, 28, 28), tuple(str(i) for i in range(10)), (MEAN,), (STD,),
                         mirror=False)


@dataclass
class Data:
    train: Split
    val: Split | None
    test: Split | None
    info: DatasetInfo = MNIST_INFO


MNISTData = Data  # the name it had when MNIST was the only dataset


def read_idx(path: Path) -> torch.Tensor:
    """One IDX file of unsigned bytes (MNIST's format) as a uint8 tensor of its shape. Read here
    rather than through torchvision.datasets: importing torchvision pulls in torch._dynamo via
    torchvision.ops, about 2.5 s of start-up in a process that only reads data, such as an
    export's check (bench/startup.py; less in one that trains, whose optimizer imports
    torch._dynamo anyway)."""
    b = path.read_bytes()
    if len(b) < 4 or b[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path.name} is not an IDX file of unsigned bytes")
    nd = b[3]
    dims = struct.unpack(f">{nd}I", b[4:4 + 4 * nd])
    data = memoryview(b)[4 + 4 * nd:]
    if len(data) != math.prod(dims):
        raise ValueError(f"{path.name} holds {len(data)} bytes for shape {dims}")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(*dims)


def _read(root: Path, train: bool, kind: str = "MNIST") -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if train else "t10k"
    try:
        x = read_idx(root / kind / "raw" / f"{prefix}-images-idx3-ubyte")
        y = read_idx(root / kind / "raw" / f"{prefix}-labels-idx1-ubyte").long()
    except (OSError, ValueError) as e:
        raise NasError(f"cannot read {kind} from {root}/{kind}/raw: {e}") from None
    n = 60000 if train else 10000
    if x.shape != (n, 28, 28) or y.shape != (n,) or int(y.min()) < 0 or int(y.max()) > 9:
        raise NasError(f"corrupt {kind} in {root}: images {tuple(x.shape)}, "
                       f"labels {tuple(y.shape)}")
    return x, y


def split_data(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
               info: DatasetInfo, device: str, val_size: int, val_fold: int = 0) -> Data:
    """uint8 (N, C, H, W) images and int labels -> uint8 splits on ``device``, with
    ``val_size`` training images held out by a fixed permutation (the same in every run).
    ``val_fold`` k holds out the k-th block of ``val_size`` images of that permutation instead
    of the first: disjoint from fold 0, the search's split, so the race can judge finalists on
    images that played no part in choosing them."""
    n = len(ytr)
    if not 0 <= val_size < n:
        raise NasError(f"validation size {val_size} must be in [0, {n})")
    if val_fold and not 0 <= val_fold < n // max(val_size, 1):
        raise NasError(f"validation fold {val_fold} must be in [0, {n // max(val_size, 1)}) "
                       f"for {val_size} of {n} images")
    dev = torch.device(device)

    def to_split(x, y) -> Split:
        return Split(x.to(dev).contiguous(), y.long().to(dev), info.mean, info.std)

    val = None
    if val_size:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))
        lo, hi = val_fold * val_size, (val_fold + 1) * val_size
        val = to_split(xtr[perm[lo:hi]], ytr[perm[lo:hi]])
        keep = torch.cat([perm[:lo], perm[hi:]]).sort().values
        xtr, ytr = xtr[keep], ytr[keep]
    return Data(train=to_split(xtr, ytr), val=val, test=to_split(xte, yte), info=info)


def read_idx_dataset(data_dir: str | None, kind: str) -> tuple:
    """MNIST or Fashion-MNIST as uint8 (N, 1, 28, 28) train and test tensors and labels."""
    root = prepare_raw(data_dir, kind)
    xtr, ytr = _read(root, train=True, kind=kind)
    xte, yte = _read(root, train=False, kind=kind)
    return xtr.unsqueeze(1), ytr, xte.unsqueeze(1), yte


@functools.lru_cache(maxsize=4)
def load_mnist(data_dir: str | None = None, device: str = "cpu", val_size: int = 0) -> Data:
    """All of MNIST as tensors on ``device``; ``val_size`` training images held out (fixed seed)."""
    if not 0 <= val_size < 60000:
        raise NasError(f"validation size {val_size} must be in [0, 60000)")
    xtr, ytr, xte, yte = read_idx_dataset(data_dir, "MNIST")
    return split_data(xtr, ytr, xte, yte, MNIST_INFO, device, val_size)




def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid(theta, (b, c, h, w), align_corners=False), 5x faster on the CPU.

    affine_grid multiplies each pixel's (x, y, 1) by theta with a batched matmul of inner size
    3, which is slow on the CPU (bench/RESULTS.md); one einsum over the shared base grid does
    the same sums; the coordinates agree to float rounding (<= 5e-7), not bit for bit.
    """
    return torch.einsum("hwk,bjk->bhwj", _base_grid(h, w, theta.dtype, theta.device), theta)


@functools.lru_cache(maxsize=8)
def _base_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Each pixel's (x, y, 1) in [-1, 1] pixel-centre coordinates: made once, not per batch."""
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    ones = torch.ones_like(xs).expand(h, w)
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), ones], -1)


def augment(
    x: torch.Tensor, g: torch.Generator, rotate_deg: float = 0.0, translate: float = 0.0,
    scale: float = 0.0, mode: str = "bilinear", *, p: float = 1.0, border: str = "zeros",
    jitter: float = 0.0, jitter_p: float = 0.5, mean: tuple = (MEAN,), std: tuple = (STD,),
    hflip: float = 0.0,
) -> torch.Tensor:
    """Random affine per image, for the whole batch at once on its device.

    rotate_deg: angle uniform in [-rotate_deg, rotate_deg]; translate: shift uniform in
    [-translate, translate] of the image size; scale: zoom uniform in [1-scale, 1+scale];
    p: probability that an image is transformed at all. border "zeros" fills uncovered pixels
    black, as torchvision's RandomRotation does before normalizing; "reflection" mirrors the
    image. jitter: brightness, then contrast, each a factor uniform in [1-jitter, 1+jitter], on
    an image with probability jitter_p. mean, std: the dataset's normalization, per channel.
    hflip: probability that an image is mirrored left-right, drawn last.
    With p=1, no jitter and no hflip the random draws are those of
    earlier versions, so older runs repeat exactly.
    """
    b = x.shape[0]
    if len(mean) == 1:
        m, sd = mean[0], std[0]
    else:
        m, sd = per_channel(mean, x), per_channel(std, x)
    black = (0.0 - m) / sd  # what uncovered pixels are filled with, normalized

    def uniform(lim: float) -> torch.Tensor:
        return (torch.rand(b, device=x.device, generator=g) * 2 - 1) * lim

    def chosen(prob: float) -> torch.Tensor:
        return (torch.rand(b, device=x.device, generator=g) < prob).view(b, 1, 1, 1)

    if rotate_deg > 0 or translate > 0 or scale > 0:
        angle = uniform(math.radians(rotate_deg))
        cos, sin = torch.cos(angle), torch.sin(angle)
        zoom = 1.0 + uniform(scale) if scale else torch.ones_like(cos)
        theta = torch.stack(
            [
                torch.stack([cos / zoom, -sin / zoom, uniform(2 * translate)], 1),
                torch.stack([sin / zoom, cos / zoom, uniform(2 * translate)], 1),
            ],
            1,
        ).to(x.dtype)
        grid = affine_grid(theta, x.shape[-2], x.shape[-1])
        out = F.grid_sample(x - black, grid, mode=mode, padding_mode=border,
                            align_corners=False) + black
        x = out if p >= 1 else torch.where(chosen(p), out, x)
    if jitter > 0:
        raw = x * sd + m  # back to 0..1
        bright = (1 + uniform(jitter)).view(b, 1, 1, 1)
        contrast = (1 + uniform(jitter)).view(b, 1, 1, 1)
        raw = (raw * bright).clamp(0, 1)
        mean = raw.mean(dim=(1, 2, 3), keepdim=True)
        raw = ((raw - mean) * contrast + mean).clamp(0, 1)
        x = torch.where(chosen(jitter_p), (raw - m) / sd, x)
    if hflip > 0:
        x = torch.where(chosen(hflip), x.flip(-1), x)
    return x
