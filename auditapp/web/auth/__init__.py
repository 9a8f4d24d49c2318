"""Sign in, sign out, change one's own password."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from auditapp.errors import Forbidden, InvalidInput, TooManyRequests
from auditapp.extensions import db
from auditapp.services import auth, sessions
from auditapp.web.helpers import local_path, session_limits

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form; on POST check the credentials (throttled, no enumeration)."""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("main.index"))
        return render_template("auth/login.html", email="", error=None)
    email = request.form.get("email", "")[:300]
    try:
        user = auth.authenticate(
            db.session,
            email,
            request.form.get("password", "")[:1024],
            client=request.remote_addr or "unknown",
            throttle=auth.Throttle.from_settings(current_app.config),
        )
    except (InvalidInput, Forbidden, TooManyRequests) as exc:
        db.session.commit()  # keep the failure count and its audit entry
        status = exc.status if isinstance(exc, TooManyRequests) else 401
        return render_template("auth/login.html", email=email, error=exc.message), status
    _begin_session(user)
    db.session.commit()
    if user.must_change_password:
        return redirect(url_for("auth.change_password"))
    return redirect(local_path(request.args.get("next")))


def _begin_session(user) -> None:
    """A fresh cookie session (no fixation) tied to a new server-side session."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(user)
    session.permanent = True
    session["sid"] = sessions.start(
        db.session,
        user,
        client=request.remote_addr,
        user_agent=request.user_agent.string,
        limits=session_limits(),
    )


@bp.post("/logout")
def logout():
    """Sign out: the session ends on the server too, so a copy of the cookie is useless."""
    sessions.end(
        db.session, session.get("sid"), actor=current_user._get_current_object(), reason="logout"
    )
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    """Change one's own password (required after a reset or the first sign-in)."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        cfg = current_app.config
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            errors = {"confirm_password": _("The two new passwords do not match.")}
        else:
            try:
                auth.change_password(
                    db.session,
                    current_user,
                    request.form.get("current_password", ""),
                    new,
                    min_len=cfg["PASSWORD_MIN_LENGTH"],
                    max_len=cfg["PASSWORD_MAX_LENGTH"],
                )
            except InvalidInput as exc:
                db.session.rollback()
                errors = exc.errors
            else:
                # Every session of the person ended: this one continues as a new one.
                _begin_session(current_user._get_current_object())
                db.session.commit()
                flash(_("Your password has been changed."), "success")
                return redirect(url_for("main.index"))
    return render_template(
        "auth/password.html",
        errors=errors,
        min_len=current_app.config["PASSWORD_MIN_LENGTH"],
    ), (400 if errors else 200)
