"""Structured logs: one JSON object per line on stderr, with the request id when there is one."""

import json
import logging
import re
import sys
import time

from flask import g, has_request_context

# A review or enrollment link's token is a credential: a logged path or URL shows <token> in its place (the
# console's /admin/reviews/<campaign> pages keep their key: a letter stands before that /reviews/).
_LINK_TOKEN = re.compile(r"(?<![A-Za-z])(/reviews/|/admin/enroll/|/admin/api/enroll/)[^/\s\"'?#<>]+")


def redact(text: str) -> str:
    """The text with each review or enrollment link's token replaced by <token>."""
    return _LINK_TOKEN.sub(r"\1<token>", text)


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class _Demote(logging.Filter):
    """Log a chatty library's INFO records at DEBUG: pgserver narrates every start (initdb, pg_ctl, its output)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DEMOTED = ("pgserver",)


def configure(level: str) -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)  # a record demoted after its logger let it through is dropped here
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel("WARNING")
    logging.getLogger("authlib").setLevel("INFO")  # its DEBUG records print each issued token ("Issue token {...}")
    for name in _DEMOTED:
        demoted = logging.getLogger(name)
        if not any(isinstance(f, _Demote) for f in demoted.filters):
            demoted.addFilter(_Demote())

