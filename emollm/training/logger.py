"""Metric logging for training runs (rank 0 only): JSONL always, TensorBoard and W&B when enabled.

    log = MetricLogger(out_dir, tensorboard=True, wandb=False, config=cfg_dict)
    log.log({"train/loss": 0.7, "train/lr_lora": 2e-4}, step=100)
    log.close()

On resume (``resume_step``) the records the interrupted run wrote after its last checkpoint are
dropped first, so a re-run step is logged once. W&B is used only when ``wandb`` is requested *and* the package is installed; otherwise a note is
logged once. Nothing here raises on a missing optional package.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from emollm.log import get_logger

log = get_logger(__name__)


def truncate_metrics(path: Path, step: int) -> int:
    """Keep the records of ``metrics.jsonl`` up to global ``step`` (and drop a torn last line); returns
    how many records were dropped. The file is rewritten atomically."""
    from emollm.io import atomic_write_text

    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step:
            dropped += 1
            continue
        keep.append(line)
    if dropped:
        atomic_write_text(path, "".join(x + "\n" for x in keep))
        log.info("metrics.jsonl: dropped %d record(s) logged after step %d by the interrupted run", dropped, step)
    return dropped


class MetricLogger:
    def __init__(
        self,
        out_dir: Path,
        tensorboard: bool = True,
        wandb: bool = False,
        project: str = "emollm",
        config: dict[str, Any] | None = None,
        enabled: bool = True,
        resume_step: int | None = None,
    ) -> None:
        """``resume_step``: the run resumes after this global step; records logged after it (by the run
        that was interrupted) are dropped from metrics.jsonl and TensorBoard, so no step is logged twice."""
        self.enabled = enabled
        self._tb: Any = None
        self._wandb: Any = None
        self._jsonl: Any = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "metrics.jsonl"
        if resume_step is not None:
            truncate_metrics(path, resume_step)
        self._jsonl = open(path, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = {"purge_step": resume_step + 1} if resume_step is not None else {}
                self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"), **purge)
            except ImportError:
                log.warning("tensorboard is not installed; TensorBoard logging is off")
        if wandb:
            try:
                import wandb as wb

                self._wandb = wb.init(project=project, dir=str(out_dir), config=config or {}, reinit=True)
            except ImportError:
                log.warning("logging.wandb is true but wandb is not installed; skipping W&B")

    def log(self, metrics: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "time": time.time(), **metrics}
        self._jsonl.write(json.dumps(rec) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
