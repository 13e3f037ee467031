"""Validate any shipped YAML by where it lives (used by ``emollm validate`` and the config tests).

    validate_yaml("train/mini.yaml")                        # -> "training recipe"
    validate_yaml("data_recipes/mixtures/stage2_fine.yaml")  # -> "instruction mixture"

Nothing heavy is built: configs are parsed and type-checked, registries consulted, referenced files
(mixtures, instruction pools, DeepSpeed JSON) checked to exist.
"""

from __future__ import annotations

import json
from pathlib import Path

from emollm.config import ConfigError


def _kind(path: Path) -> str:
    """The kind of a shipped file, from the folders nearest to it (so a checkout under ``~/train`` is fine)."""
    parents = path.resolve().parent.parts[::-1]  # nearest folder first
    name = path.name
    for i, folder in enumerate(parents):
        above = parents[i + 1] if i + 1 < len(parents) else ""
        if folder == "deepspeed" and path.suffix == ".json":
            return "deepspeed"
        if folder == "mixtures":
            return "mixture"
        if folder == "data_recipes":
            return "data_recipe"
        if folder in ("tasks", "suites") and above == "eval":
            return "eval_task" if folder == "tasks" else "eval_suite"
        if folder in ("instructions", "robustness") and above == "prompts":
            return folder
        if folder == "train":
            return "train"
    raise ConfigError(f"{path}: cannot tell what kind of file {name!r} is from its folder")


def validate_yaml(path: str | Path) -> str:
    p = Path(path)
    kind = _kind(p)
    if kind == "deepspeed":
        try:
            json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: not valid JSON: {e}") from None
        return "DeepSpeed config"
    if kind == "mixture":
        from emollm.data.contract import PromptContract
        from emollm.data.instructions import load_mixture
        from emollm.labels import label_space

        PromptContract.from_mixture(load_mixture(p), label_space("mer6"))  # every pool exists and fits its target
        return "instruction mixture"
    if kind == "data_recipe":
        from emollm.data.prepare import load_recipe

        load_recipe(p)
        return "data recipe"
    if kind == "train":
        from emollm.data.instructions import load_mixture
        from emollm.training.config import load_run_config

        cfg = load_run_config(p)
        for st in cfg.stages:
            load_mixture(st.mixture)
        if cfg.distributed.deepspeed_config:
            from emollm.paths import resolve_resource

            resolve_resource(cfg.distributed.deepspeed_config, "DeepSpeed config")
        return "training recipe"
    if kind == "instructions":
        from emollm.data.instructions import load_pool

        load_pool(str(p))
        return "instruction pool"
    if kind == "eval_task":
        from emollm.evaluation.tasks import load_task

        load_task(p)
        return "eval task"
    if kind == "eval_suite":
        from emollm.evaluation.tasks import load_suite

        load_suite(p)
        return "eval suite"
    from emollm.evaluation.variants import load_variants

    load_variants(p)
    return "robustness variants"
