"""The exchange: HTTP API (FastAPI), storage (SQLAlchemy Core), rounds, access control."""
