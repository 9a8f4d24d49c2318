"""What gunicorn serves: `gunicorn -c deploy/gunicorn.conf.py` loads `auditapp.wsgi:create()`.

With SCHEDULER_IN_PROCESS (`make run`: one worker) the scheduler starts here, once per
serving process: not per request, not in gunicorn's master (the app is not preloaded, and
a thread would not survive the fork), not in CLI commands. Several processes with it on
would still run each job once (the database lock), but production runs `auditapp scheduler`
on its own instead.
"""

from __future__ import annotations

import atexit

from flask import Flask

from auditapp import create_app


def create() -> Flask:
    """The app, plus the in-process scheduler when SCHEDULER_IN_PROCESS is set."""
    app = create_app()
    if app.config["SCHEDULER_IN_PROCESS"]:
        from auditapp import scheduler

        runner = scheduler.start_in_process(app)
        atexit.register(runner.stop)  # hand the lock back when the worker stops
    return app
