"""Everything a settlement report reads, checked once: the clearing folder, its bundle, the lines.

Read-only: nothing here writes a file or touches the database. A report is built from

* the clearing's files (:func:`gridbridge.clearing.read_clearing`): ``placements.csv``,
  ``rejected.csv``, ``summary.json``;
* the market bundle it was cleared from (``summary.json``'s ``bundle``, relative to the
  clearing folder): members, sites (each site's member and zone), capacity (for
  utilisation), bids (each rejected bid's member) and the grid (the intensity source);
* the round's ledger lines: ``ledger.csv`` of the folder, or the lines a caller read from the
  ledger database. Either way they must be the same round, balance to exactly 0 cents and
  name only bids the clearing accepted, or the report would not reconcile; anything else is
  an :class:`~gridbridge.errors.InputError` naming the source and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from gridbridge.bundle import read_bundle
from gridbridge.clearing import read_clearing
from gridbridge.errors import InputError, NotFoundError
from gridbridge.hours import HOUR_FORMAT
from gridbridge.ledger import POSTING_SCHEMA, line_problems, read_postings_csv
from gridbridge.ledger import read_round_id as read_summary_round_id
from gridbridge.ledger.files import LEDGER_CSV, SUMMARY_JSON
from gridbridge.ledger.schema import refusal, row_problems, whole_cents
from optim.market import Market

__all__ = ["RoundInputs", "check_postings", "load_round", "read_round_id", "round_from_tables"]

_RERUN = "re-run gridbridge clear BUNDLE --out {out}"


@dataclass(frozen=True, slots=True)
class RoundInputs:
    """One cleared round as a report sees it.

    ``placements`` has placements.csv's columns (EUR for the whole job, times
    ``Datetime("us", "UTC")``, half-open ``[start_utc, end_utc)``) plus ``gpu_hours``
    (``gpus`` × hours). ``postings`` has :data:`~gridbridge.ledger.POSTING_SCHEMA`
    (``bid_id`` null on round-level lines), sorted by ``posting_id``. ``bundle`` is the
    bundle path exactly as summary.json gives it (relative to the clearing folder).
    ``metering`` holds the true-up records (a leading ``batch_id`` then
    :data:`~gridbridge.settlement.trueup.RECORD_SCHEMA`) when the round was not read from a
    folder (:func:`round_from_tables`); None: read ``trueup-*.csv`` from ``clearing_dir``.
    """

    clearing_dir: Path
    summary: dict[str, object]
    placements: pl.DataFrame
    rejected: pl.DataFrame
    postings: pl.DataFrame
    market: Market
    bundle: str
    metering: pl.DataFrame | None = None

    @property
    def round_id(self) -> str:
        """The round's id (summary.json's ``round_id``)."""
        return str(self.summary["round_id"])


def _read_ledger_csv(out: Path) -> pl.DataFrame:
    """The clearing's ledger.csv (:func:`gridbridge.ledger.read_postings_csv`); a file that
    is not readable ledger lines is an :class:`InputError` here, not a refused posting."""
    return read_postings_csv(
        out / LEDGER_CSV, error=InputError,
        fix=f"the round has no ledger lines on disk: {_RERUN.format(out=out)} (it writes "
            "ledger.csv when the round is priced), or read the lines from the ledger database "
            "with --db URL")


def _as_postings(postings: pl.DataFrame) -> pl.DataFrame:
    """The postings columns of ``postings`` in the schema's order, any others dropped, as a
    database or a caller may give them: a Datetime ``posted_at_utc`` written
    ``2023-07-03T00:00Z``, the text columns as text, an empty ``bid_id`` as null (a
    round-level line). ``amount_cents`` is left to :func:`~gridbridge.ledger.schema.whole_cents`.
    """
    known = [c for c in POSTING_SCHEMA if c in postings.columns]
    frame = postings.select(known)
    if "posted_at_utc" in known and isinstance(frame.schema["posted_at_utc"], pl.Datetime):
        frame = frame.with_columns(pl.col("posted_at_utc").dt.convert_time_zone("UTC")
                                   .dt.strftime(HOUR_FORMAT))
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in known if c != "amount_cents")
    if "bid_id" in known:
        frame = frame.with_columns(pl.when(pl.col("bid_id").str.strip_chars() != "")
                                   .then(pl.col("bid_id")).alias("bid_id"))
    return frame


def check_postings(postings: pl.DataFrame, source: str, round_id: str,
                   bid_ids: pl.Series) -> pl.DataFrame:
    """The round's ledger lines with :data:`~gridbridge.ledger.POSTING_SCHEMA`, checked,
    sorted by posting_id.

    ``source`` names where they came from (for messages); ``bid_ids`` are the accepted bids
    of the clearing. The lines are taken as :func:`_as_postings` says (extra columns
    dropped, a Datetime ``posted_at_utc`` written as text, an empty ``bid_id`` null), their
    amounts must be whole cents (:func:`~gridbridge.ledger.schema.whole_cents`) and they
    must pass the ledger's :func:`~gridbridge.ledger.line_problems` (columns, this round's
    id, posting ids, accounts, kinds, time stamps, a sum of exactly 0 cents); a line of a
    bid the clearing did not accept is refused too. Raises :class:`InputError` listing
    every problem.
    """
    frame, problems = whole_cents(_as_postings(postings), source)
    problems = problems or line_problems(frame, round_id, file=source)
    if not problems:
        placed = frame["bid_id"].is_in(bid_ids.implode())
        problems = row_problems(
            source, frame, frame["bid_id"].is_not_null() & ~placed, "bid_id",
            lambda r: f"bid '{r['bid_id']}' is not in this clearing's placements.csv",
            "the lines belong to another clearing of the round; re-run gridbridge clear")
    if problems:
        raise InputError(refusal(f"cannot report round {round_id} from its ledger lines",
                                 problems))
    return frame.sort("posting_id")


def _bundle_path(out: Path, summary: dict[str, object]) -> tuple[Path, str]:
    named = summary.get("bundle")
    if not isinstance(named, str) or not named:
        raise NotFoundError(
            f"{out / 'summary.json'} names no market bundle (field 'bundle'), and a report "
            f"needs its sites, capacity and grid — fix: {_RERUN.format(out=out)}")
    path = out / named
    if not path.is_dir():
        raise NotFoundError(
            f"{path}: the market bundle named in {out / 'summary.json'} (field 'bundle', "
            "relative to the clearing folder) is not there — fix: put the bundle back at that "
            f"path, or {_RERUN.format(out=out)}")
    return path, named


def _check_folder(out: Path) -> None:
    if not out.is_dir():
        raise NotFoundError(f"{out} is not a folder — fix: pass the folder written by "
                            "gridbridge clear BUNDLE --out OUT_DIR")
    if not (out / "summary.json").is_file():
        raise NotFoundError(f"{out / 'summary.json'} is missing, so {out} is not a clearing "
                            f"folder — fix: {_RERUN.format(out=out)}")


def read_round_id(clearing_dir: Path) -> str:
    """The round id of the clearing in ``clearing_dir`` (summary.json), to look its lines up.

    Raises :class:`NotFoundError` / :class:`InputError` as :func:`load_round` does.
    """
    out = Path(clearing_dir)
    _check_folder(out)
    return read_summary_round_id(out / SUMMARY_JSON, fix=_RERUN.format(out=out))


def load_round(clearing_dir: Path, postings: pl.DataFrame | None = None) -> RoundInputs:
    """Read and check one cleared round (module docstring); ``postings`` default: ledger.csv.

    Raises :class:`NotFoundError` for a missing folder, file or bundle and
    :class:`InputError` for anything unreadable or inconsistent, each naming the file and
    the fix.
    """
    out = Path(clearing_dir)
    round_id = read_round_id(out)
    files = read_clearing(out)
    summary = files.summary
    if postings is None:
        source = str(out / LEDGER_CSV)
        postings = _read_ledger_csv(out)
    else:
        source = f"the ledger lines of round {round_id}"
    bundle_path, bundle = _bundle_path(out, summary)
    market = read_bundle(bundle_path)
    placements = files.placements.with_columns(
        gpu_hours=pl.col("gpus")
        * ((pl.col("end_utc") - pl.col("start_utc")).dt.total_hours()),
    ).sort("bid_id")
    lines = check_postings(postings, source, round_id, placements["bid_id"])
    return RoundInputs(clearing_dir=out, summary=summary, placements=placements,
                       rejected=files.rejected.sort("bid_id"), postings=lines, market=market,
                       bundle=bundle)


def round_from_tables(round_id: str, summary: dict[str, object], placements: pl.DataFrame,
                      rejected: pl.DataFrame, postings: pl.DataFrame, market: Market,
                      metering: pl.DataFrame, *, source: str) -> RoundInputs:
    """One cleared round from tables already in memory (e.g. read from the exchange's
    database) rather than from a clearing folder.

    ``placements`` has placements.csv's columns (``gpu_hours`` is added), ``rejected``
    ``bid_id``, ``reason`` and ``lost_opportunity_eur``; ``postings`` are checked as
    :func:`check_postings` does; ``metering`` as :attr:`RoundInputs.metering`. ``source``
    names where they came from (messages, and the report's ``bundle``). ``clearing_dir`` is
    ``Path()``: nothing is read from disk. Raises :class:`InputError` as :func:`load_round`.
    """
    placed = placements.with_columns(
        gpu_hours=pl.col("gpus")
        * ((pl.col("end_utc") - pl.col("start_utc")).dt.total_hours()),
    ).sort("bid_id")
    lines = check_postings(postings, f"the ledger lines of round {round_id} ({source})",
                           round_id, placed["bid_id"])
    return RoundInputs(clearing_dir=Path(), summary={**summary, "round_id": round_id},
                       placements=placed, rejected=rejected.sort("bid_id"), postings=lines,
                       market=market, bundle=source, metering=metering)
