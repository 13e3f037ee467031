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
every size can be overridden: each option is a field of the bench's typed settings
(``emollm.bench.configs``; its docstring is the help), so a new setting is one field. ``--shape key=value`` resizes ``emotion-llama-shapes``
(``num_hidden_layers=2``...); it refuses to run full size on a CPU without ``--allow-slow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from emollm.bench.configs import (
    EvalBenchConfig,
    ExtractBenchConfig,
    GenerateBenchConfig,
    RLBenchConfig,
    SynthTextConfig,
    TrainBenchConfig,
    WorkloadConfig,
)
from emollm.cli_models import Flag, flat_model, model_command

CONFIGS: dict[str, type[Any]] = {
    "train": TrainBenchConfig,
    "eval": EvalBenchConfig,
    "generate": GenerateBenchConfig,
    "rl": RLBenchConfig,
}


def _shape(items: list[str] | None) -> dict[str, Any] | None:
    import yaml

    out: dict[str, Any] = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise ValueError(f"--shape {it!r}: expected key=value (e.g. num_hidden_layers=2)")
        out[k.strip()] = yaml.safe_load(v)
    return out or None


# what the command line spells differently from the field names; everything else is generated
WORKLOAD_FLAGS = {
    "preset": Flag("--preset", "-p", default="tiny"),
    "samples": Flag("--samples", "-n", min=1),
    "batch_size": Flag("--batch-size", "-b", min=1),
    "shape": Flag(type=list[str] | None, parse=_shape,
                  help="emotion-llama-shapes size override key=value (repeatable)"),
    "overrides": Flag("--override", type=list[str] | None, parse=lambda v: v or None,
                      help="model config override key=value for a preset/checkpoint (repeatable)"),
    "gradient_checkpointing": Flag("--gradient-checkpointing/--no-gradient-checkpointing"),
    "bucket": Flag("--bucket/--no-bucket"),
    "ignore_eos": Flag("--ignore-eos/--stop-at-eos"),
    "subtitle_sentences": Flag(min=0),
    "group_size": Flag("--group-size", "-g", min=2),
}  # fmt: skip
MIN_ONE = (
    "grad_accum",
    "steps",
    "ref_samples",
    "repeats",
    "ref_max_new_tokens",
    "ref_answer_tokens",
    "max_new_tokens",
    "micro_batch_size",
    "ref_prompts",
)
MIN_ZERO = ("warmup_steps", "ref_warmup")


def _bench_flags(model: type[Any]) -> dict[str, Flag]:
    flags = {k: v for k, v in WORKLOAD_FLAGS.items() if k in model.model_fields}
    for name in MIN_ONE + MIN_ZERO + ("answer_words",):
        if name in model.model_fields and name not in flags:
            flags[name] = Flag(min=0 if name in MIN_ZERO else 1)
    return flags


def cli_model(kind: str) -> type[Any]:
    """The flat options of ``emollm bench KIND``: the bench's own settings, its workload's and the
    synthetic text lengths (nested again by ``bench_settings``)."""
    return flat_model(
        f"{kind.title()}BenchFlags", CONFIGS[kind], WorkloadConfig, SynthTextConfig, skip={"workload", "text"}
    )


def _finish(report: Any, json_out: Path | None) -> None:
    from rich.console import Console

    from emollm.io import atomic_write_json

    report.print(Console(stderr=False, soft_wrap=True))
    if json_out is not None:
        atomic_write_json(json_out, report.as_dict())
    typer.echo(report.json_line())


def _run_model_bench(
    kind: str, values: dict[str, Any], device: str, threads: int | None, json_out: Path | None
) -> None:
    """The part every model benchmark shares: preset defaults under the given options, typed config, run."""
    import importlib

    from emollm.bench.defaults import bench_settings
    from emollm.config import validate

    module = importlib.import_module(f"emollm.bench.{kind}")
    dev = _setup(device, threads)
    given = dict(values)
    text = {k: given.pop(k) for k in SynthTextConfig.model_fields if k in given}
    given["text"] = {k: v for k, v in text.items() if v is not None} or None
    cfg = validate(CONFIGS[kind], bench_settings(kind, given["preset"], given), f"emollm bench {kind}")
    _finish(module.run(cfg, dev), json_out)


def _setup(device: str, threads: int | None) -> Any:
    import torch

    from emollm.bench.common import resolve_device

    if threads:
        torch.set_num_threads(threads)
    return resolve_device(device)


DEVICE_HELP = "auto (cuda if visible), cpu, cuda, cuda:N"


def _model_bench(kind: str, summary: str) -> Any:
    model = cli_model(kind)

    @model_command(model, _bench_flags(model), default=None)  # None: the preset's default (bench_settings)
    def command(
        values: dict[str, Any],
        device: str = typer.Option("auto", "--device", "-d", help=DEVICE_HELP),
        threads: int | None = typer.Option(
            None, "--threads", min=1, help="torch CPU threads (default: torch's choice)"
        ),
        json_out: Path | None = typer.Option(None, "--json-out", help="also write the JSON result to this file"),
    ) -> None:
        _run_model_bench(kind, values, device, threads, json_out)

    command.__doc__ = summary
    return command


def register(app: typer.Typer) -> None:
    bench = typer.Typer(
        help="Benchmarks: fast path vs the reference approach, in one run (ends with one JSON line).",
        no_args_is_help=True,
    )
    app.add_typer(bench, name="bench")
    bench.command("train")(
        _model_bench("train", "LoRA training: bucketed bf16 micro-batches vs the reference's batch-1 fp16 steps.")
    )
    bench.command("eval")(
        _model_bench("eval", "Closed-set eval: batched label scoring vs one-at-a-time generation + last word.")
    )
    bench.command("generate")(
        _model_bench("generate", "Generation: left-padded batches with KV cache vs one prompt at a time (tokens/s).")
    )
    bench.command("rl")(
        _model_bench(
            "rl",
            "GRPO: shared-prefix batched rollouts + chunked update vs per-rollout generate (rollouts/s, train samples/s).",
        )
    )

    @bench.command("extract")
    @model_command(
        ExtractBenchConfig,
        {"preset": Flag("--preset", "-p"), "samples": Flag("--samples", "-n", min=1),
         "batch_size": Flag("--batch-size", "-b", min=1), "cache_dir": Flag(type=Path | None, parse=lambda v: str(v) if v else None)},
    )  # fmt: skip
    def extract_cmd(
        values: dict[str, Any],
        device: str = typer.Option("auto", "--device", "-d", help=DEVICE_HELP),
        threads: int | None = typer.Option(
            None, "--threads", min=1, help="torch CPU threads (default: torch's choice)"
        ),
        json_out: Path | None = typer.Option(None, "--json-out", help="also write the JSON result to this file"),
    ) -> None:
        """Features: cold cache (computed) vs warm cache (hits), and a changed encoder option (recomputed)."""
        from emollm.bench import extract
        from emollm.config import validate

        dev = _setup(device, threads)
        cfg = validate(extract.ExtractBenchConfig, values, "emollm bench extract")
        _finish(extract.run(cfg, dev), json_out)
