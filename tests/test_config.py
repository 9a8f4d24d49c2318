"""Configuration order: defaults, instance/config.py, AUDITAPP_* variables, test_config."""

from __future__ import annotations

import pytest

from auditapp import create_app


def test_defaults(tmp_path):
    """Without settings: SQLite in the instance folder, Tokyo time, April fiscal year, ja."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'auditapp.db'}"
    assert app.config["TIMEZONE"] == "Asia/Tokyo"
    assert app.config["FISCAL_YEAR_START_MONTH"] == 4
    assert app.config["DEFAULT_LANGUAGE"] == "ja"


def test_order_instance_file_then_environment_then_test_config(tmp_path, monkeypatch):
    """instance/config.py overrides defaults, AUDITAPP_* overrides it, test_config wins."""
    (tmp_path / "config.py").write_text(
        "SECRET_KEY = 'from-file'\nTIMEZONE = 'UTC'\nFISCAL_YEAR_START_MONTH = 1\n"
    )
    monkeypatch.setenv("AUDITAPP_FISCAL_YEAR_START_MONTH", "7")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SECRET_KEY"] == "from-file"
    assert app.config["TIMEZONE"] == "UTC"
    assert app.config["FISCAL_YEAR_START_MONTH"] == 7
    app = create_app({"INSTANCE_PATH": str(tmp_path), "FISCAL_YEAR_START_MONTH": 10})
    assert app.config["FISCAL_YEAR_START_MONTH"] == 10


def test_instance_path_from_environment(tmp_path, monkeypatch):
    """AUDITAPP_INSTANCE_PATH chooses the instance folder (installations side by side)."""
    monkeypatch.setenv("AUDITAPP_INSTANCE_PATH", str(tmp_path / "site-b"))
    monkeypatch.setenv("AUDITAPP_SECRET_KEY", "k")
    app = create_app()
    assert app.instance_path == str(tmp_path / "site-b")
    assert (tmp_path / "site-b").is_dir()


def test_production_start_without_secret_key_is_refused(tmp_path, monkeypatch):
    """Outside tests, a missing SECRET_KEY stops the start with a clear message."""
    monkeypatch.delenv("AUDITAPP_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_bad_values_are_refused(tmp_path, monkeypatch):
    """A fiscal start month outside 1..12 or a non-number is refused at start."""
    with pytest.raises(RuntimeError, match="FISCAL_YEAR_START_MONTH"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FISCAL_YEAR_START_MONTH": 13})
    monkeypatch.setenv("AUDITAPP_FISCAL_YEAR_START_MONTH", "April")
    with pytest.raises(RuntimeError, match="AUDITAPP_FISCAL_YEAR_START_MONTH"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})


def test_proxy_fix_and_trusted_hosts(tmp_path):
    """Behind one proxy the client address and scheme come from X-Forwarded-*; unknown
    hosts are refused when TRUSTED_HOSTS is set."""
    from flask import request

    from auditapp import access

    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "PROXY_FIX_X_FOR": 1,
            "PROXY_FIX_X_PROTO": 1,
            "TRUSTED_HOSTS": ["audit.example.jp"],
        }
    )
    access.RULES["probe"] = access.PUBLIC
    app.add_url_rule("/probe", "probe", lambda: f"{request.remote_addr} {request.scheme}")
    try:
        client = app.test_client()
        ok = client.get(
            "/probe",
            headers={
                "Host": "audit.example.jp",
                "X-Forwarded-For": "203.0.113.7",
                "X-Forwarded-Proto": "https",
            },
        )
        assert ok.get_data(as_text=True) == "203.0.113.7 https"
        assert client.get("/probe", headers={"Host": "evil.example"}).status_code == 400
    finally:
        del access.RULES["probe"]
