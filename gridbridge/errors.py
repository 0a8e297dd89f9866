"""GridBridge's exception tree (rooted in :class:`optim.errors.GridBridgeError`).

::

    GridBridgeError                 (optim.errors)
    ├── MarketInputError            (optim.errors) inconsistent inputs handed to the core
    ├── InputError                  bad user input: a file, an option, a value
    │   ├── DataImportError         a raw data file (carbon, prices, reference) is unusable
    │   ├── BundleError             a market bundle failed validation (lists every problem)
    │   ├── FieldError              one field of a request is refused (``loc`` names it)
    │   ├── ConflictError           a request conflicts with what is stored (an id in use)
    │   └── NotFoundError           a named file, zone, site... does not exist
    ├── LedgerError                 a posting the ledger refuses (unbalanced, posted twice)
    ├── ExchangeError               the exchange's database is unusable or not initialised
    └── DemoError                   a step of ``gridbridge demo`` did not do what it should

Every message names the file/field and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optim.errors import GridBridgeError, MarketInputError

__all__ = [
    "MAX_ROWS_REPORTED",
    "BundleError",
    "ConflictError",
    "DataImportError",
    "DemoError",
    "ExchangeError",
    "FieldError",
    "GridBridgeError",
    "InputError",
    "LedgerError",
    "MarketInputError",
    "NotFoundError",
    "Problem",
]


#: Rows listed per (file, field, kind of problem) before one "... and N more" line.
MAX_ROWS_REPORTED = 20


class InputError(GridBridgeError, ValueError):
    """Bad user input: a malformed file, an out-of-range option, an unknown name."""

    exit_code = 2


class DataImportError(InputError):
    """A raw data file (Electricity Maps export, price CSV, reference table) is unusable."""

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> DataImportError:
        """One error for a file's problems: the problem itself, or one line per problem."""
        if len(problems) == 1:
            return cls(str(problems[0]))
        return cls("\n".join([f"{len(problems)} problems:", *(f"  - {p}" for p in problems)]))


class NotFoundError(InputError):
    """A file, zone, site or other named thing does not exist."""


class FieldError(InputError):
    """One field of a request is refused; ``loc`` names it as pydantic does.

    ``loc`` is the path to the field, e.g. ``("body", "options", 0, "gpu_type")``; the
    exchange answers it as a 422 shaped like FastAPI's own validation errors.
    """

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class ConflictError(InputError):
    """A request conflicts with what is already stored: an id in use, a round no longer open,
    a zone whose series already has another carbon signal. Nothing is written."""


class LedgerError(GridBridgeError):
    """The settlement ledger refuses a posting: unbalanced, malformed, or a round posted twice.

    Nothing is written when it is raised: a round's postings go in one transaction or not at
    all.
    """

    exit_code = 5


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation finding.

    ``row`` is the 1-based data row (the header is not counted; in a CSV the data row ``n``
    is on line ``n + 1``); ``None`` when the problem is about the whole file or column.
    """

    file: str
    row: int | None
    field: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message} — fix: {self.fix}"


class BundleError(InputError):
    """A market bundle is invalid; ``problems`` lists every finding (file, row, field, fix)."""

    def __init__(self, bundle: str, problems: list[Problem]) -> None:
        self.bundle = bundle
        self.problems = problems
        shown = problems[:50]
        lines = [f"market bundle {bundle} is invalid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in shown]
        if len(problems) > len(shown):
            lines.append(f"  ... and {len(problems) - len(shown)} more")
        super().__init__("\n".join(lines))


class ExchangeError(GridBridgeError):
    """The exchange cannot serve: its database is unusable, not initialised, or newer.

    The message names the database (password hidden) and the command that fixes it.
    """

    exit_code = 6


class DemoError(GridBridgeError):
    """A step of ``gridbridge demo`` failed: the exchange did not start or answer, an agent
    exited non-zero, a round failed. The message names the step and the log to read."""

    exit_code = 9
