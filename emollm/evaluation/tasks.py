"""Evaluation tasks (``eval/tasks/*.yaml``) and suites (``eval/suites/*.yaml``): schemas, registry, data.

A task names its data, split, label space, prompt, how answers are read, its metrics and a version::

    name: mer2023_test1
    version: "1"
    benchmark: MER2023
    kind: classification          # classification | openset | sentiment | explanation | joint
    data: {recipe: mer2023, root: mer2023, split: test1}
    prompt: {task: emotion, index: 0, subtitle: true}
    answers: {method: score_labels}       # score_labels (constrained) | generate (free text, parsed)
    valence: {split: train}               # predicted valence = sum_c p(c) * mean train valence of c
    metrics: [{name: mer2023, options: {split: test1}}]

    task = load_task("mer2023_test1")          # a name in eval/tasks or a path
    suite = load_suite("eval/suites/synthmer.yaml")
    data = resolve_data(task, roots={"mer2023": "/data/MER2023"})   # TaskData: manifest, samples, label space

Data roots: ``data.root`` names a placeholder the user fills with ``--root NAME=DIR``. DIR may be a
prepared manifest folder (``samples.jsonl``) or the corpus folder itself, which is then imported once
with the task's recipe into ``runs/data/<recipe name>`` (reused while the recipe, its options and the
root are unchanged). Without ``--root`` the recipe's default output folder is used if it holds a
manifest, and a recipe with a generate step (SynthMER) is generated; otherwise the error names the
task, the root and the expected layout (the ``data.layout`` text, else the layout block of the recipe's
header comment).

Metric options may name roots as ``{root:NAME}`` (``wheel: "{root:emotion_wheel}"``); a metric marked
``optional`` is skipped, with a note, when such a root is not given.

A suite lists tasks with the analyses to run on each (all optional)::

    name: synthmer
    tasks:
      - task: synthmer
        ablation: {}                                      # every non-empty subset of A / V / T
        robustness: {variants: pr_mer, only: [P1, O_rev]}
        noise: {levels: [{snr_db: 5, blur: 4}]}
        calibration: {n_bins: 10}
        fairness: {columns: [gender, speaker]}
      - {task: synthmer_explain, limit: 4}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from emollm.answers import ReadingMode
from emollm.config import ConfigError, Strict, load_config
from emollm.data.sample import Manifest, Sample
from emollm.labels import LabelSpace, label_space
from emollm.log import get_logger
from emollm.paths import resolve_resource, resource_root

log = get_logger(__name__)

Kind = Literal["classification", "openset", "sentiment", "explanation", "joint"]
GoldField = Literal["label", "openset", "valence", "fine", "coarse", "joint"]
DEFAULT_GOLD: dict[str, str] = {
    "classification": "label",
    "openset": "openset",
    "sentiment": "valence",
    "explanation": "fine",
    "joint": "joint",  # meta.emotion and meta.intent (EmoBench-M MC-EIU); the reply is scored as text
}

_ROOT_REF = re.compile(r"\{root:([A-Za-z0-9_.-]+)\}")


class MissingRootError(FileNotFoundError):
    """A task's data (or a metric resource) needs a root the user did not give."""


# ----------------------------------------------------------------------------------------------
# task schema


class DataSpec(Strict):
    """Where a task's samples come from."""

    recipe: str | None = None
    """A data recipe (data_recipes/<name>.yaml or a path) used to import the corpus found at the root."""
    manifest: str | None = None
    """Or a prepared manifest folder (used when no ``--root`` is given for this task)."""
    root: str | None = None
    """Name of the ``--root NAME=DIR`` placeholder; default: the recipe's name (after overrides)."""
    split: str
    """The manifest split evaluated."""
    overrides: list[str] = Field(default_factory=list)
    """key=value overrides of the recipe (name=meld, label_space=meld7, options.csv=test.csv...)."""
    layout: str | None = None
    """Expected layout of the root, shown when it is missing; default: copied from the recipe's header."""

    @model_validator(mode="after")
    def _source(self) -> DataSpec:
        if self.recipe is None and self.manifest is None:
            raise ValueError("data needs a recipe or a manifest")
        return self


class PromptSpec(Strict):
    """The base prompt. Unset fields come from the model's prompt contract (what it was trained with);
    prompt-robustness variants change one part of it."""

    task: str = Field("emotion", pattern=r"^[A-Za-z0-9_.-]+$")
    """Task of the model's prompt contract (its [tag] and instructions): emotion, reason, describe, openset..."""
    pool: str | None = None
    """Ask with this instruction pool (prompts/instructions/<pool>.yaml or a path) instead of the contract's texts."""
    index: int = Field(0, ge=0)
    """Which instruction (0 = the one training and inference use by default)."""
    instruction: str | None = None
    """A literal instruction instead of the contract's ({labels} is filled in)."""
    subtitle: bool | None = None
    """Put the subtitle ("The person in video says: ...") in the prompt (None: the contract's rule)."""
    separator: str | None = None
    """Between labels in {labels} (None: the contract's separator)."""
    per_sample: bool = False
    """Ask each sample with its own instruction (``meta.instruction``: the benchmark's released prompt, e.g.
    EmoBench-M's) and score it over its own candidate labels (``meta.candidates``, the labels that
    instruction lists, mapped into the task's label space). The subtitle sentence the instruction starts with
    is taken out and put back by the subtitle rule, so ablations without text drop it. ``instruction``,
    ``pool`` and ``index`` do not apply; prompt-robustness variants are refused (they rewrite the label list)."""

    @model_validator(mode="after")
    def _per_sample(self) -> PromptSpec:
        if self.per_sample and (self.instruction is not None or self.pool is not None or self.separator is not None):
            raise ValueError("per_sample prompts use each sample's own instruction: drop instruction/pool/separator")
        return self


class AnswerSpec(Strict):
    """How the model answers and how the answer is read."""

    method: Literal["score_labels", "generate"] = "score_labels"
    """score_labels: constrained classification over the candidate labels (probabilities);
    generate: greedy free text, read by ``emollm.answers``."""
    reading: ReadingMode = "clean"
    """Label reading of generated text: clean (exact label, then earliest mention) or published
    (Emotion-LLaMA's last-word rule, off-list words unparsed)."""
    lexicon: Literal["labels", "wheel"] = "labels"
    """openset/sentiment: how emotion words are found in answers that are not a list: labels = the label
    space's words and synonyms (sentiment tasks: the words of the polarity table), wheel = every word the
    emotion wheel knows (needs ``wheel_root``)."""
    wheel_root: str = "emotion_wheel"
    """Root name of the emotion-wheel folder (lexicon: wheel)."""
    max_new_tokens: int = Field(64, gt=0)


class ValenceSpec(Strict):
    """Predicted valence for MER2023-style submissions: expected class valence under the model's answer."""

    split: str | None = "train"
    """Manifest split whose per-class mean valence is used (the class prior of the training data)."""
    table: dict[str, float] | None = None
    """Or an explicit label -> valence table."""

    @model_validator(mode="after")
    def _one(self) -> ValenceSpec:
        if (self.split is None) == (self.table is None):
            raise ValueError("valence needs exactly one of split or table")
        return self


class MetricRef(Strict):
    """One ``emollm score`` metric run on the task's gold and submission CSVs."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    """Metric options (``emollm score`` flags); ``{root:NAME}`` in a value is replaced by that root."""
    optional: bool = False
    """Skip (with a note) when a root the options name is not given, instead of failing."""

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from emollm.evaluation.metrics import METRICS

        METRICS.get(v)
        return v


class ExplanationSpec(Strict):
    """Explanation tasks: judge-free scores always, an LLM judge when one is configured."""

    gold_field: str = "fine"
    """Sample field (fine, coarse) or ``meta.<key>`` (e.g. meta.fine_zh) holding the gold description."""
    lexicon: str | None = None
    """Label space of the emotion-word overlap lexicon (default: the task's label space)."""
    judge_metrics: list[Literal["clue_overlap", "label_overlap"]] = Field(
        default_factory=lambda: ["clue_overlap", "label_overlap"]
    )


class EvalTask(Strict):
    """One benchmark task; see the module docstring."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str
    """Bump when anything that changes the numbers changes (data, prompt, reading, metric options)."""
    description: str = ""
    benchmark: str = ""
    """Group shown in reports (MER2023, MER2024, MER-UniBench, EMER, SynthMER, DFEW...)."""
    kind: Kind
    data: DataSpec
    label_space: str | None = None
    """Label space of gold labels and candidates; default: the manifest's."""
    gold: GoldField | None = None
    """Sample field holding the gold answer; default per kind (label, openset, valence, fine)."""
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    answers: AnswerSpec = Field(default_factory=AnswerSpec)
    valence: ValenceSpec | None = None
    metrics: list[MetricRef] = Field(default_factory=list)
    explanation: ExplanationSpec = Field(default_factory=ExplanationSpec)
    headline: str | None = None
    """``metric.key`` shown in summaries (default: the first metric's ``score``)."""
    notes: str = ""
    """Protocol caveats printed in the report."""

    @field_validator("label_space")
    @classmethod
    def _space(cls, v: str | None) -> str | None:
        if v is not None:
            label_space(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> EvalTask:
        if self.kind != "classification" and self.answers.method == "score_labels" and self.kind != "sentiment":
            raise ValueError(f"kind {self.kind!r} needs answers.method: generate (score_labels reads one label)")
        if self.kind != "explanation" and not self.metrics:
            raise ValueError(f"kind {self.kind!r} needs at least one metric")
        if self.valence is not None and self.kind != "classification":
            raise ValueError("valence prediction is for classification tasks only")
        return self

    @property
    def gold_field(self) -> str:
        return self.gold or DEFAULT_GOLD[self.kind]

    @property
    def pool(self) -> str:
        """Where the instruction comes from: an explicit pool, or ``contract`` (the model's own texts)."""
        return self.prompt.pool or "contract"

    @property
    def labels_only(self) -> bool:
        """Analyses over labels (ablation, robustness, noise, fairness) apply."""
        return self.kind == "classification"


def task_dir() -> Path:
    return resource_root() / "eval" / "tasks"


def task_files() -> dict[str, Path]:
    """Shipped tasks: name (file stem) -> YAML file."""
    return {p.stem: p for p in sorted(task_dir().glob("*.yaml"))}


def load_task(name_or_path: str | Path) -> EvalTask:
    """A shipped task by name, or a task YAML by path; the file stem must equal ``name``."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        files = task_files()
        if str(name_or_path) not in files:
            from emollm.registry import close_match

            raise KeyError(
                f"unknown eval task {str(name_or_path)!r}{close_match(str(name_or_path), list(files))}; "
                f"known: {', '.join(files) or 'none'} (or give a task YAML path)"
            )
        p = files[str(name_or_path)]
    else:
        p = resolve_resource(p, "eval task")
    task = load_config(EvalTask, p)
    if task.name != p.stem:
        raise ConfigError(f"{p}: name {task.name!r} must equal the file name {p.stem!r}")
    return task


# ----------------------------------------------------------------------------------------------
# suite schema


class AblationSpec(Strict):
    """Modality ablation: every non-empty subset of the modality groups plus text (T = the subtitle)."""

    groups: dict[str, list[str]] | None = None
    """Group letter -> model modalities; default: A = audio encoders, V = visual encoders (frames and faces),
    one group per other modality. Modalities the model lacks are dropped; empty groups are skipped."""
    by: Literal["kind", "modality"] = "kind"
    """kind: the default A/V grouping; modality: one group per model modality (named by the modality)."""
    text: bool = True
    """Include T (the subtitle) as a group."""
    only: list[str] | None = None
    """Run just these subsets, written with ``+`` in any order (e.g. ``[A, V, T, A+V]``); default: all of them."""


class RobustnessSpec(Strict):
    variants: str = "pr_mer"
    """Variant file (prompts/robustness/<name>.yaml or a path)."""
    only: list[str] | None = None
    """Variant ids to run (default: all, or those of ``families``)."""
    families: list[str] | None = None
    n_boot: int = Field(0, ge=0)
    """Bootstrap resamples for intervals (0: none)."""
    seed: int = 0


class NoiseLevel(Strict):
    snr_db: float | None = None
    """Fixed SNR in dB (None: no audio noise at this level unless ``draw``)."""
    blur: Literal[1, 2, 4] | None = None
    """Fixed blur rate (None: no blur unless ``draw``)."""
    draw: bool = False
    """Draw SNR and blur per sample as MER-NOISE does ({5..10} dB, {1, 2, 4})."""
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.draw:
            return "mer-noise"
        parts = []
        if self.snr_db is not None:
            parts.append(f"snr{self.snr_db:g}")
        if self.blur is not None:
            parts.append(f"blur{self.blur}")
        return "_".join(parts) or "clean"


class NoiseAnalysis(Strict):
    levels: list[NoiseLevel] = Field(min_length=1)
    seed: int = 0


class CalibrationSpec(Strict):
    n_bins: int = Field(15, ge=1)


class FairnessSpec(Strict):
    columns: list[str] = Field(min_length=1)
    """Metadata columns (Sample.meta keys, e.g. gender, speaker)."""
    metric: Literal["waf", "macro_f1", "accuracy"] = "waf"
    min_group_size: int = Field(1, ge=1)
    missing: str | None = None
    """Group name for samples without the column (None: such a sample is an error)."""


class SuiteEntry(Strict):
    task: str
    """A task name (eval/tasks) or a task YAML path."""
    limit: int | None = Field(None, gt=0)
    """At most this many samples (the first ones of the split), before --limit."""
    ablation: AblationSpec | None = None
    robustness: RobustnessSpec | None = None
    noise: NoiseAnalysis | None = None
    calibration: CalibrationSpec | None = None
    fairness: FairnessSpec | None = None


class Suite(Strict):
    name: str
    description: str = ""
    tasks: list[SuiteEntry] = Field(min_length=1)
    judge: dict[str, Any] | None = None
    """An LLM judge for explanation tasks (``emollm.evaluation.judge.JudgeConfig`` keys); --judge overrides."""


def suite_dir() -> Path:
    return resource_root() / "eval" / "suites"


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite YAML by path, or by name in eval/suites/; every task it names is loaded to fail early."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = suite_dir() / f"{p.name}.yaml"
    try:
        p = resolve_resource(p, "eval suite")
    except FileNotFoundError:
        shipped = ", ".join(q.stem for q in sorted(suite_dir().glob("*.yaml")))
        raise FileNotFoundError(
            f"eval suite {str(name_or_path)!r} not found (a YAML path, or a name in {suite_dir()}: {shipped})"
        ) from None
    suite = load_config(Suite, p)
    seen: set[str] = set()
    for i, e in enumerate(suite.tasks):
        try:
            t = load_task(e.task)
        except (KeyError, FileNotFoundError) as err:
            msg = err.args[0] if isinstance(err, KeyError) else str(err)
            raise ConfigError(f"{p}: tasks.{i}.task: {msg}") from None
        if t.name in seen:
            raise ConfigError(f"{p}: task {t.name!r} is listed twice")
        seen.add(t.name)
        analyses = [a for a in ("ablation", "robustness", "noise", "calibration", "fairness") if getattr(e, a)]
        if analyses and not t.labels_only:
            raise ConfigError(f"{p}: tasks.{i}: {', '.join(analyses)} need a classification task; {t.name} is {t.kind}")
        if e.calibration and t.answers.method != "score_labels":
            raise ConfigError(f"{p}: tasks.{i}: calibration needs answers.method score_labels ({t.name} generates)")
    return suite


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class TaskData:
    """The samples of one task, resolved."""

    manifest: Manifest
    samples: list[Sample]
    """The evaluated split, in manifest order."""
    space: LabelSpace
    source: str
    """How it was found (root DIR, prepared manifest, generated)."""


def parse_roots(items: list[str] | None) -> dict[str, str]:
    """``["mer2023=/data/MER2023", ...]`` -> {name: dir}; malformed or repeated names are errors."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"--root {item!r}: expected NAME=DIR (e.g. mer2023=/data/MER2023)")
        if name in out:
            raise ValueError(f"--root {name} given twice")
        out[name] = value
    return out


def recipe_layout(recipe: str | Path) -> str:
    """The folder layout block of a data recipe's header comment ("Expected folder ..." and its lines)."""
    from emollm.data.prepare import find_recipe

    lines = find_recipe(recipe).read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("#") and re.search(r"\b(expected folder|folder written)\b", line, re.IGNORECASE):
            out.append(line.lstrip("# ").rstrip())
            for nxt in lines[i + 1 :]:
                if not nxt.startswith("#   "):
                    break
                out.append("  " + nxt[4:].rstrip())
            break
    return "\n".join(out)


def expected_layout(task: EvalTask) -> str:
    if task.data.layout:
        return task.data.layout.rstrip()
    if task.data.recipe:
        return recipe_layout(task.data.recipe) or f"(see the header of data recipe {task.data.recipe})"
    return "(a prepared manifest folder with samples.jsonl)"


def root_name(task: EvalTask) -> str:
    if task.data.root:
        return task.data.root
    if task.data.recipe:
        from emollm.data.prepare import load_recipe

        rec, _ = load_recipe(task.data.recipe, task.data.overrides)
        return rec.name
    return task.name


def _missing_root(task: EvalTask, name: str, why: str) -> MissingRootError:
    prep = f"emollm prepare {task.data.recipe} --root DIR" if task.data.recipe else "emollm prepare ..."
    return MissingRootError(
        f"task {task.name!r}: {why}. Pass --root {name}=DIR, where DIR is a prepared manifest folder "
        f"({prep}) or the corpus folder laid out as:\n{expected_layout(task)}"
    )


def _prepared(out: Path) -> bool:
    return (out / "samples.jsonl").is_file()


def _same_recipe(out: Path, rec: Any, root: Path) -> bool:
    """Did ``emollm prepare`` write ``out`` from this recipe (importer, label space, options) and root?"""
    f = out / "recipe.yaml"
    if not _prepared(out) or not f.is_file():
        return False
    try:
        old = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return False
    same = all(old.get(k) == getattr(rec, k) for k in ("importer", "label_space", "options"))
    return same and Path(str(old.get("root", ""))).resolve() == root.resolve()


def resolve_data(task: EvalTask, roots: dict[str, str], progress: bool = True) -> TaskData:
    """The task's manifest and split (see the module docstring for how roots are used)."""
    from emollm.data.manifests import open_manifest
    from emollm.data.prepare import load_recipe, prepare

    name = root_name(task)
    given = roots.get(name)
    manifest: Manifest
    if given is not None:
        d = Path(given).expanduser()
        if d.is_file() and d.name.endswith(".jsonl"):
            d = d.parent
        if not d.is_dir():
            raise _missing_root(task, name, f"data root {name}={given} does not exist")
        if _prepared(d):
            manifest, source = open_manifest(d), f"manifest {d}"
        elif task.data.recipe is None:
            raise _missing_root(task, name, f"{d} holds no samples.jsonl (this task reads a prepared manifest)")
        else:
            rec, _ = load_recipe(task.data.recipe, task.data.overrides)
            out = Path(rec.out or Path("runs") / "data" / rec.name)
            if _same_recipe(out, rec, d):
                manifest, source = open_manifest(out), f"manifest {out} (prepared from {d})"
            else:
                log.info("task %s: importing %s with recipe %s into %s", task.name, d, task.data.recipe, out)
                res = prepare(task.data.recipe, root=d, out=out, overrides=task.data.overrides, progress=progress)
                manifest, source = open_manifest(res.out_dir), f"manifest {res.out_dir} (prepared from {d})"
    elif task.data.manifest is not None and _prepared(Path(task.data.manifest)):
        manifest, source = open_manifest(task.data.manifest), f"manifest {task.data.manifest}"
    elif task.data.recipe is not None:
        rec, _ = load_recipe(task.data.recipe, task.data.overrides)
        out = Path(rec.out or Path("runs") / "data" / rec.name)
        if _prepared(out):
            manifest, source = open_manifest(out), f"manifest {out}"
        elif rec.generate is not None:
            log.info("task %s: generating %s into %s (first use)", task.name, rec.name, out)
            res = prepare(task.data.recipe, out=out, overrides=task.data.overrides, progress=progress)
            manifest, source = open_manifest(res.out_dir), f"generated {res.out_dir}"
        else:
            raise _missing_root(task, name, f"no data root {name!r} given and no prepared manifest at {out}")
    else:
        raise _missing_root(task, name, f"no data root {name!r} given and manifest {task.data.manifest} is missing")
    try:
        samples = manifest.split(task.data.split)
    except ValueError as e:
        raise ValueError(f"task {task.name!r}: {e}") from None
    space_name = task.label_space or manifest.label_space or "mer6"
    return TaskData(manifest, samples, label_space(space_name), source)


def root_names(task: EvalTask) -> set[str]:
    """Every ``--root`` name the task reads: its data root, ``{root:NAME}`` in metric options, its wheel lexicon."""
    names = {root_name(task)}
    for m in task.metrics:
        names.update(resolve_root_refs(m.options, {})[1])
    if task.answers.lexicon == "wheel":
        names.add(task.answers.wheel_root)
    return names


def check_roots(tasks: list[EvalTask], roots: dict[str, str]) -> None:
    """A ``--root`` name no task of the run reads is an error listing the known names (a misspelt root
    would otherwise be ignored and the task would import or generate its data elsewhere)."""
    import difflib

    known = sorted(set().union(*(root_names(t) for t in tasks))) if tasks else []
    unknown = [n for n in roots if n not in known]
    if unknown:
        hints = [f" (did you mean {c[0]}?)" if (c := difflib.get_close_matches(n, known, 1)) else "" for n in unknown]
        names = ", ".join(f"{n}{h}" for n, h in zip(unknown, hints, strict=True))
        raise ValueError(
            f"--root {names}: no task of this run reads a root of that name; "
            f"the names these tasks read are: {', '.join(known) or '(none)'}"
        )


def resolve_root_refs(value: Any, roots: dict[str, str]) -> tuple[Any, list[str]]:
    """Replace ``{root:NAME}`` in strings (recursively); returns the value and the names not given."""
    missing: list[str] = []
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in roots:
                missing.append(m.group(1))
                return m.group(0)
            return str(Path(roots[m.group(1)]).expanduser())

        return _ROOT_REF.sub(sub, value), missing
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k], miss = resolve_root_refs(v, roots)
            missing += miss
        return out, missing
    if isinstance(value, list):
        items = []
        for v in value:
            r, miss = resolve_root_refs(v, roots)
            items.append(r)
            missing += miss
        return items, missing
    return value, missing
