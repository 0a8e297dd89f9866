"""What every page draws the same way: the data source, the round picker, errors, heatmaps.

Drawing only: the figures come from :mod:`gridbridge.appdata`. The source is opened once per
browser session (a bundle is read once for all sessions: ``st.cache_resource``), from the
environment that ``gridbridge app`` sets (:mod:`gridbridge.appdata.config`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from gridbridge.appdata import AppConfig, DataSource, LoadedBundle, RoundInfo, load_bundle
from gridbridge.appdata import open_source as _open_source
from gridbridge.errors import GridBridgeError

__all__ = ["choose_round", "column_formats", "failing", "flash", "heatmap", "hour_axis",
           "hour_text", "page", "pick_round", "round_or_stop", "source", "table", "utc"]

SOURCE_KEY = "gb_source"
ROUND_KEY = "gb_round"
FLASH_KEY = "gb_flash"
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def _stamp(*folders: Path | None) -> tuple[tuple[str, float], ...]:
    """The files' modification times: a re-cleared folder is read again, not served stale."""
    return tuple((str(p), p.stat().st_mtime) for folder in folders if folder is not None
                 for p in sorted(folder.iterdir()) if p.is_file())


@st.cache_resource(show_spinner="Reading the market bundle…", max_entries=4)
def _loaded(bundle: Path, clearing: Path | None,
            stamp: tuple[tuple[str, float], ...]) -> LoadedBundle:
    # ``stamp`` only keys the cache (no leading underscore: Streamlit would not hash it).
    del stamp
    return load_bundle(bundle, clearing)


def _load(bundle: Path, clearing: Path | None) -> LoadedBundle:
    return _loaded(bundle, clearing, _stamp(bundle, clearing))


def source() -> DataSource:
    """This session's data source; a bad setup stops the page with the reason and fix."""
    try:
        config = AppConfig.from_env()
    except GridBridgeError as exc:
        st.error(f"The app has no data to show: {exc}")
        st.stop()
    held = st.session_state.get(SOURCE_KEY)
    if held is None or held[0] != config:
        with failing():
            st.session_state[SOURCE_KEY] = (config, _open_source(config, _load))
    return st.session_state[SOURCE_KEY][1]  # type: ignore[no-any-return]


@contextmanager
def failing() -> Iterator[None]:
    """Show a GridBridge error (it names the field and the fix) and stop drawing."""
    try:
        yield
    except GridBridgeError as exc:
        st.error(str(exc))
        st.stop()


def page(title: str) -> DataSource:
    """Start a page: its title, the session's source, where the data comes from and who is
    looking (sidebar), and the message a change left for this run."""
    st.title(title)
    data = source()
    st.sidebar.caption(f"Data: {data.describe()}")
    st.sidebar.caption("All times are UTC; intervals are [start, end).")
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)
    return data


def round_or_stop(data: DataSource, none_yet: str, *, cleared_only: bool = False) -> RoundInfo:
    """The picked round; with none to pick, say so (``none_yet``: what to do next) and stop."""
    chosen = pick_round(data, cleared_only=cleared_only)
    if chosen is None:
        st.info(none_yet)
        st.stop()
    return chosen


def pick_round(data: DataSource, *, cleared_only: bool = False) -> RoundInfo | None:
    """A round picker shared by the pages: the choice follows the viewer across pages; a
    link may name the round (``?round=R-...``)."""
    with failing():
        rounds = [r for r in data.rounds() if r.cleared or not cleared_only]
    if not rounds:
        return None
    ids = [r.round_id for r in rounds]
    chosen = st.session_state.get(ROUND_KEY) or st.query_params.get("round")
    index = ids.index(chosen) if chosen in ids else 0
    picked = st.selectbox("Round", rounds, index=index, format_func=RoundInfo.label,
                          key=f"round_picker_{cleared_only}")
    st.session_state[ROUND_KEY] = picked.round_id
    return picked  # type: ignore[no-any-return]


def choose_round(round_id: str) -> None:
    """Make ``round_id`` the picked round on the next run (e.g. a round just opened)."""
    st.session_state[ROUND_KEY] = round_id
    for cleared_only in (False, True):  # the pickers' own state would override the choice
        st.session_state.pop(f"round_picker_{cleared_only}", None)


def flash(message: str) -> None:
    """Say ``message`` on the next run (:func:`page` shows it): a change is followed by a
    rerun that redraws the tables, which would wipe a message shown now."""
    st.session_state[FLASH_KEY] = message


def utc(value: datetime | None) -> str:
    """``2023-07-03 14:00 UTC``."""
    return "—" if value is None else value.strftime(TIME_FORMAT)


def hour_text(data: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """``data`` with ``<column>_text`` stamps (``2023-07-03 14:00 UTC``) for tooltips: a
    browser would show a time column in its own zone."""
    return data.with_columns(pl.col(c).dt.strftime(TIME_FORMAT).alias(f"{c}_text")
                             for c in columns)


def hour_axis(column: str = "hour_utc", title: str = "hour (UTC)") -> alt.X:
    """An x axis of UTC hours, labelled in UTC whatever the browser's zone."""
    return alt.X(f"{column}:T", title=title, scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format="%a %d %H:%M"))


def heatmap(data: pl.DataFrame, *, y: str, value: str, title: str, unit: str,
            scheme: str = "yelloworangered", top: float | None = None) -> alt.Chart:
    """Rows ``y`` × UTC hours coloured by ``value`` (in ``unit``), a tooltip per cell.

    ``top`` caps the colour scale (values above it get its colour; tooltips keep the
    values), so one price spike does not wash out every other hour."""
    scale = (alt.Scale(scheme=scheme) if top is None else
             alt.Scale(scheme=scheme, domainMax=top, clamp=True))
    # Each cell spans its hour [hour, hour + 1 h): a rect on a time axis needs both ends.
    cells = hour_text(data, "hour_utc").with_columns(
        hour_end_utc=pl.col("hour_utc") + pl.duration(hours=1))
    return alt.Chart(cells.to_pandas(), title=title).mark_rect().encode(
        x=hour_axis(), x2="hour_end_utc:T",
        y=alt.Y(f"{y}:N", title=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color(f"{value}:Q", title=unit, scale=scale),
        tooltip=[alt.Tooltip(f"{y}:N"), alt.Tooltip("hour_utc_text:N", title="hour (UTC)"),
                 alt.Tooltip(f"{value}:Q", title=unit, format=",.2f")],
    # Streamlit fits the whole chart (title and axes too) into the height: add their room.
    ).properties(height=110 + 22 * data[y].n_unique())


#: Number formats by column-name ending (DESIGN.md's glossary of suffixes), first match wins.
SUFFIX_FORMATS = (("_cents", "%d cents"), ("_eur_per_mwh", "%.2f EUR/MWh"),
                  ("_eur_per_gpu_hour", "%.4f EUR per GPU-hour"),
                  ("_eur_per_t", "%.2f EUR/t CO2eq"), ("_eur", "%.2f EUR"),
                  ("_g_per_kwh", "%.1f gCO2eq/kWh"), ("kg_per_gpu_hour", "%.4f kg CO2eq/GPU-h"),
                  ("kg_per_work_h", "%.4f kg CO2eq/work-h"), ("_kg", "%.1f kg CO2eq"),
                  ("_kwh", "%.1f kWh"), ("gpu_hours", "%.0f GPU-h"), ("work_h", "%.0f work-h"),
                  ("gpus", "%d GPUs"), ("gpus_available", "%d GPUs"), ("_s", "%.1f s"))


def column_formats(frame: pl.DataFrame, labels: dict[str, str]) -> dict[str, object]:
    """Streamlit column settings showing every number with its unit (from the column's name)
    and every ``*_utc`` time in UTC; ``labels`` rename columns for people."""
    config: dict[str, object] = {}
    for name, dtype in frame.schema.items():
        label = labels.get(name, name)
        if isinstance(dtype, pl.Datetime):
            config[name] = st.column_config.DatetimeColumn(
                f"{label} (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC")
        elif dtype.is_numeric():
            found = next((fmt for end, fmt in SUFFIX_FORMATS if name.endswith(end)), None)
            config[name] = st.column_config.NumberColumn(label, format=found)
        elif name in labels:
            config[name] = st.column_config.TextColumn(label)
    return config


def table(frame: pl.DataFrame, key: str, **labels: str) -> None:
    """``frame`` as a table, numbers with their units (:func:`column_formats`)."""
    st.dataframe(frame, hide_index=True, width="stretch", key=key,
                 column_config=column_formats(frame, labels))
