# Two commands set everything up on a fresh machine (Python 3.11+):
#   make run    install into .venv (first time) and start the bot (needs TELEGRAM_BOT_TOKEN)
#   make test   install into .venv (first time) and run the test suite offline (SQLite)
# make test-pg runs the same suite on PostgreSQL (TEST_DATABASE_URL, default below).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
# Test files to run (all of tests/ when empty), e.g. make test-pg TESTS="tests/test_send.py".
TESTS ?=

.PHONY: run test test-pg lint bench i18n clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(PY) -m bot

test: $(STAMP)
	$(PY) -m pytest $(TESTS)

test-pg: $(STAMP)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m tests.databases
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Bring the catalogs in step with the code: new strings appear untranslated (tests fail until
# they are translated), strings gone from the code are dropped.
i18n: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg --sort-output --no-location -o i18n/locale/messages.pot .
	$(VENV)/bin/pybabel update -i i18n/locale/messages.pot -d i18n/locale -D messages --no-fuzzy-matching --ignore-obsolete
	rm i18n/locale/messages.pot

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
