"""Where GroupLens files come from: data_dir, then the cache, then a verified, safe download.

Downloads go to a local HTTP server started here, serving a small invented zip; nothing here
reaches the network or the user's cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import socket
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import movielens_env
import movielens_env.data.formats
from movielens_env import (
    ChecksumError,
    DataNotFoundError,
    UnsafeArchiveError,
    load_dataset,
)
from movielens_env.data.sources import safe_extract
from movielens_env.storage import CACHE_ENV_VAR, atomic_path, atomic_write, cache_root

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
U_ITEM = "".join(
    f"{item}|{title}|24-Jan-1997||http://x|" + "|".join("0" * 5 + "1" + "0" * 13) + "\n"
    for item, title in ((242, "Kolya (1996)"), (302, "L.A. Confidential (1997)"),
                        (377, "Heavyweights (1994)"))
).encode("latin-1")  # fmt: skip


def _u_data(n_rows: int) -> str:
    """A u.data with ``n_rows`` ratings, so that each source is recognisable by its size."""
    return "".join(f"{u}\t{100 + u}\t{1 + u % 5}\t{880000000 + u}\n" for u in range(1, n_rows + 1))


def _write_ml100k(folder: Path, n_rows: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(_u_data(n_rows))
    return folder


def _zip_bytes(members: dict[str, bytes], top: str | None = "ml-100k") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if top:
            archive.writestr(f"{top}/", b"")
        for name, data in members.items():
            archive.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


FAKE_ZIP = _zip_bytes({"u.data": U_DATA.encode(), "u.item": U_ITEM, "README": b"invented\n"})
FAKE_SHA256 = hashlib.sha256(FAKE_ZIP).hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def _assert_three_ways_out(message: str, cache: Path, url: str) -> None:
    assert "Three ways out" in message
    assert "data_dir=" in message
    assert str(cache / "ml-100k") in message
    assert CACHE_ENV_VAR in message
    assert url in message


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, set as $MOVIELENS_DATA (never the user's real cache)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV_VAR, str(folder))
    return folder


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A local HTTP server on 127.0.0.1 (port 0) serving ``files`` (path -> bytes)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # keep test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(
            url=f"http://127.0.0.1:{httpd.server_address[1]}", files=files, hits=hits
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _serve(monkeypatch, server, body: bytes, sha256: str, path: str = "/ml-100k.zip") -> str:
    """Serve ``body`` and point ml-100k's format at it with the given pinned hash."""
    server.files[path] = body
    url = server.url + path
    fmt = movielens_env.data.formats.FORMATS["ml-100k"]
    patched = dataclasses.replace(fmt, url=url, sha256=sha256)
    monkeypatch.setitem(movielens_env.data.formats.FORMATS, "ml-100k", patched)
    return url


# --- source order --------------------------------------------------------------------------


def test_data_dir_beats_cache(tmp_path: Path, cache: Path):
    _write_ml100k(cache / "ml-100k", n_rows=2)
    data_dir = _write_ml100k(tmp_path / "mine" / "ml-100k", n_rows=5)
    assert load_dataset("ml-100k", data_dir=data_dir, download=False).n_ratings == 5
    assert load_dataset("ml-100k", download=False).n_ratings == 2


def test_cache_from_env_var_in_dataset_subfolder(cache: Path):
    _write_ml100k(cache / "ml-100k", n_rows=4)
    assert (cache / "ml-100k" / "u.data").is_file()
    dataset = load_dataset("ml-100k", download=False)
    assert dataset.n_ratings == 4
    np.testing.assert_array_equal(dataset.user_ids, [1, 2, 3, 4])


def test_cache_dir_argument_beats_env_var(tmp_path: Path, cache: Path):
    _write_ml100k(cache / "ml-100k", n_rows=2)
    other = tmp_path / "other-cache"
    _write_ml100k(other / "ml-100k", n_rows=6)
    assert load_dataset("ml-100k", cache_dir=other, download=False).n_ratings == 6
    empty = tmp_path / "empty-cache"
    with pytest.raises(DataNotFoundError):
        load_dataset("ml-100k", cache_dir=empty, download=False)


@pytest.mark.parametrize("folder", ["ml-10m", "ml-10M100K"])
def test_cache_finds_dataset_by_name_or_zip_folder(cache: Path, folder: str):
    (cache / folder).mkdir(parents=True)
    (cache / folder / "ratings.dat").write_text("1::2::3.5::978300760\n2::2::4::978300761\n")
    dataset = load_dataset("ml-10m", download=False)
    np.testing.assert_array_equal(dataset.ratings, [3.5, 4.0])


def test_cache_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(CACHE_ENV_VAR)
    default = cache_root()
    assert default.name == "movielens"
    assert default != tmp_path / "env"


def test_nothing_cached_and_download_disabled_names_three_ways_out(tmp_path: Path, cache: Path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("ml-100k", download=False)
    message = str(err.value)
    _assert_three_ways_out(message, cache, movielens_env.data.formats.FORMATS["ml-100k"].url)
    assert "download=False" in message
    assert isinstance(err.value, FileNotFoundError)
    assert not cache.exists()  # looking did not create anything


# --- downloads from a local server ---------------------------------------------------------


def test_download_with_matching_hash_is_cached_and_zip_removed(cache: Path, server, monkeypatch):
    _serve(monkeypatch, server, FAKE_ZIP, FAKE_SHA256)
    dataset = load_dataset("ml-100k")
    assert server.hits == ["/ml-100k.zip"]
    np.testing.assert_array_equal(dataset.user_ids, [22, 186, 196])
    np.testing.assert_array_equal(dataset.item_ids, [242, 302, 377])
    assert dataset.title(int(dataset.item_index(242))) == "Kolya (1996)"
    assert dataset.genres[int(dataset.item_index(242))] == ("Comedy",)
    assert (cache / "ml-100k" / "u.data").read_text() == U_DATA
    assert (cache / "ml-100k" / "u.item").read_bytes() == U_ITEM
    files = _files(cache)
    assert not [p for p in files if p.suffix == ".zip"], files
    assert not [p for p in cache.rglob(".*")], "temporary files left behind"
    # The GroupLens folder, and the parsed arrays (the prepared cache) beside it.
    assert all(
        p.is_relative_to(cache / "ml-100k") or p.is_relative_to(cache / "prepared") for p in files
    ), files
    # Now cached: found without the network, and not downloaded again.
    assert load_dataset("ml-100k", download=False).n_ratings == 3
    assert load_dataset("ml-100k").n_ratings == 3
    assert server.hits == ["/ml-100k.zip"]


def test_download_with_wrong_hash_leaves_nothing(cache: Path, server, monkeypatch):
    wrong = hashlib.sha256(b"something else").hexdigest()
    url = _serve(monkeypatch, server, FAKE_ZIP, wrong)
    with pytest.raises(ChecksumError) as err:
        load_dataset("ml-100k")
    message = str(err.value)
    assert url in message
    assert wrong in message
    assert server.hits == ["/ml-100k.zip"]
    assert not (cache / "ml-100k").exists()
    assert not cache.exists()  # no dataset, no zip, no temporary file, no folder
    assert not [p for p in cache.rglob(".*")]
    with pytest.raises(DataNotFoundError):  # and nothing usable was cached
        load_dataset("ml-100k", download=False)


def test_download_from_closed_port_names_three_ways_out(cache: Path, monkeypatch):
    with socket.socket() as sock:  # a port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    fmt = movielens_env.data.formats.FORMATS["ml-100k"]
    patched = dataclasses.replace(fmt, url=url)
    monkeypatch.setitem(movielens_env.data.formats.FORMATS, "ml-100k", patched)
    for var in ("http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("ml-100k")
    message = str(err.value)
    _assert_three_ways_out(message, cache, url)
    assert "download failed" in message
    assert not cache.exists()  # offline, nothing is left behind: not even an empty folder


def test_download_not_found_on_server_names_three_ways_out(cache: Path, server, monkeypatch):
    url = _serve(monkeypatch, server, FAKE_ZIP, FAKE_SHA256)
    server.files.clear()  # the server answers 404
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("ml-100k")
    _assert_three_ways_out(str(err.value), cache, url)
    assert _files(cache) == []


def test_downloaded_zip_without_ratings_is_not_cached(cache: Path, server, monkeypatch):
    body = _zip_bytes({"README": b"no ratings here\n"})
    _serve(monkeypatch, server, body, hashlib.sha256(body).hexdigest())
    with pytest.raises(DataNotFoundError, match=r"u\.data"):
        load_dataset("ml-100k")
    assert not (cache / "ml-100k").exists()
    assert not [p for p in _files(cache) if p.name != "ml-100k.zip"]


# --- unsafe archives -----------------------------------------------------------------------


def _unsafe_members(outside: Path) -> dict[str, str]:
    return {
        "parent": "../evil.txt",
        "nested-parent": "ml-100k/../../evil.txt",
        "absolute": str(outside / "abs-evil.txt"),
        "drive": "C:/evil.txt",
        "backslash": "..\\evil.txt",
    }


def _unsafe_zip(path: Path, member: str, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/", b"")
        archive.writestr("ml-100k/u.data", U_DATA)
        info = zipfile.ZipInfo(member)
        if symlink:
            info.external_attr = (0o120777 << 16) | 0x20
            archive.writestr(info, "../../evil.txt")
        else:
            archive.writestr(info, b"pwned\n")
    return path


def _assert_nothing_escaped(root: Path) -> None:
    assert not [p for p in root.rglob("*evil*") if p.suffix != ".zip"]
    assert not [p for p in root.parent.glob("*evil*")]


@pytest.mark.parametrize(
    "kind", ["parent", "nested-parent", "absolute", "drive", "backslash", "symlink"]
)
def test_unsafe_zip_as_data_dir_is_refused(tmp_path: Path, cache: Path, monkeypatch, kind: str):
    work = tmp_path / "work"
    work.mkdir()
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))  # where data_dir zips are extracted
    members = _unsafe_members(tmp_path)
    member = "ml-100k/link" if kind == "symlink" else members[kind]
    zip_path = _unsafe_zip(work / "ml-100k.zip", member, symlink=kind == "symlink")
    with pytest.raises(UnsafeArchiveError) as err:
        load_dataset("ml-100k", data_dir=zip_path)
    assert str(zip_path) in str(err.value)
    assert list(systmp.iterdir()) == []  # nothing extracted, temporary folder removed
    assert [p.name for p in work.iterdir()] == ["ml-100k.zip"]
    _assert_nothing_escaped(tmp_path)
    assert not cache.exists()


@pytest.mark.parametrize("kind", ["parent", "nested-parent", "absolute", "drive", "backslash"])
def test_safe_extract_refuses_before_writing(tmp_path: Path, kind: str):
    zip_path = _unsafe_zip(tmp_path / "archive.zip", _unsafe_members(tmp_path)[kind])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError):
        safe_extract(zip_path, out / "dest")
    assert list(out.iterdir()) == []  # no destination, no temporary sibling
    _assert_nothing_escaped(tmp_path)


def test_safe_extract_good_zip(tmp_path: Path):
    zip_path = tmp_path / "good.zip"
    zip_path.write_bytes(FAKE_ZIP)
    safe_extract(zip_path, tmp_path / "out" / "dest")
    assert (tmp_path / "out" / "dest" / "ml-100k" / "u.data").read_text() == U_DATA
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["dest"]


def test_unsafe_downloaded_zip_is_refused(tmp_path: Path, cache: Path, server, monkeypatch):
    body = _unsafe_zip(tmp_path / "served.zip", "../evil.txt").read_bytes()
    (tmp_path / "served.zip").unlink()
    _serve(monkeypatch, server, body, hashlib.sha256(body).hexdigest())
    with pytest.raises(UnsafeArchiveError):
        load_dataset("ml-100k")
    assert not (cache / "ml-100k").exists()
    assert not [p for p in cache.rglob("u.data")]  # nothing extracted
    assert not [p for p in cache.rglob(".*")]
    _assert_nothing_escaped(tmp_path)


def test_data_dir_zip_is_extracted_to_a_temporary_folder_that_is_removed(
    tmp_path: Path, cache: Path, monkeypatch
):
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    zip_path = tmp_path / "ml-100k.zip"
    zip_path.write_bytes(FAKE_ZIP)
    assert load_dataset("ml-100k", data_dir=zip_path).n_ratings == 3
    assert list(systmp.iterdir()) == []
    assert not cache.exists()  # a data_dir zip is not copied into the cache


def test_data_dir_file_that_is_not_a_zip(tmp_path: Path, cache: Path):
    bogus = tmp_path / "ml-100k.zip"
    bogus.write_bytes(b"not a zip at all")
    with pytest.raises(DataNotFoundError, match="not a zip"):
        load_dataset("ml-100k", data_dir=bogus)


# --- atomic writes -------------------------------------------------------------------------


def test_atomic_write_leaves_no_file_when_writer_raises(tmp_path: Path):
    target = tmp_path / "sub" / "model.npz"

    def failing(path: Path) -> None:
        path.write_bytes(b"half written")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(target, failing, suffix=".npz")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary left either


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path: Path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def failing(path: Path) -> None:
        path.write_bytes(b"new but broken")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_success_with_suffix(tmp_path: Path):
    target = tmp_path / "arrays.npz"
    atomic_write(target, lambda path: np.savez(path, a=np.arange(3)), suffix=".npz")
    with np.load(target) as loaded:
        np.testing.assert_array_equal(loaded["a"], [0, 1, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]
    with atomic_path(tmp_path / "x.txt") as tmp:
        assert tmp.parent == tmp_path
        assert tmp != tmp_path / "x.txt"
        tmp.write_text("done")
    assert (tmp_path / "x.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "x.txt"]


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_an_exclusive_atomic_write_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
):
    if not links:  # a file system without hard links: the fallback claims the name first

        def refuse(*_args):
            raise PermissionError("no hard links here")

        monkeypatch.setattr(os, "link", refuse)
    target = tmp_path / "recs.csv"
    atomic_write(target, lambda path: path.write_text("first"), exclusive=True)
    assert target.read_text() == "first"

    def racing(path: Path) -> None:  # another writer finished while this one wrote
        path.write_text("second")
        target.write_text("theirs")

    with pytest.raises(FileExistsError):
        atomic_write(target, racing, exclusive=True)
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["recs.csv"]
