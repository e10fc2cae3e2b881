"""gunicorn as Gatehouse runs it: its log lines in our JSON, its own error answers as JSON problem bodies.

gunicorn answers some requests before the app sees them (a request line over limit_request_line: 414; a
malformed request line or header: 400; too many or too large headers: 431), with an HTML page of its own.
A gateway or script that reads JSON problems (RFC 9457) everywhere else gets one here too.
"""

import json

# gunicorn's ceiling (its default is 4094): a query this long reaches the app, which refuses an over-long value
# with a 400 problem of its own, as for POST; anything longer gets gunicorn's 414, as JSON.
LIMIT_REQUEST_LINE = 8190


def logger_class():
    """gunicorn's logger writing our JSON lines: its start, worker and signal records read like ours."""
    from gunicorn import glogging

    from service.logs import JsonFormatter

    class JsonGunicornLogger(glogging.Logger):
        def setup(self, cfg):
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(JsonFormatter())

    return JsonGunicornLogger


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying a JSON problem body; the connection closes after it."""
    body = json.dumps({"type": "about:blank", "title": reason, "status": status, "detail": detail,
                       "code": reason.lower().replace(" ", "_"), "request_id": None}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def install_json_errors() -> None:
    """Make gunicorn write its own error answers (util.write_error, called by Worker.handle_error) as JSON.

    gunicorn has no setting for this; its workers call gunicorn.util.write_error by module attribute, so
    replacing that one function changes every such answer and nothing else.
    """
    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        util.write_nonblock(sock, problem_bytes(status_int, reason, mesg or reason))

    util.write_error = write_error


def worker_gone(pid: int, metrics_dir: str) -> None:
    """In the arbiter, when a worker has exited: drop its live gauges' files (prometheus-client multiprocess mode).

    Its counters and histograms stay, merged into every later scrape: a total never goes back when a worker
    is replaced.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)
