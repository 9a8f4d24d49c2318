"""Benchmark: what the server-side session check adds to every signed-in request.

The user loader used to be one primary-key get of the user (with their roles); it now
looks the session row up joined with its user (`sessions.current`) and writes last-seen
at most once a minute. Both run here in the same process on the same database, many
times each, inside a request context; the old loader is reproduced as the baseline.
A third figure is a whole signed-in GET (`/password`, a small page) through the test
client, for scale. Exits 0 whatever the ratio; non-zero only when something fails.

    .venv/bin/python bench/sessions.py                      # SQLite in a temp folder
    AUDITAPP_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/sessions.py                  # PostgreSQL (own schema)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditapp import create_app  # noqa: E402
from auditapp.extensions import db  # noqa: E402
from auditapp.models import User  # noqa: E402
from auditapp.services import auth, sessions, users  # noqa: E402
from auditapp.web import helpers, hooks  # noqa: E402

ROUNDS = 4500
PASSWORD = "bench-passphrase-2026-long"


def _old_loader(identity: str) -> User | None:
    """The user loader before server-side sessions (the baseline)."""
    user_id, version = (int(part) for part in identity.split(":"))
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def _chunk(fn, rounds: int) -> float:
    """Seconds per call over `rounds` calls, each in a fresh transaction and identity map."""
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
        db.session.rollback()
        db.session.expunge_all()
    return (time.perf_counter() - start) / rounds


def _compare(old, new, rounds: int, runs: int = 9) -> tuple[float, float]:
    """Best seconds per call of each, the two run in alternating chunks so that a busy
    machine slows both alike (the best chunk is the least disturbed)."""
    best_old = best_new = float("inf")
    for _ in range(runs):
        best_old = min(best_old, _chunk(old, rounds // runs))
        best_new = min(best_new, _chunk(new, rounds // runs))
    return best_old, best_new


def main() -> int:
    url = os.environ.get("AUDITAPP_TEST_DATABASE_URL", "")
    folder = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    config = {"TESTING": True, "INSTANCE_PATH": str(folder / "instance")}
    schema = None
    if url:
        schema = f"b_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        config |= {
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
        }
    app = create_app(config)
    try:
        with app.app_context():
            db.create_all()
            user, _pw = users.create(
                db.session,
                "bench",
                {"employee_id": "B1", "name": "Bench", "email": "b@example.jp", "roles": ["admin"]},
            )
            user.password_hash = auth.hash_password(PASSWORD)
            db.session.commit()
            identity = user.get_id()
            token = sessions.start(
                db.session,
                user,
                client="bench",
                user_agent="bench",
                limits=helpers.session_limits(),
            )
            db.session.commit()
        with app.test_request_context("/"):
            from flask import session

            session["sid"] = token
            assert hooks._load_user(identity) is not None
            old, new = _compare(
                lambda: _old_loader(identity), lambda: hooks._load_user(identity), ROUNDS
            )
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/login", data={"email": "b@example.jp", "password": PASSWORD, "csrf_token": csrf}
        )
        assert response.status_code == 302, response.status_code
        start = time.perf_counter()
        for _ in range(ROUNDS // 10):
            assert client.get("/password").status_code == 200
        request_s = (time.perf_counter() - start) / (ROUNDS // 10)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    backend = "PostgreSQL" if url else "SQLite"
    print(f"{backend}, {ROUNDS} calls each in 9 alternating chunks, best chunk")
    print(f"  old loader (user by id):           {old * 1e6:8.1f} us")
    print(f"  new loader (session row + user):   {new * 1e6:8.1f} us   ratio {new / old:.2f}")
    print(f"  whole signed-in GET /password:     {request_s * 1e6:8.1f} us")
    print(f"  added per request: {(new - old) * 1e6:.1f} us = {(new - old) / request_s:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
