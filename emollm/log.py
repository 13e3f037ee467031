"""One logging path: ``get_logger(__name__)`` and rank-zero helpers.

Library code never calls ``print`` for diagnostics; CLI commands print results with rich.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

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


# (category, message regex) of third-party warnings known to be harmless for emollm's use
KNOWN_HARMLESS_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # transformers renames generate/forward's past_key_values to cache; emollm's scoring passes the old name
    (FutureWarning, r"`past_key_values` is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # emollm decodes from inputs_embeds on purpose: the penalties apply to the answer, not the prompt
    (UserWarning, r"Passing `(repetition_penalty|no_repeat_ngram_size)` with `inputs_embeds`"),
    (DeprecationWarning, r"`torch\.jit\.script_method` is deprecated"),
)
KNOWN_HARMLESS_LOGS: tuple[tuple[str, str], ...] = (
    # (the logger that emits it, message regex)
    # bitsandbytes' optional CPU kernels package (`kernels`) is not needed: 4-bit is used on CUDA only
    ("bitsandbytes.backends.cpu.ops", r"kernels-community|pip install kernels"),
    ("bitsandbytes.cextension", r"kernels-community|pip install kernels"),
    # the same past_key_values rename, logged once per process by transformers
    ("transformers.utils.generic", r"`past_key_values`/`cache_params` are deprecated"),
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.rx = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.rx.search(record.getMessage())


_QUIETED = False


def quiet_known_warnings() -> None:
    """Silence the third-party warnings known to be harmless (``KNOWN_HARMLESS_*``) in the server log and
    the chat terminal; every other warning still shows. Call at program start (idempotent)."""
    global _QUIETED
    for category, pattern in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=f".*{pattern}", category=category)
    if _QUIETED:
        return
    _QUIETED = True
    for name, pattern in KNOWN_HARMLESS_LOGS:
        # a logger's own filters see every record logged on it, whichever handler prints it later
        logging.getLogger(name).addFilter(_DropMatching(pattern))
