"""`emollm predict`: folder and manifest inputs, resumable records, sharding, valence, open-set CSV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from emollm.answers import read_openset
from emollm.evaluation.readers import read_label_csv, read_openset_csv
from emollm.inference.predict import (
    PredictOptions,
    ValenceTable,
    finish_run,
    folder_samples,
    load_records,
    run_predict,
    valence_table_from_file,
    valence_table_from_manifest,
    write_submission,
)
from emollm.io import read_jsonl
from emollm.labels import label_space
from emollm.shard import parse_shard


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory, test_samples) -> Path:
    man, samples = test_samples
    d = tmp_path_factory.mktemp("clips")
    for s in samples[:3]:
        shutil.copy(man.media_path(s, "video"), d / f"{s.id}.mp4")
    t = np.arange(8000) / 16000
    sf.write(d / "voice.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    Image.fromarray(np.full((48, 48, 3), 120, np.uint8)).save(d / "face.png")
    (d / "readme.txt").write_text("not media")
    (d / "broken.mp4").write_bytes(b"\x00" * 300)
    return d


def test_folder_predictions_with_an_unreadable_clip(predictor, clip_folder, tmp_path) -> None:
    samples = folder_samples(clip_folder)
    assert sorted(s.id for s in samples) == sorted(
        ["broken", "face", "voice"] + [p.stem for p in clip_folder.glob("synth_*")]
    )
    assert {s.id: next(iter(s.media)) for s in samples}["voice"] == "audio"
    opts = PredictOptions(batch_size=4)
    summary = run_predict(predictor, samples, None, tmp_path, opts, progress=False)
    assert list(summary.errors) == ["broken"] and summary.computed == 5
    csv_path = finish_run(tmp_path, opts)
    gold = read_label_csv(csv_path)
    assert sorted(gold.discrete) == sorted(s.id for s in samples if s.id != "broken")
    assert set(gold.valence.values()) == {None}  # no valence table: empty cells
    recs = load_records(tmp_path)
    assert recs["voice"]["modalities"] == ["audio"] and "face" in recs["voice"]["missing"]
    assert recs["face"]["modalities"] == ["face"]
    assert sum(recs["face"]["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    again = run_predict(predictor, samples, None, tmp_path, opts, progress=False)  # errors are retried, nothing else
    assert again.skipped == 5 and again.computed == 0 and list(again.errors) == ["broken"]
    (clip_folder / "extra").mkdir(exist_ok=True)
    shutil.copy(clip_folder / "face.png", clip_folder / "extra" / "face.jpg")
    shutil.copy(clip_folder / "face.png", clip_folder / "extra" / "face.png")
    with pytest.raises(ValueError, match="same id 'face'"):
        folder_samples(clip_folder / "extra")


def test_resume_keeps_existing_records_and_repairs_a_torn_line(predictor, test_samples, tmp_path) -> None:
    man, samples = test_samples
    first, torn = samples[0].id, samples[1].id
    part = tmp_path / "records" / "part-000-of-001.jsonl"
    part.parent.mkdir(parents=True)
    seeded = {"name": first, "discrete": "happy", "probs": {"happy": 1.0}, "logp": {}, "modalities": []}
    part.write_text(json.dumps(seeded) + "\n" + json.dumps({"name": torn, "discrete": "sad"})[:25])  # killed mid-write
    summary = run_predict(predictor, samples, man.root, tmp_path, PredictOptions(batch_size=5), progress=False)
    assert summary.skipped == 1 and summary.computed == len(samples) - 1
    rows = read_jsonl(part)
    assert [r["name"] for r in rows].count(first) == 1 and rows[0] == seeded  # not recomputed
    assert [r["name"] for r in rows].count(torn) == 1
    csv_path = write_submission(tmp_path)
    assert read_label_csv(csv_path).discrete[first] == "happy"
    rerun = run_predict(predictor, samples, man.root, tmp_path, PredictOptions(batch_size=5), progress=False)
    assert rerun.computed == 0 and rerun.skipped == len(samples)
    with pytest.raises(ValueError, match="other settings.*explain"):
        run_predict(predictor, samples, man.root, tmp_path, PredictOptions(explain=True), progress=False)


def test_shards_cover_the_split_and_match_one_process(predictor, test_samples, tmp_path) -> None:
    man, samples = test_samples
    samples = samples[:8]
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    run_predict(predictor, samples, man.root, whole, PredictOptions(batch_size=16), progress=False)
    for i in range(3):
        s = run_predict(predictor, samples, man.root, sharded, PredictOptions(batch_size=2), (i, 3), progress=False)
        assert s.total == len(samples[i::3])
        if i == 0:
            assert set(load_records(sharded)) == {x.id for x in samples[0::3]}
    assert len(list((sharded / "records").glob("part-*-of-003.jsonl"))) == 3
    a, b = load_records(whole), load_records(sharded)
    assert a.keys() == b.keys() == {s.id for s in samples}
    for k in a:
        assert a[k]["discrete"] == b[k]["discrete"] and a[k]["probs"] == pytest.approx(b[k]["probs"], abs=1e-5)
    assert parse_shard("2/3") == (2, 3) and parse_shard("") == (0, 1)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_valence_tables(synthmer_small, tmp_path) -> None:
    space = label_space("mer6")
    table = valence_table_from_manifest(str(synthmer_small), space, "train")
    assert set(table.values) == set(space.labels) and sum(table.counts.values()) > 0
    assert table.values["happy"] > table.values["sad"]  # SynthMER draws valence around per-label means
    probs = {lab: 0.0 for lab in space.labels} | {"happy": 0.75, "sad": 0.25}
    assert table.expected(probs) == pytest.approx(0.75 * table.values["happy"] + 0.25 * table.values["sad"])
    f = tmp_path / "v.yaml"
    f.write_text("happiness: 2\nsad: -2\nneutral: 0\nangry: -3\nworried: -1.5\nsurprise: 1\n")
    assert valence_table_from_file(f, space).values["happy"] == 2.0
    f.write_text("happy: 2\n")
    with pytest.raises(ValueError, match="no valence for labels"):
        valence_table_from_file(f, space)
    f.write_text("joyous: 2\n")
    with pytest.raises(ValueError, match="unknown label 'joyous'"):
        valence_table_from_file(f, space)
    assert ValenceTable({"happy": 4.0}, "x").expected({"happy": 0.5, "sad": 0.5}) == 4.0


def test_openset_task_and_parser(predictor, test_samples, tmp_path) -> None:
    man, samples = test_samples
    opts = PredictOptions(task="openset", max_new_tokens=8)
    run_predict(predictor, samples[:3], man.root, tmp_path, opts, progress=False)
    recs = load_records(tmp_path)
    assert all("openset_text" in r and isinstance(r["openset"], list) for r in recs.values())
    parsed = read_openset_csv(write_submission(tmp_path, opts))
    assert set(parsed.items) == {s.id for s in samples[:3]}
    space = predictor.system.labels
    for name, r in recs.items():  # the record's words are what the one reader makes of the answer
        assert r["openset"] == read_openset(r["openset_text"], "clean", space.mentions), name
    assert read_openset("Happy, excited and a bit nervous; relieved.", "clean", space.mentions) == [
        "happy",
        "excited",
        "bit nervous",
        "relieved",
    ]
    assert read_openset("['sad', 'angry']", "clean", space.mentions) == ["sad", "angry"]


def test_cli_predict_manifest_then_resume(tiny_ckpt, feature_cache, synthmer_small, tmp_path) -> None:
    from emollm.cli import app

    out = tmp_path / "pred"
    args = [
        "predict",
        "--checkpoint", str(tiny_ckpt),
        "--manifest", str(synthmer_small),
        "--split", "test",
        "--out", str(out),
        "--batch-size", "6",
        "--valence-from", str(synthmer_small),
        "--cache-dir", str(feature_cache),
        "--device", "cpu",
        "--quiet",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    sub = read_label_csv(out / "submission.csv", valence="required")
    assert len(sub.discrete) == 12 and all(-5 <= v <= 5 for v in sub.valence.values())
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["checkpoint"] == str(tiny_ckpt.resolve()) and run["valence"]["values"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "0 predicted, 12 already done" in res.output.replace("\n", " ")
    res = CliRunner().invoke(app, ["predict", "--checkpoint", str(tiny_ckpt), "--out", str(out)])
    assert res.exit_code != 0 and "exactly one input" in str(res.exception)
