"""Metric logging for training runs (rank 0 only): JSONL always, TensorBoard and W&B when enabled.

    log = MetricLogger(out_dir, tensorboard=True, wandb=False, config=cfg_dict)
    log.log({"train/loss": 0.7, "train/lr_lora": 2e-4}, step=100)
    log.close()

W&B is used only when ``wandb`` is requested *and* the package is installed; otherwise a note is
logged once. Nothing here raises on a missing optional package.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from emollm.log import get_logger

log = get_logger(__name__)


class MetricLogger:
    def __init__(
        self,
        out_dir: Path,
        tensorboard: bool = True,
        wandb: bool = False,
        project: str = "emollm",
        config: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._tb: Any = None
        self._wandb: Any = None
        self._jsonl: Any = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
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
