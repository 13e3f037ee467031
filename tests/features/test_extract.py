"""emollm extract: cache hits on rerun, recompute on a changed encoder, concurrent writers, real clips."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from emollm.cli import app
from emollm.data.sample import Manifest, Sample, write_manifest
from emollm.features.cache import FeatureCache
from emollm.features.extract import extract_corpus
from emollm.features.featurizer import Featurizer
from emollm.model.presets import model_config

ROOT = Path(__file__).resolve().parents[2]


def _stats_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("cache hits"))


def test_extract_cli_rerun_is_all_hits_and_changed_option_recomputes(tmp_path, synthmer_small) -> None:
    runner = CliRunner()
    args = ["extract", str(synthmer_small), "--model", "tiny-fast", "--cache-dir", str(tmp_path / "cache")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    n = 48 * 2  # samples x modalities
    assert _stats_line(first.output).startswith(f"cache hits 0, misses {n}, written {n}")
    again = runner.invoke(app, args)
    assert _stats_line(again.output).startswith(f"cache hits {n}, misses 0, written 0")
    changed = runner.invoke(app, [*args, "modalities.audio.encoder.options.layer=1"])
    assert changed.exit_code == 0, changed.output
    assert _stats_line(changed.output).startswith("cache hits 48, misses 48, written 48")  # audio only recomputed
    bad = runner.invoke(app, [*args, "--encoders", "smell"])
    assert bad.exit_code != 0


def test_two_processes_extracting_at_once_leave_a_consistent_cache(tmp_path, synthmer_small) -> None:
    cache = tmp_path / "cache"
    cmd = [
        sys.executable,
        "-m",
        "emollm",
        "extract",
        str(synthmer_small),
        "--model",
        "tiny-fast",
        "--cache-dir",
        str(cache),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    files = sorted(cache.rglob("*.safetensors"))
    assert len(files) == 96
    assert not list(cache.rglob("*.tmp"))  # no half-written entries left behind
    for f in files:
        assert load_file(str(f))["features"].ndim == 2  # every entry is complete and readable
    # and the cache equals freshly computed features
    from emollm.encoders import build_encoder

    cfg = model_config("tiny-fast")
    encs = {m: build_encoder(mc.encoder) for m, mc in cfg.modalities.items()}
    man = Manifest.load(synthmer_small)
    cached = Featurizer(encs, FeatureCache(cache), mode="cache")(man.samples[:6], man.root)
    live = Featurizer(encs, None, mode="live")(man.samples[:6], man.root)
    for a, b in zip(cached, live, strict=True):
        for m in encs:
            assert torch.allclose(a.features[m], b.features[m], atol=1e-5)


def test_features_from_real_mer2023_clips(tmp_path, conformance) -> None:
    """The mini preset's real encoders (eGeMAPS, FER2013) on the 16 real MER2023 demo clips."""
    rows = list(csv.DictReader(open(conformance / "media" / "manifest.csv", encoding="utf-8")))
    samples = [
        Sample(
            id=r["name"],
            split="test",
            media={"video": str((conformance / r["file"]).resolve())},
            label=r["label"] or None,
        )
        for r in rows
    ]
    out = write_manifest(tmp_path / "real", samples, {"corpus": "mer2023-demo", "label_space": "mer6"})
    stats = extract_corpus(Manifest.load(out), model_config("mini"), tmp_path / "cache", progress=False)
    assert stats.n_samples == 16 and stats.absent == {}  # every clip has a face stream and an audio track
    assert stats.cache["writes"] == 32
    fz = Featurizer(stats.encoders, FeatureCache(tmp_path / "cache"), mode="cache")
    feats = fz(samples, None)
    audio = torch.stack([f.features["audio"] for f in feats])
    face = torch.stack([f.features["face"] for f in feats])
    assert audio.shape == (16, 1, 88) and face.shape == (16, 4, 135)
    assert torch.isfinite(audio).all() and torch.isfinite(face).all()
    assert audio.std(0).mean() > 0 and face.std(0).mean() > 0  # real clips differ from each other
