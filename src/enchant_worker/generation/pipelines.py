"""Resident base pipelines: loaded once per worker, kept on the device, each with its LoRA cache."""

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

MAX_RESIDENT_PIPELINES = 1  # one base model on the GPU at a time; switching models reloads


@dataclass
class ResidentPipeline:
    spec: ModelSpec
    pipe: object
    policy: DevicePolicy
    adapters: AdapterCache
    load_s: float


class PipelineCache:
    """Keeps up to `max_resident` base pipelines; `get()` says how long the load took (0.0 when cached)."""

    def __init__(
        self,
        policy: DevicePolicy,
        lora_roots: Sequence[Path],
        max_resident: int = MAX_RESIDENT_PIPELINES,
        max_adapters: int = 8,
        max_adapter_bytes: int = 2 * 1024**3,
    ):
        self.policy = policy
        self.lora_roots = [Path(p) for p in lora_roots]
        self.max_resident = max_resident
        self.max_adapters = max_adapters
        self.max_adapter_bytes = max_adapter_bytes
        self._resident: OrderedDict[str, ResidentPipeline] = OrderedDict()
        self._lock = threading.Lock()

    def is_resident(self, name: str) -> bool:
        """Whether the model is loaded now (a progress label; it may be evicted the next moment)."""
        return name in self._resident

    def get(self, spec: ModelSpec) -> tuple[ResidentPipeline, float]:
        """The resident pipeline of `spec` and the seconds spent loading it now (0.0 when resident)."""
        with self._lock:
            if spec.name in self._resident:
                self._resident.move_to_end(spec.name)
                return self._resident[spec.name], 0.0
            while len(self._resident) >= self.max_resident:
                name, _ = self._resident.popitem(last=False)
                log.info("unloading model %s", name)
                free_memory()
            started = time.perf_counter()
            pipe = apply_policy(load_pipeline(spec, self.policy.dtype), self.policy)
            load_s = time.perf_counter() - started
            adapters = AdapterCache(
                pipe,
                self.lora_roots,
                family=spec.family,
                max_count=self.max_adapters,
                max_bytes=self.max_adapter_bytes,
            )
            resident = ResidentPipeline(spec, pipe, self.policy, adapters, load_s)
            self._resident[spec.name] = resident
            log.info("loaded model %s in %.2f s", spec.name, load_s)
            return resident, load_s

    def adopt(self, spec: ModelSpec, pipe) -> ResidentPipeline:
        """Make an in-memory pipeline (e.g. random real-architecture weights) resident under `spec`."""
        with self._lock:
            pipe = apply_policy(pipe, self.policy)
            adapters = AdapterCache(
                pipe,
                self.lora_roots,
                family=spec.family,
                max_count=self.max_adapters,
                max_bytes=self.max_adapter_bytes,
            )
            resident = ResidentPipeline(spec, pipe, self.policy, adapters, 0.0)
            self._resident[spec.name] = resident
            return resident

    def clear(self) -> None:
        with self._lock:
            self._resident.clear()
        free_memory()
