"""JSON log lines on the standard library's logging, one object per record.

Each line has the time, level, logger, message, the correlation fields in force and any `extra`
fields given to the call. Hand-written rather than python-json-logger because it is a dozen lines
and must read our context variable anyway.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from shared.observability.correlation import current

_RESERVED: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(current())
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Formats every root handler as JSON, adding a stream handler when there is none.

    Under the Functions worker the root logger already has the worker's handler, which forwards
    to the host; we only change its format. Elsewhere (the local host, the CLI) we log to stderr.
    """
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(stream or sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "uamqp", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
