"""Free GPUs of a Slurm cluster, from ``scontrol -d -o show node`` (and ``sinfo`` per partition).

``scontrol -d -o show node`` prints one line per node with ``Gres=gpu:h100:8(S:0-1)`` (GPUs
configured), ``GresUsed=gpu:h100:4(IDX:0-3)`` (GPUs allocated to jobs; shown with ``-d``,
otherwise read from ``AllocTRES=...,gres/gpu:h100=4``) and the node's ``State``
(``MIXED``, ``IDLE+DRAIN``, ``DOWN+NOT_RESPONDING``...). A node's free GPUs of a
type are configured minus used, and 0 when the node cannot take jobs (down, drained or
draining, failing, in maintenance, reserved, powered down, not responding) or is wholly
allocated. With a ``partition``, ``sinfo -N -h -p PART -o "%N %G %T"`` names the nodes
that belong to it (its state flags count too: ``down*``, ``idle~``, ``drained``).

GRES type names map to the exchange's GPU types: ``h100`` -> ``H100`` and the other
catalogue names by spelling; Slurm's NVML autodetection names (``nvidia_h100_80gb_hbm3``)
through :mod:`gridbridge.agent.inventory.gpu_names`; a site's own ``gres_types`` first.
An untyped ``gpu:8`` needs ``untyped_gpu_type``. The commands run with a timeout; the runner
is injected so that tests parse recorded output.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gridbridge.agent.errors import InventoryUnavailable
from gridbridge.agent.inventory import InventoryReading, same_every_hour
from gridbridge.agent.inventory.gpu_names import resolve_gpu_type

__all__ = [
    "CATALOGUE_TYPES",
    "NodeGpus",
    "SlurmInventory",
    "free_by_type",
    "parse_gres",
    "parse_scontrol_nodes",
    "parse_sinfo_nodes",
    "run_command",
]

#: The exchange's GPU types, matched case-insensitively against GRES type names.
CATALOGUE_TYPES = ("H100", "H100NVL", "A100", "A100PCIE", "GH200", "L40S", "MI300X")

#: Node state words (scontrol ``State`` parts, sinfo ``%T`` without flags) that mean the
#: node's GPUs cannot be given to a job now.
UNAVAILABLE_STATES = frozenset({
    "DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "MAINT", "NOT_RESPONDING",
    "NO_RESPOND", "POWERED_DOWN", "POWERING_DOWN", "POWER_DOWN", "POWERING_UP",
    "REBOOT_REQUESTED", "REBOOT_ISSUED", "RESERVED", "FUTURE", "UNKNOWN", "INVAL", "BLOCKED",
    "ALLOCATED", "ALLOC",
})
#: sinfo's one-character state suffixes: not responding, powered off, powering up, pending
#: power down, powering down, maintenance, pending reboot, reboot issued.
UNAVAILABLE_FLAGS = frozenset("*~#!%$@^")

Runner = Callable[[Sequence[str], float], str]


def run_command(argv: Sequence[str], timeout_s: float) -> str:
    """Run a Slurm command and return its stdout; a clear error when it cannot."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except FileNotFoundError:
        raise InventoryUnavailable(
            f"Slurm: '{argv[0]}' was not found — fix: run the agent on a host with the Slurm "
            "client tools, or set [inventory] scontrol/sinfo to their full paths") from None
    except subprocess.TimeoutExpired:
        raise InventoryUnavailable(
            f"Slurm: '{' '.join(argv)}' did not finish within {timeout_s:g} s (slurmctld "
            "busy or unreachable); the next cycle tries again") from None
    if done.returncode != 0:
        raise InventoryUnavailable(f"Slurm: '{' '.join(argv)}' failed (exit "
                                   f"{done.returncode}): {done.stderr.strip()[:300]}")
    return done.stdout


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses: 'gpu:h100:4(IDX:0-1,4-5),shard:8'."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_GRES_ITEM = re.compile(r"^(?P<name>[^:()]+)(?::(?P<type>[^:()]+))?(?::(?P<count>\d+))?"
                        r"(?:\(.*\))?$")


def parse_gres(text: str) -> dict[str | None, int]:
    """GPU counts by GRES type in a ``Gres``/``GresUsed``/``%G`` value.

    'gpu:h100:8(S:0-1)' -> {'h100': 8}; 'gpu:4' -> {None: 4}; '(null)' -> {}; other GRES
    (shard, mps, license) are ignored. A typed GRES without a count (``gpu:h100``) is 1,
    as Slurm reads it.
    """
    counts: dict[str | None, int] = {}
    if text.strip() in ("", "(null)", "N/A"):
        return counts
    for item in _split_top(text):
        match = _GRES_ITEM.match(item)
        if not match or match["name"] != "gpu":
            continue
        gres_type, count = match["type"], match["count"]
        if gres_type is not None and gres_type.isdigit() and count is None:
            gres_type, count = None, gres_type  # 'gpu:8' is untyped with count 8
        counts[gres_type] = counts.get(gres_type, 0) + int(count if count is not None else 1)
    return counts


@dataclass(frozen=True, slots=True)
class NodeGpus:
    """One node's GPUs: configured and used per GRES type, and whether it takes jobs."""

    node: str
    configured: dict[str | None, int]
    used: dict[str | None, int]
    state: str
    available: bool


def _state_available(state: str) -> bool:
    words = {w for w in re.split(r"[+]", state.upper()) if w}
    flags = {c for c in state if c in UNAVAILABLE_FLAGS}
    return not (flags or {w.rstrip("".join(UNAVAILABLE_FLAGS)) for w in words}
                & UNAVAILABLE_STATES)


_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:.]*)=")


def _fields(line: str) -> dict[str, str]:
    """key=value pairs of one ``scontrol -o`` line (values may contain spaces)."""
    matches = list(_KEY.finditer(line))
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        fields[match[1]] = line[match.end():end].strip()
    return fields


def _alloc_tres(text: str, configured: dict[str | None, int]) -> dict[str | None, int]:
    """GPUs in use from ``AllocTRES`` ('cpu=64,gres/gpu=4,gres/gpu:h100=4' -> {'h100': 4})."""
    typed: dict[str | None, int] = {}
    total = 0
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name == "gres/gpu" and value.isdigit():
            total = int(value)
        elif name.startswith("gres/gpu:") and value.isdigit():
            typed[name.removeprefix("gres/gpu:")] = int(value)
    if typed or not total:
        return typed
    # An untyped count on a node with one GPU type belongs to that type.
    return {next(iter(configured)): total} if len(configured) == 1 else {None: total}


def parse_scontrol_nodes(text: str) -> list[NodeGpus]:
    """Nodes of ``scontrol -d -o show node`` output (one node per line)."""
    nodes = []
    for line in text.splitlines():
        if not line.strip().startswith("NodeName="):
            continue
        fields = _fields(line.strip())
        state = fields.get("State", "UNKNOWN")
        configured = parse_gres(fields.get("Gres", ""))
        used = (parse_gres(fields["GresUsed"]) if "GresUsed" in fields
                else _alloc_tres(fields.get("AllocTRES", ""), configured))
        nodes.append(NodeGpus(node=fields["NodeName"], configured=configured, used=used,
                              state=state, available=_state_available(state)))
    return nodes


def parse_sinfo_nodes(text: str) -> dict[str, str]:
    """Node -> state from ``sinfo -N -h -o "%N %G %T"`` lines ('gpu001 gpu:h100:8 mixed')."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        # A node listed twice (two partitions) keeps its worst state.
        if len(parts) >= 3 and (parts[0] not in states or not _state_available(parts[-1])):
            states[parts[0]] = parts[-1]
    return states


def free_by_type(nodes: Sequence[NodeGpus], gres_types: Mapping[str, str],
                 untyped: str | None) -> tuple[Counter[str], list[str]]:
    """Free GPUs by exchange GPU type over ``nodes``, and notes on what was left out."""
    by_key = {t.casefold(): t for t in CATALOGUE_TYPES}
    free: Counter[str] = Counter()
    notes: list[str] = []
    unknown: set[str] = set()
    for node in nodes:
        for gres_type, configured in node.configured.items():
            if gres_type is None:
                gpu_type = untyped
                if gpu_type is None:
                    unknown.add("(untyped gpu)")
                    continue
            else:
                gpu_type = (gres_types.get(gres_type) or by_key.get(gres_type.casefold())
                            or resolve_gpu_type(gres_type))
                if gpu_type is None:
                    unknown.add(gres_type)
                    continue
            used = node.used.get(gres_type, 0)
            free[gpu_type] += max(0, configured - used) if node.available else 0
    for name in sorted(unknown):
        fix = ('set [inventory] untyped_gpu_type = "H100"' if name == "(untyped gpu)"
               else f'add [inventory] gres_types = {{ {name} = "TYPE" }}')
        notes.append(f"Slurm GRES '{name}' is not a known GPU type and is not reported — "
                     f"fix: {fix}")
    return free, notes


class SlurmInventory:
    """Free GPUs of the cluster (or one partition), from Slurm's own commands."""

    name = "slurm"

    def __init__(self, *, partition: str | None = None,
                 gres_types: Mapping[str, str] | None = None,
                 untyped_gpu_type: str | None = None, scontrol: str = "scontrol",
                 sinfo: str = "sinfo", timeout_s: float = 10.0,
                 runner: Runner = run_command) -> None:
        self.partition = partition
        self.gres_types = dict(gres_types or {})
        self.untyped_gpu_type = untyped_gpu_type
        self.scontrol, self.sinfo = scontrol, sinfo
        self.timeout_s = timeout_s
        self.runner = runner

    def nodes(self) -> list[NodeGpus]:
        """The nodes to count, with the partition's view of their state when one is set."""
        nodes = parse_scontrol_nodes(
            self.runner([self.scontrol, "-d", "-o", "show", "node"], self.timeout_s))
        if self.partition is None:
            return nodes
        states = parse_sinfo_nodes(self.runner(
            [self.sinfo, "-N", "-h", "-p", self.partition, "-o", "%N %G %T"], self.timeout_s))
        if not states:
            raise InventoryUnavailable(
                f"Slurm: partition '{self.partition}' has no nodes (sinfo listed none) — fix: "
                "check [inventory] partition against `sinfo -s`")
        return [NodeGpus(n.node, n.configured, n.used, states[n.node],
                         n.available and _state_available(states[n.node]))
                for n in nodes if n.node in states]

    def free_gpus(self, hours: Sequence[datetime]) -> InventoryReading:
        """The cluster's free GPUs now, for every hour (see the package docstring)."""
        free, notes = free_by_type(self.nodes(), self.gres_types, self.untyped_gpu_type)
        return same_every_hour(self.name, free, hours, notes)
