"""Tests for scratchgan.data: IDX parsing, checksums, search order, downloads.

Small IDX files are built in tmp_path with ``write_idx``; no test touches the
network (``urlopen`` only ever sees ``file://`` URLs or a fake). The tests
marked ``mnist`` read the real files from ``$SCRATCHGAN_DATA`` or
``<repo>/../shared/data`` and are skipped when those are absent.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from scratchgan import data
from scratchgan.data import FILES, DataError

REAL_DATA = Path(
    os.environ.get("SCRATCHGAN_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user env, a private cache, and a network that refuses non-file URLs."""
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("SCRATCHGAN_CACHE", str(tmp_path / "cache"))
    real_urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    yield
    data.clear_cache()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def make_fake(directory: Path, n_train: int = 7, n_test: int = 3, seed: int = 0):
    """Write a tiny 4-file dataset; return (arrays, checksums) computed independently."""
    rng = np.random.default_rng(seed)
    arrays = {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays[FILES[0]][0, 0, 0], arrays[FILES[0]][0, 0, 1] = 0, 255
    sums = {}
    for fn, arr in arrays.items():
        path = data.write_idx(directory / fn, arr)
        sums[fn] = {"md5": md5(path), "sha256": sha256(path)}
    return arrays, sums


def rewrite_gz(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(raw))


# ----------------------------------------------------------------- IDX format


def test_write_idx_header_is_big_endian_idx(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    ip = data.write_idx(tmp_path / "i.gz", images, "images")
    lp = data.write_idx(tmp_path / "l.gz", labels)  # kind inferred
    raw_i = gzip.decompress(ip.read_bytes())
    raw_l = gzip.decompress(lp.read_bytes())
    assert raw_i[:16] == bytes.fromhex("00000803") + struct.pack(">III", 2, 3, 4)
    assert raw_i[16:] == images.tobytes()
    assert raw_l[:8] == bytes.fromhex("00000801") + struct.pack(">I", 3)
    assert raw_l[8:] == labels.tobytes()


def test_read_idx_roundtrip(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    got_i = data.read_idx(data.write_idx(tmp_path / "i.gz", images), "images")
    got_l = data.read_idx(data.write_idx(tmp_path / "l.gz", labels), "labels")
    assert got_i.dtype == np.uint8 and got_i.shape == (5, 28, 28)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)


def test_write_idx_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x.gz", np.zeros((2, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="3-D"):
        data.write_idx(tmp_path / "x.gz", np.zeros(4, dtype=np.uint8), "images")


def _wrong_magic(path):
    rewrite_gz(path, struct.pack(">IIII", 0x00000804, 1, 28, 28) + bytes(784))
    return "magic"


def _truncated_gzip(path):
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    return "gzip"


def _not_gzip(path):
    path.write_bytes(b"this is not gzip at all")
    return "gzip"


def _truncated_payload(path):
    raw = gzip.decompress(path.read_bytes())
    rewrite_gz(path, raw[:-5])
    return "truncated"


def _trailing_bytes(path):
    raw = gzip.decompress(path.read_bytes())
    rewrite_gz(path, raw + b"\x00")
    return "trailing"


def _truncated_header(path):
    rewrite_gz(path, bytes.fromhex("00000803") + b"\x00\x00")
    return "header"


@pytest.mark.parametrize(
    "breaker",
    [_wrong_magic, _truncated_gzip, _not_gzip, _truncated_payload, _trailing_bytes,
     _truncated_header],
)
def test_read_idx_broken_files_name_the_file(tmp_path, breaker):
    path = data.write_idx(tmp_path / "broken-images.gz", np.zeros((3, 28, 28), np.uint8))
    keyword = breaker(path)
    with pytest.raises(DataError) as info:
        data.read_idx(path, "images")
    assert str(path) in str(info.value)
    assert keyword in str(info.value).lower()
    assert isinstance(info.value, ValueError)


def test_read_idx_kind_mismatch(tmp_path):
    path = data.write_idx(tmp_path / "labels.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="magic") as info:
        data.read_idx(path, "images")
    assert str(path) in str(info.value)


# ------------------------------------------------------------------ checksums


def test_published_checksums_match_readme():
    readme = REAL_DATA / "README.md"
    if not readme.is_file():
        pytest.skip(f"no data README at {readme}")
    text = readme.read_text()
    for name in data.DATASETS:
        section = text.split(f"## {name}/", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"\| `([\w.-]+\.gz)` \|.*\| `([0-9a-f]{32})` \| `([0-9a-f]{64})` \|", section)
        assert {fn for fn, _, _ in rows} == set(FILES)
        for fn, m, s in rows:
            assert data.CHECKSUMS[name][fn] == {"md5": m, "sha256": s}, (name, fn)


def test_checksum_mismatch_in_user_dir_is_an_error(tmp_path):
    user = tmp_path / "user"
    _, sums = make_fake(user)
    good_sha = sums[FILES[2]]["sha256"]
    sums[FILES[2]] = {"md5": sums[FILES[2]]["md5"], "sha256": "0" * 64}
    before = (user / FILES[2]).read_bytes()
    # download=True: the bad user file must not be replaced by a download.
    with pytest.raises(DataError) as info:
        data.find_or_download("mnist", user, download=True, checksums=sums, mirrors=["http://x/"])
    msg = str(info.value)
    assert str(user / FILES[2]) in msg and "0" * 64 in msg and good_sha in msg
    assert (user / FILES[2]).read_bytes() == before
    assert not (tmp_path / "cache").exists()


def test_md5_is_checked_too(tmp_path):
    _, sums = make_fake(tmp_path / "user")
    sums[FILES[1]] = {"md5": "f" * 32, "sha256": sums[FILES[1]]["sha256"]}
    with pytest.raises(DataError, match="MD5") as info:
        data.find_or_download("mnist", tmp_path / "user", download=False, checksums=sums)
    assert FILES[1] in str(info.value)


def test_mismatch_message_names_expected_got_and_origin(monkeypatch, tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(b"x")
    data.verify_file(path, {"sha256": sha256(path), "md5": md5(path)})  # no raise
    # Pretend this file is a published MNIST file, then check it as Fashion-MNIST.
    monkeypatch.setitem(data.CHECKSUMS["mnist"], FILES[0], {"sha256": sha256(path)})
    with pytest.raises(DataError) as info:
        data.verify_file(path, {"sha256": "0" * 64})
    msg = str(info.value)
    assert str(path) in msg and "0" * 64 in msg and sha256(path) in msg
    assert f"mnist/{FILES[0]}" in msg


# --------------------------------------------------------------- search order


def test_cache_dir_respects_env(monkeypatch, tmp_path):
    assert data.cache_dir("fashion_mnist") == tmp_path / "cache" / "fashion-mnist"
    monkeypatch.delenv("SCRATCHGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir("mnist") == tmp_path / "xdg" / "scratchgan" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir("mnist") == tmp_path / "home" / ".cache" / "scratchgan" / "mnist"


def test_search_order_argument_env_cache(monkeypatch, tmp_path):
    arg, env, cache = tmp_path / "arg", tmp_path / "env", tmp_path / "cache" / "mnist"
    _, sums = make_fake(arg)
    make_fake(env / "mnist")  # same seed: identical bytes, same checksums
    make_fake(cache)
    monkeypatch.setenv("SCRATCHGAN_DATA", str(env))

    def where(data_dir):
        paths = data.find_or_download("mnist", data_dir, download=False, checksums=sums)
        assert list(paths) == list(FILES)
        return {p.parent for p in paths.values()}

    assert where(arg) == {arg}
    assert where(None) == {env / "mnist"}
    monkeypatch.delenv("SCRATCHGAN_DATA")
    assert where(None) == {cache}


def test_both_layouts_and_alias(monkeypatch, tmp_path):
    _, sums = make_fake(tmp_path / "flat")
    make_fake(tmp_path / "nested" / "fashion-mnist")
    for d in (tmp_path / "flat", tmp_path / "nested"):
        paths = data.find_or_download("fashion_mnist", d, download=False, checksums=sums)
        assert all(p.is_file() for p in paths.values())
    monkeypatch.setenv("SCRATCHGAN_DATA", str(tmp_path / "nested"))
    paths = data.find_or_download("fashion-mnist", download=False, checksums=sums)
    assert paths[FILES[0]] == tmp_path / "nested" / "fashion-mnist" / FILES[0]


def test_files_are_found_one_by_one(monkeypatch, tmp_path):
    _, sums = make_fake(tmp_path / "arg")
    make_fake(tmp_path / "cache" / "mnist")
    (tmp_path / "arg" / FILES[3]).unlink()
    paths = data.find_or_download("mnist", tmp_path / "arg", download=False, checksums=sums)
    assert paths[FILES[0]].parent == tmp_path / "arg"
    assert paths[FILES[3]].parent == tmp_path / "cache" / "mnist"


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.find_or_download("cifar10", download=False)
    with pytest.raises(ValueError, match="split"):
        data.load_dataset("mnist", split="random", download=False)


# ----------------------------------------------------------- missing/offline


def test_offline_error_lists_missing_files_and_places(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("SCRATCHGAN_DATA", str(tmp_path / "env"))
    _, sums = make_fake(tmp_path / "arg")
    (tmp_path / "arg" / FILES[0]).unlink()
    (tmp_path / "arg" / FILES[2]).unlink()
    with pytest.raises(DataError) as info:
        data.find_or_download("mnist", tmp_path / "arg", download=False, checksums=sums)
    msg = str(info.value)
    assert FILES[0] in msg and FILES[2] in msg
    assert FILES[1] not in msg.split("Looked in")[0]  # only the missing ones listed
    for d in data.search_dirs("mnist", tmp_path / "arg"):
        assert str(d) in msg
    assert str(tmp_path / "env") in msg and str(tmp_path / "cache" / "mnist") in msg
    assert "SCRATCHGAN_DATA" in msg and "download=False" in msg
    assert calls == []


def test_all_mirrors_fail(monkeypatch, tmp_path):
    tried = []

    def offline(url, timeout=None):
        tried.append((url, timeout))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        data.find_or_download("mnist", download=True, timeout=1.5, progress=False)
    msg = str(info.value)
    assert all(fn in msg for fn in FILES)
    assert str(tmp_path / "cache" / "mnist") in msg and "no network" in msg
    # every default mirror tried once for the first file, then it gave up
    assert [u for u, _ in tried] == [m + FILES[0] for m in data.MIRRORS["mnist"]]
    assert all(t == 1.5 for _, t in tried)
    assert not (tmp_path / "cache" / "mnist").exists()  # not even an empty folder


# ------------------------------------------------------------------ download


def test_download_from_file_mirror_falls_through(tmp_path):
    arrays, sums = make_fake(tmp_path / "mirror")
    dead = (tmp_path / "nowhere").as_uri() + "/"
    paths = data.find_or_download(
        "mnist", tmp_path / "empty", checksums=sums, progress=True,
        mirrors=[dead, (tmp_path / "mirror").as_uri() + "/"],
    )
    cache = tmp_path / "cache" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(FILES)  # no temp files left
    for fn in FILES:
        assert paths[fn] == cache / fn
        assert paths[fn].read_bytes() == (tmp_path / "mirror" / fn).read_bytes()
    # second call finds the cache and needs no mirror at all
    again = data.find_or_download("mnist", checksums=sums, download=False)
    assert again == paths


def test_corrupt_download_leaves_nothing(tmp_path):
    _, sums = make_fake(tmp_path / "mirror")
    (tmp_path / "mirror" / FILES[0]).write_bytes(b"corrupt")
    with pytest.raises(DataError) as info:
        data.find_or_download(
            "mnist", checksums=sums, progress=False,
            mirrors=[(tmp_path / "mirror").as_uri()],
        )
    msg = str(info.value)
    assert "checksum mismatch" in msg and sums[FILES[0]]["sha256"] in msg
    assert not (tmp_path / "cache" / "mnist").exists()  # not even an empty folder


def test_interrupted_download_leaves_nothing(monkeypatch, tmp_path):
    _, sums = make_fake(tmp_path / "src")

    class Broken:
        headers = {"Content-Length": "100000"}

        def __init__(self):
            self.body = io.BytesIO(b"\x1f\x8b" + bytes(70000))

        def read(self, n):
            if self.body.tell() > 65536:
                raise ConnectionResetError("connection reset mid-file")
            return self.body.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Broken())
    with pytest.raises(DataError, match="connection reset"):
        data.find_or_download("mnist", checksums=sums, progress=False, mirrors=["https://m/"])
    assert not (tmp_path / "cache" / "mnist").exists()  # not even an empty folder


def test_failed_download_keeps_a_cache_folder_it_did_not_create(monkeypatch, tmp_path):
    """Only the folders a failed download created are removed again."""
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    (cache / "notes.txt").write_text("mine")

    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError):
        data.find_or_download("mnist", progress=False)
    assert sorted(os.listdir(cache)) == ["notes.txt"]
    (cache / "notes.txt").unlink()
    with pytest.raises(DataError):
        data.find_or_download("mnist", progress=False)
    assert cache.is_dir()  # existed before the call: left alone, even empty


def test_download_false_never_downloads(tmp_path):
    _, sums = make_fake(tmp_path / "mirror")
    with pytest.raises(DataError, match="missing"):
        data.find_or_download(
            "mnist", download=False, checksums=sums,
            mirrors=[(tmp_path / "mirror").as_uri()],
        )
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------- loading


def test_load_small_dataset_full_split(tmp_path):
    arrays, sums = make_fake(tmp_path / "d", n_train=7, n_test=3)
    ds = data.load_dataset("mnist", tmp_path / "d", download=False, split="full", checksums=sums)
    assert ds.train.shape == (7, 784) and ds.valid.shape == (0, 784)
    assert ds.test.shape == (3, 784)
    assert ds.train.dtype == np.float32 and ds.verified
    np.testing.assert_array_equal(ds.train, arrays[FILES[0]].reshape(7, -1) / np.float32(255))
    np.testing.assert_array_equal(ds.test_labels, arrays[FILES[3]])
    assert ds.train.min() == 0.0 and ds.train.max() == 1.0
    with pytest.raises(ValueError):
        ds.train[0, 0] = 0.5  # shared cached arrays are read-only
    # cached: same object back; a changed file is re-read
    assert data.load_dataset("mnist", tmp_path / "d", False, "full", checksums=sums) is ds
    _, sums2 = make_fake(tmp_path / "d", n_train=4, seed=1)
    ds2 = data.load_dataset("mnist", tmp_path / "d", False, "full", checksums=sums2)
    assert ds2.train.shape == (4, 784)


def test_paper_split_needs_60000(tmp_path):
    _, sums = make_fake(tmp_path / "d")
    with pytest.raises(DataError, match="60000") as info:
        data.load_dataset("mnist", tmp_path / "d", download=False, checksums=sums)
    assert str(tmp_path / "d" / FILES[0]) in str(info.value)


def test_label_count_mismatch(tmp_path):
    _, sums = make_fake(tmp_path / "d")
    data.write_idx(tmp_path / "d" / FILES[3], np.zeros(2, np.uint8))
    sums[FILES[3]] = {"sha256": sha256(tmp_path / "d" / FILES[3])}
    with pytest.raises(DataError, match="labels") as info:
        data.load_dataset("mnist", tmp_path / "d", False, "full", checksums=sums)
    assert FILES[3] in str(info.value)


# ------------------------------------------------------------------ real data


def _real(name: str) -> Path:
    """The folder holding the real files; SCRATCHGAN_DATA may name it directly for MNIST."""
    candidates = [REAL_DATA / name] + ([REAL_DATA] if name == "mnist" else [])
    for folder in candidates:
        if all((folder / fn).is_file() for fn in FILES):
            return folder
    pytest.skip(f"real {name} files not found under {REAL_DATA} (set SCRATCHGAN_DATA)")


@pytest.mark.mnist
def test_real_mnist_paper_split():
    root = _real("mnist")
    ds = data.load_mnist(data_dir=REAL_DATA, download=False)
    assert ds.train.shape == (50000, 784)
    assert ds.valid.shape == (10000, 784)
    assert ds.test.shape == (10000, 784)
    for x in (ds.train, ds.valid, ds.test):
        assert x.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0
    for y, n in ((ds.train_labels, 50000), (ds.valid_labels, 10000), (ds.test_labels, 10000)):
        counts = np.bincount(y, minlength=10)
        assert counts.size == 10 and counts.sum() == n and (counts > 0).all()
    # file order kept: well-known first labels of the train and t10k files
    np.testing.assert_array_equal(ds.train_labels[:6], [5, 0, 4, 1, 9, 2])
    np.testing.assert_array_equal(ds.test_labels[:5], [7, 2, 1, 0, 4])
    assert ds.verified
    for fn, path in ds.files.items():
        assert path.parent.resolve() == root.resolve()
        assert sha256(path) == data.CHECKSUMS["mnist"][fn]["sha256"]


@pytest.mark.mnist
def test_real_mnist_env_var_layouts(monkeypatch):
    root = _real("mnist")
    for env in (REAL_DATA, root):
        monkeypatch.setenv("SCRATCHGAN_DATA", str(env))
        paths = data.find_or_download("mnist", download=False)
        assert {p.parent.resolve() for p in paths.values()} == {root.resolve()}


@pytest.mark.mnist
def test_real_fashion_mnist_balanced():
    root = _real("fashion-mnist")
    ds = data.load_dataset("fashion_mnist", root, download=False, split="full")
    assert ds.train.shape == (60000, 784) and ds.test.shape == (10000, 784)
    assert ds.train.dtype == np.float32 and ds.verified
    assert ds.train.min() == 0.0 and ds.train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.train_labels, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test_labels, minlength=10), [1000] * 10)
