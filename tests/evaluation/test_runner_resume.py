"""Kill ``emollm eval`` (SIGKILL) mid-run and rerun it: finished answers are kept, only the rest is computed,
and the final numbers equal an uninterrupted run (same batch size, so the same batches)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emollm.evaluation.runner import EvalOptions, run_eval
from emollm.io import read_jsonl
from emollm.paths import resource_root

N = 12  # the synthmer_small test split


def _cmd(synthmer: Path, out: Path, features: Path) -> list[str]:
    return [
        sys.executable, "-m", "emollm", "eval", "--checkpoint", "tiny-fast", "--tasks", "synthmer",
        "--root", f"synthmer={synthmer}", "--out", str(out), "--features", str(features),
        "--batch-size", "1", "--modalities", "all", "--quiet",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_run_resumes_without_recomputing(tmp_path: Path, synthmer_small: Path) -> None:
    out, features = tmp_path / "eval", tmp_path / "features"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMOLLM_LOG_LEVEL": "WARNING"}
    cmd = _cmd(synthmer_small, out, features)
    records = out / "records" / "shard-0-of-1.jsonl"
    proc = subprocess.Popen(cmd, cwd=resource_root(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if records.exists() and len(read_jsonl(records)) >= 3:
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"eval ended (rc {proc.returncode}) before it could be killed: {err[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no records were written within 180 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_jsonl(records)  # a torn last line (killed mid-write) is not counted
    assert 3 <= len(before) < N, "the run finished before the kill; nothing to resume"
    assert not (out / "results.json").exists()

    # rerun (in this process, with the same options as the command line): only the rest is computed
    from emollm.model.resolve import load_system

    system = load_system("tiny-fast")

    def opts(out_dir: Path) -> EvalOptions:
        return EvalOptions(
            checkpoint="tiny-fast", tasks=["synthmer"], roots={"synthmer": str(synthmer_small)}, out=str(out_dir),
            features=str(features), batch_size=1, modalities="all", progress=False,
        )  # fmt: skip

    resumed = run_eval(opts(out), system=system)
    assert resumed.complete
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["computed"] == N - len(before)
    assert results["run"]["reused"] == len(before) and results["run"]["total"] == N
    after = read_jsonl(records)
    assert len(after) == N and len({r["sample_id"] for r in after}) == N  # nothing computed twice
    assert after[: len(before)] == before  # the first run's answers were kept as they were

    whole = run_eval(opts(tmp_path / "whole"), system=system)
    assert whole.results is not None and whole.stats["computed"] == N
    a, b = results["tasks"]["synthmer"], whole.results["tasks"]["synthmer"]
    assert a["metrics"] == b["metrics"] and a["overall"] == b["overall"]
    for sub in ("submissions/synthmer.csv", "predictions/synthmer.jsonl"):
        assert (out / sub).read_text() == (tmp_path / "whole" / sub).read_text()
