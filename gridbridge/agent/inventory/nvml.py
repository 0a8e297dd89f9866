"""The GPUs of this machine through NVML (``nvidia-ml-py``, imported as ``pynvml``).

Each physical GPU is mapped from its device name to a GPU type
(:mod:`gridbridge.agent.inventory.gpu_names`); it counts as busy when it has running compute
processes, free otherwise. A GPU whose name is unknown is left out and reported in the
reading's notes with the fix. Without a driver (no GPU, no ``libnvidia-ml``) NVML raises
``NVMLError``; the source then reports itself unavailable, with NVML's own words.

The ``pynvml`` module is injected (default: the real one), so the mapping and counting are
tested with a fake of the same shape on machines without GPUs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

from gridbridge.agent.errors import InventoryUnavailable
from gridbridge.agent.inventory import InventoryReading, same_every_hour
from gridbridge.agent.inventory.gpu_names import resolve_gpu_type

__all__ = ["NvmlInventory", "load_pynvml"]


def load_pynvml() -> ModuleType:
    """The real ``pynvml`` module; a clear error when ``nvidia-ml-py`` is not installed."""
    try:
        import pynvml
    except ImportError:
        raise InventoryUnavailable(
            "NVML: the nvidia-ml-py package is not installed — fix: pip install nvidia-ml-py"
        ) from None
    return pynvml


def _text(value: str | bytes) -> str:
    # Old nvidia-ml-py releases return bytes, new ones str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class NvmlInventory:
    """Free GPUs on this host by type: those without running compute processes."""

    name = "nvml"

    def __init__(self, names: Mapping[str, str] | None = None, nvml: Any = None) -> None:
        self.names = dict(names or {})
        self._nvml = nvml

    def _module(self) -> Any:
        if self._nvml is None:
            self._nvml = load_pynvml()
        return self._nvml

    def snapshot(self) -> tuple[Counter[str], list[str]]:
        """``(free GPUs by type, notes)`` as NVML sees the host now."""
        nvml = self._module()
        error = getattr(nvml, "NVMLError", Exception)
        try:
            nvml.nvmlInit()
        except error as exc:
            raise InventoryUnavailable(
                f"NVML cannot start ({exc}): no NVIDIA driver or GPU on this host — fix: run "
                "the agent on the GPU host, or use [inventory] source = \"slurm\" or \"static\""
            ) from None
        free: Counter[str] = Counter()
        notes: list[str] = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = _text(nvml.nvmlDeviceGetName(handle))
                gpu_type = resolve_gpu_type(name, self.names)
                if gpu_type is None:
                    notes.append(
                        f"NVML GPU {index} '{name}' is not a known GPU type and is not "
                        f"reported — fix: add [inventory] names = {{ \"{name}\" = \"TYPE\" }} "
                        "with the exchange's type name")
                    continue
                busy = len(nvml.nvmlDeviceGetComputeRunningProcesses(handle)) > 0
                free[gpu_type] += 0 if busy else 1
        except error as exc:
            raise InventoryUnavailable(f"NVML failed while reading the GPUs: {exc}") from None
        finally:
            # Shutting down a half-initialised library must not hide the reading's error.
            with contextlib.suppress(error):
                nvml.nvmlShutdown()
        return free, notes

    def free_gpus(self, hours: Sequence[datetime]) -> InventoryReading:
        """The snapshot repeated for every hour (see the package docstring)."""
        free, notes = self.snapshot()
        return same_every_hour(self.name, free, hours, notes)
