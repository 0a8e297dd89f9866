"""Reading what an AppTest run drew: tables by their columns, charts by their titles."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AppExchange
from tests.exchange.conftest import WINDOW


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table drawn with a column named ``column``."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table has a column {column!r}; tables: "
                         f"{[list(f.value.columns) for f in at.dataframe]}")


def chart_titles(at: AppTest) -> list[str]:
    """The titles of the Vega-Lite (altair) charts drawn."""
    titles = []
    for chart in at.get("vega_lite_chart"):
        title = json.loads(chart.proto.spec).get("title")  # type: ignore[attr-defined]
        titles.append(title["text"] if isinstance(title, dict) else str(title))
    return titles


def chart_data(at: AppTest, title_start: str) -> pd.DataFrame:
    """The data behind the chart whose title starts with ``title_start``."""
    for chart, title in zip(at.get("vega_lite_chart"), chart_titles(at), strict=True):
        if title.startswith(title_start):
            frames = [convert_arrow_bytes_to_pandas_df(d.data.data)
                      for d in chart.proto.datasets]  # type: ignore[attr-defined]
            return pd.concat(frames, ignore_index=True)
    raise AssertionError(f"no chart titled {title_start!r}…; charts: {chart_titles(at)}")


def deck(at: AppTest) -> dict[str, Any]:
    """The pydeck map's spec."""
    [chart] = at.get("deck_gl_json_chart")
    return json.loads(chart.proto.json)  # type: ignore[attr-defined, no-any-return]


def metric(at: AppTest, label: str) -> str:
    """The value shown by the metric ``label``."""
    for m in at.metric:
        if m.label == label:
            return str(m.value)
    raise AssertionError(f"no metric {label!r}; metrics: {[m.label for m in at.metric]}")


def texts(at: AppTest, kind: str) -> list[str]:
    """The texts of every element of ``kind`` (error, info, success, caption...)."""
    return [str(e.value) for e in at.get(kind)]


def open_round(exchange: AppExchange) -> str:
    """A new open round over the test window, opened by the planner through the API."""
    answer = exchange.client("planner").post("/v1/rounds", json={
        "window_start_utc": WINDOW[0], "window_end_utc": WINDOW[1],
        "carbon_price_eur_per_t": 80.0, "carbon_signal": "direct"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["round_id"])


def pick(at: AppTest, round_id: str) -> None:
    """Choose ``round_id`` in the page's round picker and run the page again."""
    picker = at.selectbox[0]
    picker.select_index(next(i for i, o in enumerate(picker.options)
                             if o.startswith(round_id))).run()
    assert not at.exception, [e.message for e in at.exception]
