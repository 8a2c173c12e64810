"""LoRA adapters on a resident pipeline: an LRU keyed by the file's hash, bounded by count and bytes.

Only `.safetensors` files load (never pickle), and only from inside the allowed folders. A file loads
once under the adapter name `lora_<hash>`; a job then picks its set and strengths with `set_adapters`,
which costs a small fraction of loading. Adapters beyond the bounds are deleted, least recently used
first, never one the current job uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from enchant_worker.generation.errors import LoraRefused

log = logging.getLogger(__name__)

SAFETENSORS_SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100 * 1024**2  # the safetensors format's own bound on the JSON header
HASH_CHUNK_BYTES = 4 * 1024**2
SHORT_HASH_CHARS = 12  # AUTOMATIC1111 shows LoRA hashes as the first 12 hex digits


@dataclass(frozen=True)
class LoraRequest:
    """One LoRA a job wants: a display name (used in PNG tags), its file and its strength."""

    name: str
    path: Path
    strength: float


@dataclass(frozen=True)
class FileHashes:
    sha256: str  # of the whole file: the cache key
    addnet: str  # of the tensor data after the header, as AUTOMATIC1111 computes "Lora hashes"

    @property
    def short(self) -> str:
        return self.addnet[:SHORT_HASH_CHARS]


@dataclass
class LoadedAdapter:
    adapter_name: str
    path: Path
    hashes: FileHashes
    nbytes: int


@dataclass
class ActivationReport:
    """What `activate()` did, for the job result and the image metadata."""

    active: list[dict] = field(default_factory=list)  # name, adapter, strength, hash
    loaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    load_s: float = 0.0
    switch_s: float = 0.0

    @property
    def hashes(self) -> dict[str, str]:
        return {a["name"]: a["hash"] for a in self.active}


_hash_cache: dict[tuple[str, int, int], FileHashes] = {}
_hash_lock = threading.Lock()


def check_lora_path(path: Path | str, roots: Sequence[Path]) -> Path:
    """The real path of a LoRA file, refused unless it is a .safetensors file inside one of `roots`."""
    raw = Path(path)
    if raw.suffix.lower() != SAFETENSORS_SUFFIX:
        raise LoraRefused(
            f"lora: {raw.name!r} is not a .safetensors file; other formats (pickle) are never loaded"
        )
    real = Path(os.path.realpath(raw))  # resolves '..' and symbolic links before the containment check
    allowed = [Path(os.path.realpath(r)) for r in roots]
    if not any(real.is_relative_to(root) for root in allowed):
        raise LoraRefused(f"lora: {raw} is outside the allowed folders ({', '.join(map(str, allowed))})")
    if not real.is_file():
        raise LoraRefused(f"lora: the file {raw} is missing")
    return real


def read_header(path: Path) -> dict:
    """The safetensors JSON header, after checking that the file is complete; refused otherwise."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise LoraRefused(f"lora: {path.name} is truncated or not a safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise LoraRefused(f"lora: {path.name} is truncated or not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LoraRefused(f"lora: {path.name} is not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise LoraRefused(f"lora: {path.name} is not a safetensors file (header is not an object)")
    data_bytes = size - 8 - header_len
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    if not ends:
        raise LoraRefused(f"lora: {path.name} holds no tensors")
    if max(ends) > data_bytes:
        raise LoraRefused(f"lora: {path.name} is truncated ({data_bytes} data bytes, {max(ends)} expected)")
    return header


def file_hashes(path: Path) -> FileHashes:
    """SHA-256 of the file and of its tensor data; cached by (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    whole, data = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as f:
        prefix = f.read(8)
        (header_len,) = struct.unpack("<Q", prefix)
        header = f.read(header_len)
        whole.update(prefix + header)
        while chunk := f.read(HASH_CHUNK_BYTES):
            whole.update(chunk)
            data.update(chunk)
    hashes = FileHashes(whole.hexdigest(), data.hexdigest())
    with _hash_lock:
        _hash_cache[key] = hashes
    return hashes


def declared_family(header: dict) -> str | None:
    """The model family a LoRA file says it was made for (ours, kohya's or modelspec metadata)."""
    meta = header.get("__metadata__") or {}
    for key in ("enchant.family", "ss_base_model_version", "modelspec.architecture"):
        value = str(meta.get(key, "")).lower()
        if value:
            if "xl" in value:
                return "sdxl"
            if value in ("sd15", "sd_v1") or "v1" in value:
                return "sd15"
    return None


def check_fits(unet, header: dict, path: Path, family: str) -> None:
    """Refuse a LoRA whose declared family or whose UNet shapes do not match the pipeline's."""
    declared = declared_family(header)
    if declared and declared != family:
        raise LoraRefused(f"lora: {path.name} was made for {declared}, but the model is {family}")
    modules = dict(unet.named_modules())
    for key, info in header.items():
        parsed = _unet_lora_module(key)
        if parsed is None:
            continue  # other key styles (kohya...) are converted and checked by diffusers itself
        module_name, down = parsed
        module = modules.get(module_name)
        shape = info["shape"]
        fits = module is not None and (
            shape[1] == getattr(module, "in_features", None)
            if down
            else shape[0] == getattr(module, "out_features", None)
        )
        if not fits:
            raise LoraRefused(
                f"lora: {path.name} does not fit this {family} model (layer {module_name}): another model family?"
            )


def _unet_lora_module(key: str) -> tuple[str, bool] | None:
    """(UNet module, is the down matrix) of a diffusers-style key: peft's `unet.<module>.lora_A.weight` or
    the processor style our exports write, `unet.<block>.processor.to_q_lora.down.weight`; else None."""
    if not key.startswith("unet."):
        return None
    key = key[len("unet.") :]
    for down, up in ((".lora_A.weight", ".lora_B.weight"), ("_lora.down.weight", "_lora.up.weight")):
        if key.endswith((down, up)):
            module = key[: -len(down if key.endswith(down) else up)].replace(".processor.", ".")
            if down.startswith("_") and module.endswith(".to_out"):
                module += ".0"
            return module, key.endswith(down)
    return None


class AdapterCache:
    """The LoRA adapters loaded into one pipeline."""

    def __init__(
        self,
        pipe,
        roots: Sequence[Path],
        family: str = "sd15",
        max_count: int = 8,
        max_bytes: int = 2 * 1024**3,
    ):
        if max_count < 1 or max_bytes < 1:
            raise ValueError("max_count and max_bytes must be positive")
        self.pipe = pipe
        self.roots = [Path(r) for r in roots]
        self.family = family
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._loaded: OrderedDict[str, LoadedAdapter] = OrderedDict()  # by sha256, least recent first
        self._lora_enabled = True

    @property
    def loaded(self) -> list[LoadedAdapter]:
        return list(self._loaded.values())

    @property
    def loaded_bytes(self) -> int:
        return sum(a.nbytes for a in self._loaded.values())

    def activate(self, requests: Sequence[LoraRequest]) -> ActivationReport:
        """Load what is missing, evict beyond the bounds, and set the job's adapters and strengths."""
        report = ActivationReport()
        wanted: list[tuple[LoraRequest, LoadedAdapter]] = []
        for request in requests:
            started = time.perf_counter()
            adapter, fresh = self._ensure_loaded(request)
            if fresh:
                report.load_s += time.perf_counter() - started
                report.loaded.append(request.name)
            else:
                report.reused.append(request.name)
            if any(a.adapter_name == adapter.adapter_name for _, a in wanted):
                raise LoraRefused(f"loras: {request.name!r} is the same file as another requested LoRA")
            wanted.append((request, adapter))
        report.evicted = self._evict(keep={a.hashes.sha256 for _, a in wanted})
        started = time.perf_counter()
        self._set_active(wanted)
        report.switch_s = time.perf_counter() - started
        report.active = [
            {
                "name": r.name,
                "adapter": a.adapter_name,
                "strength": r.strength,
                "hash": a.hashes.short,
                "sha256": a.hashes.sha256,
            }
            for r, a in wanted
        ]
        return report

    def _ensure_loaded(self, request: LoraRequest) -> tuple[LoadedAdapter, bool]:
        path = check_lora_path(request.path, self.roots)
        header = read_header(path)
        hashes = file_hashes(path)
        if hashes.sha256 in self._loaded:
            self._loaded.move_to_end(hashes.sha256)
            return self._loaded[hashes.sha256], False
        check_fits(self.pipe.unet, header, path, self.family)
        adapter_name = f"lora_{hashes.sha256[:16]}"
        self._load_file(path, adapter_name)
        adapter = LoadedAdapter(adapter_name, path, hashes, path.stat().st_size)
        self._loaded[hashes.sha256] = adapter
        log.info("loaded LoRA %s (%s) as %s", request.name, path.name, adapter_name)
        return adapter, True

    def _load_file(self, path: Path, adapter_name: str) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise LoraRefused(f"lora: {path.name} cannot be read as safetensors: {exc}") from None
        try:
            self.pipe.load_lora_weights(state, adapter_name=adapter_name)
        except Exception as exc:  # diffusers/peft raise several types for keys or shapes that do not fit
            self._forget(adapter_name)
            raise LoraRefused(f"lora: {path.name} does not fit this {self.family} model: {exc}") from None

    def _evict(self, keep: set[str]) -> list[str]:
        evicted: list[str] = []
        for sha in list(self._loaded):
            if len(self._loaded) <= self.max_count and self.loaded_bytes <= self.max_bytes:
                break
            if sha in keep:
                continue
            adapter = self._loaded.pop(sha)
            self._forget(adapter.adapter_name)
            evicted.append(adapter.path.name)
        if len(self._loaded) > self.max_count or self.loaded_bytes > self.max_bytes:
            log.warning("the LoRAs of this job alone exceed the adapter cache bounds")
        return evicted

    def _forget(self, adapter_name: str) -> None:
        try:
            self.pipe.delete_adapters(adapter_name)
        except Exception:  # a half-loaded adapter may be unknown to some components
            log.debug("delete_adapters(%s) found nothing to delete", adapter_name)

    def _set_active(self, wanted: Sequence[tuple[LoraRequest, LoadedAdapter]]) -> None:
        if not wanted:
            if self._loaded and self._lora_enabled:
                self.pipe.disable_lora()
                self._lora_enabled = False
            return
        if not self._lora_enabled:
            self.pipe.enable_lora()
            self._lora_enabled = True
        self.pipe.set_adapters(
            [a.adapter_name for _, a in wanted], adapter_weights=[r.strength for r, _ in wanted]
        )
