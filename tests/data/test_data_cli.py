"""``emollm prepare`` and ``emollm data check|importers`` end to end through typer's CliRunner."""

from __future__ import annotations

import json

from corpus_fixtures import MERR_OPTIONS, make_merr_corpus, write_corrupt, write_recipe
from typer.testing import CliRunner

from emollm.cli import app
from emollm.data.sample import Manifest

runner = CliRunner()


def test_cli_prepare_ok_and_check(tmp_path):
    root = make_merr_corpus(tmp_path / "raw")
    recipe = write_recipe(tmp_path / "mini.yaml", "merr", MERR_OPTIONS)
    out = tmp_path / "out"
    r = runner.invoke(app, ["prepare", str(recipe), "--root", str(root), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "samples.jsonl" in r.output and "no problems found" in r.output
    assert "surprise" in r.output  # the per-split/label table
    assert len(Manifest.load(out).samples) == 3
    r = runner.invoke(app, ["data", "check", str(out)])
    assert r.exit_code == 0, r.output
    (root / "video" / "clip_a.mp4").unlink()
    r = runner.invoke(app, ["data", "check", str(out)])
    assert r.exit_code == 1 and "missing_media" in r.output


def test_cli_prepare_overrides_strict_and_no_probe(tmp_path):
    root = make_merr_corpus(tmp_path / "raw")
    write_corrupt(root / "video" / "clip_b.mp4")
    recipe = write_recipe(tmp_path / "mini.yaml", "merr", MERR_OPTIONS)
    out = tmp_path / "out"
    r = runner.invoke(app, ["prepare", str(recipe), "--root", str(root), "--out", str(out), "--strict"])
    assert r.exit_code == 1
    assert "unreadable_media" in r.output and "train_NCEV.txt" in r.output
    assert not (out / "samples.jsonl").exists()
    r = runner.invoke(
        app,
        ["prepare", str(recipe), "--root", str(root), "--out", str(out), "--strict", "--no-probe", "label_space=merr9"],
    )
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["label_space"] == "merr9"


def test_cli_bad_recipe_key_exits_2(tmp_path):
    recipe = write_recipe(tmp_path / "bad.yaml", "merr", {**MERR_OPTIONS, "transcrips": "x.csv"})
    r = runner.invoke(app, ["prepare", str(recipe), "--root", str(tmp_path)])
    assert r.exit_code == 2
    assert "unknown key 'transcrips'" in r.output and "did you mean 'transcripts'" in r.output
    r = runner.invoke(app, ["prepare", str(tmp_path / "bad.yaml"), "--root", str(tmp_path), "options.lists=3"])
    assert r.exit_code == 2 and "lists" in r.output
    r = runner.invoke(app, ["prepare", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "not found" in r.output


def test_cli_importers_list():
    r = runner.invoke(app, ["data", "importers"])
    assert r.exit_code == 0
    for name in ("merr", "mer_factory", "mer2023", "mer2024", "emer", "ovmerd", "custom_csv"):
        assert name in r.output
