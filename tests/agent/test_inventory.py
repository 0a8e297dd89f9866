"""Inventory sources: static files, NVML (a fake pynvml; the real one only with a GPU),
Slurm (recorded ``scontrol -d -o show node`` and ``sinfo`` output)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridbridge.agent.build import build_inventory
from gridbridge.agent.config import InventorySettings
from gridbridge.agent.errors import InventoryUnavailable
from gridbridge.agent.hourly import next_hours
from gridbridge.agent.inventory.gpu_names import resolve_gpu_type
from gridbridge.agent.inventory.nvml import NvmlInventory
from gridbridge.agent.inventory.slurm import (
    SlurmInventory,
    parse_gres,
    parse_scontrol_nodes,
    run_command,
)
from gridbridge.agent.inventory.static import StaticInventory
from tests.agent.conftest import DATA

HOURS = next_hours(datetime(2023, 7, 3, 13, 10, tzinfo=UTC), 3)  # 14:00Z, 15:00Z, 16:00Z

# ---------------------------------------------------------------- static


def test_static_inline_and_toml_file_with_hourly_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gpus.toml"
    path.write_text('[gpus]\nH100 = 64\n\n[[hours]]\nhour_utc = "2023-07-03T15:00Z"\n'
                    "gpus = { H100 = 16, A100 = 8 }\n")
    reading = StaticInventory(gpus={"H100": 32, "L40S": 4}, path=path).free_gpus(HOURS)
    assert reading.free == {HOURS[0]: {"H100": 64, "L40S": 4},
                            HOURS[1]: {"H100": 16, "L40S": 4, "A100": 8},
                            HOURS[2]: {"H100": 64, "L40S": 4}}
    # Edited between cycles: the next reading sees the edit without a restart.
    path.write_text("[gpus]\nH100 = 0\n")
    assert StaticInventory(path=path).free_gpus(HOURS[:1]).free == {HOURS[0]: {"H100": 0}}


def test_static_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "gpus.csv"
    path.write_text("gpu_type,gpus_free,hour_utc\nH100,64,\nH100,10,2023-07-03T16:00Z\n"
                    "A100,8,\n")
    free = StaticInventory(path=path).free_gpus(HOURS).free
    assert free[HOURS[0]] == {"H100": 64, "A100": 8}
    assert free[HOURS[2]] == {"H100": 10, "A100": 8}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("gpus.csv", "gpu_type,gpus_free\nH100,-3\n", "row 1, field 'gpus_free': '-3' is not a "
                                                  "whole number"),
    ("gpus.csv", "type,free\nH100,3\n", "the header must name gpu_type and gpus_free"),
    ("gpus.csv", "gpu_type,gpus_free,hour_utc\nH100,3,2023-07-03T14:30Z\n",
     "row 1: '2023-07-03T14:30Z' is not on a whole hour"),
    ("gpus.toml", "[gpus]\nH100 = 2.5\n", "[gpus] H100: 2.5 is not a whole number"),
    ("gpus.toml", "[gpu]\nH100 = 2\n", "unknown key(s) ['gpu']"),
    ("gpus.toml", "[gpus]\n'H 100' = 2\n", "'H 100' is not a GPU type name"),
])
def test_static_file_problems_name_the_place(tmp_path: Path, name: str, text: str,
                                             message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InventoryUnavailable) as caught:
        StaticInventory(path=path).free_gpus(HOURS)
    assert message in str(caught.value)
    with pytest.raises(InventoryUnavailable, match="no such inventory file"):
        StaticInventory(path=tmp_path / "missing.toml").free_gpus(HOURS)


def test_cap_limits_what_any_source_offers() -> None:
    source = build_inventory(InventorySettings("static", {"gpus": {"H100": 64, "A100": 8}},
                                               cap={"H100": 24}))
    assert source.free_gpus(HOURS[:1]).free == {HOURS[0]: {"H100": 24, "A100": 8}}


# ---------------------------------------------------------------- NVML


class FakeNvmlError(Exception):
    pass


class FakePynvml:
    """The parts of pynvml the source uses, over a list of (name, running processes)."""

    NVMLError = FakeNvmlError

    def __init__(self, gpus: Sequence[tuple[str | bytes, int]], init_error: bool = False
                 ) -> None:
        self.gpus, self.init_error = list(gpus), init_error
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise FakeNvmlError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        return self.gpus[handle][0]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[object]:
        return [object()] * self.gpus[handle][1]


def test_nvml_maps_names_to_types_and_counts_gpus_without_processes() -> None:
    fake = FakePynvml([("NVIDIA H100 80GB HBM3", 0), ("NVIDIA H100 80GB HBM3", 2),
                       (b"NVIDIA H100 80GB HBM3", 0), ("NVIDIA H100 80GB HBM3", 1),
                       ("NVIDIA A100-SXM4-80GB", 0), ("NVIDIA H200", 0)])
    reading = NvmlInventory(nvml=fake).free_gpus(HOURS)
    assert reading.source == "nvml"
    assert reading.free[HOURS[0]] == {"H100": 2, "A100": 1}
    assert reading.free[HOURS[0]] == reading.free[HOURS[2]]  # the snapshot, every hour
    assert len(reading.notes) == 1
    assert "NVML GPU 5 'NVIDIA H200' is not a known GPU type" in reading.notes[0]
    assert 'names = { "NVIDIA H200" = "TYPE" }' in reading.notes[0]
    assert fake.shutdowns == 1
    # The site's own names map what the table does not know.
    named = NvmlInventory(names={"NVIDIA H200": "H200"}, nvml=fake).free_gpus(HOURS[:1])
    assert named.free[HOURS[0]] == {"H100": 2, "A100": 1, "H200": 1} and not named.notes


def test_nvml_without_a_driver_is_unavailable() -> None:
    with pytest.raises(InventoryUnavailable, match=r"NVML cannot start \(NVML Shared Library "
                                                   r"Not Found\): no NVIDIA driver"):
        NvmlInventory(nvml=FakePynvml([], init_error=True)).free_gpus(HOURS)


def test_gpu_name_table_is_strict_about_boards() -> None:
    assert resolve_gpu_type("NVIDIA H100 80GB HBM3") == "H100"
    assert resolve_gpu_type("NVIDIA H100 NVL") == "H100NVL"
    assert resolve_gpu_type("NVIDIA A100 80GB PCIe") == "A100PCIE"
    assert resolve_gpu_type("nvidia_gh200_480gb") == "GH200"  # Slurm's autodetected spelling
    assert resolve_gpu_type("NVIDIA A100-SXM4-40GB") is None  # not the catalogue's A100
    assert resolve_gpu_type("NVIDIA H100 PCIe") is None


def test_real_nvml_when_this_host_has_a_gpu() -> None:
    # Plain skip, not require_part: CI machines never have GPUs, and that is not a defect.
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA GPU or driver on this host ({exc})")
    pynvml.nvmlShutdown()
    reading = NvmlInventory().free_gpus(HOURS)
    assert sum(reading.free[HOURS[0]].values()) + len(reading.notes) >= 1


# ---------------------------------------------------------------- Slurm


def recorded_runner(calls: list[list[str]]):
    def run(argv: Sequence[str], timeout_s: float) -> str:
        calls.append(list(argv))
        name = "sinfo_N_gpu.txt" if argv[0] == "sinfo" else "scontrol_show_node_d_o.txt"
        return (DATA / name).read_text()
    return run


def test_slurm_counts_free_gpus_per_type_from_recorded_output() -> None:
    calls: list[list[str]] = []
    reading = SlurmInventory(runner=recorded_runner(calls)).free_gpus(HOURS)
    assert calls == [["scontrol", "-d", "-o", "show", "node"]]
    # gpu001 8-4, gpu002 8, gpu003 allocated, gpu004 drained, gpu005 down, gpu006 8-5;
    # a100-01 4-1; gh-01 (autodetected name) 1; old-01 untyped: left out with a note.
    assert reading.free[HOURS[0]] == {"H100": 15, "A100": 3, "GH200": 1}
    assert reading.notes == ("Slurm GRES '(untyped gpu)' is not a known GPU type and is not "
                             'reported — fix: set [inventory] untyped_gpu_type = "H100"',)
    typed = SlurmInventory(untyped_gpu_type="L40S", runner=recorded_runner([]))
    assert typed.free_gpus(HOURS[:1]).free[HOURS[0]]["L40S"] == 2


def test_slurm_partition_uses_sinfo_to_pick_nodes() -> None:
    calls: list[list[str]] = []
    inventory = SlurmInventory(partition="gpu", runner=recorded_runner(calls))
    assert inventory.free_gpus(HOURS[:1]).free[HOURS[0]] == {"H100": 15, "A100": 3}
    assert calls[1] == ["sinfo", "-N", "-h", "-p", "gpu", "-o", "%N %G %T"]


def test_gres_parsing_edge_cases() -> None:
    assert parse_gres("gpu:h100:8(S:0-1)") == {"h100": 8}
    assert parse_gres("gpu:h100:4(IDX:0-1,4-5),shard:h100:0(0/4,0/4)") == {"h100": 4}
    assert parse_gres("gpu:4") == {None: 4}
    assert parse_gres("gpu:a100:2,gpu:h100:6") == {"a100": 2, "h100": 6}
    assert parse_gres("(null)") == {} and parse_gres("") == {}
    # Without -d there is no GresUsed: AllocTRES says what is in use.
    line = ("NodeName=n1 Gres=gpu:h100:8(S:0-1) State=MIXED "
            "AllocTRES=cpu=16,mem=64G,gres/gpu=3,gres/gpu:h100=3 Partitions=gpu")
    assert parse_scontrol_nodes(line)[0].used == {"h100": 3}


def test_slurm_command_failures_are_unavailable() -> None:
    with pytest.raises(InventoryUnavailable, match="'no-such-scontrol' was not found"):
        run_command(["no-such-scontrol", "show", "node"], 5)
    with pytest.raises(InventoryUnavailable, match=r"did not finish within 0.2 s"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], 0.2)
    with pytest.raises(InventoryUnavailable, match=r"failed \(exit 3\): slurm_load_node"):
        run_command([sys.executable, "-c", "import sys; sys.stderr.write('slurm_load_node: "
                     "Unable to contact slurm controller'); sys.exit(3)"], 5)
    empty = SlurmInventory(partition="nope", runner=lambda argv, t: "")
    with pytest.raises(InventoryUnavailable, match="partition 'nope' has no nodes"):
        empty.free_gpus(HOURS)
