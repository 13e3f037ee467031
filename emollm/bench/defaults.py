"""Per-preset default sizes of each benchmark, so that ``tiny`` runs in seconds and the 7B shapes are worth timing.

    settings = bench_settings("train", "emotion-llama-shapes", {"steps": 20})   # explicit values win

Keys are fields of the bench config (``TrainBenchConfig`` ...) or of its ``workload`` (``samples``);
``bench_settings`` nests the workload keys. Anything not listed falls back to the config's default.
"""

from __future__ import annotations

from typing import Any

WORKLOAD_KEYS = frozenset(
    {
        "preset",
        "corpus",
        "split",
        "samples",
        "seed",
        "cache_dir",
        "text",
        "shape",
        "overrides",
        "gradient_checkpointing",
        "allow_slow",
    }
)

PRESET_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "train": {
        "tiny": {"samples": 32, "batch_size": 8, "steps": 4, "ref_samples": 8},
        "tiny-fast": {"samples": 32, "batch_size": 8, "steps": 4, "ref_samples": 8},
        "mini": {"samples": 48, "split": "train", "batch_size": 8, "steps": 3, "ref_samples": 8},
        "emotion-llama-shapes": {
            "samples": 512,
            "batch_size": 16,
            "steps": 10,
            "warmup_steps": 2,
            "ref_samples": 16,
            "ref_warmup": 2,
        },
    },
    "eval": {
        "tiny": {"samples": 32, "batch_size": 16, "ref_samples": 4},
        "tiny-fast": {"samples": 32, "batch_size": 16, "ref_samples": 4},
        "mini": {"samples": 48, "split": "test", "batch_size": 16, "ref_samples": 8, "repeats": 2},
        # batch 16: score_labels repeats the prompt's KV cache once per label (9 for merr9): ~1.5 GiB a sample at 7B
        "emotion-llama-shapes": {"samples": 512, "batch_size": 16, "ref_samples": 8, "repeats": 3},
    },
    "rl": {
        "tiny": {"samples": 16, "batch_size": 4, "group_size": 8, "max_new_tokens": 16, "ref_prompts": 2},
        "tiny-fast": {"samples": 16, "batch_size": 4, "group_size": 8, "max_new_tokens": 16, "ref_prompts": 2},
        "mini": {
            "samples": 8,
            "split": "train",
            "batch_size": 4,
            "group_size": 8,
            "max_new_tokens": 24,
            "ref_prompts": 1,
        },
        "emotion-llama-shapes": {
            "samples": 32,
            "batch_size": 8,
            "group_size": 8,
            "max_new_tokens": 64,
            "ref_prompts": 2,
        },
    },
    "generate": {
        "tiny": {"samples": 32, "batch_size": 16, "ref_samples": 8},
        "tiny-fast": {"samples": 32, "batch_size": 16, "ref_samples": 8},
        "mini": {"samples": 32, "split": "test", "batch_size": 16, "ref_samples": 4},
        "emotion-llama-shapes": {"samples": 128, "batch_size": 32, "max_new_tokens": 64, "ref_samples": 4},
    },
}


def bench_settings(bench: str, preset: str, given: dict[str, Any]) -> dict[str, Any]:
    """Preset defaults overlaid with the explicitly ``given`` values, workload keys nested under ``workload``."""
    flat = {**PRESET_DEFAULTS.get(bench, {}).get(preset, {}), **{k: v for k, v in given.items() if v is not None}}
    flat["preset"] = preset
    workload = {k: v for k, v in flat.items() if k in WORKLOAD_KEYS}
    rest = {k: v for k, v in flat.items() if k not in WORKLOAD_KEYS}
    return {"workload": workload, **rest}
