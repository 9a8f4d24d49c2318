"""Configuration: defaults, then instance/config.py, then AUDITAPP_* variables, then test_config."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Config

ENV_PREFIX = "AUDITAPP_"

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,  # None: SQLite file auditapp.db in the instance folder
    "TIMEZONE": "Asia/Tokyo",
    "FISCAL_YEAR_START_MONTH": 4,
    "DEFAULT_LANGUAGE": "ja",
    "LANGUAGES": ["ja", "en"],
    # Sessions: idle timeout (refreshed on each request) and absolute lifetime.
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_HOURS": 12,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Sign-in throttling (SECURITY.md item 3): failures count for the window; the
    # (account, client) pair and the client are refused past their limits; the account as
    # a whole waits 1, 2, 4 ... seconds (at most the maximum) after each failure past DELAY_AFTER.
    "LOGIN_FAILURE_WINDOW_MINUTES": 15,
    "LOGIN_MAX_FAILURES_PER_ACCOUNT_CLIENT": 5,
    "LOGIN_MAX_FAILURES_PER_CLIENT": 20,
    "LOGIN_DELAY_AFTER_FAILURES": 5,
    "LOGIN_DELAY_MAX_SECONDS": 60,
    "PASSWORD_MIN_LENGTH": 12,
    "PASSWORD_MAX_LENGTH": 128,
    "MAX_CONTENT_LENGTH": 100 * 1024 * 1024,
    "MAX_FORM_PARTS": 200,
    "PAGE_SIZE": 50,
    "SQLITE_BUSY_TIMEOUT_MS": 15000,
    "CATALOG_PATH": None,  # None: the controls/ folder shipped with the app
    "EVIDENCE_RETENTION_YEARS": 5,
    "UPLOAD_MAX_FORM_PARTS": 12,
    "EXPORT_KEEP_HOURS": 24,
    # The audit trail's anchor, outside the database: None = instance/audit.key (the
    # HMAC key, 0600) and instance/audit-checkpoints.jsonl (signed checkpoints).
    "AUDIT_KEY_FILE": None,
    "AUDIT_CHECKPOINT_FILE": None,
    # A running export whose heartbeat is older than this is marked failed (its runner died).
    "EXPORT_STALE_MINUTES": 5,
    # How often the scheduler looks for queued exports.
    "EXPORT_POLL_SECONDS": 5,
    # Checks and the scheduler.
    "GRACE_DAYS": 14,
    "PREPARATION_LEAD_DAYS": 14,
    "SCHEDULER_DAILY_AT": "06:00",
    "SCHEDULER_IN_PROCESS": False,
    "BASE_URL": "http://127.0.0.1:5000",
    # Mail: with no SMTP_HOST, messages are written to instance/outbox/ as .eml files.
    "SMTP_HOST": None,
    "SMTP_PORT": 25,
    "SMTP_SECURITY": "none",
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_TIMEOUT": 10,
    "MAIL_FROM": "auditapp@localhost",
    # Behind a reverse proxy: how many proxies set X-Forwarded-For/-Proto/-Host (0 = none).
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,
    "PROXY_FIX_X_HOST": 0,
    # Host names the app answers to (Flask's TRUSTED_HOSTS); empty = any.
    "TRUSTED_HOSTS": [],
}

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message (one line) names it and says what to do."""


# Keys whose environment value is parsed as JSON (numbers, booleans, lists).
_TYPED = {k for k, v in DEFAULTS.items() if isinstance(v, bool | int | list)}


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    """Read AUDITAPP_* variables; typed keys are parsed so '4' becomes 4 and 'true' True."""
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "INSTANCE_PATH":
            continue
        key = name[len(ENV_PREFIX) :]
        if key in _TYPED:
            try:
                values[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name}: expected a JSON value, got {raw!r}") from exc
        else:
            values[key] = raw
    return values


def instance_path_from_env() -> str | None:
    """The instance folder chosen by AUDITAPP_INSTANCE_PATH, if any."""
    value = os.environ.get(ENV_PREFIX + "INSTANCE_PATH")
    return str(Path(value).resolve()) if value else None


def _whole(cfg: Config, key: str) -> int:
    """A setting that must be a whole number (an error names it, never a traceback)."""
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {value!r}") from None


def read(instance_path: str, test_config: dict[str, Any] | None = None) -> Config:
    """The settings in the documented order plus the derived ones, not yet checked (commands
    that only read files use this without building an app)."""
    cfg = Config(instance_path)
    cfg.from_mapping(DEFAULTS)
    cfg.from_pyfile("config.py", silent=True)
    cfg.update(_from_env(dict(os.environ)))
    if test_config:
        cfg.update(test_config)
    instance = Path(instance_path)
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'auditapp.db'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    cfg.setdefault("EVIDENCE_PATH", str(instance / "evidence"))
    cfg["AUDIT_KEY_FILE"] = cfg["AUDIT_KEY_FILE"] or str(instance / "audit.key")
    cfg["AUDIT_CHECKPOINT_FILE"] = cfg["AUDIT_CHECKPOINT_FILE"] or str(
        instance / "audit-checkpoints.jsonl"
    )
    if not cfg["CATALOG_PATH"]:
        cfg["CATALOG_PATH"] = str(PROJECT_ROOT / "controls")
    return cfg


def load(app, test_config: dict[str, Any] | None) -> None:
    """Fill app.config in the documented order and derive the dependent settings."""
    app.config.update(read(app.instance_path, test_config))
    cfg = app.config
    instance = Path(app.instance_path)
    cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=_whole(cfg, "SESSION_IDLE_MINUTES"))
    month = _whole(cfg, "FISCAL_YEAR_START_MONTH")
    cfg["BABEL_DEFAULT_LOCALE"] = "en"  # outside a request (CLI) messages are English
    cfg["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    cfg["WTF_CSRF_TIME_LIMIT"] = None  # the session lifetime bounds the token
    if not cfg["TRUSTED_HOSTS"]:
        cfg["TRUSTED_HOSTS"] = None
    if not 1 <= month <= 12:
        raise ConfigError(f"FISCAL_YEAR_START_MONTH must be 1..12, got {month}")
    if cfg["DEFAULT_LANGUAGE"] not in cfg["LANGUAGES"]:
        raise ConfigError(f"DEFAULT_LANGUAGE must be one of {cfg['LANGUAGES']}")
    if not cfg["SECRET_KEY"]:
        if cfg.get("TESTING"):
            cfg["SECRET_KEY"] = "testing-secret-key"  # noqa: S105 (tests only)
        else:
            raise ConfigError(
                "SECRET_KEY is not set. Put SECRET_KEY = '<long random string>' in "
                f"{instance / 'config.py'} or set AUDITAPP_SECRET_KEY (`make run` creates one)."
            )
