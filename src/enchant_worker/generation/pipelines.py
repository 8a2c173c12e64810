"""Resident base pipelines: loaded once per worker, kept on the device, each with its LoRA cache.

The pipelines are an LRU bounded by the device's memory: on CUDA a model is loaded only when it fits the
free memory (less a reserve for activations), evicting the least recently used ones until it does; on the
CPU by a configured byte budget, else by count (one model by default, as on a GPU with room for one).
A configured count or byte budget applies on CUDA too. The worker reads `resident()` to prefer jobs
whose model and LoRAs are already loaded (README "Affinity").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from enchant_worker.generation.adapters import AdapterCache
from enchant_worker.generation.device import DevicePolicy, apply_policy, free_memory
from enchant_worker.generation.model_registry import ModelSpec, load_pipeline

log = logging.getLogger(__name__)

CPU_DEFAULT_MODELS = 1  # on the CPU with no budget configured: one base model, as before
CUDA_RESERVE_BYTES = 2 * 1024**3  # free GPU memory kept for activations and LoRAs when fitting a model
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")


@dataclass(frozen=True)
class ResidencyBudget:
    """How many base pipelines may stay resident. max_models / max_bytes: configured bounds (None: not
    bounded by it); with neither, CUDA fits models to its free memory and the CPU keeps one."""

    max_models: int | None = None
    max_bytes: int | None = None
    reserve_bytes: int = CUDA_RESERVE_BYTES

    def __post_init__(self) -> None:
        if self.max_models is not None and self.max_models < 1:
            raise ValueError(f"model cache max_models must be at least 1, not {self.max_models}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError(f"model cache max_bytes must be positive, not {self.max_bytes}")


@dataclass
class ResidentPipeline:
    spec: ModelSpec
    pipe: object
    policy: DevicePolicy
    adapters: AdapterCache
    load_s: float
    nbytes: int = 0  # weights on the device (parameters and buffers of every component)


def pipeline_bytes(pipe) -> int:
    """Bytes of a pipeline's weights: parameters and buffers of its torch modules."""
    total = 0
    for component in getattr(pipe, "components", {}).values():
        for tensors in (getattr(component, "parameters", None), getattr(component, "buffers", None)):
            if callable(tensors):
                total += sum(t.numel() * t.element_size() for t in tensors())
    return total


def weights_on_disk(spec: ModelSpec) -> int:
    """The size of a model's weight files: the estimate of its footprint before its first load."""
    path = spec.path
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)


class PipelineCache:
    """Keeps base pipelines resident within `budget`, least recently used evicted first; `get()` says how
    long the load took (0.0 when resident)."""

    def __init__(
        self,
        policy: DevicePolicy,
        lora_roots: Sequence[Path],
        budget: ResidencyBudget | None = None,
        max_adapters: int = 8,
        max_adapter_bytes: int = 2 * 1024**3,
    ):
        self.policy = policy
        self.lora_roots = [Path(p) for p in lora_roots]
        self.budget = budget or ResidencyBudget()
        self.max_adapters = max_adapters
        self.max_adapter_bytes = max_adapter_bytes
        self.loads = 0  # base model loads since start (the affinity benchmark counts them)
        self._resident: OrderedDict[str, ResidentPipeline] = OrderedDict()
        self._known_bytes: dict[str, int] = {}  # measured at an earlier load: a better estimate than files
        self._lock = threading.Lock()  # one load at a time (held for seconds)
        self._state = threading.Lock()  # the dict itself (held for microseconds: the heartbeat reads it)

    def is_resident(self, name: str) -> bool:
        """Whether the model is loaded now (a progress label; it may be evicted the next moment)."""
        return name in self._resident

    def resident(self) -> dict[str, frozenset[str]]:
        """The resident models, most recent last, each with the SHA-256 of the LoRA files loaded into it.
        Never waits for a load in progress (the worker's heartbeat asks)."""
        with self._state:
            items = list(self._resident.items())
        for _ in range(3):
            try:
                return {name: frozenset(a.hashes.sha256 for a in r.adapters.loaded) for name, r in items}
            except RuntimeError:  # a job loaded or evicted an adapter meanwhile: read again
                continue
        return {name: frozenset() for name, _ in items}

    def get(self, spec: ModelSpec) -> tuple[ResidentPipeline, float]:
        """The resident pipeline of `spec` and the seconds spent loading it now (0.0 when resident)."""
        with self._lock:
            with self._state:
                if spec.name in self._resident:
                    self._resident.move_to_end(spec.name)
                    return self._resident[spec.name], 0.0
            self._make_room(self._known_bytes.get(spec.name) or weights_on_disk(spec))
            started = time.perf_counter()
            pipe = apply_policy(load_pipeline(spec, self.policy.dtype), self.policy)
            load_s = time.perf_counter() - started
            self.loads += 1
            resident = self._keep(spec, pipe, load_s)
            log.info("loaded model %s in %.2f s (%.0f MiB)", spec.name, load_s, resident.nbytes / 2**20)
            return resident, load_s

    def _make_room(self, need: int) -> None:
        """Evicts least recently used pipelines until one of `need` bytes fits (or none is left)."""
        while self._resident and not self._fits(need):
            with self._state:
                name = next(iter(self._resident))
                del self._resident[name]  # the last reference: free_memory() can then give its memory back
            log.info("unloading model %s (least recently used)", name)
            free_memory(host=True)

    def _fits(self, need: int) -> bool:
        budget, count = self.budget, len(self._resident)
        max_models = budget.max_models
        if max_models is None and budget.max_bytes is None and not self.policy.is_cuda:
            max_models = CPU_DEFAULT_MODELS
        if max_models is not None and count >= max_models:
            return False
        if budget.max_bytes is not None:
            return sum(r.nbytes for r in self._resident.values()) + need <= budget.max_bytes
        if self.policy.is_cuda:
            import torch

            free, _ = torch.cuda.mem_get_info(self.policy.device)
            return need + budget.reserve_bytes <= free
        return True

    def _keep(self, spec: ModelSpec, pipe, load_s: float) -> ResidentPipeline:
        adapters = AdapterCache(
            pipe,
            self.lora_roots,
            family=spec.family,
            max_count=self.max_adapters,
            max_bytes=self.max_adapter_bytes,
        )
        resident = ResidentPipeline(spec, pipe, self.policy, adapters, load_s, pipeline_bytes(pipe))
        self._known_bytes[spec.name] = resident.nbytes
        with self._state:
            self._resident[spec.name] = resident
        return resident

    def adopt(self, spec: ModelSpec, pipe) -> ResidentPipeline:
        """Make an in-memory pipeline (e.g. random real-architecture weights) resident under `spec`."""
        with self._lock:
            return self._keep(spec, apply_policy(pipe, self.policy), 0.0)

    def clear(self) -> None:
        with self._lock, self._state:
            self._resident.clear()
        free_memory(host=True)
