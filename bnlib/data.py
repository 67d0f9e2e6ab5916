"""MNIST, Fashion-MNIST and CIFAR-10, read from their original files (no torchvision, no pickle).

API
---
``load_mnist(data_dir=None, *, download=True)``, ``load_fashion_mnist(...)``, ``load_cifar10(...)``
    return ``(x_train, y_train), (x_test, y_test)`` as NumPy arrays:

    - images ``uint8`` in 0..255. MNIST and Fashion-MNIST: shape ``(N, 28, 28)``, ``x[n, i, j]``
      is row ``i`` (top to bottom), column ``j`` (left to right). CIFAR-10: shape ``(N, 32, 32, 3)``,
      channels last (NHWC) in the order red, green, blue;
    - labels ``int64`` in 0..9 (class names: :data:`CLASSES_MNIST`, :data:`CLASSES_FASHION_MNIST`,
      :data:`CLASSES_CIFAR10`);
    - sizes: 60,000/10,000 (MNIST, Fashion-MNIST) and 50,000/10,000 (CIFAR-10), original order.

    Every call returns fresh, writable arrays. The parsed arrays are kept in a small in-memory cache
    (one entry per dataset, checked against the files' sizes and modification times), so loading a
    dataset twice reads and decompresses it once; :func:`clear_cache` empties it.

``to_tensors(x, y, dataset, *, flatten=False, normalize=True) -> (x, y)``
    torch tensors for training: ``x`` float32 of shape ``(N, C, H, W)`` (``C`` = 1 or 3), or
    ``(N, C*H*W)`` when ``flatten``; pixels scaled to [0, 1] and, when ``normalize``, standardized
    per channel with the fixed training-set constants of :data:`NORMALIZATION`; ``y`` int64.

``locate(dataset, data_dir=None) -> Path``
    the folder the loader would read, without downloading anything (raises :class:`DatasetNotFound`).

Errors: every problem is one sentence in a :class:`DatasetError` (a ``ValueError``);
:class:`DatasetNotFound` (a subclass) when the files are nowhere and could not be downloaded.

Where the files are looked for, in order (the first folder holding the whole set wins): the
``data_dir`` argument (``data_dir/<layout>/`` or ``data_dir`` itself), ``$BNLIB_DATA_DIR/<layout>/``,
the download cache ``~/.cache/bnlib/<layout>/``, system installs (Debian's ``dataset-fashion-mnist``,
``/usr/share/datasets/fashion-mnist``); the layouts are ``mnist/``, ``fashion-mnist/`` and
``cifar10/cifar-10-batches-bin/`` (CIFAR-10 also ``cifar-10-batches-bin/``). MNIST and Fashion-MNIST
are the IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (or without ``.gz``); CIFAR-10
is the binary version, ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``.

When no folder holds the set and ``download`` is true, the files are downloaded from the canonical
mirrors into the cache, each checked against its published MD5 (and SHA-256 where known); the
CIFAR-10 archive is unpacked by copying only the expected regular files to paths bnlib chooses (no
path from the archive is used); everything is staged in a ``.download-<pid>-*`` folder, flushed to
disk and moved into place with ``os.replace`` only once the whole set is complete and verified, and
staging folders of killed downloads are removed on the next run. Files found on disk are verified
against the published checksums (:func:`verify`, once: the verdict is cached by path, size and mtime
in ``~/.cache/bnlib/verified.json``) and checked: gzip CRC, IDX magic numbers, dimensions and counts
(at most the expected size is decompressed), CIFAR-10 file sizes and label ranges; a bad or
unreadable file is named in the error, never parsed into garbage. Command line: ``python -m
bnlib.data check`` (``make datacheck``) and ``python -m bnlib.data download`` (``make data``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnlib import _checks as C
from bnlib import results

__all__ = [
    "CLASSES_CIFAR10",
    "CLASSES_FASHION_MNIST",
    "CLASSES_MNIST",
    "NORMALIZATION",
    "DatasetError",
    "DatasetNotFound",
    "clear_cache",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "locate",
    "read_cifar_bin",
    "read_idx",
    "to_tensors",
]

CLASSES_MNIST = tuple(str(d) for d in range(10))
CLASSES_FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CLASSES_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

#: Per-channel (mean, std) of the training images scaled to [0, 1]: MNIST's customary 0.1307/0.3081,
#: Fashion-MNIST's 0.2860/0.3530, CIFAR-10's R, G, B values (as in the dataset README), all to 4 decimals.
NORMALIZATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

CIFAR_RECORD = 3073  # 1 label byte + 3 x 1024 pixel bytes (R, G, B planes, 32x32 row-major)
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049
_CHUNK = 1 << 20


class DatasetError(ValueError):
    """A dataset file is missing, corrupted, truncated or not what it should be (one clear sentence)."""


class DatasetNotFound(DatasetError):
    """A dataset is in none of the places bnlib looks and could not be downloaded."""


_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True, eq=False)
class _Spec:
    key: str
    title: str
    layouts: tuple[str, ...]  # sub-folders of data_dir / $BNLIB_DATA_DIR; the first is also the cache's
    files: tuple[str, ...]  # the files that must all be present
    n_train: int
    n_test: int
    mirrors: tuple[str, ...]  # base URLs, tried in order
    md5: dict = field(default_factory=dict)  # downloaded file name -> MD5
    sha256: dict = field(default_factory=dict)  # downloaded file name -> SHA-256 (where known)
    system_dirs: tuple[str, ...] = ()
    archive: str | None = None  # CIFAR-10: the files come in this .tar.gz, under archive_dir/
    archive_dir: str = ""
    extras: tuple[str, ...] = ()  # optional members also taken from the archive
    checksums: dict = field(default_factory=dict)  # local file name -> {"md5"/"sha256": published checksum}

    def expected(self, name: str) -> dict:
        """The published checksums of the local file ``name`` (a downloaded file's are those of its download)."""
        return self.checksums.get(name) or {k: v[name] for k, v in (("md5", self.md5), ("sha256", self.sha256))
                                            if name in v}


SPECS: dict[str, _Spec] = {
    "mnist": _Spec(
        "mnist", "MNIST", ("mnist",), _IDX_FILES, 60000, 10000,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        sha256={"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
    ),
    "fashion_mnist": _Spec(
        "fashion_mnist", "Fashion-MNIST", ("fashion-mnist",), _IDX_FILES, 60000, 10000,
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        # the MD5s are those of the dataset's README (github.com/zalandoresearch/fashion-mnist)
    ),
    "cifar10": _Spec(
        "cifar10", "CIFAR-10", ("cifar10/cifar-10-batches-bin", "cifar-10-batches-bin"),
        tuple(f"data_batch_{k}.bin" for k in range(1, 6)) + ("test_batch.bin",), 50000, 10000,
        ("https://www.cs.toronto.edu/~kriz/",),
        md5={"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
        archive="cifar-10-binary.tar.gz", archive_dir="cifar-10-batches-bin", extras=("batches.meta.txt",),
        # SHA-256 of the files of the binary version, as listed in the data README CI uses (../shared/data)
        checksums={n: {"sha256": h} for n, h in zip([f"data_batch_{k}.bin" for k in range(1, 6)] + [
            "test_batch.bin", "batches.meta.txt"], """cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5
            a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed
            bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67
            014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48
            755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add
            8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b
            558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033""".split(), strict=True)},
    ),
}

_urlopen = urllib.request.urlopen  # the one network entry point (tests replace it)
_MEMO: dict[str, tuple] = {}  # dataset key -> (fingerprint, arrays)


def clear_cache() -> None:
    """Forget the datasets kept in memory."""
    _MEMO.clear()


def _spec(dataset: str) -> _Spec:
    if not isinstance(dataset, str) or dataset not in SPECS:
        raise ValueError(f"dataset must be one of {sorted(SPECS)}, got {dataset!r}.")
    return SPECS[dataset]


def _cache_root() -> Path:
    return Path.home() / ".cache" / "bnlib"


# --------------------------------------------------------------------------- where the files are
def _places(spec: _Spec, data_dir) -> list[Path]:
    places: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        places += [root / lay for lay in spec.layouts] + [root]
    env = os.environ.get("BNLIB_DATA_DIR")
    if env:
        places += [Path(env).expanduser() / lay for lay in spec.layouts]
    places.append(_cache_root() / spec.layouts[0])
    places += [Path(p) for p in spec.system_dirs]
    seen: set[Path] = set()
    return [p for p in places if not (p in seen or seen.add(p))]


def _file(folder: Path, name: str) -> Path | None:
    """``folder/name``, or for a ``.gz`` name its uncompressed twin, if present."""
    for cand in (name, name[:-3]) if name.endswith(".gz") else (name,):
        if (folder / cand).is_file():
            return folder / cand
    return None


def _unreadable(path: Path) -> DatasetError:
    return DatasetError(f"{path} is not readable (permission denied); make it readable (chmod u+rX {path}) or "
                        "point BNLIB_DATA_DIR at a readable copy of the data.")


def _check_path(path, name: str = "path") -> Path:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(path).__name__}.")
    return Path(path)


def _search(spec: _Spec, data_dir) -> tuple[Path | None, list[Path], list[str]]:
    if data_dir is not None:
        _check_path(data_dir, "data_dir")
    places, partial = _places(spec, data_dir), []
    for place in places:
        try:
            is_dir = place.is_dir()
        except OSError:
            is_dir = False
        if is_dir and not os.access(place, os.R_OK | os.X_OK):
            raise _unreadable(place)
        found = [_file(place, f) for f in spec.files]
        if all(found):
            return place, places, partial
        if any(found):
            partial.append(f"{place} holds only {', '.join(p.name for p in found if p)}")
    return None, places, partial


def _not_found(spec: _Spec, places: list[Path], partial: list[str], download_note: str) -> DatasetNotFound:
    where, extra = ", ".join(str(p) for p in places), f" ({'; '.join(partial)})" if partial else ""
    return DatasetNotFound(
        f"{spec.title} not found: bnlib wanted {', '.join(spec.files)} and looked in {where}{extra}, "
        f"and {download_note}; provide the files by setting BNLIB_DATA_DIR to a folder that holds them "
        f"under {spec.layouts[0]}/ (or pass data_dir=...).")


def locate(dataset: str, data_dir=None) -> Path:
    """The folder holding ``dataset``'s whole file set, without downloading (see the module docstring)."""
    spec = _spec(dataset)
    place, places, partial = _search(spec, data_dir)
    if place is None:
        raise _not_found(spec, places, partial, "nothing was downloaded (download=False)")
    return place


# --------------------------------------------------------------------------- download
class _DownloadFailed(Exception):
    pass


def _fetch(spec: _Spec, name: str, dest: Path) -> None:
    """Download ``name`` from the first mirror with the right checksums into ``dest`` (flushed to disk)."""
    from tqdm import tqdm

    reasons = []
    for base in spec.mirrors:
        url = base + name
        md5, sha = hashlib.md5(), hashlib.sha256()
        try:
            with _urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
                length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
                with tqdm(total=int(length) if length else None, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"bnlib: {name}", leave=False) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        md5.update(chunk)
                        sha.update(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except Exception as e:  # network, HTTP, disk: try the next mirror
            dest.unlink(missing_ok=True)
            reasons.append(f"{url}: {type(e).__name__}: {e}")
            continue
        bad = []
        if name in spec.md5 and md5.hexdigest() != spec.md5[name]:
            bad.append(f"MD5 {md5.hexdigest()}, expected {spec.md5[name]}")
        if name in spec.sha256 and sha.hexdigest() != spec.sha256[name]:
            bad.append(f"SHA-256 {sha.hexdigest()}, expected {spec.sha256[name]}")
        if bad:
            dest.unlink(missing_ok=True)
            reasons.append(f"{url}: checksum mismatch ({', '.join(bad)})")
            continue
        return
    raise _DownloadFailed("; ".join(reasons))


def _extract(spec: _Spec, archive: Path, into: Path) -> None:
    """Copy the expected regular members of ``archive`` into ``into`` (names chosen here, never from the tar)."""
    wanted = {f"{spec.archive_dir}/{n}": n for n in spec.files + spec.extras}
    got: set[str] = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is None:
                    continue  # anything else (other files, links, ../ paths) is skipped, never written
                if not member.isreg():
                    raise _DownloadFailed(f"{spec.archive}: member {member.name} is not a regular file")
                src = tar.extractfile(member)
                with open(into / name, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                got.add(name)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise _DownloadFailed(f"{spec.archive} could not be unpacked ({type(e).__name__}: {e})") from e
    missing = [n for n in spec.files if n not in got]
    if missing:
        raise _DownloadFailed(f"{spec.archive} lacks {', '.join(missing)}")


def _download(spec: _Spec) -> Path:
    """Download the whole set into the cache; all or nothing. Returns the folder."""
    target = _cache_root() / spec.layouts[0]
    created = [p for p in [target, *target.parents] if not p.exists()]
    staging, ok = None, False
    try:
        target.mkdir(parents=True, exist_ok=True)
        results.remove_orphans(target, staging=".download-")  # what interrupted downloads left
        staging = Path(tempfile.mkdtemp(prefix=f".download-{os.getpid()}-", dir=target))
        if spec.archive:
            _fetch(spec, spec.archive, staging / spec.archive)
            unpacked = staging / "unpacked"
            unpacked.mkdir()
            _extract(spec, staging / spec.archive, unpacked)
            names, src = spec.files + tuple(n for n in spec.extras if (unpacked / n).exists()), unpacked
        else:
            names, src = tuple(n for n in spec.files if _file(target, n) is None), staging
            for n in names:
                _fetch(spec, n, staging / n)
        for n in names:  # verify the complete set before anything becomes visible
            _check(spec, src / n)
        for n in names:
            os.replace(src / n, target / n)
        results.fsync_dir(target)
        ok = True
        return target
    except (OSError, DatasetError) as e:
        raise _DownloadFailed(f"{type(e).__name__}: {e}") from e
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for p in [] if ok else created:  # leave no empty folders behind after a failure
            try:
                p.rmdir()
            except OSError:
                break


# --------------------------------------------------------------------------- checksums (verified once)
def verify(spec_or_name, folder) -> dict[str, float]:
    """Check a dataset's files in ``folder`` against their published MD5/SHA-256, each hashed once (the verdict
    cached in ``~/.cache/bnlib/verified.json`` by path, size and mtime); a mismatch is a :class:`DatasetError`
    naming the file and how to replace it. Returns ``{file name: seconds spent hashing}`` (0: cached)."""
    spec = spec_or_name if isinstance(spec_or_name, _Spec) else _spec(spec_or_name)
    folder = Path(folder)
    names = [_file(folder, n) for n in spec.files] + [folder / n for n in spec.extras if (folder / n).is_file()]
    cache, spent = results.VerdictCache(_cache_root() / "verified.json"), {}
    try:
        for path in (p for p in names if p is not None and spec.expected(p.name)):
            want = spec.expected(path.name)
            if cache.known(path, want):
                spent[path.name] = 0.0
                continue
            t0 = time.perf_counter()
            got = results.digest(path, sorted(want))
            spent[path.name] = time.perf_counter() - t0
            bad = [f"{'MD5' if k == 'md5' else 'SHA-256'} {got[k]}, expected {want[k]}" for k in sorted(want)
                   if got[k] != want[k]]
            if bad:
                raise DatasetError(
                    f"{path} does not match the published checksum of {spec.title}'s {path.name} "
                    f"({'; '.join(bad)}): the file is damaged or not the original; delete it and run `make data` "
                    f"(or `python -m bnlib.data download {spec.key}`), or replace it with a good copy.")
            cache.add(path, want)
    except OSError as e:
        raise _open_error(Path(e.filename or folder), e) from None
    finally:
        cache.save()
    return spent


# --------------------------------------------------------------------------- readers
def _open_error(path: Path, e: OSError) -> DatasetError:
    if isinstance(e, PermissionError):
        return _unreadable(path)
    return DatasetError(f"{path} could not be read ({e.strerror or e}).")


def _read_capped(path: Path, limit: int | None) -> bytes:
    """The (decompressed, for ``.gz``) bytes of ``path``, reading at most ``limit + 1`` of them: a file that
    would decompress to more than ``limit`` bytes is refused after that many, never expanded in full."""
    try:
        if not path.name.endswith(".gz"):
            with open(path, "rb") as fh:
                return fh.read(-1 if limit is None else limit + 1)
        with gzip.open(path, "rb") as fh:
            data = b""
            if limit is None:  # the header says how much data follows: read no more than that
                data = fh.read(4)
                if len(data) < 4 or data[:3] != b"\0\0\x08" or not data[3]:
                    return data
                data += fh.read(4 * data[3])
                if len(data) < 4 + 4 * data[3]:
                    return data
                limit = len(data) + int(np.prod(struct.unpack(f">{data[3]}I", data[4:]), dtype=np.int64))
            data += fh.read(limit + 1 - len(data))
            if len(data) <= limit:
                fh.read(1)  # reach the end of the stream, so that gzip checks its CRC and length
            return data
    except OSError as e:
        if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError)):
            raise _open_error(path, e) from None
        raise DatasetError(f"{path} is a corrupted or truncated gzip file ({e}); replace it with a good copy.") \
            from None
    except (EOFError, zlib.error) as e:
        raise DatasetError(f"{path} is a corrupted or truncated gzip file ({e}); replace it with a good copy.") \
            from None


def read_idx(path, magic: int | None = None, expected_bytes: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) of unsigned bytes as a read-only ``uint8`` array of the header's shape.

    Checks the gzip stream (CRC, truncation), the magic number (``magic`` when given; else any
    uint8 IDX), and that the data length equals the product of the header's dimensions. At most
    ``expected_bytes + 1`` bytes are decompressed (when given; else as many as the header announces, plus
    one), so a small file that would expand to gigabytes is refused quickly.
    """
    path = _check_path(path)
    if magic is not None and (isinstance(magic, bool) or magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC)):
        raise ValueError(f"magic must be None, {IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels), "
                         f"got {magic!r}.")
    if expected_bytes is not None:
        expected_bytes = C.positive_int("expected_bytes", expected_bytes)
    raw = _read_capped(path, expected_bytes)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes: its magic bytes are {raw[:4].hex()!r}, "
                           f"expected 0x00 0x00 0x08 followed by the number of dimensions.")
    found = struct.unpack(">I", raw[:4])[0]
    if magic is not None and found != magic:
        raise DatasetError(f"{path} has the IDX magic number {found}, expected {magic} "
                           f"({'images' if magic == IDX_IMAGES_MAGIC else 'labels'}).")
    if expected_bytes is not None and len(raw) > expected_bytes:
        raise DatasetError(f"{path} holds more than the {expected_bytes} bytes (uncompressed) expected: "
                           "the file is not the original; replace it with a good copy.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte IDX header.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        more = "at least " if len(raw) > expected else ""
        raise DatasetError(f"{path} holds {more}{len(raw)} bytes (uncompressed), expected {expected} for an IDX "
                           f"array of shape {dims}: the file is truncated or corrupted.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_cifar_bin(path, records: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch: images ``uint8 (n, 32, 32, 3)`` (RGB, channels last), labels ``int64 (n,)``.

    The file must hold a whole number of 3,073-byte records (exactly ``records`` of them when given)
    and every label must be in 0..9.
    """
    path = _check_path(path)
    if records is not None:
        records = C.positive_int("records", records)
    rec, labels = _cifar_records(path, records)
    images = np.empty((len(rec), 32, 32, 3), dtype=np.uint8)
    _planes_to_hwc(rec, images)
    return images, labels


def _cifar_records(path, records: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The checked records ``(n, 3073) uint8`` of one CIFAR-10 binary file and its labels ``int64 (n,)``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise _open_error(path, e) from None
    if records is not None and size != records * CIFAR_RECORD:
        raise DatasetError(f"{path} has {size} bytes, expected {records * CIFAR_RECORD} "
                           f"({records} records of {CIFAR_RECORD} bytes): the file is truncated or corrupted.")
    if size == 0 or size % CIFAR_RECORD:
        raise DatasetError(f"{path} has {size} bytes, not a positive multiple of the {CIFAR_RECORD}-byte "
                           f"CIFAR-10 record: the file is truncated or corrupted.")
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise _open_error(path, e) from None
    if raw.size != size:
        raise DatasetError(f"{path} changed while it was read ({raw.size} of {size} bytes).")
    rec = raw.reshape(-1, CIFAR_RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.flatnonzero(labels > 9)[0])
        raise DatasetError(f"{path} has label {labels[bad]} in record {bad}, expected 0..9: not a CIFAR-10 batch.")
    return rec, labels


def _planes_to_hwc(rec: np.ndarray, out: np.ndarray) -> None:
    """Records (n, 3073) -> out (n, 32, 32, 3): one strided copy per colour plane (2x faster than a transpose)."""
    planes = rec[:, 1:].reshape(len(rec), 3, 32, 32)
    for c in range(3):
        out[..., c] = planes[:, c]


def _check(spec: _Spec, path: Path) -> None:
    """Validate one file of ``spec`` (used on downloads before they are moved into place)."""
    if spec.archive is None:
        _read_idx_file(spec, path)
    elif path.name in spec.files:
        read_cifar_bin(path, _records(spec, path.name))


def _records(spec: _Spec, name: str) -> int:
    train_files = len(spec.files) - 1
    return spec.n_test if name == spec.files[-1] else spec.n_train // train_files


def _read_idx_file(spec: _Spec, path: Path) -> np.ndarray:
    images = "images" in path.name
    n = spec.n_train if path.name.startswith("train") else spec.n_test
    want = (n, 28, 28) if images else (n,)
    size = 4 + 4 * len(want) + int(np.prod(want))
    arr = read_idx(path, IDX_IMAGES_MAGIC if images else IDX_LABELS_MAGIC, size)
    if arr.shape != want:
        raise DatasetError(f"{path} holds an array of shape {arr.shape}, expected {want} for {spec.title}.")
    if not images and arr.size and arr.max() > 9:
        raise DatasetError(f"{path} has label {arr.max()}, expected 0..9.")
    return arr


def _load_idx(spec: _Spec, folder: Path):
    out = []
    for i in (0, 2):
        x = _read_idx_file(spec, _file(folder, spec.files[i]))
        y = _read_idx_file(spec, _file(folder, spec.files[i + 1])).astype(np.int64)
        out.append((x, y))
    return tuple(out)


def _load_cifar(spec: _Spec, folder: Path):
    train = spec.files[:-1]
    n = spec.n_train // len(train)
    if n * len(train) != spec.n_train:
        raise ValueError(f"n_train {spec.n_train} is not divisible by the {len(train)} training batches.")
    x = np.empty((spec.n_train, 32, 32, 3), dtype=np.uint8)
    y = np.empty(spec.n_train, dtype=np.int64)
    for k, name in enumerate(train):
        rec, y[k * n:(k + 1) * n] = _cifar_records(folder / name, n)
        _planes_to_hwc(rec, x[k * n:(k + 1) * n])
    return (x, y), read_cifar_bin(folder / spec.files[-1], spec.n_test)


def _fingerprint(spec: _Spec, folder: Path) -> tuple:
    files = [_file(folder, f) for f in spec.files]
    return str(folder.resolve()), spec.n_train, spec.n_test, tuple(
        (p.name, (st := p.stat()).st_size, st.st_mtime_ns) for p in files)


def _load(dataset: str, data_dir, download: bool):
    spec = _spec(dataset)
    if data_dir is not None:
        _check_path(data_dir, "data_dir")
    C.flag("download", download)
    results.remove_orphans(_cache_root(), staging=".download-")  # what killed downloads and writers left
    place, places, partial = _search(spec, data_dir)
    if place is None:
        if not download:
            raise _not_found(spec, places, partial, "nothing was downloaded (download=False)")
        try:
            place = _download(spec)
        except _DownloadFailed as e:
            raise _not_found(spec, places, partial, f"the download into {_cache_root() / spec.layouts[0]} failed "
                                                    f"({e})") from None
    key = _fingerprint(spec, place)
    memo = _MEMO.get(dataset)
    if memo is None or memo[0] != key:
        _MEMO.pop(dataset, None)
        verify(spec, place)
        arrays = (_load_cifar if spec.archive else _load_idx)(spec, place)
        _MEMO[dataset] = memo = (key, arrays)
    (xtr, ytr), (xte, yte) = memo[1]
    return (xtr.copy(), ytr.copy()), (xte.copy(), yte.copy())


def load_mnist(data_dir=None, *, download: bool = True):
    """MNIST: ``(x_train (60000, 28, 28) uint8, y_train int64), (x_test (10000, 28, 28), y_test)``."""
    return _load("mnist", data_dir, download)


def load_fashion_mnist(data_dir=None, *, download: bool = True):
    """Fashion-MNIST: ``(x_train (60000, 28, 28) uint8, y_train int64), (x_test (10000, 28, 28), y_test)``."""
    return _load("fashion_mnist", data_dir, download)


def load_cifar10(data_dir=None, *, download: bool = True):
    """CIFAR-10: ``(x_train (50000, 32, 32, 3) uint8 RGB, y_train int64), (x_test (10000, 32, 32, 3), y_test)``."""
    return _load("cifar10", data_dir, download)


# --------------------------------------------------------------------------- tensors
def to_tensors(x, y, dataset: str, *, flatten: bool = False, normalize: bool = True):
    """uint8 images and integer labels -> ``(float32 tensor, int64 tensor)`` for training.

    ``x`` is ``(N, H, W)`` (one channel) or ``(N, H, W, C)``; the result is ``(N, C, H, W)``, or
    ``(N, C*H*W)`` when ``flatten`` (channel-major, as ``reshape`` of the NCHW tensor). Pixels become
    ``x / 255`` and, when ``normalize``, ``(x / 255 - mean_c) / std_c`` with the constants of
    ``NORMALIZATION[dataset]``, all in float32 (so every call gives bit-identical inputs).
    """
    import torch

    if not isinstance(dataset, str) or dataset not in NORMALIZATION:
        raise ValueError(f"dataset must be one of {sorted(NORMALIZATION)}, got {dataset!r}.")
    C.flag("flatten", flatten)
    C.flag("normalize", normalize)
    for name, a in (("x", x), ("y", y)):
        if isinstance(a, np.ma.MaskedArray) or not isinstance(a, (np.ndarray, list, tuple)):
            raise TypeError(f"{name} must be a NumPy array (not masked) as the loaders return it, got "
                            f"{type(a).__name__}.")
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != np.uint8:
        raise TypeError(f"x (the images) must be uint8, as the loaders return them, got {x.dtype}.")
    mean, std = (np.asarray(v, dtype=np.float32) for v in NORMALIZATION[dataset])
    if not (x.ndim == 3 and len(mean) == 1 or x.ndim == 4 and x.shape[-1] == len(mean)):
        raise ValueError(f"x (the images) for {dataset} must have shape (N, H, W{'' if len(mean) == 1 else ', 3'}), "
                         f"got {x.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise ValueError(f"y (the labels) must be integers of shape ({len(x)},), got {y.dtype} of shape {y.shape}.")
    xf = x.astype(np.float32) / np.float32(255.0)
    if xf.ndim == 3:
        xf = xf[..., None]
    if normalize:
        xf = (xf - mean) / std
    xf = np.ascontiguousarray(xf.transpose(0, 3, 1, 2))
    if flatten:
        xf = xf.reshape(len(xf), -1)
    return torch.from_numpy(xf), torch.from_numpy(y.astype(np.int64, copy=True))


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``python -m bnlib.data check|download [DATASET ...]`` (default: MNIST and CIFAR-10, what the tests and
    chapters need): one sentence; exit 0 when each is present and verified (or was downloaded), 1 when one is
    missing or damaged, 2 on a bad command line."""
    cmd, *names = (sys.argv[1:] if argv is None else list(argv)) or [None]
    bad = [n for n in names if n not in SPECS]
    if cmd not in ("check", "download") or bad:
        what = f"the command must be check or download, got {cmd!r}" if bad == [] else f"unknown dataset {bad[0]!r}"
        print(f"error: {what} (usage: python -m bnlib.data check|download [{'|'.join(SPECS)} ...]).",
              file=sys.stderr)
        return 2
    missing = []
    for name in names or ["mnist", "cifar10"]:
        try:
            verify(name, locate(name) if cmd == "check" else _load(name, None, True) and locate(name))
        except DatasetNotFound:
            missing.append(SPECS[name].title)
        except DatasetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    if missing:
        print(f"error: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on this machine (bnlib "
              f"looked in $BNLIB_DATA_DIR and {_cache_root()}); run `make data` to download them into "
              f"{_cache_root()}, or set BNLIB_DATA_DIR to a folder that holds a copy.", file=sys.stderr)
        return 1
    print(f"{', '.join(SPECS[n].title for n in names or ['mnist', 'cifar10'])}: present and verified.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
