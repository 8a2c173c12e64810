"""The storage interface on both backends: a local folder and S3-compatible object storage (moto's
server), its keys, multipart uploads, half-written files and outages, and the settings that choose it."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError

from enchant_worker.config import Settings
from enchant_worker.storage import (
    StorageConfigError,
    StorageUnavailable,
    StoredFileMissing,
    check_key,
    from_url,
    local_copy,
    parse_storage_url,
)
from enchant_worker.storage.local import LocalStorage
from tests.support.object_storage import BUCKET, ISOLATED_ENV, make_bucket, s3_env, s3_server
from tests.support.waiting import free_port

MIB = 2**20


@pytest.fixture
def endpoint(monkeypatch) -> str:
    with s3_server() as url:
        for name, value in s3_env(url).items():
            monkeypatch.setenv(name, value)
        make_bucket(url)
        yield url


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return from_url((tmp_path / "store").as_uri())
    request.getfixturevalue("endpoint")
    return from_url(f"s3://{BUCKET}/fleet/one")


def test_each_backend_stores_reads_and_deletes(storage, tmp_path):
    key = "images/ab/cd/picture.png"
    assert not storage.exists(key)
    with pytest.raises(StoredFileMissing):
        storage.get_bytes(key)
    storage.put_bytes(key, b"first")
    storage.put_bytes(key, b"second")  # replaced whole
    assert storage.exists(key) and storage.get_bytes(key) == b"second"
    with storage.open(key) as body:
        assert body.read() == b"second"
    source = tmp_path / "lora.safetensors"
    source.write_bytes(b"x" * 1000)
    storage.put_file("loras/1/lora.safetensors", source)
    assert storage.list("loras") == ["loras/1/lora.safetensors"] and storage.list("exports") == []
    copy = local_copy(storage, "loras/1/lora.safetensors", tmp_path / "cache")
    assert copy.read_bytes() == source.read_bytes()
    storage.delete(key)
    storage.delete(key)  # deleting what is gone is no error
    assert not storage.exists(key)


def test_a_local_copy_is_reused_until_the_object_changes(endpoint, tmp_path):
    storage = from_url(f"s3://{BUCKET}")
    storage.put_bytes("loras/7/ink.safetensors", b"first weights")
    reads = []
    real_open = storage.open
    storage.open = lambda key: reads.append(key) or real_open(key)
    cache = tmp_path / "cache"
    assert local_copy(storage, "loras/7/ink.safetensors", cache).read_bytes() == b"first weights"
    assert local_copy(storage, "loras/7/ink.safetensors", cache).read_bytes() == b"first weights"
    assert len(reads) == 1
    storage.put_bytes("loras/7/ink.safetensors", b"retrained weights")
    assert local_copy(storage, "loras/7/ink.safetensors", cache).read_bytes() == b"retrained weights"
    assert len(reads) == 2
    storage.delete("loras/7/ink.safetensors")
    with pytest.raises(StoredFileMissing):
        local_copy(storage, "loras/7/ink.safetensors", cache)


def test_only_object_storage_has_presigned_urls(storage):
    storage.put_bytes("exports/ab/cd/book.pdf", b"%PDF-1.7 book")
    url = storage.url_for("exports/ab/cd/book.pdf", 60)
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (the test's own server)
        assert answer.read() == b"%PDF-1.7 book"


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "a/../../b", "a//b", "a/./b", "a\\b", "a\x00b"]
)
def test_a_key_that_is_not_a_plain_relative_path_is_refused(key, tmp_path):
    with pytest.raises(ValueError, match="storage key"):
        check_key(key)
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).put_bytes(key, b"x")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_local_write_leaves_the_old_file_and_no_partial(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path / "store")
    storage.put_bytes("exports/book.pdf", b"old")
    source = tmp_path / "new.pdf"
    source.write_bytes(b"new book")

    def half_copy(src, out, size):
        out.write(src.read(3))
        raise OSError("disk went away")

    monkeypatch.setattr("enchant_worker.storage.local.shutil.copyfileobj", half_copy)
    with pytest.raises(OSError, match="disk went away"):
        storage.put_file("exports/book.pdf", source)
    assert storage.get_bytes("exports/book.pdf") == b"old"
    assert sorted(p.name for p in (tmp_path / "store" / "exports").iterdir()) == ["book.pdf"]


def test_a_large_file_goes_up_in_parts(endpoint, tmp_path):
    storage = from_url(f"s3://{BUCKET}")
    storage.multipart_threshold, storage.part_size = 6 * MIB, 5 * MIB
    source = tmp_path / "big.safetensors"
    source.write_bytes(bytes(range(256)) * (11 * MIB // 256) + b"tail")
    calls = []
    real = storage.client.upload_part
    storage.client.upload_part = lambda **kw: calls.append(kw["PartNumber"]) or real(**kw)
    storage.put_file("loras/big.safetensors", source)
    assert calls == [1, 2, 3]
    assert storage.get_bytes("loras/big.safetensors") == source.read_bytes()


def test_a_half_uploaded_object_is_never_visible(endpoint, tmp_path):
    storage = from_url(f"s3://{BUCKET}/p")
    storage.multipart_threshold, storage.part_size = 6 * MIB, 5 * MIB
    source = tmp_path / "big.safetensors"
    source.write_bytes(b"\x01" * (11 * MIB))
    seen = []
    real = storage.client.upload_part

    def failing_part(**kw):
        if kw["PartNumber"] == 2:
            seen.append(storage.exists("loras/big.safetensors"))  # part 1 is up: still nothing to read
            raise ConnectionResetError("the link dropped mid-upload")
        return real(**kw)

    storage.client.upload_part = failing_part
    with pytest.raises(ConnectionResetError):
        storage.put_file("loras/big.safetensors", source)
    assert seen == [False]
    assert not storage.exists("loras/big.safetensors")
    assert "Uploads" not in storage.client.list_multipart_uploads(Bucket=BUCKET)  # aborted, parts dropped


def test_unreachable_object_storage_is_a_retryable_error(monkeypatch):
    for name, value in s3_env(f"http://127.0.0.1:{free_port()}").items():  # nothing listens there
        monkeypatch.setenv(name, value)
    storage = from_url(f"s3://{BUCKET}")
    for attempt in (
        lambda: storage.put_bytes("images/a.png", b"x"),
        lambda: storage.get_bytes("images/a.png"),
        lambda: storage.exists("images/a.png"),
    ):
        with pytest.raises(StorageUnavailable, match="unreachable.*retried"):
            attempt()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://bucket/x", "use file:///abs/path or s3://bucket/prefix"),
        ("file://relative/path", "absolute folder"),
        ("file:relative", "absolute folder"),
        ("s3://Not_A_Bucket/x", "is not a bucket name"),
        ("s3://key:secret@bucket/x", "credentials do not belong in the URL"),
        ("s3://bucket/a/../b", "is not a plain path"),
        ("s3://bucket/x?region=eu", "no query"),
    ],
)
def test_a_bad_storage_url_is_refused_naming_the_variable(url, says):
    with pytest.raises(ValueError, match="ENCHANT_STORAGE_URL") as refused:
        parse_storage_url(url)
    assert says in str(refused.value)
    with pytest.raises(ValidationError, match=says):
        Settings(storage_url=url)
    with pytest.raises(StorageConfigError, match="ENCHANT_STORAGE_URL"):
        from_url(url)


def test_missing_credentials_are_refused_when_the_storage_is_made(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ISOLATED_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        StorageConfigError, match="no S3 credentials.*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ):
        from_url(f"s3://{BUCKET}/x")


def test_no_url_keeps_the_storage_folder(tmp_path):
    settings = Settings(home=tmp_path)
    assert settings.storage == tmp_path / "storage"
    moved = Settings(home=tmp_path, storage_url=(tmp_path / "elsewhere").as_uri())
    assert moved.storage == tmp_path / "elsewhere"
    assert Path(from_url(moved.storage.as_uri()).root) == tmp_path / "elsewhere"
