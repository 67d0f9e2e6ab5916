"""bnlib.data: the readers on small IDX / CIFAR-binary files written here from the format specs,
search order, checksummed all-or-nothing downloads (network monkeypatched), clear errors, the
in-memory cache, to_tensors; and, marked ``data``, the real MNIST and CIFAR-10 against their
published checksums and statistics."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from bnlib import data as D

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_NAMES = tuple(f"data_batch_{k}.bin" for k in range(1, 6)) + ("test_batch.bin",)


# --------------------------------------------------------------------------- writers (from the format specs)
def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """IDX: big-endian int32 magic (0x0000, type 0x08 = ubyte, ndim), ndim big-endian int32 sizes, raw bytes."""
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()


def cifar_bytes(images: np.ndarray, labels) -> bytes:
    """CIFAR-10 binary: per image, 1 label byte then the 1024-byte R, G and B planes (row-major)."""
    return b"".join(bytes([int(lab)]) + img[:, :, 0].tobytes() + img[:, :, 1].tobytes() + img[:, :, 2].tobytes()
                    for img, lab in zip(images, labels, strict=True))


def write_idx_set(folder: Path, n_train=6, n_test=4, seed=0, gz=True) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}
    for name, key, magic in zip(IDX_NAMES, ("x_train", "y_train", "x_test", "y_test"), (2051, 2049, 2051, 2049),
                                strict=True):
        raw = idx_bytes(arrays[key], magic)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


def cifar_set_bytes(per_batch=2, n_test=3, seed=0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (5 * per_batch + n_test, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, len(x))
    files = {name: cifar_bytes(x[k * per_batch:(k + 1) * per_batch], y[k * per_batch:(k + 1) * per_batch])
             for k, name in enumerate(CIFAR_NAMES[:5])}
    files["test_batch.bin"] = cifar_bytes(x[5 * per_batch:], y[5 * per_batch:])
    arrays = {"x_train": x[:5 * per_batch], "y_train": y[:5 * per_batch], "x_test": x[5 * per_batch:],
              "y_test": y[5 * per_batch:]}
    return files, arrays


def write_cifar_set(folder: Path, seed=0) -> dict:
    files, arrays = cifar_set_bytes(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return arrays


def assert_loaded(loaded, arrays):
    (xtr, ytr), (xte, yte) = loaded
    for got, key in ((xtr, "x_train"), (ytr, "y_train"), (xte, "x_test"), (yte, "y_test")):
        want = arrays[key]
        assert got.dtype == (np.uint8 if key.startswith("x") else np.int64)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


class FakeResponse(io.BytesIO):
    def __init__(self, raw: bytes, fail_after: int | None = None):
        super().__init__(raw)
        self.headers = {"Content-Length": str(len(raw))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer (test)")
        return super().read(n if self.fail_after is None else min(n, self.fail_after))


class FakeNet:
    """Serves ``files`` (URL -> bytes); anything else is a 404. Records every URL asked for."""

    def __init__(self, files: dict, fail_after: dict | None = None):
        self.files, self.fail_after, self.requests = files, fail_after or {}, []

    def __call__(self, url, timeout=None):
        self.requests.append(url)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return FakeResponse(self.files[url], self.fail_after.get(url))


# --------------------------------------------------------------------------- isolation
@pytest.fixture
def env(tmp_path, monkeypatch):
    """Small specs (6/4 MNIST-like images, 2 per CIFAR batch + 3 test), HOME, $BNLIB_DATA_DIR and the
    system folder inside tmp_path, two fake mirrors, and no network."""
    home, system = tmp_path / "home", tmp_path / "system" / "fashion-mnist"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("BNLIB_DATA_DIR", raising=False)
    for key, (n_train, n_test) in {"mnist": (6, 4), "fashion_mnist": (6, 4), "cifar10": (10, 3)}.items():
        spec = D.SPECS[key]
        monkeypatch.setitem(D.SPECS, key, dataclasses.replace(
            spec, n_train=n_train, n_test=n_test, mirrors=("http://mirror-a/", "http://mirror-b/"), md5={}, sha256={},
            checksums={}, system_dirs=(str(system),) if spec.system_dirs else ()))

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known (test: offline)")

    monkeypatch.setattr(D, "_urlopen", offline)
    D.clear_cache()
    yield tmp_path
    D.clear_cache()


def use_net(monkeypatch, net: FakeNet, dataset: str, md5: dict, sha256: dict | None = None) -> FakeNet:
    monkeypatch.setattr(D, "_urlopen", net)
    monkeypatch.setitem(D.SPECS, dataset, dataclasses.replace(D.SPECS[dataset], md5=md5, sha256=sha256 or {}))
    return net


def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


# --------------------------------------------------------------------------- round trips and search order
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(env, gz):
    arrays = write_idx_set(env / "d" / "mnist", gz=gz)
    assert_loaded(D.load_mnist(env / "d"), arrays)


def test_idx_reader_checks_magic_and_returns_header_shape(env):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (env / "a.gz").write_bytes(gzip.compress(idx_bytes(arr, 2051)))
    np.testing.assert_array_equal(D.read_idx(env / "a.gz", 2051), arr)
    with pytest.raises(D.DatasetError, match=r"a\.gz has the IDX magic number 2051, expected 2049"):
        D.read_idx(env / "a.gz", 2049)


def test_cifar_round_trip_layouts_and_channel_order(env):
    arrays = write_cifar_set(env / "d" / "cifar-10-batches-bin")
    assert_loaded(D.load_cifar10(env / "d"), arrays)
    # a pixel whose R, G, B bytes differ lands in channels 0, 1, 2 at its row and column
    img = np.zeros((1, 32, 32, 3), np.uint8)
    img[0, 5, 7] = (10, 20, 30)
    raw = bytes([3]) + bytes(5 * 32 + 7) + bytes([10]) + bytes(1023) + bytes([20]) + bytes(1023) + bytes([30])
    raw += bytes(3073 - len(raw))
    (env / "one.bin").write_bytes(raw)
    x, y = D.read_cifar_bin(env / "one.bin")
    assert y.tolist() == [3] and y.dtype == np.int64
    np.testing.assert_array_equal(x, img)


def test_search_order(env, monkeypatch):
    """data_dir, then $BNLIB_DATA_DIR/<layout>, then ~/.cache/bnlib, then the system folder."""
    system = write_idx_set(env / "system" / "fashion-mnist", seed=1)
    assert_loaded(D.load_fashion_mnist(), system)
    cache = write_idx_set(env / "home" / ".cache" / "bnlib" / "fashion-mnist", seed=2)
    assert_loaded(D.load_fashion_mnist(), cache)
    envdir = write_idx_set(env / "e" / "fashion-mnist", seed=3)
    monkeypatch.setenv("BNLIB_DATA_DIR", str(env / "e"))
    assert_loaded(D.load_fashion_mnist(), envdir)
    given = write_idx_set(env / "given", seed=4)  # data_dir may hold the files directly
    assert_loaded(D.load_fashion_mnist(env / "given"), given)
    assert D.locate("fashion_mnist", env / "given") == env / "given"
    cifar = write_cifar_set(env / "e" / "cifar10" / "cifar-10-batches-bin", seed=5)
    assert_loaded(D.load_cifar10(), cifar)
    assert D.locate("cifar10") == env / "e" / "cifar10" / "cifar-10-batches-bin"


def test_corrupt_file_found_first_is_reported_not_skipped(env, monkeypatch):
    write_idx_set(env / "e" / "mnist")
    monkeypatch.setenv("BNLIB_DATA_DIR", str(env / "e"))
    write_idx_set(env / "d" / "mnist")
    bad = env / "d" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"<html>Not Found</html>"))
    with pytest.raises(D.DatasetError, match=r"t10k-labels-idx1-ubyte\.gz is not an IDX file"):
        D.load_mnist(env / "d")


# --------------------------------------------------------------------------- bad files
def _mnist_dir(env) -> Path:
    write_idx_set(env / "d" / "mnist")
    return env / "d" / "mnist"


@pytest.mark.parametrize("case, pattern", [
    ("wrong magic", r"train-images-idx3-ubyte\.gz has the IDX magic number 2049, expected 2051"),
    ("not idx", r"train-images-idx3-ubyte\.gz is not an IDX file"),
    ("short data", r"train-images-idx3-ubyte\.gz holds 4719 bytes .*expected 4720 .*truncated"),
    ("wrong dims", r"train-images-idx3-ubyte\.gz holds an array of shape \(6, 28, 27\), expected \(6, 28, 28\)"),
    ("wrong count", r"train-labels-idx1-ubyte\.gz holds an array of shape \(5,\), expected \(6,\)"),
    ("bad label", r"train-labels-idx1-ubyte\.gz has label 10, expected 0\.\.9"),
    ("truncated gz", r"train-images-idx3-ubyte\.gz is a corrupted or truncated gzip file"),
    ("flipped byte", r"train-images-idx3-ubyte\.gz is a corrupted or truncated gzip file"),
])
def test_bad_idx_files_are_named(env, case, pattern):
    folder = _mnist_dir(env)
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    good = np.zeros((6, 28, 28), np.uint8)
    if case == "wrong magic":
        images.write_bytes(gzip.compress(idx_bytes(np.zeros(6), 2049)))
    elif case == "not idx":
        images.write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(100)))
    elif case == "short data":
        images.write_bytes(gzip.compress(idx_bytes(good, 2051)[:-1]))
    elif case == "wrong dims":
        images.write_bytes(gzip.compress(idx_bytes(np.zeros((6, 28, 27)), 2051)))
    elif case == "wrong count":
        labels.write_bytes(gzip.compress(idx_bytes(np.zeros(5), 2049)))
    elif case == "bad label":
        labels.write_bytes(gzip.compress(idx_bytes(np.array([0, 1, 2, 10, 3, 4]), 2049)))
    elif case == "truncated gz":
        images.write_bytes(images.read_bytes()[:-20])
    else:
        raw = bytearray(images.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        images.write_bytes(bytes(raw))
    with pytest.raises(D.DatasetError, match=pattern) as info:
        D.load_mnist(env / "d")
    assert "\n" not in str(info.value) and str(info.value).endswith(".")


@pytest.mark.parametrize("case, pattern", [
    ("one byte short", r"data_batch_3\.bin has 6145 bytes, expected 6146 \(2 records of 3073 bytes\)"),
    ("one record more", r"data_batch_3\.bin has 9219 bytes, expected 6146"),
    ("bad label", r"data_batch_3\.bin has label 12 in record 1, expected 0\.\.9"),
])
def test_bad_cifar_files_are_named(env, case, pattern):
    folder = env / "d" / "cifar10" / "cifar-10-batches-bin"
    write_cifar_set(folder)
    batch = folder / "data_batch_3.bin"
    raw = bytearray(batch.read_bytes())
    if case == "one byte short":
        raw = raw[:-1]
    elif case == "one record more":
        raw += raw[:3073]
    else:
        raw[3073] = 12
    batch.write_bytes(bytes(raw))
    with pytest.raises(D.DatasetError, match=pattern):
        D.load_cifar10(env / "d")


def test_read_cifar_bin_rejects_partial_records(env):
    (env / "x.bin").write_bytes(bytes(3073 * 2 + 5))
    with pytest.raises(D.DatasetError, match=r"x\.bin has 6151 bytes, not a positive multiple of the 3073-byte"):
        D.read_cifar_bin(env / "x.bin")


# --------------------------------------------------------------------------- missing files and downloads
def _assert_clear_not_found(err: D.DatasetNotFound, title: str, files, places):
    msg = str(err)
    assert msg.startswith(f"{title} not found") and msg.endswith(".") and "\n" not in msg
    for name in files:
        assert name in msg
    for place in places:
        assert str(place) in msg
    assert "BNLIB_DATA_DIR" in msg


def test_missing_file_without_download(env, monkeypatch):
    write_idx_set(env / "e" / "mnist")
    (env / "e" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv("BNLIB_DATA_DIR", str(env / "e"))
    with pytest.raises(D.DatasetNotFound) as info:
        D.load_mnist(env / "given", download=False)
    places = [env / "given" / "mnist", env / "given", env / "e" / "mnist", env / "home" / ".cache" / "bnlib" / "mnist"]
    _assert_clear_not_found(info.value, "MNIST", [n + ".gz" for n in IDX_NAMES], places)
    partial = "holds only train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-labels-idx1-ubyte.gz"
    assert f"{env / 'e' / 'mnist'} {partial}" in str(info.value)
    assert "download=False" in str(info.value)
    with pytest.raises(D.DatasetNotFound, match="Fashion-MNIST not found"):
        D.locate("fashion_mnist")


def test_offline_download_failure_is_one_clear_sentence(env):
    with pytest.raises(D.DatasetNotFound) as info:
        D.load_fashion_mnist()
    places = [env / "home" / ".cache" / "bnlib" / "fashion-mnist", env / "system" / "fashion-mnist"]
    _assert_clear_not_found(info.value, "Fashion-MNIST", [n + ".gz" for n in IDX_NAMES], places)
    msg = str(info.value)
    assert "http://mirror-a/train-images-idx3-ubyte.gz: URLError" in msg and "http://mirror-b/" in msg
    assert files_under(env) == []
    assert not (env / "home" / ".cache").exists()


def _served_idx(env, seed=7) -> tuple[dict, dict]:
    arrays = write_idx_set(env / "src", seed=seed)
    raw = {n + ".gz": (env / "src" / (n + ".gz")).read_bytes() for n in IDX_NAMES}
    for p in (env / "src").iterdir():
        p.unlink()
    (env / "src").rmdir()
    return arrays, raw


def test_download_verifies_and_moves_into_the_cache(env, monkeypatch):
    arrays, raw = _served_idx(env)
    net = use_net(monkeypatch, FakeNet({"http://mirror-b/" + n: b for n, b in raw.items()}), "mnist",
                  {n: md5(b) for n, b in raw.items()}, {n: hashlib.sha256(b).hexdigest() for n, b in raw.items()})
    assert_loaded(D.load_mnist(), arrays)
    # the files, and the verdict of their checksums (so that the next load does not hash them again)
    assert files_under(env / "home") == [f".cache/bnlib/mnist/{n}.gz" for n in sorted(IDX_NAMES)] + [
        ".cache/bnlib/verified.json"]
    assert sorted(net.requests) == sorted([m + n for m in ("http://mirror-a/", "http://mirror-b/") for n in raw])
    # from now on it is read from the cache, offline
    monkeypatch.setattr(D, "_urlopen", FakeNet({}))
    D.clear_cache()
    assert_loaded(D.load_mnist(), arrays)


@pytest.mark.parametrize("which", ["md5", "sha256"])
def test_wrong_checksum_leaves_nothing(env, monkeypatch, which):
    arrays, raw = _served_idx(env)
    good_md5 = {n: md5(b) for n, b in raw.items()}
    good_sha = {n: hashlib.sha256(b).hexdigest() for n, b in raw.items()}
    bad = dict(good_md5 if which == "md5" else good_sha, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    net = FakeNet({m + n: b for m in ("http://mirror-a/", "http://mirror-b/") for n, b in raw.items()})
    use_net(monkeypatch, net, "mnist", bad if which == "md5" else good_md5, bad if which == "sha256" else good_sha)
    with pytest.raises(D.DatasetNotFound) as info:
        D.load_mnist()
    msg = str(info.value)
    assert "http://mirror-a/t10k-images-idx3-ubyte.gz: checksum mismatch" in msg
    assert "http://mirror-b/t10k-images-idx3-ubyte.gz: checksum mismatch" in msg
    actual = hashlib.new(which, raw["t10k-images-idx3-ubyte.gz"]).hexdigest()
    assert ("MD5 " if which == "md5" else "SHA-256 ") + actual in msg
    assert files_under(env) == []


def test_failed_file_after_good_ones_leaves_nothing(env, monkeypatch):
    """All or nothing: three good files and one that breaks off mid-stream on both mirrors."""
    arrays, raw = _served_idx(env)
    served = {m + n: b for m in ("http://mirror-a/", "http://mirror-b/") for n, b in raw.items()}
    cut = {m + "t10k-labels-idx1-ubyte.gz": 20 for m in ("http://mirror-a/", "http://mirror-b/")}
    use_net(monkeypatch, FakeNet(served, cut), "mnist", {n: md5(b) for n, b in raw.items()})
    with pytest.raises(D.DatasetNotFound, match="ConnectionResetError"):
        D.load_mnist()
    assert files_under(env) == []
    assert not (env / "home" / ".cache").exists()


def test_downloaded_file_that_parses_badly_is_not_kept(env, monkeypatch):
    _, raw = _served_idx(env)
    raw["train-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(5), 2049))  # checksum "right", count wrong
    use_net(monkeypatch, FakeNet({"http://mirror-a/" + n: b for n, b in raw.items()}), "mnist",
            {n: md5(b) for n, b in raw.items()})
    with pytest.raises(D.DatasetNotFound, match=r"train-labels-idx1-ubyte\.gz holds an array of shape \(5,\)"):
        D.load_mnist()
    assert files_under(env) == []


def _tar_gz(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """(name, content, symlink target): regular file when content is given, else a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_cifar_download_extracts_safely(env, monkeypatch):
    files, arrays = cifar_set_bytes(seed=3)
    meta = b"\n".join(c.encode() for c in D.CLASSES_CIFAR10) + b"\n"
    members = [("cifar-10-batches-bin/" + n, b, None) for n, b in files.items()]
    members += [("cifar-10-batches-bin/batches.meta.txt", meta, None), ("cifar-10-batches-bin/readme.html", b"x", None),
                ("../evil.txt", b"pwned", None), ("cifar-10-batches-bin/../../evil2.txt", b"pwned", None),
                (str(env / "abs-evil.txt"), b"pwned", None), ("cifar-10-batches-bin/link", None, "/etc/passwd")]
    archive = _tar_gz(members)
    use_net(monkeypatch, FakeNet({"http://mirror-a/cifar-10-binary.tar.gz": archive}), "cifar10",
            {"cifar-10-binary.tar.gz": md5(archive)})
    assert_loaded(D.load_cifar10(), arrays)
    where = ".cache/bnlib/cifar10/cifar-10-batches-bin/"
    assert files_under(env) == sorted("home/" + where + n for n in (*files, "batches.meta.txt"))


@pytest.mark.parametrize("case", ["symlink member", "missing member", "wrong md5", "truncated archive"])
def test_cifar_download_failures_leave_nothing(env, monkeypatch, case):
    files, _ = cifar_set_bytes()
    members = [("cifar-10-batches-bin/" + n, b, None) for n, b in files.items()]
    if case == "symlink member":
        members[-1] = ("cifar-10-batches-bin/test_batch.bin", None, "/etc/passwd")
    elif case == "missing member":
        members = members[:-1]
    archive = _tar_gz(members)
    checksum = md5(archive)
    if case == "truncated archive":
        archive = archive[: len(archive) // 2]
        checksum = md5(archive)  # even with a matching checksum, a broken archive is refused
    elif case == "wrong md5":
        checksum = "f" * 32
    use_net(monkeypatch, FakeNet({"http://mirror-a/cifar-10-binary.tar.gz": archive}), "cifar10",
            {"cifar-10-binary.tar.gz": checksum})
    pattern = {"symlink member": "test_batch.bin is not a regular file", "missing member": "lacks test_batch.bin",
               "wrong md5": "checksum mismatch", "truncated archive": "could not be unpacked"}[case]
    with pytest.raises(D.DatasetNotFound, match=pattern) as info:
        D.load_cifar10()
    _assert_clear_not_found(info.value, "CIFAR-10", CIFAR_NAMES, [env / "home" / ".cache" / "bnlib"])
    assert files_under(env) == []


# --------------------------------------------------------------------------- in-memory cache
def test_memory_cache_reads_once_returns_independent_copies_and_notices_changes(env, monkeypatch):
    arrays = write_idx_set(env / "d" / "mnist")
    calls = []
    real = D.read_idx
    monkeypatch.setattr(D, "read_idx", lambda path, *a: calls.append(Path(path).name) or real(path, *a))
    (x1, y1), _ = D.load_mnist(env / "d")
    (x2, y2), _ = D.load_mnist(env / "d")
    assert len(calls) == 4
    x1[:] = 0
    y1[:] = 9
    np.testing.assert_array_equal(x2, arrays["x_train"])
    assert_loaded(D.load_mnist(env / "d"), arrays)
    assert len(calls) == 4
    new = write_idx_set(env / "d" / "mnist", seed=11)
    stamp = (env / "d" / "mnist" / "train-images-idx3-ubyte.gz").stat().st_mtime_ns + 10**9
    os.utime(env / "d" / "mnist" / "train-images-idx3-ubyte.gz", ns=(stamp, stamp))
    assert_loaded(D.load_mnist(env / "d"), new)
    assert len(calls) == 8


# --------------------------------------------------------------------------- to_tensors
def test_to_tensors_cifar_layout_and_values():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    y = np.array([3, 1, 4, 1], dtype=np.int32)
    tx, ty = D.to_tensors(x, y, "cifar10")
    assert tx.dtype == torch.float32 and tx.shape == (4, 3, 32, 32) and ty.dtype == torch.int64
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    ref = ((x / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(tx.numpy(), ref, rtol=0, atol=2e-6)
    flat, _ = D.to_tensors(x, y, "cifar10", flatten=True)
    assert flat.shape == (4, 3072)
    np.testing.assert_array_equal(flat.numpy(), tx.numpy().reshape(4, -1))
    raw, _ = D.to_tensors(x, y, "cifar10", normalize=False)
    np.testing.assert_allclose(raw.numpy(), x.transpose(0, 3, 1, 2) / 255.0, rtol=0, atol=1e-7)
    assert ty.tolist() == [3, 1, 4, 1]
    ty[0] = 7
    assert y[0] == 3


def test_to_tensors_mnist_shapes_and_bad_input():
    x = np.full((2, 28, 28), 255, np.uint8)
    tx, _ = D.to_tensors(x, np.array([0, 1]), "mnist")
    assert tx.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(tx.numpy(), (1 - 0.1307) / 0.3081, rtol=1e-6)
    assert D.to_tensors(x, np.array([0, 1]), "fashion_mnist", flatten=True)[0].shape == (2, 784)
    with pytest.raises(ValueError, match="dataset must be one of"):
        D.to_tensors(x, np.array([0, 1]), "svhn")
    with pytest.raises(TypeError, match=r"x \(the images\) must be uint8"):
        D.to_tensors(x.astype(np.float32), np.array([0, 1]), "mnist")
    with pytest.raises(ValueError, match=r"x \(the images\) for cifar10 must have shape \(N, H, W, 3\)"):
        D.to_tensors(x, np.array([0, 1]), "cifar10")
    with pytest.raises(ValueError, match=r"y \(the labels\) must be integers of shape \(2,\)"):
        D.to_tensors(x, np.array([0, 1, 2]), "mnist")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="dataset must be one of"):
        D.locate("imagenet")


# --------------------------------------------------------------------------- real data
MNIST_MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std of x / 255 from byte histograms."""
    flat = x.reshape(-1, x.shape[-1] if x.ndim == 4 else 1)
    v = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(flat.shape[1]):
        h = np.bincount(flat[:, c], minlength=256) / len(flat)
        m = h @ v
        means.append(m)
        stds.append(np.sqrt(h @ (v - m) ** 2))
    return np.array(means), np.array(stds)


@pytest.mark.data("mnist")
def test_real_mnist():
    folder = D.locate("mnist")
    for name, want in MNIST_MD5.items():
        raw = (folder / name).read_bytes()
        assert hashlib.md5(raw).hexdigest() == want, name
        assert D.SPECS["mnist"].md5[name] == want
        assert D.SPECS["mnist"].sha256[name] == hashlib.sha256(raw).hexdigest(), name
    (x, y), (xt, yt) = D.load_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and yt.dtype == np.int64
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    mean, std = channel_stats(x)
    assert (round(mean[0], 4), round(std[0], 4)) == (0.1307, 0.3081)
    tx, _ = D.to_tensors(x[:10000], y[:10000], "mnist")
    assert abs(float(tx.mean())) < 0.01 and abs(float(tx.std()) - 1) < 0.01


@pytest.mark.data("cifar10")
def test_real_cifar10():
    (x, y), (xt, yt) = D.load_cifar10()
    assert x.shape == (50000, 32, 32, 3) and xt.shape == (10000, 32, 32, 3)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert y[0] == 6 and D.CLASSES_CIFAR10[6] == "frog"
    mean, std = channel_stats(x)
    assert [round(v, 4) for v in mean] == [0.4914, 0.4822, 0.4465]
    assert [round(v, 4) for v in std] == [0.2470, 0.2435, 0.2616]
    _, y1 = D.read_cifar_bin(D.locate("cifar10") / "data_batch_1.bin", 10000)
    assert np.bincount(y1).tolist() == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    np.testing.assert_array_equal(y1, y[:10000])
    tx, _ = D.to_tensors(xt, yt, "cifar10")
    per_channel = tx.mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(per_channel, (np.array([0.4942, 0.4851, 0.4504]) - mean.round(4)) / std.round(4),
                               atol=1e-3)


def test_real_fashion_mnist_when_installed():
    """Fashion-MNIST is not in ../shared/data: checked where present (e.g. Debian's dataset-fashion-mnist)."""
    try:
        D.locate("fashion_mnist")
    except D.DatasetNotFound as e:
        pytest.skip(str(e))
    (x, y), (xt, yt) = D.load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    mean, std = channel_stats(x)
    assert (round(mean[0], 3), round(std[0], 3)) == (0.286, 0.353)


# --------------------------------------------------------------------------- checksums of files on disk
def _with_checksums(monkeypatch, folder: Path, dataset="mnist", corrupt: str | None = None) -> dict:
    """Publish the SHA-256 and MD5 of the files in ``folder`` as ``dataset``'s checksums (``corrupt``: one of them
    wrong), computed here with hashlib from the bytes on disk."""
    sums = {p.name: {"md5": hashlib.md5(p.read_bytes()).hexdigest(), "sha256": hashlib.sha256(p.read_bytes())
                     .hexdigest()} for p in folder.iterdir()}
    if corrupt:
        sums[corrupt] = {"sha256": "0" * 64}
    monkeypatch.setitem(D.SPECS, dataset, dataclasses.replace(D.SPECS[dataset], checksums=sums))
    return sums


def test_files_on_disk_are_verified_once_and_the_verdict_cached(env, monkeypatch):
    arrays = write_idx_set(env / "d" / "mnist")
    _with_checksums(monkeypatch, env / "d" / "mnist")
    hashed = []
    real = D.results.digest
    monkeypatch.setattr(D.results, "digest", lambda path, kinds: hashed.append(Path(path).name) or real(path, kinds))
    assert_loaded(D.load_mnist(env / "d"), arrays)
    assert sorted(hashed) == sorted(f"{n}.gz" for n in IDX_NAMES)
    cache = env / "home" / ".cache" / "bnlib" / "verified.json"
    assert cache.is_file() and not list(cache.parent.glob(".*.tmp"))
    D.clear_cache()
    assert_loaded(D.load_mnist(env / "d"), arrays)
    assert len(hashed) == 4  # the second load read the verdicts, not the files
    assert all(t == 0.0 for t in D.verify("mnist", env / "d" / "mnist").values())
    f = env / "d" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    os.utime(f, ns=(f.stat().st_mtime_ns + 10**9,) * 2)  # touched: verified again
    D.clear_cache()
    D.load_mnist(env / "d")
    assert hashed[4:] == ["t10k-labels-idx1-ubyte.gz"]


def test_checksum_mismatch_names_the_file_and_the_fix(env, monkeypatch, raises_one_sentence):
    write_idx_set(env / "d" / "mnist")
    _with_checksums(monkeypatch, env / "d" / "mnist", corrupt="train-labels-idx1-ubyte.gz")
    raises_one_sentence(lambda: D.load_mnist(env / "d"), D.DatasetError,
                        r"train-labels-idx1-ubyte\.gz does not match the published checksum .*SHA-256 .*expected 0{64}"
                        r".*make data")


def test_real_checksums_are_the_published_ones():
    """The tables hold the checksums of /work/shared/data/README.md (SHA-256) and the datasets' own pages (MD5)."""
    assert D.SPECS["mnist"].expected("train-images-idx3-ubyte.gz") == {
        "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"}
    assert D.SPECS["cifar10"].expected("test_batch.bin") == {
        "sha256": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"}
    assert D.SPECS["cifar10"].expected("batches.meta.txt") == {
        "sha256": "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033"}
    assert {n: D.SPECS["fashion_mnist"].expected(n)["md5"] for n in D._IDX_FILES} == {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}


@pytest.mark.data
def test_real_files_verify_and_the_verdict_makes_the_next_check_free(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HOME", str(tmp_path))
    spent = {}
    for name in ("mnist", "cifar10"):
        t0 = time.perf_counter()
        D.verify(name, D.locate(name))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = D.verify(name, D.locate(name))
        spent[name] = (first, time.perf_counter() - t0)
        assert set(again.values()) == {0.0}
    print("verification (first, cached) seconds:", spent)
    assert all(cached < 0.05 for _, cached in spent.values()), spent


# --------------------------------------------------------------------------- decompression bombs, permissions
def test_gzip_bomb_is_refused_without_decompressing_it(env):
    import time

    folder = env / "d" / "mnist"
    write_idx_set(folder)
    header = struct.pack(">IIII", 2051, 6, 28, 28)
    zeros = gzip.compress(bytes(1 << 24), compresslevel=9)  # 16 MiB of zeros in ~16 KB: one gzip member
    bomb = folder / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(header) + zeros * 128)  # a valid header, then 2 GiB of zeros (~2 MB)
    t0 = time.perf_counter()
    with pytest.raises(D.DatasetError, match=r"train-images-idx3-ubyte\.gz holds more than the 4720 bytes"):
        D.load_mnist(env / "d")
    assert time.perf_counter() - t0 < 1.0
    plain = env / "zeros.gz"  # about 1 MB of gzip holding zeros only: not an IDX file, said after 4 bytes
    plain.write_bytes(zeros * 64)
    t0 = time.perf_counter()
    with pytest.raises(D.DatasetError, match="not an IDX file"):
        D.read_idx(plain)
    assert time.perf_counter() - t0 < 1.0


def test_unreadable_folder_and_file_are_one_clear_sentence(env, monkeypatch, raises_one_sentence):
    write_idx_set(env / "d" / "mnist")
    real_access = os.access
    monkeypatch.setattr(D.os, "access", lambda p, mode: False if Path(p) == env / "d" / "mnist" else
                        real_access(p, mode))
    raises_one_sentence(lambda: D.load_mnist(env / "d"), D.DatasetError, r"mnist is not readable \(permission")
    monkeypatch.setattr(D.os, "access", real_access)
    real_open = gzip.open

    def denied(path, *a, **k):
        if Path(path).name == "t10k-images-idx3-ubyte.gz":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(D.gzip, "open", denied)
    raises_one_sentence(lambda: D.load_mnist(env / "d"), D.DatasetError,
                        r"t10k-images-idx3-ubyte\.gz is not readable \(permission denied\); make it readable")


# --------------------------------------------------------------------------- leftovers of killed downloads
def test_staging_of_dead_downloads_is_removed_live_ones_kept(env):
    import subprocess
    import sys

    target = env / "home" / ".cache" / "bnlib" / "mnist"
    target.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (target / f".download-{dead_pid}-abc").mkdir()
    (target / f".download-{dead_pid}-abc" / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
    (target / f".download-{os.getpid()}-live").mkdir()
    (target.parent / f".verified.json.{dead_pid}.x1y2.tmp").write_text("{")
    write_idx_set(env / "d" / "mnist")
    D.load_mnist(env / "d")
    assert sorted(p.name for p in target.iterdir()) == [f".download-{os.getpid()}-live"]
    assert not list(target.parent.glob(".*.tmp"))


# --------------------------------------------------------------------------- make datacheck
def test_datacheck_says_in_one_sentence_what_is_missing(tmp_path):
    import subprocess
    import sys

    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "bnlib.data", "check"], capture_output=True, text=True, env=env,
                       cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert p.returncode == 1 and p.stdout == ""
    msg = p.stderr.strip()
    assert "\n" not in msg and msg.endswith("."), msg
    assert "MNIST and CIFAR-10 are not on this machine" in msg and "make data" in msg and "BNLIB_DATA_DIR" in msg


@pytest.mark.data
def test_datacheck_passes_with_the_data():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "bnlib.data", "check"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "MNIST, CIFAR-10: present and verified."
