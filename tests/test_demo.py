"""The demo's orchestration end to end (prepare -> extract -> train -> eval -> explain) on tiny models."""

from __future__ import annotations

import json

from emollm.demo import run_demo


def test_demo_runs_every_step_and_reuses_outputs(tmp_path) -> None:
    kw = dict(
        out=tmp_path,
        quick=True,
        recipe="train/tiny.yaml",
        train_overrides=("stages.0.max_steps=2", "stages.1.max_steps=1"),
        eval_limit=12,
    )
    res = run_demo(**kw)
    run = tmp_path / "tiny_quick"
    assert (tmp_path / "data/synthmer_quick/samples.jsonl").is_file()
    assert any((tmp_path / "features").rglob("*.safetensors"))
    assert (run / "final/trainable.safetensors").is_file()
    assert (run / "eval/results.json").is_file() and (run / "eval/report.md").is_file()
    s = res["summary"]
    assert 0.0 <= s["weighted F1 (all inputs)"] <= 1.0
    assert {"weighted F1 (A)", "weighted F1 (V)", "weighted F1 (T)", "weighted F1 (A+V+T)"} <= set(s)
    assert {"prompt robustness: mean weighted F1", "weighted F1 under MER-NOISE", "calibration: ECE"} <= set(s)
    assert "SynthMER ceiling (all)" in s or any(k.startswith("SynthMER ceiling") for k in s)
    saved = json.loads((run / "demo.json").read_text())
    assert saved["checkpoint"].endswith(("best", "final"))
    # a second run reuses data, features, the trained model and the eval records
    mtime = (run / "final/trainable.safetensors").stat().st_mtime_ns
    res2 = run_demo(**kw)
    assert (run / "final/trainable.safetensors").stat().st_mtime_ns == mtime
    assert res2["summary"] == s
