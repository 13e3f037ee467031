"""``prepare``: recipe -> importer -> probe -> manifest + report, on a MERR-layout corpus with real videos."""

from __future__ import annotations

import json

import pytest
from corpus_fixtures import MERR_OPTIONS, make_merr_corpus, write_corrupt, write_recipe

from emollm.config import ConfigError
from emollm.data.check import check_manifest
from emollm.data.importers import ImporterError
from emollm.data.prepare import StrictImportError, load_recipe, prepare
from emollm.data.report import ImportReport
from emollm.data.sample import Manifest


def _broken_corpus(tmp_path):
    """A corpus with exactly: an unknown label, a missing video, an unreadable video, a wrong column."""
    root = make_merr_corpus(tmp_path / "corpus")
    (root / "train_NCEV.txt").write_text("clip_a 40 happy 1.5\nclip_b 32 bored\nclip_x 10 sad\n", encoding="utf-8")
    write_corrupt(root / "video" / "clip_c.mp4")  # unreadable (replaces the real one)
    (root / "transcription_en_all.csv").write_text("name,text\nclip_a,hello\n", encoding="utf-8")  # wrong column
    return root


def test_prepare_clean_corpus(tmp_path):
    root = make_merr_corpus(tmp_path / "raw")
    recipe = write_recipe(tmp_path / "mini.yaml", "merr", MERR_OPTIONS)
    res = prepare(recipe, root=root, out=tmp_path / "out", progress=False)
    assert res.report.problems == []
    m = Manifest.load(tmp_path / "out")
    assert len(m.samples) == 3 and m.label_space == "mer6" and m.info["corpus"] == "mini"
    a = m.by_id()["clip_a"]
    assert m.media_path(a, "video").is_file()
    assert a.meta["media_info"]["video"]["n_frames"] == 8 and a.meta["media_info"]["video"]["has_audio"]
    rep = ImportReport.read(tmp_path / "out")
    assert rep.manifest_written and rep.counts == {"train": {"happy": 1, "sad": 1}, "test": {"surprise": 1}}
    assert rep.media["n_ok"] == 3
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Import report: mini")
    assert (tmp_path / "out" / "recipe.yaml").is_file()
    assert check_manifest(tmp_path / "out", probe=True, progress=False).ok


def test_prepare_reports_each_problem_with_file_and_row(tmp_path):
    root = _broken_corpus(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS)
    res = prepare(recipe, root=root, out=tmp_path / "out", progress=False, workers=2)
    got = {(p.kind, p.file, p.row, p.field) for p in res.report.problems}
    assert got == {
        ("unknown_label", "train_NCEV.txt", 2, "label"),
        ("missing_media", "train_NCEV.txt", 3, "video"),
        ("unreadable_media", "test_NCEV.txt", 1, "video"),
        ("missing_column", "transcription_en_all.csv", 1, "sentence"),
    }
    unreadable = next(p for p in res.report.problems if p.kind == "unreadable_media")
    assert unreadable.sample_id == "clip_c" and unreadable.media.endswith("clip_c.mp4")
    m = Manifest.load(tmp_path / "out")  # non-strict: everything kept, the manifest loads
    by = m.by_id()
    assert set(by) == {"clip_a", "clip_b", "clip_x", "clip_c"}
    assert by["clip_b"].label is None and by["clip_x"].media == {} and by["clip_c"].media == {}
    assert by["clip_c"].coarse  # text-only use still works
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["n_problems"] == 4 and data["problems_by_kind"]["unreadable_media"] == 1
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| train_NCEV.txt | 2 | label | unknown_label |" in md
    assert m.info["n_problems"] == 4


def test_prepare_strict_fails_and_writes_no_manifest(tmp_path):
    root = _broken_corpus(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS)
    with pytest.raises(StrictImportError) as ei:
        prepare(recipe, root=root, out=tmp_path / "out", strict=True, progress=False)
    assert len(ei.value.report.problems) == 4
    assert not (tmp_path / "out" / "samples.jsonl").exists()
    assert not ImportReport.read(tmp_path / "out").manifest_written


def test_prepare_no_probe_skips_decoding(tmp_path):
    root = _broken_corpus(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS)
    res = prepare(recipe, root=root, out=tmp_path / "out", probe=False, progress=False)
    assert not any(p.kind == "unreadable_media" for p in res.report.problems)
    assert res.report.media == {"skipped": True}
    assert "video" in Manifest.load(tmp_path / "out").by_id()["clip_c"].media


def test_recipe_errors(tmp_path):
    bad = write_recipe(tmp_path / "bad.yaml", "merr", {**MERR_OPTIONS, "video_dri": "video"})
    with pytest.raises(ConfigError, match="unknown key 'video_dri' \\(did you mean 'video_dir'\\?\\)"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="did you mean 'options'"):
        load_recipe(write_recipe(tmp_path / "b2.yaml", "merr", MERR_OPTIONS, optons={}))
    with pytest.raises(ConfigError, match="unknown importer 'mer2032'"):
        load_recipe(write_recipe(tmp_path / "b3.yaml", "mer2032", {}))
    with pytest.raises(ConfigError, match="label space"):
        load_recipe(write_recipe(tmp_path / "b4.yaml", "merr", MERR_OPTIONS, label_space="mer7"))
    rec, opts = load_recipe(write_recipe(tmp_path / "ok.yaml", "merr", MERR_OPTIONS), ["options.video_dir=clips"])
    assert opts.video_dir == "clips"
    with pytest.raises(FileNotFoundError, match="shipped recipes"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match="--root"):
        prepare(tmp_path / "ok.yaml", out=tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare(tmp_path / "ok.yaml", root=tmp_path / "missing", out=tmp_path / "o")


def test_prepare_nothing_to_import(tmp_path):
    (tmp_path / "empty").mkdir()
    recipe = write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS)
    with pytest.raises(ImporterError, match="found no samples"):
        prepare(recipe, root=tmp_path / "empty", out=tmp_path / "out", progress=False)
    assert ImportReport.read(tmp_path / "out").problems  # the report says why


def test_check_manifest_finds_drift(tmp_path):
    root = make_merr_corpus(tmp_path / "raw")
    out = tmp_path / "out"
    prepare(write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS), root=root, out=out, progress=False)
    (root / "video" / "clip_b.mp4").unlink()
    lines = (out / "samples.jsonl").read_text().splitlines()
    row0 = json.loads(lines[0])
    row0["label"] = "fear"  # not in mer6
    lines[0] = json.dumps(row0)
    lines.append(lines[1])  # duplicate id
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    rep = check_manifest(out, progress=False)
    got = {(p.kind, p.row) for p in rep.problems}
    assert ("unknown_label", 1) in got and ("missing_media", 2) in got and ("duplicate_id", 4) in got


def test_check_manifest_probe_reports_each_unreadable_file_once(tmp_path):
    root = make_merr_corpus(tmp_path / "raw")
    out = tmp_path / "out"
    prepare(write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS), root=root, out=out, progress=False)
    write_corrupt(root / "video" / "clip_a.mp4")
    assert check_manifest(out, probe=False, progress=False).ok  # the file is still there
    rep = check_manifest(out, probe=True, progress=False, workers=2)
    assert [(p.kind, p.row, p.sample_id) for p in rep.problems] == [("unreadable_media", 1, "clip_a")]
    assert rep.counts == {"train": {"happy": 1, "sad": 1}, "test": {"surprise": 1}}


def test_failed_prepare_into_used_out_leaves_no_stale_manifest(tmp_path):
    """Issue 13 item 11: a --strict failure (or nothing imported) into an existing --out must not leave the old
    samples.jsonl / manifest.json beside a report with n_samples 0; ``data check`` flags such a pair."""
    from typer.testing import CliRunner

    from emollm.cli import app

    good = make_merr_corpus(tmp_path / "good")
    recipe = write_recipe(tmp_path / "r.yaml", "merr", MERR_OPTIONS)
    out = tmp_path / "out"
    prepare(recipe, root=good, out=out, progress=False)
    assert (out / "samples.jsonl").is_file() and check_manifest(out, progress=False).ok
    old_rows = (out / "samples.jsonl").read_text()

    # a pair left by an older emollm (or a crash between the two writes) is flagged by data check
    rep = ImportReport.read(out)
    rep.manifest_written, rep.n_samples = False, 0
    (out / "report.json").write_text(json.dumps(rep.to_json()))
    runner = CliRunner()
    res = runner.invoke(app, ["data", "check", str(out)])
    assert res.exit_code == 1, res.output
    assert "stale_manifest" in res.output
    got = check_manifest(out, progress=False)
    assert [p.kind for p in got.problems] == ["stale_manifest"] and "last prepare failed" in got.problems[0].message

    # --strict failure: the old manifest is removed, the report says why, data check refuses the folder
    prepare(recipe, root=good, out=out, progress=False)
    res = runner.invoke(
        app, ["prepare", str(recipe), "--root", str(_broken_corpus(tmp_path)), "--out", str(out), "--strict"]
    )
    assert res.exit_code == 1, res.output
    assert not (out / "samples.jsonl").exists() and not (out / "manifest.json").exists()
    assert not (out / "recipe.yaml").exists()
    assert not ImportReport.read(out).manifest_written
    res = runner.invoke(app, ["data", "check", str(out)])
    assert res.exit_code == 2 and "no manifest" in res.output

    # nothing imported: same
    prepare(recipe, root=good, out=out, progress=False)
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["prepare", str(recipe), "--root", str(tmp_path / "empty"), "--out", str(out)])
    assert res.exit_code == 2 and "found no samples" in res.output
    assert not (out / "samples.jsonl").exists() and ImportReport.read(out).n_samples == 0

    # a good run afterwards writes a consistent pair again
    prepare(recipe, root=good, out=out, progress=False)
    assert (out / "samples.jsonl").read_text() == old_rows and check_manifest(out, progress=False).ok
    info = json.loads((out / "manifest.json").read_text())
    assert info["created"] == ImportReport.read(out).created
