"""Every shipped data recipe loads and validates; the SynthMER recipe runs end to end on a tiny config."""

from __future__ import annotations

import importlib.util
import re

import pytest
from corpus_fixtures import kit_root

from emollm.data.importers import IMPORTERS
from emollm.data.prepare import find_recipe, load_recipe, prepare
from emollm.data.sample import Manifest
from emollm.paths import resource_root

RECIPES = sorted((resource_root() / "data_recipes").glob("*.yaml"))
HAVE_SYNTHMER = importlib.util.find_spec("emollm.data.synthmer") is not None


def test_expected_recipes_are_shipped():
    names = {p.stem for p in RECIPES}
    assert {"synthmer", "merr_coarse", "merr_fine", "mer2023", "mer2024", "emer", "ovmerd", "custom_csv"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads(path):
    if "synthmer:" in path.read_text() and not HAVE_SYNTHMER:
        pytest.skip("emollm.data.synthmer not available")
    rec, opts = load_recipe(path)
    assert rec.importer in IMPORTERS
    assert isinstance(opts, IMPORTERS.get(rec.importer).options_model)
    # every key of the recipe carries a comment: the recipes are the user's documentation
    bare = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"^ *[A-Za-z_0-9]+:", line) and "#" not in line
    ]
    assert bare == [], f"{path.name}: keys without a comment: {bare}"
    assert find_recipe(path.stem) == path


@pytest.mark.skipif(not HAVE_SYNTHMER, reason="emollm.data.synthmer not available")
def test_synthmer_recipe_end_to_end(tmp_path):
    overrides = [
        f"generate.synthmer.{k}={v}"
        for k, v in {"n_train": 6, "n_val": 6, "n_test": 6, "min_seconds": 1.0, "max_seconds": 1.0}.items()
    ]
    res = prepare("synthmer", out=tmp_path / "syn", overrides=overrides, progress=False, workers=2)
    assert res.report.problems == [], res.report.to_markdown()
    assert res.root == (tmp_path / "syn" / "raw").resolve()
    m = Manifest.load(tmp_path / "syn")
    assert [len(m.split(s)) for s in ("train", "val", "test")] == [6, 6, 6]
    s = m.samples[0]
    assert s.label in ("neutral", "angry", "happy", "sad", "worried", "surprise")
    assert s.coarse and s.fine and s.subtitle and m.media_path(s, "video").is_file()
    assert s.media["video"].startswith("raw/")  # relative: the output folder can move as a whole
    assert {"speaker", "gender", "frame_count", "pseu_emotion"} <= set(s.meta) and "split" not in s.meta
    assert s.meta["media_info"]["video"]["n_frames"] == s.meta["frame_count"]
    again = prepare("synthmer", out=tmp_path / "syn", overrides=overrides, progress=False)  # idempotent
    assert [x.model_dump() for x in again.samples] == [x.model_dump() for x in res.samples]


def test_shipped_mer2023_and_emer_recipes_on_conformance(tmp_path):
    root = kit_root()
    if root is None or not (root / "mer2023" / "train-label.csv").is_file():
        pytest.skip("conformance kit absent")
    res = prepare(
        "mer2023",
        root=root / "mer2023",
        out=tmp_path / "m",
        overrides=["options.video_dirs=[]"],
        strict=True,
        progress=False,
    )
    assert len(res.samples) == 5030
    res = prepare("emer", root=root / "emer", out=tmp_path / "e", strict=True, progress=False)
    assert len(res.samples) == 100 and all(s.meta.get("fine_zh") for s in res.samples)
    desc = str(root / "emer" / "dataset-v2" / "final-EMER-reason.csv")
    res = prepare(
        "ovmerd",
        root=root / "mer2024_ov",
        out=tmp_path / "o",
        overrides=[f"options.descriptions={desc}"],
        strict=True,
        progress=False,
    )
    assert len(res.samples) == 332 and all(s.openset for s in res.samples)
