"""A stand-in for the exchange's site endpoints, served over real HTTP on 127.0.0.1.

It implements, as the contract says, ``POST /v1/sites/{site_id}/telemetry`` and
``.../metering``: bearer token checked (401), body validated with the contract's
``TelemetryReport`` / ``MeteringReport`` (422 naming the problem), 201 ``Ack(stored)`` the
first time a ``report_id`` arrives and 200 ``Ack(duplicate)`` after; metering answers 409
for a round that is not cleared (not among the assignments, or named in ``uncleared``) and
422 for a row that is not an hour of one of the site's placements in that round. ``GET
.../assignments`` answers :attr:`assignments`. It can be told to answer 503, to refuse given
report ids with a status, and it can be stopped and started again on the same port (an
outage).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import ValidationError

from gridbridge.exchange.contract import MeteringReport, TelemetryReport
from gridbridge.hours import parse_hour

__all__ = ["ExchangeStandIn"]


class ExchangeStandIn:
    """The telemetry endpoint of an exchange, for tests."""

    def __init__(self, token: str = "site-token", site_id: str = "GB-BRISTOL-1") -> None:
        self.token, self.site_id = token, site_id
        self.stored: dict[str, TelemetryReport] = {}
        self.order: list[str] = []          # report ids in the order they were stored
        self.posts: list[str] = []          # every POSTed report id (or '?' if unreadable)
        self.fail_with: int | None = None   # answer every request with this status
        self.refuse: dict[str, int] = {}    # report_id -> status to answer instead
        self.refuse_every: int | None = None  # refuse every valid report with this status
        self.assignments: list[dict[str, object]] = []  # AssignmentOut bodies
        self.uncleared: set[str] = set()    # rounds whose metering is answered 409
        self.metering: dict[str, MeteringReport] = {}
        self.metering_posts: list[str] = []  # every POSTed metering report id
        self.assignment_gets = 0
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ExchangeStandIn:
        """Serve on the same port as before (a free one the first time)."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == f"/v1/sites/{standin.site_id}/metering":
                    standin.handle_metering(self, body)
                else:
                    standin.handle(self, body)

            def do_GET(self) -> None:
                standin.handle_assignments(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Go down: stop listening (connections are refused until :meth:`start`)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        answer = request._answer  # type: ignore[attr-defined]
        if self.fail_with is not None:
            return answer(self.fail_with, {"detail": "exchange unavailable (stand-in)"})
        if request.path != f"/v1/sites/{self.site_id}/telemetry":
            return answer(404, {"detail": "Not Found"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return answer(401, {"detail": "missing or invalid bearer token"})
        try:
            report = TelemetryReport.model_validate_json(body)
        except ValidationError as exc:
            with self.lock:
                self.posts.append("?")
            return answer(422, {"detail": json.loads(exc.json(include_url=False))})
        with self.lock:
            self.posts.append(report.report_id)
            status = self.refuse.get(report.report_id, self.refuse_every)
            if status is not None:
                return answer(status,
                              {"detail": "hours: 2023-07-03T10:00Z is in a closed window"})
            if report.report_id in self.stored:
                return answer(200, {"report_id": report.report_id, "status": "duplicate"})
            self.stored[report.report_id] = report
            self.order.append(report.report_id)
        return answer(201, {"report_id": report.report_id, "status": "stored"})

    def handle_assignments(self, request: BaseHTTPRequestHandler) -> None:
        answer = request._answer  # type: ignore[attr-defined]
        if self.fail_with is not None:
            return answer(self.fail_with, {"detail": "exchange unavailable (stand-in)"})
        if request.path != f"/v1/sites/{self.site_id}/assignments":
            return answer(404, {"detail": "Not Found"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return answer(401, {"detail": "missing or invalid bearer token"})
        with self.lock:
            self.assignment_gets += 1
            body = list(self.assignments)
        data = json.dumps(body).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _placement_hour(self, round_id: str, member: str, bid_id: str, hour: object) -> bool:
        for a in self.assignments:
            if (a["round_id"], a["member"], a["bid_id"]) == (round_id, member, bid_id) \
                    and parse_hour(str(a["start_utc"])) <= hour < parse_hour(str(a["end_utc"])):
                return True
        return False

    def handle_metering(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        answer = request._answer  # type: ignore[attr-defined]
        if self.fail_with is not None:
            return answer(self.fail_with, {"detail": "exchange unavailable (stand-in)"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return answer(401, {"detail": "missing or invalid bearer token"})
        try:
            report = MeteringReport.model_validate_json(body)
        except ValidationError as exc:
            return answer(422, {"detail": json.loads(exc.json(include_url=False))})
        with self.lock:
            self.metering_posts.append(report.report_id)
            status = self.refuse.get(report.report_id, self.refuse_every)
            if status is not None:
                return answer(status, {"detail": "refused (stand-in)"})
            if report.report_id in self.metering:
                return answer(200, {"report_id": report.report_id, "status": "duplicate"})
            rounds = {a["round_id"] for a in self.assignments}
            if report.round_id not in rounds or report.round_id in self.uncleared:
                return answer(409, {"detail": f"round {report.round_id} is not cleared"})
            for i, row in enumerate(report.rows):
                if not self._placement_hour(report.round_id, row.member, row.bid_id,
                                            row.hour_utc):
                    return answer(422, {"detail": f"rows[{i}]: not an hour of a placement "
                                                  "on this site"})
            self.metering[report.report_id] = report
        return answer(201, {"report_id": report.report_id, "status": "stored"})
