"""Every shipped YAML/JSON (recipes, mixtures, eval tasks/suites, prompt pools, DeepSpeed configs) loads
and validates against its schema, without any corpus, weights or model being present.

    pytest tests/docs/test_shipped_files.py
    emollm validate FILE                   # the same check for one file
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from emollm.config import ConfigError
from emollm.validate import validate_yaml

REPO = Path(__file__).resolve().parents[2]

# glob -> the kind validate_yaml must report for it (so a file is never checked against the wrong schema)
SHIPPED: dict[str, str] = {
    "train/**/*.yaml": "training recipe",
    "data_recipes/*.yaml": "data recipe",
    "data_recipes/mixtures/*.yaml": "instruction mixture",
    "eval/tasks/*.yaml": "eval task",
    "eval/suites/*.yaml": "eval suite",
    "prompts/instructions/*.yaml": "instruction pool",
    "prompts/robustness/*.yaml": "robustness variants",
    "train/deepspeed/*.json": "DeepSpeed config",
}


def _files(pattern: str) -> list[str]:
    return sorted(p.relative_to(REPO).as_posix() for p in REPO.glob(pattern))


CASES = [(f, kind) for pattern, kind in SHIPPED.items() for f in _files(pattern)]
DEEPSPEED = _files("train/deepspeed/*.json")


@pytest.mark.parametrize("pattern", list(SHIPPED))
def test_every_glob_finds_files(pattern: str) -> None:
    assert _files(pattern), f"no shipped file matches {pattern!r}: the checks below would pass vacuously"


def test_every_shipped_yaml_is_covered() -> None:
    """A YAML in a shipped folder that no pattern above covers would silently go unchecked."""
    covered = {f for f, _ in CASES}
    shipped = {
        p.relative_to(REPO).as_posix()
        for d in ("train", "data_recipes", "eval", "prompts")
        for p in (REPO / d).rglob("*.y*ml")
    }
    assert shipped - covered == set(), "add a pattern (and a validate_yaml handler) for these files"


@pytest.mark.parametrize(("path", "kind"), CASES, ids=[f for f, _ in CASES])
def test_shipped_file_validates(path: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # recipes name other shipped files relative to the repository
    assert validate_yaml(path) == kind


@pytest.mark.parametrize("path", DEEPSPEED)
def test_deepspeed_config_has_what_deepspeed_needs(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """zero_optimization is accepted by DeepSpeed's own (extra-forbidding) schema, its stage matches the
    file name, and the config the trainer merges from it (batch sizes, precision) is a valid DeepSpeedConfig."""
    monkeypatch.chdir(REPO)
    data = json.loads((REPO / path).read_text())
    zero = data["zero_optimization"]
    stage = int(re.match(r"zero(\d)", Path(path).stem).group(1))
    assert zero["stage"] == stage, f"{path}: zero_optimization.stage is {zero['stage']}, the file name says {stage}"
    if "offload" in Path(path).stem:
        assert zero.get("offload_optimizer", {}).get("device") == "cpu", f"{path}: named *_offload but offloads nothing"
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.config import DeepSpeedConfig
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    assert DeepSpeedZeroConfig(**zero).stage == stage
    from emollm.training.config import load_run_config
    from emollm.training.engines import load_deepspeed_config

    run = load_run_config("train/tiny.yaml", ["distributed.strategy=deepspeed", f"distributed.deepspeed_config={path}"])
    st = run.stages[0]
    merged = load_deepspeed_config(run, st)
    ds = DeepSpeedConfig(merged)
    assert ds.zero_optimization_stage == stage
    assert ds.train_micro_batch_size_per_gpu == st.micro_batch_size
    assert ds.train_batch_size == st.micro_batch_size * st.grad_accum  # one process here


def test_data_recipe_validates_without_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation checks the schema only: a recipe whose corpus root does not exist is still valid..."""
    monkeypatch.chdir(tmp_path)
    rec = tmp_path / "data_recipes" / "mer2023_here.yaml"
    rec.parent.mkdir()
    data = yaml.safe_load((REPO / "data_recipes" / "mer2023.yaml").read_text())
    data["root"] = str(tmp_path / "no" / "such" / "MER2023")
    rec.write_text(yaml.safe_dump(data))
    assert validate_yaml(rec) == "data recipe"
    # ...but a wrong key is reported with the file and the key
    data["options"]["label_csvs"] = "x.csv"
    rec.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"(?s)mer2023_here\.yaml.*label_csvs"):
        validate_yaml(rec)


def test_eval_task_validates_without_its_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eval tasks name their data by root *name*; no root needs to be mounted to validate them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMOLLM_CONFORMANCE", raising=False)
    dst = tmp_path / "eval" / "tasks"
    dst.mkdir(parents=True)
    shutil.copy(REPO / "eval" / "tasks" / "mer2023_test1.yaml", dst / "mer2023_test1.yaml")
    assert validate_yaml(dst / "mer2023_test1.yaml") == "eval task"


def test_unknown_folder_is_refused_with_its_name(tmp_path: Path) -> None:
    p = tmp_path / "misc" / "thing.yaml"
    p.parent.mkdir()
    p.write_text("a: 1\n")
    with pytest.raises(ConfigError, match="thing.yaml"):
        validate_yaml(p)


def test_kind_comes_from_the_nearest_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout under a folder named ``train`` still tells an eval task from a training recipe."""
    monkeypatch.delenv("EMOLLM_CONFORMANCE", raising=False)
    dst = tmp_path / "train" / "checkout" / "eval" / "tasks"
    dst.mkdir(parents=True)
    shutil.copy(REPO / "eval" / "tasks" / "mer2023_test1.yaml", dst / "mer2023_test1.yaml")
    assert validate_yaml(dst / "mer2023_test1.yaml") == "eval task"
