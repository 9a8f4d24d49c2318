"""Requests: uploads stream to the evidence store, upload routes take few parts, ids in URLs
are numbers the database can hold."""

from __future__ import annotations

import io

from flask import Flask, Request, current_app
from werkzeug.routing import IntegerConverter

# Every id column is INTEGER: 32-bit signed on PostgreSQL, the narrower of the two
# databases (SQLite's holds 64 bits). A route over a BIGINT column may say <int(max=...)>.
MAX_ID = 2**31 - 1

# Upload routes accept only a few form parts (SECURITY.md item 11).
SMALL_FORM_ENDPOINTS = {"evidence.upload", "training.complete"}


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader read from the WSGI input stream."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: a number the id columns can hold. A larger one names no
    row, so the route does not match (404) instead of failing in the database driver (500:
    SQLite cannot bind it, PostgreSQL refuses it for an INTEGER parameter)."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


class AuditappRequest(Request):
    """Uploaded files stream into the evidence store's temporary area, hashed as they
    arrive, never held in memory; upload routes take only a few form parts."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return current_app.extensions["evidence_store"].begin()

    def _get_stream_for_parsing(self):
        # The multipart parser reads 64 KiB at a time; gunicorn copies its whole buffer on
        # each small read. A 1 MiB buffer in between halves the CPU an upload costs
        # (measured in bench/upload.py).
        stream = super()._get_stream_for_parsing()
        if self.endpoint in SMALL_FORM_ENDPOINTS:
            return io.BufferedReader(_RawAdapter(stream), buffer_size=1024 * 1024)
        return stream

    @property
    def max_form_parts(self) -> int | None:
        if self.endpoint in SMALL_FORM_ENDPOINTS:
            return current_app.config["UPLOAD_MAX_FORM_PARTS"]
        return current_app.config["MAX_FORM_PARTS"]


def init_app(app: Flask) -> None:
    """Make every request an AuditappRequest and `<int:...>` an IdConverter (call before
    the blueprints are registered: rules bind their converters when added)."""
    app.request_class = AuditappRequest
    app.url_map.converters["int"] = IdConverter
