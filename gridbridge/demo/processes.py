"""The demo's processes: the exchange server and the site agents, each its own
``python -m gridbridge`` process, as an operator would run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gridbridge.appdata.config import AppConfig
from gridbridge.appdata.launch import HEALTH_PATH, streamlit_command
from gridbridge.errors import DemoError, InputError

__all__ = ["AgentRun", "AppProcess", "ExchangeProcess", "free_port", "run_agents"]

#: Lines of a log quoted in an error.
_TAIL_LINES = 15


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_TAIL_LINES:])


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM ``process`` (if it still runs), SIGKILL if it lingers ``timeout_s`` s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def _gridbridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridbridge", *args]


@dataclass
class ExchangeProcess:
    """``gridbridge exchange serve`` on ``host:port`` (0: a free port), its output in
    ``log_path``; ``args`` are more ``serve`` options."""

    db_url: str
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start it and wait until ``/healthz`` answers 200; :class:`InputError` when the
        port is taken, :class:`DemoError` when it exits or does not answer in time."""
        if self.port == 0:
            self.port = free_port(self.host)
        else:
            with socket.socket() as sock:
                try:
                    sock.bind((self.host, self.port))
                except OSError as exc:
                    raise InputError(f"port {self.port} on {self.host} is in use ({exc}) — "
                                     "fix: stop what uses it, or pass --port N (0 picks a "
                                     "free port)") from None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                _gridbridge("exchange", "serve", "--db", self.db_url, "--host", self.host,
                            "--port", str(self.port), "--log-level", "warning", *self.args),
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"the exchange exited with status {self.process.returncode} "
                                f"before answering; its log {self.log_path} ends:\n"
                                f"{_tail(self.log_path)}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DemoError(f"the exchange did not answer /healthz in {timeout_s:g} s; its log "
                        f"{self.log_path} ends:\n{_tail(self.log_path)}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (uvicorn finishes its requests and stops the worker), SIGKILL if it has
        not exited after ``timeout_s`` seconds."""
        _stop(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush (what the exchange committed must survive)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=15)

    def wait(self) -> int:
        """Block until the process exits; its status."""
        assert self.process is not None
        return self.process.wait()


@dataclass
class AppProcess:
    """The Streamlit app (``streamlit run apps/gridbridge_app.py``) on 127.0.0.1:``port``
    against the exchange at ``exchange_url`` with ``token`` (passed in its environment, not
    on its command line), its output in ``log_path``."""

    exchange_url: str
    token: str = field(repr=False)
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> None:
        """Start it and wait until Streamlit's health check answers 200."""
        self.port = self.port or free_port()
        env = {**os.environ, **AppConfig(exchange=self.exchange_url, token=self.token).env()}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(streamlit_command(self.port), env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"the app exited with status {self.process.returncode}; its "
                                f"log {self.log_path} ends:\n{_tail(self.log_path)}")
            try:
                if httpx.get(self.url + HEALTH_PATH, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DemoError(f"the app did not answer in {timeout_s:g} s; its log {self.log_path} "
                        f"ends:\n{_tail(self.log_path)}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, SIGKILL if it has not exited after ``timeout_s`` seconds."""
        _stop(self.process, timeout_s)


@dataclass(frozen=True)
class AgentRun:
    """One ``gridbridge agent run --once``: the site, its exit status and output."""

    site_id: str
    returncode: int
    output: str


def run_agents(configs: Mapping[str, Path], *, parallel: int = 4,
               timeout_s: float = 300.0) -> list[AgentRun]:
    """``gridbridge agent run --config <site.toml> --once`` for each site, ``parallel`` at a
    time (each is a Python process; more would only queue on a small machine), each output
    appended to ``<site>.log`` beside its config. :class:`DemoError` naming every agent that
    exited non-zero (its spool keeps what it could not deliver)."""
    pending = list(configs.items())
    running: dict[str, tuple[subprocess.Popen[str], float]] = {}
    done: list[AgentRun] = []
    while pending or running:
        while pending and len(running) < parallel:
            site_id, path = pending.pop(0)
            running[site_id] = (subprocess.Popen(
                _gridbridge("agent", "run", "--config", str(path), "--once"),
                cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True), time.monotonic())
        for site_id, (process, started) in list(running.items()):
            if process.poll() is None and time.monotonic() - started < timeout_s:
                continue
            if process.poll() is None:
                process.kill()
            output = process.communicate()[0]
            with (configs[site_id].parent / f"{site_id}.log").open("a", encoding="utf-8") as log:
                log.write(output)
            done.append(AgentRun(site_id, process.returncode, output))
            del running[site_id]
        time.sleep(0.05)
    failed = [r for r in done if r.returncode != 0]
    if failed:
        raise DemoError("agent(s) failed:\n" + "\n".join(
            f"{r.site_id} exited {r.returncode}:\n{r.output.strip()[-2000:]}" for r in failed))
    return sorted(done, key=lambda r: r.site_id)
