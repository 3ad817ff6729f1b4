# Two commands: `make demo` runs the product on its embedded defaults, `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo serve test lint check-python clean

check-python:
	@scripts/find-python >/dev/null

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: check-python $(VENV)/.installed
	scripts/ensure-system-packages pdf
	SCORECARD_MODE=demo $(PY) manage.py demo

# The production processes (gunicorn, a Celery worker, beat) against the PostgreSQL and Redis
# the environment names; see README "Running in production".
serve: check-python $(VENV)/.installed
	scripts/ensure-system-packages pdf
	scripts/serve

# Tests run against PostgreSQL and Redis: the local servers unless DATABASE_URL and
# CELERY_BROKER_URL point elsewhere. They run in TEST_PROCESSES parallel processes (most of a
# test's time is spent waiting on clusters and workers, so more processes than cores pays);
# tests in one xdist_group run one after another in the same process.
TEST_PROCESSES ?= 4
test: check-python $(VENV)/.installed-dev
	scripts/ensure-system-packages pdf browser promtool tls
	SCORECARD_MODE=test \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var
