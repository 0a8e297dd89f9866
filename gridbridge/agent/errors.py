"""The site agent's branch of GridBridge's exception tree.

::

    GridBridgeError
    ├── InputError (exit 2)
    │   └── AgentConfigError      site.toml is wrong: names file, key and fix
    └── AgentError (exit 6)
        ├── ProviderError         an inventory source or carbon/price provider cannot answer
        │   └── InventoryUnavailable
        ├── DeliveryError (6)     ``--once`` ended with reports still in the spool
        ├── NoReadingError (7)    ``--once`` could not build a report this cycle
        └── RefusedError (8)      ``--once``: the exchange refused a report (dead-lettered)

Exit statuses of ``gridbridge agent run``: 0 done, 2 bad configuration, 6 backlog left in
the spool, 7 no report could be built (every provider of one kind failed), 8 the exchange
refused a report for its content (kept in the spool's dead-letter table).
"""

from __future__ import annotations

from collections.abc import Sequence

from gridbridge.errors import GridBridgeError, InputError, Problem

__all__ = [
    "AgentConfigError",
    "AgentError",
    "DeliveryError",
    "InventoryUnavailable",
    "NoReadingError",
    "ProviderError",
    "RefusedError",
]


class AgentConfigError(InputError):
    """``site.toml`` (or a file it names) is invalid; lists every problem with its fix."""

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> AgentConfigError:
        """One error for all problems, one line each."""
        if len(problems) == 1:
            return cls(str(problems[0]))
        return cls("\n".join([f"{len(problems)} problems:", *(f"  - {p}" for p in problems)]))


class AgentError(GridBridgeError):
    """The agent could not do its job this time (retried on the next cycle when running)."""

    exit_code = 6


class ProviderError(AgentError):
    """A data source (inventory, carbon or price provider) cannot answer right now."""


class InventoryUnavailable(ProviderError):
    """An inventory source cannot say how many GPUs are free (no NVML, no Slurm, bad file)."""


class DeliveryError(AgentError):
    """Reports are still waiting in the spool after ``--once`` (they are sent next time)."""

    exit_code = 6


class NoReadingError(AgentError):
    """No report could be built this cycle: an inventory, carbon or price chain failed."""

    exit_code = 7


class RefusedError(AgentError):
    """The exchange refused a report for its content; it is in the spool's dead letters."""

    exit_code = 8
