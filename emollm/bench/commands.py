"""``emollm bench``: speed and memory of the fast paths, measured against the reference approach in the same run.

    emollm bench train    --preset tiny                               # LoRA training: bucketed batches vs batch 1
    emollm bench eval     --preset mini --corpus runs/data/bench_synthmer  # label scoring vs generate + last word
    emollm bench generate --preset tiny --max-new-tokens 16           # left-padded batches vs one at a time
    emollm bench extract  --preset tiny-fast --corpus runs/data/bench_synthmer   # cold vs warm feature cache
    emollm bench train    --preset emotion-llama-shapes --device cuda       # the 7B shapes, random weights
    emollm bench rl       --preset tiny --max-new-tokens 16               # GRPO rollouts: shared prefix vs per rollout

Every command prints a table, then ONE JSON line (the last line of stdout) holding every figure:
``fast`` and ``reference`` (samples_per_s, tokens_per_s, seconds, peak_mem_mib, tflops, mfu ...),
``ratio`` (fast over reference), ``device``, ``preset``, ``settings`` and ``machine``.
``--json-out FILE`` also writes it to a file. Presets set sensible sizes (``emollm.bench.defaults``);
every size can be overridden. ``--shape key=value`` resizes ``emotion-llama-shapes``
(``num_hidden_layers=2``...); it refuses to run full size on a CPU without ``--allow-slow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

PRESET_HELP = "tiny, tiny-fast, mini, emotion-llama-shapes, or an emollm checkpoint folder"


def _shape(items: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise ValueError(f"--shape {it!r}: expected key=value (e.g. num_hidden_layers=2)")
        out[k.strip()] = yaml.safe_load(v)
    return out


def _text(subtitle_sentences: int | None, answer_words: int | None) -> dict[str, int] | None:
    t = {"subtitle_sentences": subtitle_sentences, "answer_words": answer_words}
    t = {k: v for k, v in t.items() if v is not None}
    return t or None


def _finish(report: Any, json_out: Path | None) -> None:
    from rich.console import Console

    from emollm.io import atomic_write_json

    report.print(Console(stderr=False, soft_wrap=True))
    if json_out is not None:
        atomic_write_json(json_out, report.as_dict())
    typer.echo(report.json_line())


def _run_model_bench(
    kind: str,
    preset: str,
    own: dict[str, Any],
    *,
    device: str,
    threads: int | None,
    corpus: str | None,
    split: str | None,
    text: dict[str, int] | None,
    shape: list[str] | None,
    override: list[str] | None,
    allow_slow: bool,
    seed: int | None,
    json_out: Path | None,
) -> None:
    """The part every model benchmark shares: preset defaults under the given options, typed config, run."""
    import importlib

    from emollm.bench.defaults import bench_settings
    from emollm.config import validate

    module = importlib.import_module(f"emollm.bench.{kind}")
    config_cls = {
        "train": "TrainBenchConfig",
        "eval": "EvalBenchConfig",
        "generate": "GenerateBenchConfig",
        "rl": "RLBenchConfig",
    }[kind]
    dev = _setup(device, threads)
    given = {
        **own,
        "corpus": corpus,
        "split": split,
        "text": text,
        "shape": _shape(shape) or None,
        "overrides": override or None,
        "allow_slow": allow_slow or None,
        "seed": seed,
    }
    cfg = validate(getattr(module, config_cls), bench_settings(kind, preset, given), f"emollm bench {kind}")
    _finish(module.run(cfg, dev), json_out)


def _setup(device: str, threads: int | None) -> Any:
    import torch

    from emollm.bench.common import resolve_device

    if threads:
        torch.set_num_threads(threads)
    return resolve_device(device)


def register(app: typer.Typer) -> None:
    bench = typer.Typer(
        help="Benchmarks: fast path vs the reference approach, in one run (ends with one JSON line).",
        no_args_is_help=True,
    )
    app.add_typer(bench, name="bench")

    preset_opt = typer.Option("tiny", "--preset", "-p", help=PRESET_HELP)
    device_opt = typer.Option("auto", "--device", "-d", help="auto (cuda if visible), cpu, cuda, cuda:N")
    samples_opt = typer.Option(None, "--samples", "-n", min=1, help="samples in the workload (preset default)")
    batch_opt = typer.Option(None, "--batch-size", "-b", min=1, help="fast-path batch size (preset default)")
    corpus_opt = typer.Option(
        None, "--corpus", help="'synthetic', a prepared manifest folder or a data recipe (preset default)"
    )
    split_opt = typer.Option(None, "--split", help="manifest split to take samples from")
    shape_opt = typer.Option(None, "--shape", help="emotion-llama-shapes size override key=value (repeatable)")
    override_opt = typer.Option(
        None, "--override", help="model config override key=value for a preset/checkpoint (repeatable)"
    )
    slow_opt = typer.Option(False, "--allow-slow", help="allow emotion-llama-shapes at full size on a CPU")
    threads_opt = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's choice)")
    json_opt = typer.Option(None, "--json-out", help="also write the JSON result to this file")
    seed_opt = typer.Option(None, "--seed")
    sub_opt = typer.Option(None, "--subtitle-sentences", min=0, help="synthetic data: sentences per subtitle")
    ans_opt = typer.Option(None, "--answer-words", min=1, help="synthetic data: words per description answer")
    ref_opt = typer.Option(None, "--ref-samples", min=1, help="samples the reference path runs (one at a time)")

    @bench.command("train")
    def train_cmd(
        preset: str = preset_opt,
        device: str = device_opt,
        samples: int | None = samples_opt,
        batch_size: int | None = batch_opt,
        grad_accum: int | None = typer.Option(None, "--grad-accum", min=1),
        steps: int | None = typer.Option(None, "--steps", min=1, help="timed optimiser steps (fast path)"),
        warmup_steps: int | None = typer.Option(None, "--warmup-steps", min=0),
        ref_samples: int | None = ref_opt,
        ref_warmup: int | None = typer.Option(None, "--ref-warmup", min=0, help="untimed reference steps"),
        precision: str | None = typer.Option(None, "--precision", help="fast path: auto, bf16, fp16 or fp32"),
        gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing/--no-gradient-checkpointing"),
        bucket: bool = typer.Option(True, "--bucket/--no-bucket", help="length-bucketed micro-batches"),
        mixture: str | None = typer.Option(None, "--mixture", help="instruction mixture YAML"),
        corpus: str | None = corpus_opt,
        split: str | None = split_opt,
        subtitle_sentences: int | None = sub_opt,
        answer_words: int | None = ans_opt,
        shape: list[str] | None = shape_opt,
        override: list[str] | None = override_opt,
        allow_slow: bool = slow_opt,
        seed: int | None = seed_opt,
        threads: int | None = threads_opt,
        json_out: Path | None = json_opt,
    ) -> None:
        """LoRA training: bucketed bf16 micro-batches vs the reference's batch-1 fp16 steps."""
        own = {
            "samples": samples,
            "batch_size": batch_size,
            "grad_accum": grad_accum,
            "steps": steps,
            "warmup_steps": warmup_steps,
            "ref_samples": ref_samples,
            "ref_warmup": ref_warmup,
            "precision": precision,
            "gradient_checkpointing": gradient_checkpointing or None,
            "bucket": bucket,
            "mixture": mixture,
        }
        _run_model_bench(
            "train", preset, own, device=device, threads=threads, corpus=corpus, split=split,
            text=_text(subtitle_sentences, answer_words), shape=shape, override=override,
            allow_slow=allow_slow, seed=seed, json_out=json_out,
        )  # fmt: skip

    @bench.command("eval")
    def eval_cmd(
        preset: str = preset_opt,
        device: str = device_opt,
        samples: int | None = samples_opt,
        batch_size: int | None = batch_opt,
        repeats: int | None = typer.Option(None, "--repeats", min=1, help="timed fast-path passes (median)"),
        ref_samples: int | None = ref_opt,
        ref_max_new_tokens: int | None = typer.Option(
            None, "--ref-max-new-tokens", min=1, help="reference generation cap (default 500; stops at EOS)"
        ),
        ref_answer_tokens: int | None = typer.Option(
            None, "--ref-answer-tokens", min=1, help="answer length of the short-answer reference estimate"
        ),
        precision: str | None = typer.Option(None, "--precision", help="fast path: auto, bf16, fp16 or fp32"),
        corpus: str | None = corpus_opt,
        split: str | None = split_opt,
        subtitle_sentences: int | None = sub_opt,
        shape: list[str] | None = shape_opt,
        override: list[str] | None = override_opt,
        allow_slow: bool = slow_opt,
        seed: int | None = seed_opt,
        threads: int | None = threads_opt,
        json_out: Path | None = json_opt,
    ) -> None:
        """Closed-set eval: batched label scoring vs one-at-a-time generation + last word."""
        own = {
            "samples": samples,
            "batch_size": batch_size,
            "repeats": repeats,
            "ref_samples": ref_samples,
            "ref_max_new_tokens": ref_max_new_tokens,
            "ref_answer_tokens": ref_answer_tokens,
            "precision": precision,
        }
        _run_model_bench(
            "eval", preset, own, device=device, threads=threads, corpus=corpus, split=split,
            text=_text(subtitle_sentences, None), shape=shape, override=override,
            allow_slow=allow_slow, seed=seed, json_out=json_out,
        )  # fmt: skip

    @bench.command("generate")
    def generate_cmd(
        preset: str = preset_opt,
        device: str = device_opt,
        samples: int | None = samples_opt,
        batch_size: int | None = batch_opt,
        max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1),
        ignore_eos: bool = typer.Option(
            True, "--ignore-eos/--stop-at-eos", help="generate exactly max-new-tokens (default) or stop at EOS"
        ),
        task: str | None = typer.Option(None, "--task", help="emotion, reason, describe or openset"),
        ref_samples: int | None = ref_opt,
        corpus: str | None = corpus_opt,
        split: str | None = split_opt,
        subtitle_sentences: int | None = sub_opt,
        shape: list[str] | None = shape_opt,
        override: list[str] | None = override_opt,
        allow_slow: bool = slow_opt,
        seed: int | None = seed_opt,
        threads: int | None = threads_opt,
        json_out: Path | None = json_opt,
    ) -> None:
        """Generation: left-padded batches with KV cache vs one prompt at a time (tokens/s)."""
        own = {
            "samples": samples,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "ignore_eos": ignore_eos,
            "task": task,
            "ref_samples": ref_samples,
        }
        _run_model_bench(
            "generate", preset, own, device=device, threads=threads, corpus=corpus, split=split,
            text=_text(subtitle_sentences, None), shape=shape, override=override,
            allow_slow=allow_slow, seed=seed, json_out=json_out,
        )  # fmt: skip

    @bench.command("rl")
    def rl_cmd(
        preset: str = preset_opt,
        device: str = device_opt,
        samples: int | None = samples_opt,
        batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="prompts per rollout call"),
        group_size: int | None = typer.Option(None, "--group-size", "-g", min=2, help="completions per prompt (G)"),
        max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1),
        ignore_eos: bool = typer.Option(
            True, "--ignore-eos/--stop-at-eos", help="generate exactly max-new-tokens (default) or stop at EOS"
        ),
        micro_batch_size: int | None = typer.Option(
            None, "--micro-batch-size", min=1, help="completions per update chunk"
        ),
        ref_prompts: int | None = typer.Option(None, "--ref-prompts", min=1, help="prompts the reference runs"),
        corpus: str | None = corpus_opt,
        split: str | None = split_opt,
        shape: list[str] | None = shape_opt,
        override: list[str] | None = override_opt,
        allow_slow: bool = slow_opt,
        seed: int | None = seed_opt,
        threads: int | None = threads_opt,
        json_out: Path | None = json_opt,
    ) -> None:
        """GRPO: shared-prefix batched rollouts + chunked update vs per-rollout generate (rollouts/s, train samples/s)."""
        own = {
            "samples": samples,
            "batch_size": batch_size,
            "group_size": group_size,
            "max_new_tokens": max_new_tokens,
            "ignore_eos": ignore_eos,
            "micro_batch_size": micro_batch_size,
            "ref_prompts": ref_prompts,
        }
        _run_model_bench(
            "rl", preset, own, device=device, threads=threads, corpus=corpus, split=split,
            text=None, shape=shape, override=override,
            allow_slow=allow_slow, seed=seed, json_out=json_out,
        )  # fmt: skip

    @bench.command("extract")
    def extract_cmd(
        corpus: str = typer.Option(..., "--corpus", help="prepared manifest folder or data recipe (with media)"),
        preset: str = typer.Option("tiny-fast", "--preset", "-p", help="tiny, tiny-fast, mini or a checkpoint"),
        device: str = device_opt,
        samples: int | None = samples_opt,
        batch_size: int | None = batch_opt,
        split: str | None = split_opt,
        change: str | None = typer.Option(None, "--change", help="pass 3 option change: modality.option=value"),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="parent folder of the fresh cache"),
        keep_cache: bool = typer.Option(False, "--keep-cache", help="keep the cache folder afterwards"),
        threads: int | None = threads_opt,
        json_out: Path | None = json_opt,
    ) -> None:
        """Features: cold cache (computed) vs warm cache (hits), and a changed encoder option (recomputed)."""
        from emollm.bench import extract
        from emollm.config import validate

        dev = _setup(device, threads)
        given = {
            "preset": preset,
            "corpus": corpus,
            "samples": samples,
            "batch_size": batch_size,
            "split": split,
            "change": change,
            "cache_dir": str(cache_dir) if cache_dir else None,
            "keep_cache": keep_cache,
        }
        cfg = validate(
            extract.ExtractBenchConfig, {k: v for k, v in given.items() if v is not None}, "emollm bench extract"
        )
        _finish(extract.run(cfg, dev), json_out)
