"""``gridbridge app``: serve the Streamlit app (headless, on 127.0.0.1) and print its address.

The mode travels to the Streamlit process in environment variables
(:mod:`gridbridge.appdata.config`), the token among them, so it never shows on a command line
that ``ps`` lists. The app's files are ``apps/`` of the GridBridge checkout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gridbridge.appdata.config import AppConfig
from gridbridge.appdata.launch import ENTRY, streamlit_command
from gridbridge.cli.output import make_console
from gridbridge.errors import NotFoundError

console = make_console()

def app_command(
    exchange: Annotated[str | None, typer.Option(
        help="The exchange's URL, e.g. http://127.0.0.1:8000 (exchange mode).",
        show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        help="Bearer token for --exchange (its role decides what the app shows).",
        show_default=False)] = None,
    bundle: Annotated[Path | None, typer.Option(
        help="Market bundle folder (bundle mode: offline what-ifs).", show_default=False)] = None,
    clearing: Annotated[Path | None, typer.Option(
        help="With --bundle: the folder gridbridge clear wrote (default: the bundle folder if "
             "it holds summary.json).", show_default=False)] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8501,
) -> None:
    """Serve the Streamlit app on 127.0.0.1 and print its address (Ctrl-C stops it)."""
    config = AppConfig(exchange=exchange, token=token, bundle=bundle, clearing=clearing)
    if not ENTRY.is_file():
        raise NotFoundError(f"{ENTRY} is missing — fix: run gridbridge app from a GridBridge "
                            "checkout installed with pip install -e .")
    mode = (f"exchange {exchange}" if exchange else
            f"bundle {bundle}" + (f", clearing {clearing}" if clearing else ""))
    console.print(f"GridBridge app on http://127.0.0.1:{port} ({mode})", soft_wrap=True)
    sys.stdout.flush()
    # Streamlit takes this process over, so a signal to it (Ctrl-C, SIGTERM) reaches the
    # server itself and no server is left running after its parent is gone.
    os.execve(sys.executable, streamlit_command(port), {**os.environ, **config.env()})
