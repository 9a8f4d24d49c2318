# Two commands do everything: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE := $(CURDIR)/instance
export AUDITAPP_INSTANCE_PATH ?= $(INSTANCE)

.PHONY: run test lint format bench clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,server]'
	touch $@

# A secret key generated once into the instance folder (never committed).
$(AUDITAPP_INSTANCE_PATH)/config.py:
	mkdir -p $(AUDITAPP_INSTANCE_PATH)
	$(BIN)/python -c "import secrets; print('SECRET_KEY = ' + repr(secrets.token_hex(32)))" > $@

run: $(BIN)/.installed $(AUDITAPP_INSTANCE_PATH)/config.py
	$(BIN)/auditapp init
	$(BIN)/auditapp demo --if-empty
	AUDITAPP_SCHEDULER_IN_PROCESS=true $(BIN)/auditapp run --host 127.0.0.1 --port 5000

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/.installed
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Re-extract the UI strings (babel.cfg) into messages.pot, merge them into each language's
# messages.po, and compile the .mo files (committed). Translate new entries, then run it again.
.PHONY: translations
translations: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --sort-by-file \
		--project=auditapp -o auditapp/translations/messages.pot .
	$(BIN)/pybabel update -i auditapp/translations/messages.pot -d auditapp/translations
	$(BIN)/pybabel compile -d auditapp/translations --statistics
