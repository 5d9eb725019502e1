# One command each: `make demo` runs the main job end to end, `make test` the whole suite.
# Every target first runs scripts/setup.sh (idempotent: chromium, chromium-driver, .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
ERP ?= erp_sim

.PHONY: setup test chaos fuzz demo bench bench-fleet fleet-up clean

setup:
	@bash scripts/setup.sh

# Bytecode first: tests start hundreds of instances, and where PYTHONDONTWRITEBYTECODE is
# set each would compile the project again (fleet/bytecode.py; `manage.py up` does the same).
test: setup
	$(PY) -m compileall -q -q api.py manage.py core orders service integrations workers fleet erp_sim erp_tryton
	$(PY) -m pytest -q --durations=40

# The full chaos run of issue 3: 300 orders over 20 worksheets, both ERP flavors (make
# test: 12 orders, classic), and the flow's chaos case on both (make test: classic).
# Issue 25: Tryton 7.0 LTS in German through api.py (with a kill -9), and the contract on
# both Tryton series x de, fr, es, nl (tests/stands.py, TRYTON_MATRIX).
# Then issue 10's hostile network: 100 orders per ERP behind the fault-injecting proxy,
# and erp_sim's chaos options together with the proxy (12 orders per flavour: with both,
# the SPA takes ~25 s an order). Issue 27: erp_sim's screens changed and back under 20
# orders flowing, in both flavours, and through a proxy altering its pages (make test: the
# classic one, 4 orders, the column order). The front door: 20 reloads (make test: 10).
chaos: setup
	CHAOS_ORDERS=300 CHAOS_WORKSHEETS=20 CHAOS_FLAVORS=classic,spa $(PY) -m pytest -q -s tests/test_e2e_chaos.py
	FLOW_CHAOS=erp_sim,erp_sim_spa $(PY) -m pytest -q tests/test_integration_erp_sim_flow.py -k chaos
	E2E_TRYTON_ORDERS=40 E2E_TRYTON_KILL_ORDERS=40 $(PY) -m pytest -q -s tests/test_e2e_tryton.py
	E2E_TRYTON_SERIES=7.0 E2E_TRYTON_LANGUAGE=de E2E_TRYTON_ORDERS=40 E2E_TRYTON_KILL_ORDERS=40 \
	  $(PY) -m pytest -q -s tests/test_e2e_tryton.py
	TRYTON_MATRIX=1 $(PY) -m pytest -q tests/test_integration_contract.py -k matrix
	NETFAULT_ORDERS=100 NETFAULT_TRYTON_ORDERS=100 NETFAULT_TRYTON_RATE=0.01 NETFAULT_WORKSHEETS=10 \
	  $(PY) -m pytest -q -s tests/test_e2e_netfaults.py
	NETFAULT_WITH_ERP_CHAOS=1 NETFAULT_ORDERS=12 $(PY) -m pytest -q -s tests/test_e2e_netfaults.py -k erp_sim
	FRONTDOOR_RELOADS=20 $(PY) -m pytest -q tests/test_fleet_frontdoor.py -k reloads
	DRIFT_ORDERS=20 DRIFT_FLAVORS=classic,spa DRIFT_PROXY_EDITS=columns,names \
	  $(PY) -m pytest -q -s tests/test_e2e_screen_drift.py

# The long fuzz run of issue 8: schemathesis against the instance's and the management
# API's OpenAPI documents, >= 5,000 requests in all (make test runs a bounded few).
fuzz: setup
	FUZZ_EXAMPLES=400 $(PY) -m pytest -q -s tests/test_fuzz_api.py tests/test_fuzz_management.py

# make demo ERP=tryton: the same with a real Tryton (installed on first use, cached).
demo: setup
	@ERP=$(ERP) bash scripts/demo.sh

# Writes docs/benchmarks.md (takes several minutes): every section but the fleet under load,
# which `make bench-fleet` writes (bench/run.py keeps the sections it did not run).
bench: setup
	$(PY) bench/run.py --skip-fleet-load

# The fleet: density (50 idle instances) and the fleet under load (bench/bench_fleet_load.py:
# 1, 20, 50 and 200 workshops with the browser pool and with BROWSER_POOL=local, 3 minutes of
# orders each; most of an hour). Browser-heavy: on a shared machine run it under
# `flock /tmp/browser.lock make bench-fleet`.
bench-fleet: setup
	$(PY) bench/run.py --only fleet,fleet-load

# Run the whole fleet on this server in the foreground (see docs/fleet.md).
fleet-up: setup
	$(PY) manage.py up

clean:
	rm -rf .demo .pytest_cache
