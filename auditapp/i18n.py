"""Translated messages that stay plain text.

Flask-Babel's lazy strings define ``__html__``, so Jinja treats them as safe markup and
does not escape them, *including the values interpolated into them*. Domain messages
interpolate what people typed (a date, an email, a name), so a message built with
Flask-Babel's own lazy_gettext would put that input into the page raw. Every message a
service builds comes from `lazy_text` instead: translated when shown (in the reader's
language on a page, English on the command line), but plain text that templates escape.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel.speaklater import LazyString


class PlainLazyString(LazyString):
    """A lazy translation that is not markup: Jinja escapes it like any str."""

    @property
    def __html__(self):
        # Without __html__ Jinja (and markupsafe.escape) treat the value as text.
        raise AttributeError("__html__")


def lazy_text(string: str, **variables) -> PlainLazyString:
    """A message translated when it is shown; the result is escaped in templates."""
    return PlainLazyString(gettext, string, **variables)
