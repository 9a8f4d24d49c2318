# Two commands do everything: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE := $(CURDIR)/instance
export AUDITAPP_INSTANCE_PATH ?= $(INSTANCE)

.PHONY: run test lint format bench lock clean-venv

# Installs come from the lock (exact versions, hashes checked), then the project itself.
$(BIN)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# A secret key generated once into the instance folder (never committed).
$(AUDITAPP_INSTANCE_PATH)/config.py:
	mkdir -p $(AUDITAPP_INSTANCE_PATH)
	$(BIN)/python -c "import secrets; print('SECRET_KEY = ' + repr(secrets.token_hex(32)))" > $@

run: $(BIN)/.installed $(AUDITAPP_INSTANCE_PATH)/config.py
	$(BIN)/auditapp init
	$(BIN)/auditapp demo --if-empty
	AUDITAPP_SCHEDULER_IN_PROCESS=true $(BIN)/gunicorn --config deploy/gunicorn.conf.py \
		--workers 1 --bind 127.0.0.1:5000

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the lock: the newest versions pyproject.toml's ranges allow, with every file's hash
# (requirements.txt: the app and gunicorn; requirements-dev.txt: that plus the test tools,
# at the same versions). Resolved against the public index alone, ignoring pip settings
# that point at local mirrors, so the hashes are those every machine downloads.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	CUSTOM_COMPILE_COMMAND='make lock' \
	$(BIN)/pip-compile -q --generate-hashes --strip-extras --upgrade
lock: $(BIN)/.installed
	$(BIN)/pip install -q --disable-pip-version-check 'pip-tools>=7.4'
	$(PIP_COMPILE) --extra server -o requirements.txt pyproject.toml
	$(PIP_COMPILE) --extra server --extra test -c requirements.txt -o requirements-dev.txt pyproject.toml

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
