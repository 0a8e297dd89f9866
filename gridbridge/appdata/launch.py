"""How the Streamlit app is started: its entry file and the ``streamlit run`` command line."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["ENTRY", "HEALTH_PATH", "streamlit_command"]

#: The app's entry file: apps/ beside the gridbridge package (an editable install).
ENTRY = Path(__file__).resolve().parents[2] / "apps" / "gridbridge_app.py"
#: Streamlit's own health check, 200 once the server takes sessions.
HEALTH_PATH = "/_stcore/health"


def streamlit_command(port: int, entry: Path = ENTRY) -> list[str]:
    """``streamlit run`` of the app: headless, on 127.0.0.1 only, no usage statistics."""
    return [sys.executable, "-m", "streamlit", "run", str(entry),
            "--server.headless", "true", "--server.address", "127.0.0.1",
            "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
