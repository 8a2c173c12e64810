"""A local folder (ENCHANT_STORAGE_DIR, or file:///abs/path): today's single-host layout."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from enchant_worker.storage.base import StoredFileMissing, check_key


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _atomic(self, key: str, write) -> None:
        """Writes through a temporary file in the target's folder, then renames it over the target."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda out: out.write(data))

    def put_file(self, key: str, path: Path) -> None:
        if Path(path).resolve() == self._path(key).resolve():
            return  # already in place (a file written straight into the storage folder)

        def copy(out):
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._atomic(key, copy)

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise StoredFileMissing(f"no stored file {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def version(self, key: str) -> str:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            raise StoredFileMissing(f"no stored file {key}") from None
        return f"{stat.st_size}-{stat.st_mtime_ns}"

    def list(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url_for(
        self, key: str, expires_s: int, *, content_type: str | None = None, disposition: str | None = None
    ) -> str | None:
        return None

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
