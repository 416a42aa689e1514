import gzip
import shutil

import pytest
import torch

from nas.config import TrainConfig
from nas.data import FILES, augment, load_mnist, prepare_raw
from nas.errors import NasError


@pytest.fixture(scope="module")
def mnist(data_dir):
    """The data layer's tests compare CPU tensors bit for bit and draw from CPU generators,
    whatever device NAS_TEST_DEVICE gives the other tests (load_mnist caches: no second read)."""
    return load_mnist(data_dir, "cpu", 2000)


def test_stats_and_splits(mnist):
    assert len(mnist.train) == 58000 and len(mnist.val) == 2000 and len(mnist.test) == 10000
    full = load_mnist(None, "cpu", 0)
    px = full.train.x * 0.3081 + 0.1307
    assert abs(px.mean().item() - 0.1307) < 1e-3 and abs(px.std().item() - 0.3081) < 1e-3
    assert full.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert full.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_images_stay_uint8_and_batches_normalize_as_before(mnist):
    # 1 byte per pixel on the device; a batch is normalized exactly as the float copy was
    assert mnist.train.images.dtype == torch.uint8 and mnist.test.images.dtype == torch.uint8
    idx = torch.tensor([3, 0, 57999, 12])
    old = (mnist.train.images[idx].float() / 255.0 - 0.1307) / 0.3081
    assert torch.equal(mnist.train.x_at(idx), old)
    assert mnist.train.x_at(idx).dtype == torch.float32
    assert torch.equal(mnist.test.head(5).x, mnist.test.x_at(slice(0, 5)))


def test_validation_split_is_fixed_and_disjoint(mnist, data_dir):
    again = load_mnist.__wrapped__(data_dir, "cpu", 2000)
    assert torch.equal(again.val.y, mnist.val.y)
    # no validation image appears in the training part, and together they are all 60,000
    def keys(split):
        return [hash(bytes(r)) for r in (split.x * 1000).to(torch.int32).flatten(1).numpy()]

    train_keys = set(keys(mnist.train))
    assert sum(k in train_keys for k in keys(mnist.val)) == 0
    full = load_mnist(None, "cpu", 0)
    both = torch.cat([mnist.train.y, mnist.val.y]).bincount()
    assert torch.equal(both, full.train.y.bincount())


def test_validation_folds_partition_the_training_images():
    """Fold 0 is the split every study used; fold k holds out the k-th block of the same
    permutation, so the folds are disjoint and each leaves the rest for training."""
    from nas.data import MNIST_INFO, VAL_SEED, split_data

    n = 10
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    y = torch.arange(n) % 10
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))
    seen = []
    for fold in range(3):
        d = split_data(x, y, x[:2], y[:2], MNIST_INFO, "cpu", 3, fold)
        val = d.val.images[:, 0, 0, 0].tolist()
        assert val == perm[3 * fold:3 * fold + 3].tolist()  # fold 0: as before folds existed
        assert sorted(val + d.train.images[:, 0, 0, 0].tolist()) == list(range(n))
        seen += val
    assert len(set(seen)) == 9  # disjoint
    with pytest.raises(NasError, match="validation fold 3 must be in"):
        split_data(x, y, x[:2], y[:2], MNIST_INFO, "cpu", 3, 3)


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(NasError, match="no MNIST in .*train-images-idx3-ubyte.gz"):
        prepare_raw(tmp_path / "nowhere")


def test_truncated_file_is_detected(tmp_path, data_dir, monkeypatch):
    src = tmp_path / "src" / "MNIST" / "raw"
    src.mkdir(parents=True)
    for name in FILES:
        shutil.copy(f"{data_dir}/MNIST/raw/{name}.gz", src)
    blob = (src / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(NasError, match="corrupt MNIST file .*t10k-labels"):
        prepare_raw(tmp_path / "src")
    # a complete gzip of the wrong size is caught too
    with gzip.open(src / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0" * 100)
    with pytest.raises(NasError, match="100 bytes once decompressed, expected 10008"):
        prepare_raw(tmp_path / "src")
    assert not list(src.glob("*-ubyte"))  # nothing is ever written into the source


def test_idx_files_are_read_exactly_and_bad_ones_refused(tmp_path):
    """nas.data.read_idx, which stands in for torchvision's reader: shape from the header,
    bytes as they are, and a one-line error for a file that is not IDX or is cut short."""
    from nas.data import _read, read_idx

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    img = bytes(range(256)) * 3 + bytes(16)  # 2 x 14 x 28 = 784 bytes
    (raw / "x").write_bytes(b"\0\0\x08\x03" + (2).to_bytes(4, "big") + (14).to_bytes(4, "big")
                            + (28).to_bytes(4, "big") + img)
    x = read_idx(raw / "x")
    assert x.shape == (2, 14, 28) and x.dtype == torch.uint8 and bytes(x.flatten().tolist()) == img
    (raw / "train-images-idx3-ubyte").write_bytes(b"\0\0\x0d\x01" + bytes(8))  # floats
    with pytest.raises(NasError, match="cannot read MNIST .*not an IDX file of unsigned bytes"):
        _read(tmp_path, train=True)
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "x").read_bytes()[:-1])
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + (2).to_bytes(4, "big")
                                                  + b"\1\2")
    with pytest.raises(NasError, match="783 bytes for shape"):
        _read(tmp_path, train=True)


def _prepare(data_dir: str) -> str:
    return str(prepare_raw(data_dir))


def test_runs_started_together_share_an_empty_cache(tmp_path, data_dir, monkeypatch):
    """Two `nas verify` started at once on a fresh machine raced on one temp file (seen here)."""
    import multiprocessing as mp

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    with mp.get_context("spawn").Pool(3) as pool:  # spawn: children read the env afresh
        roots = pool.map(_prepare, [data_dir] * 3)
    assert len(set(roots)) == 1
    raw = tmp_path / "cache" / "MNIST" / "raw"
    assert {p.name: p.stat().st_size for p in raw.glob("*-ubyte")} == FILES
    assert not list(raw.glob("*.tmp"))


def test_augment_identity_fill_and_determinism(mnist):
    x = mnist.test.x[:16]
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(augment(x, g, 0.0), x, atol=1e-5)
    rot = augment(x, torch.Generator().manual_seed(1), 45.0)
    assert torch.equal(rot, augment(x, torch.Generator().manual_seed(1), 45.0))
    assert not torch.allclose(rot, x)
    black = (0 - 0.1307) / 0.3081
    assert torch.allclose(rot[:, :, 0, 0], torch.full_like(rot[:, :, 0, 0], black), atol=1e-4)


def test_affine_grid_matches_torch():
    import torch.nn.functional as F

    from nas.data import affine_grid

    theta = torch.randn(16, 2, 3, generator=torch.Generator().manual_seed(0))
    for h, w in ((28, 28), (5, 9)):
        want = F.affine_grid(theta, [16, 1, h, w], align_corners=False)
        got = affine_grid(theta, h, w)
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-6, rtol=0)


def test_augment_probability_reflection_and_jitter(mnist):
    x = mnist.test.x[:256]
    # p: about half the images are left exactly as they were
    half = augment(x, torch.Generator().manual_seed(2), 30.0, p=0.5)
    same = (half == x).flatten(1).all(1).float().mean().item()
    assert 0.35 < same < 0.65
    # reflection fills the corners with image content, not black
    black = (0 - 0.1307) / 0.3081
    shifted = augment(x[:8] * 0 + 1.0, torch.Generator().manual_seed(3), 0.0, 0.3,
                      border="reflection")
    assert not torch.isclose(shifted, torch.full_like(shifted, black)).any()
    # jitter alone: brightness and contrast change half the images, pixels stay in 0..1
    j = augment(x, torch.Generator().manual_seed(4), jitter=0.2, jitter_p=0.5)
    raw = j * 0.3081 + 0.1307
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    changed = (j != x).flatten(1).any(1).float().mean().item()
    assert 0.35 < changed < 0.65
    # defaults draw exactly what earlier versions drew: old runs repeat
    a = augment(x, torch.Generator().manual_seed(5), 7.0)
    b = augment(x, torch.Generator().manual_seed(5), 7.0, p=1.0, jitter=0.0)
    assert torch.equal(a, b)


def test_augment_mirror(mnist):
    """hflip mirrors about its share of the images left-right, exactly, and draws last: with
    hflip 0 the other augmentations draw as before."""
    x = mnist.test.x[:256]
    m = augment(x, torch.Generator().manual_seed(6), hflip=0.5)
    flipped = (m == x.flip(-1)).flatten(1).all(1) & (m != x).flatten(1).any(1)
    kept = (m == x).flatten(1).all(1)
    assert bool((flipped | kept).all()) and 0.35 < flipped.float().mean().item() < 0.65
    a = augment(x, torch.Generator().manual_seed(7), 7.0, jitter=0.1)
    b = augment(x, torch.Generator().manual_seed(7), 7.0, jitter=0.1, hflip=0.0)
    assert torch.equal(a, b)
    with pytest.raises(NasError, match="hflip is a probability"):
        TrainConfig(hflip=1.5).validate()
