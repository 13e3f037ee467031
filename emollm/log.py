"""One logging path: ``get_logger(__name__)`` and rank-zero helpers.

Library code never calls ``print`` for diagnostics; CLI commands print results with rich.
"""

from __future__ import annotations

import logging
import os

_CONFIGURED = False


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


def get_logger(name: str) -> logging.Logger:
    global _CONFIGURED
    if not _CONFIGURED:
        level = os.environ.get("EMOLLM_LOG_LEVEL", "INFO").upper()
        fmt = "[%(asctime)s %(levelname)s %(name)s] %(message)s"
        if world_size() > 1:
            fmt = f"[rank{rank()}] " + fmt
        logging.basicConfig(level=level, format=fmt, datefmt="%H:%M:%S")
        _CONFIGURED = True
    return logging.getLogger(name)


def log0(logger: logging.Logger, msg: str, *args: object) -> None:
    """Log on rank 0 only."""
    if is_main_process():
        logger.info(msg, *args)


def quiet_libraries() -> None:
    """Silence third-party progress noise (transformers weight-loading bars, advisory warnings)."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # pragma: no cover - transformers missing is reported elsewhere
        pass
