"""``emollm prompt``: the exact text a model sees for a task, rendered from its prompt contract.

The text is what the Processor feeds the model — the tokenizer's chat template, the system prompt,
the subtitle sentence and the ``[tag] instruction`` — decoded from the token ids, with each run of
media placeholder tokens summarised as ``<audio × 1>``, ``<face × 4>``... So a user can check what a
checkpoint was trained on, and that eval, chat, predict and serve ask the same::

    emollm prompt --checkpoint runs/mini/final --task reason
    emollm prompt --checkpoint mini --task emotion --manifest runs/data/synthmer --sample synthmer_test_0003
    emollm prompt --checkpoint runs/mini/best --task emotion --variant O_rev     # a robustness variant

Without ``--sample`` a placeholder sample with every modality of the model and a short subtitle is
rendered. ``--task`` is a task of the contract (``emotion``, ``reason``...) or a chat task (``label``,
``explain``, ``openset``), which maps to the contract task chat would ask.

    text = render_prompt_text(system.processor, system.processor.encode(conv, generation=True))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from emollm.data.conversation import Conversation
from emollm.data.sample import Sample

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

PLACEHOLDER_SUBTITLE = "I really did not expect that."


def render_prompt_text(processor: Any, enc: Any) -> str:
    """The decoded token ids of ``enc``, each placeholder run shown as ``<modality × n>``."""
    ids: list[int] = list(enc.input_ids)
    mod_of = {v: k for k, v in processor.placeholder_ids.items()}
    out: list[str] = []
    run: list[int] = []
    i = 0
    while i < len(ids):
        m = mod_of.get(ids[i])
        if m is None:
            run.append(ids[i])
            i += 1
            continue
        if run:
            out.append(processor.tok.decode(run, skip_special_tokens=False))
            run = []
        j = i
        while j < len(ids) and ids[j] == ids[i]:
            j += 1
        out.append(f"<{m} × {j - i}>")
        i = j
    if run:
        out.append(processor.tok.decode(run, skip_special_tokens=False))
    return "".join(out)


@dataclass
class RenderedPrompt:
    task: str
    conversation: Conversation
    text: str
    n_tokens: int
    modalities: list[str]


def resolve_task(contract: Any, task: str) -> str:
    """A contract task name, or a chat task kind mapped to the task chat asks."""
    if task in contract.tasks:
        return task
    from emollm.inference.chat import TASK_ALIASES, TASKS

    kind = TASK_ALIASES.get(task, task)
    if kind in TASKS:
        return contract.chat_task(kind)
    raise KeyError(
        f"--task {task!r} is not a task of prompt contract {contract.name!r} ({', '.join(contract.tasks)}) "
        f"nor a chat task ({', '.join(TASKS)})"
    )


def render_prompt(
    system: EmoSystem,
    task: str,
    sample: Sample | None = None,
    modalities: list[str] | None = None,
    variant: Any | None = None,
) -> RenderedPrompt:
    """The generation prompt ``system`` is asked for ``task`` (through its contract; ``variant``: a
    robustness ``PromptVariant`` applied to it)."""
    contract = system.contract
    name = resolve_task(contract, task)
    mods = list(system.modalities) if modalities is None else [m for m in system.modalities if m in modalities]
    sample = sample or Sample(id="example", subtitle=PLACEHOLDER_SUBTITLE)
    instruction = sub = None
    if variant is not None:
        from emollm.evaluation.variants import apply_variant

        vp = apply_variant(contract, name, variant, system.labels)
        instruction, sub = vp.instruction, vp.subtitle
    conv = contract.conversation(sample, name, mods, with_answer=False, include_subtitle=sub, instruction=instruction)
    enc = system.processor.encode(conv, generation=True)
    return RenderedPrompt(name, conv, render_prompt_text(system.processor, enc), len(enc), mods)


def _load_sample(system: EmoSystem, manifest: str, sample_id: str, cache_dir: str | None) -> tuple[Sample, list[str]]:
    from emollm.data.manifests import open_manifest
    from emollm.features.cache import FeatureCache
    from emollm.features.featurizer import Featurizer

    man = open_manifest(manifest)
    found = [s for s in man.samples if s.id == sample_id]
    if not found:
        near = ", ".join(s.id for s in man.samples[:3])
        raise KeyError(f"--sample {sample_id!r} is not in {man.root or manifest} (ids look like: {near} ...)")
    fz = Featurizer(
        system.encoders, FeatureCache(cache_dir) if cache_dir else None, mode="auto" if cache_dir else "live"
    )
    feats = fz([found[0]], man.root, system.modalities)[0]
    return found[0], [m for m in system.modalities if m in feats.features]


def prompt_command(
    checkpoint: str = typer.Option(..., "--checkpoint", "-c", help="Checkpoint folder or preset name."),
    task: str = typer.Option("emotion", "--task", "-t", help="Contract task (emotion, reason...) or chat task."),
    manifest: str | None = typer.Option(None, "--manifest", "-m", help="Manifest folder or data recipe."),
    sample: str | None = typer.Option(None, "--sample", "-s", help="Sample id in --manifest."),
    variant: str | None = typer.Option(None, "--variant", "-v", help="A prompt-robustness variant id."),
    variants: str = typer.Option("pr_mer", "--variants", help="Variant file (prompts/robustness/<name>.yaml)."),
    cache_dir: str = typer.Option("runs/features", "--cache-dir", help="Feature cache (for --sample)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Encode the sample's media live."),
    show_contract: bool = typer.Option(False, "--contract", help="Also print the whole prompt contract (YAML)."),
) -> None:
    """Print the exact text the model sees for a task (from the checkpoint's prompt contract)."""
    import yaml

    from emollm.model.resolve import load_system

    if (manifest is None) != (sample is None):
        raise typer.BadParameter("--manifest and --sample go together")
    os.environ.setdefault("EMOLLM_LOG_LEVEL", "WARNING")
    system = load_system(checkpoint)
    s, mods = (None, None)
    if manifest is not None and sample is not None:
        s, mods = _load_sample(system, manifest, sample, None if no_cache else cache_dir)
    v = None
    if variant is not None:
        from emollm.evaluation.variants import load_variants

        v = load_variants(variants).get(variant)
    r = render_prompt(system, task, s, mods, v)
    c = system.contract
    t = c.tasks[r.task]
    state = "trained" if t.trained else "not trained on this task"
    typer.echo(f"# model: {system.source} ({'checkpoint' if system.trained else 'preset, untrained projectors'})")
    typer.echo(f"# contract: {c.name} ({c.source}); task {r.task} [{t.tag}] ({state}); answer: {t.answer_format}")
    typer.echo(f"# sample: {s.id if s else 'placeholder'}; modalities: {', '.join(r.modalities) or 'none'}")
    typer.echo(f"# {r.n_tokens} tokens" + (f"; variant {variant}" if variant else ""))
    typer.echo(r.text)
    if show_contract:
        typer.echo("# ---- prompt contract ----")
        typer.echo(yaml.safe_dump(c.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=1000))


def register(app: typer.Typer) -> None:
    app.command("prompt")(prompt_command)
