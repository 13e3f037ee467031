"""The evaluation plan: what ``emollm eval`` will compute, decided before any model is loaded.

    from emollm.evaluation.plan import EvalOptions, build_plan, run_info
    opts = EvalOptions(checkpoint="runs/mini/final", suite="eval/suites/synthmer.yaml")
    plan = build_plan(opts, run_info(opts))
    [c.id for c in plan.tasks[0].conditions]      # base, ablation:A+V, P1, noise:snr5 ...

Holds the options (``EvalOptions``), what is evaluated (``CheckpointInfo``: checkpoint, preset or
endpoint identity and its prompt contract), the plan (``Plan`` -> ``TaskPlan`` -> ``Condition``, each
condition with its ``prompt_id``) and the per-sample records (``RecordStore``). Both the runner (which
executes the plan) and the report (which scores it) import this module; neither imports the other's
layer back.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from emollm.answers import ReadingMode
from emollm.config import ConfigError, ModelConfig
from emollm.data.contract import PromptContract, default_contract, load_contract
from emollm.data.sample import Sample
from emollm.evaluation.options import EvalOptions
from emollm.evaluation.tasks import (
    AblationSpec,
    EvalTask,
    MissingRootError,
    SuiteEntry,
    TaskData,
    check_roots,
    load_suite,
    load_task,
    resolve_data,
    resolve_root_refs,
)
from emollm.evaluation.variants import PromptVariant, RenderedLabels, apply_variant, load_variants
from emollm.inference.remote import ENDPOINT_MODALITIES, EndpointConfig
from emollm.io import JsonlAppender, read_jsonl, sha256_file
from emollm.labels import LabelSpace, label_space
from emollm.log import get_logger
from emollm.media.noise import NoiseSpec

log = get_logger(__name__)

RECORD_FORMAT = "emollm-eval-record-v1"


# ----------------------------------------------------------------------------------------------
# checkpoint identity


@dataclass(frozen=True)
class CheckpointInfo:
    spec: str
    kind: Literal["preset", "checkpoint", "native", "endpoint"]
    """``native``: a released native model folder (zero-shot, its own weights)."""
    name: str
    identity: str
    cfg: ModelConfig | None
    """The model config (None for an endpoint)."""
    contract: PromptContract
    """What the model is asked: its checkpoint's prompt contract, or the preset's (endpoint's) default."""
    modality_kinds: dict[str, str] = field(default_factory=dict)
    """Modality -> the input kind it is made from (audio, frames, faces, features): ablation groups."""
    endpoint: EndpointConfig | None = None


def _kinds(cfg: ModelConfig) -> dict[str, str]:
    from emollm.encoders import ENCODERS

    return {m: ENCODERS.get(mc.encoder.name).input_kind for m, mc in cfg.modalities.items()}


def endpoint_info(ep: EndpointConfig) -> CheckpointInfo:
    from emollm.inference.remote import load_endpoint_contract

    return CheckpointInfo(
        f"{ep.model}@{ep.base_url}",
        "endpoint",
        ep.name,
        ep.identity,
        None,
        load_endpoint_contract(ep),
        dict(ENDPOINT_MODALITIES),
        ep,
    )


def run_info(opts: EvalOptions) -> CheckpointInfo:
    """What ``opts`` evaluates: an endpoint, or a checkpoint folder / preset."""
    if opts.backend == "openai":
        assert opts.endpoint is not None
        return endpoint_info(opts.endpoint)
    info = checkpoint_info(opts.checkpoint)
    if opts.backend == "native":
        require_native(info.cfg, opts.checkpoint)
    return info


def require_native(cfg: ModelConfig | None, spec: str) -> None:
    """``--backend native`` names a native multimodal model (a native preset, checkpoint or model folder)."""
    if cfg is None or not cfg.llm.native:
        raise ValueError(
            f"--backend native runs a native multimodal model (llm.family qwen2-audio, qwen2.5-omni, qwen2-vl); "
            f"{spec!r} is emollm's encoder+projector stack: use --backend local"
        )


def checkpoint_info(spec: str) -> CheckpointInfo:
    """Identity of a checkpoint folder or preset without loading weights."""
    from emollm.model.checkpoint import MODEL_YAML, WEIGHTS
    from emollm.model.presets import model_config
    from emollm.model.resolve import model_config_for, resolve_model

    m = resolve_model(spec, "--checkpoint")
    if m.kind == "checkpoint":
        assert m.path is not None
        p = m.path
        h = hashlib.sha256()
        for f in (WEIGHTS, MODEL_YAML):
            h.update(sha256_file(p / f).encode())
        name = p.resolve().name
        if name in ("final", "best", "last") or name.startswith("step_"):
            name = f"{p.resolve().parent.name}_{name}"
        cfg = model_config_for(m)
        contract = load_contract(p, label_space(cfg.label_space), cfg.system_prompt)
        ident = f"checkpoint:{name}@{h.hexdigest()[:16]}"
        return CheckpointInfo(spec, "checkpoint", name, ident, cfg, contract, _kinds(cfg))
    if m.kind == "native":  # a released native model folder, zero-shot: its config and weight files name it
        assert m.path is not None
        cfg = model_config_for(m)
        h = hashlib.sha256(sha256_file(m.path / "config.json").encode())
        for f in sorted(m.path.glob("*.safetensors")):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
        name = m.path.resolve().name
        contract = default_contract(label_space(cfg.label_space), cfg.system_prompt)
        return CheckpointInfo(spec, "native", name, f"native:{name}@{h.hexdigest()[:16]}", cfg, contract, _kinds(cfg))
    cfg = model_config(spec)
    digest = hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    contract = default_contract(label_space(cfg.label_space), cfg.system_prompt)
    return CheckpointInfo(spec, "preset", spec, f"preset:{spec}@{digest[:16]}", cfg, contract, _kinds(cfg))


# ----------------------------------------------------------------------------------------------
# the plan


@dataclass
class Condition:
    """One way of asking the model: prompt, candidates, inputs and noise."""

    id: str
    kind: Literal["base", "ablation", "robustness", "noise"]
    instruction: str
    modalities: tuple[str, ...]
    subtitle: bool
    labels: RenderedLabels | None
    """Label list shown and candidates scored (None when the prompt lists no labels and nothing is scored)."""
    noise: NoiseSpec | None = None
    family: str | None = None
    title: str = ""
    """Display name (A+V+T, snr5_blur4, P1...)."""
    prompt_id: str = ""
    per_sample: bool = False
    """Each sample is asked with its own instruction and candidates (``TaskPlan.prompts``); ``labels`` is None."""

    @property
    def candidates(self) -> list[str]:
        return list(self.labels.candidates) if self.labels is not None else []

    def to_canonical(self, candidate: str) -> str:
        return self.labels.to_canonical[candidate] if self.labels is not None else candidate

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "family": self.family,
            "title": self.title or self.id,
            "modalities": list(self.modalities),
            "subtitle": self.subtitle,
            "instruction": self.instruction,
            "candidates": self.candidates,
            "per_sample": self.per_sample,
            "order": self.labels.order if self.labels is not None else None,
            "noise": self.noise.model_dump() if self.noise is not None else None,
            "prompt_id": self.prompt_id,
        }


@dataclass(frozen=True)
class SamplePrompt:
    """The own prompt of one sample of a ``prompt.per_sample`` task."""

    instruction: str
    """The sample's instruction without its leading subtitle sentence (the subtitle rule adds it back)."""
    candidates: tuple[str, ...]
    """The labels its instruction lists, as written there (what constrained scoring scores)."""
    canonical: dict[str, str]
    """Candidate as written -> label of the task's label space."""
    subtitle_inside: bool = False
    """The subtitle sentence could not be taken out: the instruction is used verbatim, without another one."""

    @property
    def labels(self) -> list[str]:
        return [self.canonical[c] for c in self.candidates]


def sample_prompts(task: EvalTask, space: LabelSpace, samples: list[Sample]) -> dict[str, SamplePrompt]:
    """Every sample's own prompt (``prompt.per_sample``); a missing or off-space candidate list is an error."""
    from emollm.data.importers.emobench_m import parse_candidates, strip_subtitle

    out: dict[str, SamplePrompt] = {}
    for s in samples:
        instr = s.meta.get("instruction")
        if not isinstance(instr, str) or not instr.strip():
            raise ConfigError(f"task {task.name!r}: sample {s.id!r} has no meta.instruction (prompt.per_sample)")
        cands = s.meta.get("candidates") or parse_candidates(instr)
        rest = strip_subtitle(instr, s.subtitle)
        if task.kind in ("explanation", "joint"):  # free text: the own instruction only (SMILE, MC-EIU)
            out[s.id] = SamplePrompt(rest if rest is not None else instr, (), {}, rest is None)
            continue
        if not cands:
            raise ConfigError(
                f"task {task.name!r}: sample {s.id!r}: its instruction lists no candidate labels "
                f"(meta.candidates is empty): {instr[:120]!r}"
            )
        canonical: dict[str, str] = {}
        for c in cands:
            lab = space.normalize(c)
            if lab is None:
                raise ConfigError(
                    f"task {task.name!r}: sample {s.id!r}: candidate {c!r} its instruction lists is not a label "
                    f"of label space {space.name} ({', '.join(space.labels)})"
                )
            canonical[c] = lab
        if len(set(canonical.values())) != len(canonical):
            raise ConfigError(f"task {task.name!r}: sample {s.id!r}: candidates {cands} name one label twice")
        out[s.id] = SamplePrompt(rest if rest is not None else instr, tuple(canonical), canonical, rest is None)
    return out


@dataclass
class MetricPlan:
    name: str
    options: dict[str, Any]
    skipped: str | None = None
    """Why an optional metric is not run (a root it needs was not given)."""


@dataclass
class TaskPlan:
    task: EvalTask
    entry: SuiteEntry
    data: TaskData
    samples: list[Sample]
    """Scored samples (limited; those without gold are left out and counted)."""
    n_without_gold: int
    conditions: list[Condition]
    metrics: list[MetricPlan]
    method: Literal["score_labels", "generate"]
    reading: ReadingMode
    without_gold: list[str] = field(default_factory=list)
    prompts: dict[str, SamplePrompt] = field(default_factory=dict)
    """Sample id -> its own prompt (``prompt.per_sample`` tasks; empty otherwise)."""

    def shard(self, i: int, n: int, block: int = 1) -> list[Sample]:
        """Blocks of ``block`` consecutive samples dealt round-robin: shard i gets blocks i, i+n, ...

        With ``block`` = the batch size, every shard forms exactly the batches an unsharded run forms, so
        the merged numbers are bit-identical to one run (batch composition changes float rounding).
        """
        return [s for p, s in enumerate(self.samples) if (p // block) % n == i]

    def condition(self, cid: str) -> Condition:
        for c in self.conditions:
            if c.id == cid:
                return c
        raise KeyError(cid)


def _has_gold(task: EvalTask, s: Sample) -> bool:
    f = task.gold_field
    if task.kind == "explanation":
        return bool(gold_text(task, s))
    if task.kind == "joint":
        return bool(s.meta.get("emotion")) and bool(s.meta.get("intent"))
    v = getattr(s, f)
    return v is not None and v != [] and v != ""


def gold_text(task: EvalTask, s: Sample) -> str | None:
    """The gold description of an explanation task (a Sample field or ``meta.<key>``)."""
    f = task.explanation.gold_field
    if f.startswith("meta."):
        v = s.meta.get(f[5:])
    else:
        v = getattr(s, f, None)
    return v if isinstance(v, str) and v.strip() else None


def _modality_groups(kinds: dict[str, str], spec: AblationSpec) -> dict[str, list[str]]:
    mods = list(kinds)
    if spec.groups is not None:
        groups = {g: [m for m in ms if m in mods] for g, ms in spec.groups.items()}
        unknown = sorted({m for ms in spec.groups.values() for m in ms} - set(mods))
        if unknown:
            log.warning("ablation groups name modalities the model lacks: %s (dropped)", unknown)
    elif spec.by == "modality":
        groups = {m: [m] for m in mods}
    else:
        groups = {}
        for m in mods:
            kind = kinds[m]
            g = "A" if kind == "audio" else "V" if kind in ("frames", "faces") else m
            groups.setdefault(g, []).append(m)
    return {g: ms for g, ms in groups.items() if ms}


def _base_modalities(opts: EvalOptions, ckpt: CheckpointInfo) -> tuple[str, ...]:
    mods = list(ckpt.modality_kinds)
    choice = opts.modalities.strip()
    if choice == "auto":
        return () if ckpt.kind == "preset" else tuple(mods)
    if choice == "all":
        return tuple(mods)
    if choice == "none":
        return ()
    wanted = [m.strip() for m in choice.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in mods]
    if unknown:
        raise ValueError(f"--modalities: {unknown} are not modalities of {ckpt.spec} ({', '.join(mods)})")
    return tuple(m for m in mods if m in wanted)


def _signature(task: EvalTask, method: str, c: Condition) -> str:
    sig = {
        "task": task.name,
        "version": task.version,
        "method": method,
        "max_new_tokens": task.answers.max_new_tokens if method == "generate" else None,
        "prompt_task": task.prompt.task,
        "instruction": c.instruction,
        "candidates": c.candidates if method == "score_labels" else None,
        "modalities": list(c.modalities),
        "subtitle": c.subtitle,
        "noise": c.noise.describe() if c.noise is not None and c.modalities else None,
    }
    if c.per_sample:  # only then: the prompt ids of every other task stay what they were
        sig["per_sample"] = True
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:20]


def _condition(
    task: EvalTask,
    contract: PromptContract,
    space: LabelSpace,
    cid: str,
    kind: Literal["base", "ablation", "robustness", "noise"],
    variant: PromptVariant,
    modalities: tuple[str, ...],
    noise: NoiseSpec | None = None,
    title: str = "",
) -> Condition:
    """One condition: the contract's prompt for the task, transformed by ``variant``."""
    p = task.prompt
    if p.per_sample:
        if variant.id != "base" or variant.family is not None:
            raise ValueError(f"variant {variant.id!r}: prompt.per_sample tasks take no prompt variants")
        sub = p.subtitle if p.subtitle is not None else contract.include_subtitle()
        sub = sub if variant.subtitle is None else variant.subtitle
        instr = "{meta.instruction}"  # a marker: the runner asks each sample with tp.prompts[id].instruction
        return Condition(cid, kind, instr, modalities, sub, None, noise, variant.family, title or cid, per_sample=True)
    vp = apply_variant(contract, p.task, variant, space, p.index, p.pool, p.instruction, p.separator, p.subtitle)
    return Condition(cid, kind, vp.instruction, modalities, vp.subtitle, vp.labels, noise, variant.family, title or cid)


def plan_task(task: EvalTask, entry: SuiteEntry, opts: EvalOptions, ckpt: CheckpointInfo, data: TaskData) -> TaskPlan:
    """Conditions, samples and metrics of one task."""
    try:
        ckpt.contract.task(task.prompt.task)
    except KeyError as e:
        raise ConfigError(f"task {task.name!r}: {e.args[0]}") from None
    method = opts.method if (opts.method and task.kind == "classification") else task.answers.method
    if ckpt.kind == "endpoint" and method == "score_labels":
        method = "generate"  # an endpoint cannot score labels: it answers in text, read by the answer reader
    reading = opts.reading or task.answers.reading
    limit = min(x for x in (entry.limit, opts.limit, len(data.samples)) if x is not None)
    chosen = data.samples[:limit]
    scored = [s for s in chosen if _has_gold(task, s)]
    without = [s.id for s in chosen if not _has_gold(task, s)]
    if not scored:
        raise ValueError(
            f"task {task.name!r}: none of the {len(chosen)} samples of split {task.data.split!r} has a gold "
            f"{task.gold_field if task.kind != 'explanation' else task.explanation.gold_field}"
        )
    space = data.space
    base_mods = _base_modalities(opts, ckpt)
    conds = [_condition(task, ckpt.contract, space, "base", "base", PromptVariant(id="base"), base_mods, title="base")]
    if entry.ablation is not None:
        groups = _modality_groups(ckpt.modality_kinds, entry.ablation)
        names = list(groups) + (["T"] if entry.ablation.text else [])
        combos = [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]
        if entry.ablation.only is not None:
            wanted = {frozenset(x.replace(" ", "").split("+")): x for x in entry.ablation.only}
            known = {frozenset(c) for c in combos}
            unknown = [x for k, x in wanted.items() if k not in known]
            if unknown:
                raise ConfigError(
                    f"task {task.name!r}: ablation.only names {unknown}, but this model's subsets are "
                    f"{['+'.join(c) for c in combos]}"
                )
            combos = [c for c in combos if frozenset(c) in wanted]
        for combo in combos:
            mods = tuple(m for m in ckpt.modality_kinds if any(m in groups.get(g, []) for g in combo))
            title = "+".join(combo)
            v = PromptVariant(id="base", subtitle="T" in combo)
            conds.append(_condition(task, ckpt.contract, space, f"ablation:{title}", "ablation", v, mods, title=title))
    if entry.robustness is not None and task.prompt.per_sample:
        raise ConfigError(
            f"task {task.name!r}: prompt-robustness variants rewrite the label list, but this task asks every "
            "sample with its own instruction (prompt.per_sample): drop robustness from the suite entry"
        )
    if entry.robustness is not None:
        vf = load_variants(entry.robustness.variants)
        for v in vf.select(entry.robustness.only, entry.robustness.families):
            try:
                conds.append(_condition(task, ckpt.contract, space, v.id, "robustness", v, base_mods))
            except ValueError as e:
                raise ConfigError(f"task {task.name!r}, variant file {vf.name!r}: {e}") from None
    if entry.noise is not None:
        for lvl in entry.noise.levels:
            spec = NoiseSpec(
                seed=entry.noise.seed,
                snr_db=lvl.snr_db,
                blur=lvl.blur,
                audio=lvl.draw or lvl.snr_db is not None,
                video=lvl.draw or lvl.blur is not None,
            )
            v = PromptVariant(id="base")
            conds.append(
                _condition(task, ckpt.contract, space, f"noise:{lvl.label}", "noise", v, base_mods, spec, lvl.label)
            )
    ids = [c.id for c in conds]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"task {task.name!r}: condition ids {dup} appear twice")
    for c in conds:
        c.prompt_id = _signature(task, method, c)
    metrics = []
    for m in task.metrics:
        resolved, missing = resolve_root_refs(m.options, opts.roots)
        if missing:
            if not m.optional:
                names = ", ".join(sorted(set(missing)))
                raise MissingRootError(
                    f"task {task.name!r}: metric {m.name!r} needs the resource root(s) {names}: "
                    f"pass --root {missing[0]}=DIR (see docs/EVALUATION.md)"
                )
            metrics.append(MetricPlan(m.name, {}, f"needs --root {', '.join(sorted(set(missing)))}"))
        else:
            metrics.append(MetricPlan(m.name, resolved))
    prompts = sample_prompts(task, space, scored) if task.prompt.per_sample else {}
    return TaskPlan(task, entry, data, scored, len(without), conds, metrics, method, reading, without, prompts)


@dataclass
class Plan:
    tasks: list[TaskPlan]
    suite: dict[str, Any] | None
    judge: dict[str, Any] | None

    def units(
        self, shard: tuple[int, int] | None = None, block: int = 1
    ) -> Iterator[tuple[TaskPlan, Condition, Sample]]:
        for tp in self.tasks:
            samples = tp.shard(*shard, block) if shard else tp.samples
            for c in tp.conditions:
                for s in samples:
                    yield tp, c, s

    def unique_units(
        self, shard: tuple[int, int] | None = None, block: int = 1
    ) -> list[tuple[TaskPlan, Condition, Sample]]:
        """Units with distinct record keys (conditions with the same prompt_id share their records)."""
        seen: set[tuple[str, str, str]] = set()
        out = []
        for tp, c, s in self.units(shard, block):
            key = record_key(tp.task.name, c.prompt_id, s.id)
            if key not in seen:
                seen.add(key)
                out.append((tp, c, s))
        return out


def build_plan(opts: EvalOptions, ckpt: CheckpointInfo) -> Plan:
    """Load tasks or the suite, resolve their data (missing roots fail here) and expand conditions."""
    if bool(opts.tasks) == bool(opts.suite):
        raise ValueError("give --tasks a,b or --suite FILE (exactly one)")
    suite_info: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    if opts.suite:
        suite = load_suite(opts.suite)
        entries = suite.tasks
        suite_info = {"name": suite.name, "file": str(opts.suite), "description": suite.description}
        judge = suite.judge
    else:
        entries = [SuiteEntry(task=t) for t in opts.tasks]
    if opts.judge:
        from emollm.config import read_yaml

        judge = read_yaml(opts.judge)
    tasks = [load_task(e.task) for e in entries]
    check_roots(tasks, opts.roots)  # before any data is imported or generated
    plans = []
    for e, task in zip(entries, tasks, strict=True):
        data = resolve_data(task, opts.roots, progress=opts.progress)
        plans.append(plan_task(task, e, opts, ckpt, data))
    names = [p.task.name for p in plans]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"task(s) {dup} given twice")
    return Plan(plans, suite_info, judge)


# ----------------------------------------------------------------------------------------------
# records


def record_key(task: str, prompt_id: str, sample_id: str) -> tuple[str, str, str]:
    return (task, prompt_id, sample_id)


class RecordStore:
    """Per-sample results of one checkpoint, read from every ``*.jsonl`` of the records folder.

    Records of other checkpoints are ignored (counted in ``n_other_checkpoint``); a key seen twice keeps
    its first record (counted in ``n_duplicates``).
    """

    def __init__(self, folder: Path, checkpoint: str) -> None:
        self.folder = folder
        self.checkpoint = checkpoint
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.n_other_checkpoint = 0
        self.n_duplicates = 0
        self._writer: JsonlAppender | None = None
        for f in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            for rec in read_jsonl(f):
                if rec.get("checkpoint") != checkpoint:
                    self.n_other_checkpoint += 1
                    continue
                key = record_key(rec["task"], rec["prompt_id"], rec["sample_id"])
                if key in self.records:
                    self.n_duplicates += 1
                    continue
                self.records[key] = rec

    def has(self, task: str, prompt_id: str, sample_id: str) -> bool:
        return record_key(task, prompt_id, sample_id) in self.records

    def get(self, task: str, prompt_id: str, sample_id: str) -> dict[str, Any]:
        return self.records[record_key(task, prompt_id, sample_id)]

    def open(self, path: Path) -> None:
        self._writer = JsonlAppender(path)

    def append(self, rec: dict[str, Any]) -> None:
        if self._writer is None:
            raise RuntimeError("RecordStore.open(path) before append")
        self._writer.write(rec)
        self.records[record_key(rec["task"], rec["prompt_id"], rec["sample_id"])] = rec

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def shard_name(shard: tuple[int, int]) -> str:
    return f"shard-{shard[0]}-of-{shard[1]}"
