"""The exchange: HTTP API (FastAPI), storage (SQLAlchemy Core), rounds, access control.

Modules, each with one job:

* :mod:`~gridbridge.exchange.contract` — the HTTP bodies (pydantic), shared with the agent;
* :mod:`~gridbridge.exchange.schema` — the ``exchange_*`` tables, in the ledger's database;
* :mod:`~gridbridge.exchange.storage` — opening the database, transactions, error wrapping;
* :mod:`~gridbridge.exchange.registry` — members, GPU types, sites, pools and asks;
* :mod:`~gridbridge.exchange.tokens` — bearer tokens (hashed) and who they speak for;
* :mod:`~gridbridge.exchange.audit` — the log of state-changing calls;
* :mod:`~gridbridge.exchange.telemetry` — site reports, stored once;
* :mod:`~gridbridge.exchange.rounds` — market rounds and sealed bids;
* :mod:`~gridbridge.exchange.snapshot` — gate closure: the round's market bundle, stored;
* :mod:`~gridbridge.exchange.worker` — the clearing thread: claim, clear, store atomically;
* :mod:`~gridbridge.exchange.results` — a round's placements, prices, summary, ledger lines
  and each site's assignments, as the API reads them;
* :mod:`~gridbridge.exchange.auth` — who may call each endpoint, checked before the body;
* :mod:`~gridbridge.exchange.middleware` — request ids, audit, answer counts, body limit;
* :mod:`~gridbridge.exchange.metrics` — Prometheus counters;
* :mod:`~gridbridge.exchange.api_sites`, :mod:`~gridbridge.exchange.api_rounds`,
  :mod:`~gridbridge.exchange.api_results` — the
  ``/v1`` endpoints; :mod:`~gridbridge.exchange.app` — :func:`create_app`.

Only the storage modules (schema, storage and the domain modules above the API) talk to the
database; the API modules call them. ``gridbridge exchange init|token|serve`` is in
:mod:`gridbridge.cli.exchange`.
"""
