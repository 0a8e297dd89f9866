# GridBridge: `make demo` runs the main job on the bundled data; `make test` runs the checks.
# Both create .venv (from pyproject.toml) when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gridbridge-installed
DEMO   := out/demo

.PHONY: setup demo test lint bench datasets clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Offline first: build the W27 market from the bundled dataset, check it is the one we ship,
# summarise it, clear and price it (against both baselines), re-check the clearing and its
# payments independently, post it to a fresh ledger database and write the settlement
# reports. Then the whole system (gridbridge demo): an exchange, one agent per site, the bids
# through the API, a round cleared and trued up by metering; it keeps the exchange and the
# Streamlit app serving until Ctrl-C.
demo: setup
	$(BIN)/gridbridge market make --dataset datasets/bridge-2023 --week 2023-W27 --bids 500 --seed 1 --out $(DEMO)/market-2023-W27
	diff -r -q $(DEMO)/market-2023-W27 datasets/bridge-2023/market-2023-W27 && echo "demo market is identical to the shipped bundle"
	$(BIN)/gridbridge market summary $(DEMO)/market-2023-W27
	$(BIN)/gridbridge clear $(DEMO)/market-2023-W27 --out $(DEMO)/clearing-2023-W27 --time-limit 30
	$(BIN)/gridbridge check $(DEMO)/market-2023-W27 $(DEMO)/clearing-2023-W27
	rm -f $(DEMO)/gridbridge.db $(DEMO)/gridbridge.db-wal $(DEMO)/gridbridge.db-shm
	$(BIN)/gridbridge ledger post $(DEMO)/clearing-2023-W27 --db sqlite:///$(DEMO)/gridbridge.db
	$(BIN)/gridbridge report $(DEMO)/clearing-2023-W27 --format csv --out $(DEMO)/reports
	$(BIN)/gridbridge report $(DEMO)/clearing-2023-W27 --format xlsx --out $(DEMO)/reports
	$(BIN)/gridbridge demo --out $(DEMO)/exchange

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python tests/benchmarks/bench_bundle.py
	$(BIN)/python tests/benchmarks/bench_clear.py
	$(BIN)/python tests/benchmarks/bench_exchange.py
	$(BIN)/python tests/benchmarks/bench_exchange.py --agents 200 --reports 5 --rate 200
	$(BIN)/python tests/benchmarks/bench_exchange.py --agents 200 --reports 5 --rate 200 --workers 2
	$(BIN)/python tests/benchmarks/bench_exchange.py --agents 200 --reports 5 --rate 200 --backend postgresql --processes 2

# Rebuild datasets/bridge-2023 from the raw public files (needs ../shared/data).
datasets: setup
	$(BIN)/gridbridge data build --recipe datasets/bridge-2023.toml --source ../shared/data --out datasets/bridge-2023
	$(BIN)/gridbridge market make --dataset datasets/bridge-2023 --week 2023-W27 --bids 500 --seed 1 --out datasets/bridge-2023/market-2023-W27

clean:
	rm -rf out .pytest_cache .ruff_cache
