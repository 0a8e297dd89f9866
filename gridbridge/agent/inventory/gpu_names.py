"""Device names as NVML (and Slurm's NVML autodetection) spell them -> the exchange's GPU types.

The exchange's GPU types are the catalogue in ``datasets/bridge-2023/gpus.csv`` (``H100`` is
the SXM5 80 GB board, ``A100`` the SXM4 80 GB, ...). A device is mapped only when its name
says exactly which board it is: an A100 40 GB or an H100 PCIe is not in the catalogue, so it
is reported as unknown rather than counted as something it is not. Sites add their own
names with ``[inventory] names = { "NVIDIA H100 PCIe" = "H100PCIE" }``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["KNOWN_NAMES", "name_key", "resolve_gpu_type"]

#: NVML device name (``nvidia-smi --query-gpu=name``) -> GPU type.
KNOWN_NAMES: dict[str, str] = {
    "NVIDIA H100 80GB HBM3": "H100",          # H100 SXM5 (DGX/HGX H100)
    "NVIDIA H100 SXM5 80GB": "H100",
    "NVIDIA H100 NVL": "H100NVL",
    "NVIDIA A100-SXM4-80GB": "A100",          # A100 SXM4 80 GB (DGX/HGX A100)
    "NVIDIA A100 80GB PCIe": "A100PCIE",
    "NVIDIA GH200 480GB": "GH200",            # Grace Hopper superchip, 96 GB HBM3
    "NVIDIA GH200 144G HBM3e": "GH200",       # Grace Hopper superchip, 144 GB HBM3e
    "NVIDIA L40S": "L40S",
}


def name_key(name: str) -> str:
    """Spelling-insensitive key: 'NVIDIA A100-SXM4-80GB' and Slurm's autodetected
    'nvidia_a100-sxm4-80gb' both become 'nvidia_a100_sxm4_80gb'."""
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_")


def resolve_gpu_type(name: str, extra: Mapping[str, str] | None = None) -> str | None:
    """The GPU type for a device name, or ``None`` when it is not known.

    ``extra`` (the site's own mapping) is consulted first, then :data:`KNOWN_NAMES`; both
    match exactly or by :func:`name_key`.
    """
    for table in (extra or {}, KNOWN_NAMES):
        if name in table:
            return table[name]
        by_key = {name_key(k): v for k, v in table.items()}
        if name_key(name) in by_key:
            return by_key[name_key(name)]
    return None
