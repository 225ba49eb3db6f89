"""MNIST and Fashion-MNIST: find, download, verify and parse the IDX files.

The GAN paper trains on MNIST with real-valued pixels (``/255``, in [0, 1],
neither binarised nor centred). It uses the first 50,000 training images for
training, the last 10,000 for validation (monitoring and choosing the Parzen
window width) and the official 10,000 ``t10k`` images for the test set. The
order is the file order, with no shuffling. See docs/paper.md §4.

Where the files come from
-------------------------
:func:`find_or_download` looks for each of the four ``.gz`` files of a dataset
in this order and takes the first copy it finds:

1. the ``data_dir`` argument,
2. the directory in the environment variable ``SCRATCHGAN_DATA``,
3. the cache: ``$SCRATCHGAN_CACHE/<dataset>``, else
   ``$XDG_CACHE_HOME/scratchgan/<dataset>``, else
   ``~/.cache/scratchgan/<dataset>``,
4. a download into the cache from the public mirrors in :data:`MIRRORS`.

A directory in 1 or 2 may hold the files directly (``<dir>/<file>``) or in a
subfolder named after the dataset (``<dir>/mnist/<file>``,
``<dir>/fashion-mnist/<file>``), so ``SCRATCHGAN_DATA`` can point either at a
folder of datasets or at one dataset's folder.

Every file is checked against the published MD5 and SHA-256 sums in
:data:`CHECKSUMS` before it is used. A file that fails is an error; it is
never overwritten. Downloads go to a temporary file in the cache directory.
They are checked there and then moved into place with :func:`os.replace`, so
a failed or interrupted download leaves nothing behind.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .training.checkpoint import publish

__all__ = [
    "DataError",
    "Dataset",
    "DATASETS",
    "FILES",
    "CHECKSUMS",
    "MIRRORS",
    "IMAGE_MAGIC",
    "LABEL_MAGIC",
    "canonical_name",
    "cache_dir",
    "search_dirs",
    "file_digests",
    "verify_file",
    "read_idx",
    "write_idx",
    "find_or_download",
    "load_dataset",
    "load_mnist",
    "clear_cache",
]

IMAGE_MAGIC = 0x00000803  #: 2051: unsigned bytes, 3 dimensions (count, rows, cols)
LABEL_MAGIC = 0x00000801  #: 2049: unsigned bytes, 1 dimension (count)
_MAGIC = {"images": IMAGE_MAGIC, "labels": LABEL_MAGIC}
_KIND_OF_MAGIC = {IMAGE_MAGIC: "images", LABEL_MAGIC: "labels"}

#: The dataset names understood here.
DATASETS = ("mnist", "fashion-mnist")

#: The four files of each dataset, in the order (train images, train labels,
#: test images, test labels).
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Published sums of the gzipped files: MD5 from torchvision and the
#: Fashion-MNIST README, SHA-256 from Keras/TensorFlow loaders
#: (the published sums, as listed with the data files).
CHECKSUMS: dict[str, dict[str, dict[str, str]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {
            "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        },
        "train-labels-idx1-ubyte.gz": {
            "md5": "d53e105ee54ea40749a09fcbcd1e9432",
            "sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        },
        "t10k-images-idx3-ubyte.gz": {
            "md5": "9fb629c4189551a2d022fa330f9573f3",
            "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        },
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "ec29112dd5afa0611ce80d1b7f02629c",
            "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": {
            "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "sha256": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        },
        "train-labels-idx1-ubyte.gz": {
            "md5": "25c81989df183df01b3e8a0aad5dffbe",
            "sha256": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        },
        "t10k-images-idx3-ubyte.gz": {
            "md5": "bef4ecab320f06d8554ea6380940ec79",
            "sha256": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        },
        "t10k-labels-idx1-ubyte.gz": {
            "md5": "bb300cfdad3c16e7a12a480ee83cd310",
            "sha256": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    },
}

#: Canonical public mirrors, tried in order; each serves the four file names.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
}

#: Number of training images the paper uses for training; the rest of the
#: 60,000 are the validation set (docs/paper.md §4).
PAPER_TRAIN_SIZE = 50_000
_OFFICIAL_TRAIN_SIZE = 60_000
_IMAGE_SHAPE = (28, 28)
_CHUNK = 1 << 16


class DataError(ValueError):
    """A data file is missing, corrupt, or fails its checksum.

    The message names the file (or the files and the places searched) and
    what is wrong with it.
    """


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one dataset, split as in the paper.

    Images are float32 of shape ``(N, 784)`` with pixel values ``/255`` in
    [0, 1]; labels are uint8 in 0..9. All arrays are read-only, because one
    copy is shared by every caller (see :func:`load_dataset`).

    Attributes
    ----------
    name : str
        Canonical dataset name, ``"mnist"`` or ``"fashion-mnist"``.
    split : str
        ``"paper"``: train = training images 0-49,999, valid = 50,000-59,999.
        ``"full"``: train = all 60,000, valid is empty. The test set is always
        the official 10,000 ``t10k`` images (docs/paper.md §4).
    train, valid, test : numpy.ndarray
        Images, float32, shape ``(N, 784)``.
    train_labels, valid_labels, test_labels : numpy.ndarray
        Labels, uint8, shape ``(N,)``.
    files : Mapping[str, pathlib.Path]
        The file each array was read from, keyed by file name.
    verified : bool
        True when every file matched its checksums.
    image_shape : tuple
        ``(C, H, W)`` of one image, ``(1, 28, 28)`` here; the paired tasks of
        :mod:`scratchgan.paired` have 32×32 images.
    """

    name: str
    split: str
    train: np.ndarray
    train_labels: np.ndarray
    valid: np.ndarray
    valid_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    files: Mapping[str, Path] = field(default_factory=dict)
    verified: bool = False
    image_shape: tuple = (1,) + _IMAGE_SHAPE


# --------------------------------------------------------------------------
# Names and places
# --------------------------------------------------------------------------


def canonical_name(dataset: str) -> str:
    """Return the canonical name of a dataset.

    Parameters
    ----------
    dataset : str
        ``"mnist"``, ``"fashion-mnist"`` or ``"fashion_mnist"`` (any case).

    Returns
    -------
    str
        ``"mnist"`` or ``"fashion-mnist"``.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    name = str(dataset).strip().lower().replace("_", "-")
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)} "
            "(fashion_mnist is accepted for fashion-mnist)"
        )
    return name


def _subfolder_names(name: str) -> list[str]:
    # Folder names accepted for <dir>/<dataset>/<file>.
    return [name] if name == "mnist" else [name, name.replace("-", "_")]


def cache_dir(dataset: str | None = None) -> Path:
    """Return the cache directory (of one dataset, when given).

    The root is ``$SCRATCHGAN_CACHE`` when set, else
    ``$XDG_CACHE_HOME/scratchgan``, else ``~/.cache/scratchgan``.

    Parameters
    ----------
    dataset : str, optional
        Dataset name; the result is then ``<root>/<canonical name>``.

    Returns
    -------
    pathlib.Path
        The directory; it is not created here.
    """
    if os.environ.get("SCRATCHGAN_CACHE"):
        root = Path(os.environ["SCRATCHGAN_CACHE"]).expanduser()
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "scratchgan"
    else:
        root = Path.home() / ".cache" / "scratchgan"
    return root if dataset is None else root / canonical_name(dataset)


def search_dirs(dataset: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Return the directories searched for a dataset's files, in order.

    For ``data_dir`` and then ``$SCRATCHGAN_DATA``: the dataset subfolder
    (``<dir>/mnist``) and then the directory itself; last, the cache directory
    :func:`cache_dir`. Duplicates are dropped. The directories need not exist.

    Parameters
    ----------
    dataset : str
        Dataset name.
    data_dir : str or os.PathLike, optional
        A directory given by the user; searched first.

    Returns
    -------
    list of pathlib.Path
    """
    name = canonical_name(dataset)
    roots = [data_dir, os.environ.get("SCRATCHGAN_DATA") or None]
    dirs: list[Path] = []
    for root in roots:
        if root is None:
            continue
        root = Path(root).expanduser()
        dirs += [root / sub for sub in _subfolder_names(name)] + [root]
    dirs.append(cache_dir(name))
    return list(dict.fromkeys(dirs))


# --------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _digests_cached(path: str, _stat_key: tuple) -> dict[str, str]:
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def file_digests(path: str | os.PathLike) -> dict[str, str]:
    """Return the MD5 and SHA-256 hex digests of a file.

    Results are cached per (path, size, mtime, inode), so checking the same
    unchanged file twice in one process hashes it once.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{"md5": ..., "sha256": ...}``.
    """
    path = Path(path).resolve()
    return dict(_digests_cached(str(path), _stat_key(path)))


def _identify(sha256: str) -> str | None:
    # Name the published file with this digest, if any (helps "wrong folder").
    for name, files in CHECKSUMS.items():
        for fn, sums in files.items():
            if sums.get("sha256") == sha256:
                return f"{name}/{fn}"
    return None


def _mismatch(got: Mapping[str, str], expected: Mapping[str, str]) -> str | None:
    """Describe the first digest in ``expected`` that ``got`` does not match."""
    unknown = set(expected) - {"sha256", "md5"}
    if unknown:
        return f"unknown checksum algorithm(s) {sorted(unknown)}"
    for alg in ("sha256", "md5"):
        if alg in expected and expected[alg].lower() != got[alg]:
            hint = ""
            other = _identify(got["sha256"])
            if other is not None:
                hint = f" (this is {other}: wrong folder?)"
            return (
                f"{alg.upper()} checksum mismatch: expected {expected[alg].lower()}, "
                f"got {got[alg]}{hint}"
            )
    return None


def verify_file(path: str | os.PathLike, expected: Mapping[str, str]) -> None:
    """Check a file against expected digests.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    expected : Mapping[str, str]
        Hex digests keyed by algorithm, ``"md5"`` and/or ``"sha256"``; every
        one given is checked.

    Raises
    ------
    DataError
        On a mismatch, naming the file, the algorithm, the expected and the
        actual digest. The file itself is left untouched.
    """
    if not expected:
        raise DataError(f"{path}: no checksum to verify it against")
    problem = _mismatch(file_digests(path), expected)
    if problem is not None:
        raise DataError(f"{path}: {problem}. The file was left as it is; replace or delete it.")


# --------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------


def read_idx(path: str | os.PathLike, kind: str | None = None) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.gz`` file holding an IDX image file (magic 2051, dims count,
        rows, cols) or label file (magic 2049, dim count); big-endian header.
    kind : {"images", "labels"}, optional
        The kind of file expected; the magic number must match it.

    Returns
    -------
    numpy.ndarray
        Read-only uint8 array of shape ``(count, rows, cols)`` for images,
        ``(count,)`` for labels.

    Raises
    ------
    DataError
        If the file is not valid gzip or is truncated, has a wrong magic
        number or header, or its payload length differs from the product of
        its dimensions. The message names the file.
    """
    path = Path(path)
    if kind is not None and kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', not {kind!r}")
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a valid gzip file or truncated/corrupt ({err})") from err

    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic not in _KIND_OF_MAGIC or (kind is not None and magic != _MAGIC[kind]):
        want = (
            f"0x{_MAGIC[kind]:08x} ({_MAGIC[kind]}) for {kind}"
            if kind is not None
            else f"0x{IMAGE_MAGIC:08x} ({IMAGE_MAGIC}) for images or "
            f"0x{LABEL_MAGIC:08x} ({LABEL_MAGIC}) for labels"
        )
        raise DataError(f"{path}: bad IDX magic number 0x{magic:08x} ({magic}); expected {want}")

    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated IDX header: {len(raw)} bytes, need {header} for {ndim} dimensions"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DataError(f"{path}: bad image dimensions rows={dims[1]}, cols={dims[2]}")
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "trailing bytes"
        raise DataError(
            f"{path}: payload is {payload} bytes but the header "
            f"({' x '.join(map(str, dims))}) says {expected}: {what}"
        )
    # frombuffer on bytes gives a read-only view: no copy, no per-sample loop.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray, kind: str | None = None) -> Path:
    """Write a uint8 array as a gzipped IDX file (for tests and tools).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; parent directories are created.
    array : numpy.ndarray
        uint8; shape ``(count, rows, cols)`` for images, ``(count,)`` for
        labels.
    kind : {"images", "labels"}, optional
        Inferred from ``array.ndim`` (3 or 1) when omitted.

    Returns
    -------
    pathlib.Path
        ``path``. The gzip header has mtime 0, so equal arrays give equal
        bytes (and equal checksums).

    Raises
    ------
    ValueError
        If the dtype is not uint8 or the shape does not fit ``kind``.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX arrays here are uint8, got {array.dtype}")
    if kind is None:
        kind = {3: "images", 1: "labels"}.get(array.ndim)
        if kind is None:
            raise ValueError(f"cannot infer kind from an array of shape {array.shape}")
    if kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', not {kind!r}")
    ndim = 3 if kind == "images" else 1
    if array.ndim != ndim:
        raise ValueError(f"{kind} need a {ndim}-D array, got shape {array.shape}")
    header = struct.pack(f">I{ndim}I", _MAGIC[kind], *array.shape)
    data = gzip.compress(header + np.ascontiguousarray(array).tobytes(), compresslevel=6, mtime=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------
# Finding and downloading
# --------------------------------------------------------------------------


class _DownloadFailed(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _download(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: Path,
    expected: Mapping[str, str] | None,
    timeout: float,
    progress: bool,
) -> Path:
    """Fetch one file from the first mirror that serves a correct copy."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / filename
    errors: list[str] = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                length = getattr(resp, "headers", {}).get("Content-Length")
                total = int(length) if length and str(length).isdigit() else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=filename,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            problem = None if expected is None else _mismatch(file_digests(tmp), expected)
            if problem is not None:
                errors.append(f"{url}: downloaded file rejected: {problem}")
                continue
            publish(tmp, dest)
            return dest
        except (OSError, http.client.HTTPException) as err:
            errors.append(f"{url}: {type(err).__name__}: {err}")
        finally:
            tmp.unlink(missing_ok=True)  # gone already after a successful os.replace
    raise _DownloadFailed(errors)


def _missing_message(
    name: str,
    missing: Sequence[str],
    dirs: Sequence[Path],
    download: bool,
    errors: Sequence[str] = (),
    data_dir_option: str = "data_dir=DIR",
) -> str:
    lines = [f"{name}: missing file(s): {', '.join(missing)}", "Looked in:"]
    lines += [f"  {d}" for d in dirs]
    if not download:
        lines.append("Not downloaded (download=False).")
    elif errors:
        lines.append("Download failed from every mirror:")
        lines += [f"  {e}" for e in errors]
    lines.append(
        f"Put the four files ({', '.join(FILES)}) in {cache_dir(name)}, or in a directory "
        f"DIR (or DIR/{name}) and pass {data_dir_option} or set the environment variable "
        "SCRATCHGAN_DATA=DIR."
    )
    return "\n".join(lines)


def _expected_sums(
    name: str, checksums: Mapping[str, Mapping[str, str]] | None, verify: bool
) -> dict[str, Mapping[str, str] | None]:
    if not verify:
        return {fn: None for fn in FILES}
    table = CHECKSUMS[name] if checksums is None else checksums
    out = {}
    for fn in FILES:
        if not table.get(fn):
            raise DataError(f"{name}: no checksum known for {fn}")
        out[fn] = table[fn]
    return out


def find_or_download(
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    verify: bool = True,
    checksums: Mapping[str, Mapping[str, str]] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    data_dir_option: str = "data_dir=DIR",
) -> dict[str, Path]:
    """Locate (or fetch) and verify the four files of a dataset.

    Each file is looked for in :func:`search_dirs` order (``data_dir``, then
    ``$SCRATCHGAN_DATA``, each as ``<dir>/<dataset>/`` then ``<dir>/``, then
    the cache); files found nowhere are downloaded into the cache from the
    mirrors, one mirror after another. Files found are verified before
    anything is downloaded.

    Parameters
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion-mnist"`` (``"fashion_mnist"``).
    data_dir : str or os.PathLike, optional
        Directory searched first.
    download : bool
        If False, never touch the network: missing files raise at once.
    verify : bool
        Check every file (found or downloaded) against its MD5 and SHA-256.
    checksums : Mapping, optional
        ``{file name: {"md5": ..., "sha256": ...}}`` replacing the published
        sums in :data:`CHECKSUMS` (for tests on small files).
    mirrors : sequence of str, optional
        Base URLs replacing :data:`MIRRORS` for this dataset; any scheme
        :func:`urllib.request.urlopen` accepts, ``file://`` included.
    timeout : float
        Seconds for each connection attempt.
    progress : bool
        Show a tqdm progress bar while downloading.
    data_dir_option : str
        How the error message tells the caller to pass a directory
        (``"data_dir=DIR"``; the command line says ``"--data-dir DIR"``).

    Returns
    -------
    dict of str to pathlib.Path
        The path of each file, keyed by file name (in :data:`FILES` order).

    Raises
    ------
    DataError
        If a file found fails its checksum (it is left untouched), or files
        are missing and cannot be downloaded: the message lists the missing
        files, the directories searched, the mirror errors and where to put
        the files.
    """
    name = canonical_name(dataset)
    expected = _expected_sums(name, checksums, verify)
    dirs = search_dirs(name, data_dir)

    found: dict[str, Path] = {}
    for fn in FILES:
        for d in dirs:
            if (d / fn).is_file():
                found[fn] = d / fn
                break
    for fn, path in found.items():
        if expected[fn] is not None:
            verify_file(path, expected[fn])

    missing = [fn for fn in FILES if fn not in found]
    if missing and not download:
        raise DataError(_missing_message(name, missing, dirs, download=False,
                                         data_dir_option=data_dir_option))
    urls = list(MIRRORS[name] if mirrors is None else mirrors)
    cache = cache_dir(name)
    # the cache folders this call creates; a failed download removes them again
    # (those still empty), so a failure leaves no trace behind
    created = [d for d in (cache, *cache.parents) if not d.exists()]
    for i, fn in enumerate(missing):
        try:
            found[fn] = _download(fn, urls, cache, expected[fn], timeout, progress)
        except _DownloadFailed as err:
            for d in created:  # deepest first
                try:
                    d.rmdir()
                except OSError:  # not empty (an earlier file arrived), or not ours to remove
                    break
            raise DataError(
                _missing_message(name, missing[i:], dirs, download=True, errors=err.errors,
                                 data_dir_option=data_dir_option)
            ) from None
    return {fn: found[fn] for fn in FILES}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

_SPLITS = ("paper", "full")


def _to_float(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1)
    out = np.divide(flat, np.float32(255.0), dtype=np.float32)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, key: tuple, split: str, verified: bool) -> Dataset:
    paths = {fn: Path(p) for fn, p, _ in key}
    tr_x = read_idx(paths[FILES[0]], "images")
    tr_y = read_idx(paths[FILES[1]], "labels")
    te_x = read_idx(paths[FILES[2]], "images")
    te_y = read_idx(paths[FILES[3]], "labels")
    for x, xf, y, yf in ((tr_x, FILES[0], tr_y, FILES[1]), (te_x, FILES[2], te_y, FILES[3])):
        if x.shape[1:] != _IMAGE_SHAPE:
            raise DataError(f"{paths[xf]}: images are {x.shape[1:]}, expected {_IMAGE_SHAPE}")
        if len(x) != len(y):
            raise DataError(
                f"{paths[xf]} has {len(x)} images but {paths[yf]} has {len(y)} labels"
            )
        if len(y) and y.max() > 9:
            raise DataError(f"{paths[yf]}: label {int(y.max())} out of range 0..9")
    if split == "paper" and len(tr_x) != _OFFICIAL_TRAIN_SIZE:
        raise DataError(
            f"{paths[FILES[0]]}: the paper split needs the {_OFFICIAL_TRAIN_SIZE} official "
            f"training images, found {len(tr_x)}; use split='full'"
        )
    cut = PAPER_TRAIN_SIZE if split == "paper" else len(tr_x)
    train_all = _to_float(tr_x)
    return Dataset(
        name=name,
        split=split,
        train=train_all[:cut],
        train_labels=tr_y[:cut],
        valid=train_all[cut:],
        valid_labels=tr_y[cut:],
        test=_to_float(te_x),
        test_labels=te_y,
        files=paths,
        verified=verified,
    )


def load_dataset(
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    split: str = "paper",
    **kwargs,
) -> Dataset:
    """Load MNIST or Fashion-MNIST as float32 vectors in [0, 1].

    Follows docs/paper.md §4: pixels are divided by 255 (not
    binarised, not centred), images are flattened to 784-d vectors, and the
    file order is kept. With ``split="paper"``: train = training images
    0-49,999, valid = 50,000-59,999, test = the 10,000 ``t10k`` images.

    The parsed arrays are cached in-process, keyed on the resolved paths
    with their size and modification time, so repeated calls are cheap and
    return the same read-only arrays.

    Parameters
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion-mnist"`` (``"fashion_mnist"``).
    data_dir : str or os.PathLike, optional
        Directory searched first (see :func:`find_or_download`).
    download : bool
        Allow downloading missing files into the cache.
    split : {"paper", "full"}
        ``"full"`` puts all 60,000 training images in ``train`` and leaves
        ``valid`` empty.
    **kwargs
        Passed to :func:`find_or_download` (``verify``, ``checksums``,
        ``mirrors``, ``timeout``, ``progress``).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        If a file is missing, corrupt or fails its checksum, or the files
        do not hold 28x28 images with matching labels.
    ValueError
        For an unknown dataset or split.
    """
    name = canonical_name(dataset)
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, not {split!r}")
    paths = find_or_download(name, data_dir, download, **kwargs)
    key = tuple(
        (fn, str(p.resolve()), _stat_key(p.resolve())) for fn, p in paths.items()
    )
    return _load_cached(name, key, split, kwargs.get("verify", True))


#: The same function as :func:`load_dataset` (MNIST by default).
load_mnist = load_dataset


def clear_cache() -> None:
    """Forget the in-process caches of parsed arrays and file digests."""
    _load_cached.cache_clear()
    _digests_cached.cache_clear()
