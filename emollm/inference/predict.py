"""Batch prediction: a folder of clips or a manifest -> a MER submission CSV plus per-sample JSONL.

    emollm predict --checkpoint runs/mini/final --folder clips/ --out runs/pred/clips
    emollm predict --checkpoint runs/mini/final --manifest data_recipes/mer2023.yaml --split test1 \\
        --out runs/pred/test1 --explain --valence-from data_recipes/mer2023.yaml --shard 0/4

Library use::

    samples = folder_samples("clips/")                     # one Sample per media file, id = file stem
    summary = run_predict(predictor, samples, None, "out/", PredictOptions(explain=True))
    write_submission("out/", PredictOptions(), valence)    # CSV from every record of every shard

Outputs in ``--out``:

- ``records/part-<i>-of-<n>.jsonl``: one record per sample, appended (fsync) as soon as its batch is
  done: ``name``, ``discrete`` (argmax label), ``probs`` and ``logp`` over the label space,
  ``modalities`` / ``missing``, and ``explanation`` (``--explain``) or ``openset`` (task openset: the
  words ``emollm.answers.read_openset`` reads in the answer, clean mode with the label space's words, as
  ``emollm serve`` and ``emollm eval`` read it).
  A sample that cannot be read gets ``{"name", "error"}`` instead and is retried on the next run.
- ``submission.csv`` (label task): ``name,discrete,valence``; (openset task) ``name,openset`` with
  ``['word', ...]`` cells. Rewritten atomically at the end of every run from all records in the folder.
- ``run.json``: the settings. A rerun with the same ``--out`` skips every sample that already has a
  record (in any shard's file); a rerun with different settings is refused.

Sharding: ``--shard i/n`` takes every n-th sample starting at i; n processes share one ``--out``
(each appends to its own part file), and the last one to finish writes the complete CSV.

Valence: the CSV's ``valence`` is the expected valence ``sum_l p(l) * v(l)`` under a per-label table
``v``, and empty without one. emollm ships no built-in table (MER2023 publishes none, and valence varies
widely inside a class): ``--valence-from MANIFEST`` estimates ``v(l)`` as the mean gold valence of
label ``l`` in that manifest's ``--valence-split`` (default ``train``); ``--valence-table FILE`` reads a
YAML/JSON ``{label: value}``. The table used is written to ``run.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from emollm.answers import read_openset
from emollm.config import Strict
from emollm.data.sample import Sample
from emollm.inference.generation import GenerationOptions, cut_at_stop
from emollm.inference.media_input import AUDIO_SUFFIXES, VIDEO_SUFFIXES, make_sample
from emollm.io import JsonlAppender, atomic_write_json, atomic_write_text, read_jsonl
from emollm.labels import LabelSpace
from emollm.log import get_logger
from emollm.media.image import IMAGE_SUFFIXES

log = get_logger(__name__)

RECORDS = "records"
SUBMISSION = "submission.csv"
RUN_JSON = "run.json"


class PredictOptions(Strict):
    task: Literal["label", "openset"] = "label"
    explain: bool = False
    """Also generate an explanation (``reason`` instruction pool) per sample."""
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(128, ge=1)
    """For explanations and open-set answers."""
    include_subtitle: bool | None = None
    """None: as the instruction mixture says (include)."""
    prompt_index: int = Field(0, ge=0)
    generation: GenerationOptions | None = None
    """How explanations and open-set answers are decoded (None: greedy, as ``emollm eval``; ``emollm
    predict`` passes its decoding flags, whose defaults keep explanations from looping).
    ``max_new_tokens`` above wins over its own."""


# ------------------------------------------------------------------------------------------ inputs


def folder_samples(folder: str | os.PathLike[str], subtitles: dict[str, str] | None = None) -> list[Sample]:
    """One Sample per media file directly in ``folder`` (video, audio or image by suffix); id = file stem.

    Two files with the same stem are an error (name both); other files are ignored (logged).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--folder {root}: not a folder")
    kinds = {**dict.fromkeys(VIDEO_SUFFIXES, "video"), **dict.fromkeys(AUDIO_SUFFIXES, "audio")}
    kinds.update(dict.fromkeys(IMAGE_SUFFIXES, "image"))
    seen: dict[str, Path] = {}
    samples: list[Sample] = []
    skipped = 0
    for p in sorted(root.iterdir()):
        kind = kinds.get(p.suffix.lower())
        if not p.is_file() or kind is None or p.name.startswith("."):
            skipped += 1
            continue
        if p.stem in seen:
            raise ValueError(f"--folder {root}: {seen[p.stem].name} and {p.name} have the same id {p.stem!r}")
        seen[p.stem] = p
        sub = (subtitles or {}).get(p.stem)
        samples.append(make_sample({kind: p}, sub, sample_id=p.stem))
    if skipped:
        log.info("%s: ignored %d entries that are not video/audio/image files", root, skipped)
    if not samples:
        raise ValueError(f"--folder {root}: no video, audio or image files")
    return samples


def read_subtitles(path: str | os.PathLike[str]) -> dict[str, str]:
    """``name,<text>`` CSV -> {name: text}; the text column is ``subtitle``, ``english`` or ``sentence``."""
    p = Path(path)
    with open(p, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip().lower() for c in reader.fieldnames or []]
        text_col = next((c for c in ("subtitle", "english", "sentence", "text") if c in cols), None)
        if "name" not in cols or text_col is None:
            raise ValueError(f"{p}: expected columns name and one of subtitle/english/sentence/text, got {cols}")
        out: dict[str, str] = {}
        for row in reader:
            row = {k.strip().lower(): (v or "") for k, v in row.items() if k}
            if row["name"].strip():
                out[row["name"].strip()] = row[text_col].strip()
    return out


# ------------------------------------------------------------------------------------------ valence


@dataclass
class ValenceTable:
    values: dict[str, float]
    source: str
    counts: dict[str, int] = field(default_factory=dict)

    def expected(self, probs: dict[str, float]) -> float:
        """``sum_l p(l) * v(l)``, renormalised over the labels the table has."""
        mass = sum(p for lab, p in probs.items() if lab in self.values)
        if mass <= 0:
            raise ValueError(f"valence table ({self.source}) covers none of the labels {sorted(probs)}")
        return sum(p * self.values[lab] for lab, p in probs.items() if lab in self.values) / mass

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "values": self.values, "counts": self.counts}


def valence_table_from_file(path: str | os.PathLike[str], labels: LabelSpace) -> ValenceTable:
    p = Path(path)
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping label -> valence")
    out: dict[str, float] = {}
    for k, v in data.items():
        lab = labels.require(str(k), str(p))
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{p}: valence of {k!r} must be a number, got {v!r}")
        out[lab] = float(v)
    missing = [lab for lab in labels.labels if lab not in out]
    if missing:
        raise ValueError(f"{p}: no valence for labels {missing}")
    return ValenceTable(out, str(p))


def valence_table_from_manifest(spec: str, labels: LabelSpace, split: str = "train") -> ValenceTable:
    """Mean gold valence per label over the labelled samples of ``split`` (every label must occur)."""
    from emollm.data.manifests import open_manifest

    man = open_manifest(spec)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for s in man.split(split):
        if s.label is None or s.valence is None:
            continue
        lab = labels.normalize(s.label)
        if lab is None:
            continue
        sums[lab] = sums.get(lab, 0.0) + s.valence
        counts[lab] = counts.get(lab, 0) + 1
    missing = [lab for lab in labels.labels if lab not in counts]
    if missing:
        raise ValueError(f"{spec} split {split!r}: no samples with a valence for labels {missing}")
    values = {lab: round(sums[lab] / counts[lab], 4) for lab in labels.labels}
    return ValenceTable(values, f"mean valence per label in {man.root} split {split}", counts)


# ------------------------------------------------------------------------------------------ running


def part_path(out_dir: Path, shard: tuple[int, int]) -> Path:
    i, n = shard
    return out_dir / RECORDS / f"part-{i:03d}-of-{n:03d}.jsonl"


def load_records(out_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every successful record in ``out_dir`` (all shard files), by sample name."""
    out: dict[str, dict[str, Any]] = {}
    folder = Path(out_dir) / RECORDS
    for p in sorted(folder.glob("part-*.jsonl")) if folder.is_dir() else []:
        for rec in read_jsonl(p):
            if "error" not in rec and "name" in rec:
                out[str(rec["name"])] = rec
    return out


@dataclass
class PredictSummary:
    out_dir: Path
    total: int
    skipped: int
    computed: int
    errors: dict[str, str]
    submission: Path | None


def _settings(predictor: Any, opts: PredictOptions, source: str) -> dict[str, Any]:
    d = opts.model_dump(exclude={"batch_size"})
    if opts.task == "label" and not opts.explain:
        d.pop("max_new_tokens")
        d.pop("generation")
    elif opts.generation is None:
        d.pop("generation")  # run.json of runs made before decoding options existed stay valid
    return {"checkpoint": source, "label_space": predictor.labels.name, **d}


def check_run_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Write ``run.json`` (first run) or refuse to mix records made with other settings."""
    p = out_dir / RUN_JSON
    if p.is_file():
        old = json.loads(p.read_text(encoding="utf-8")).get("settings", {})
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            pretty = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{out_dir} holds predictions made with other settings ({pretty}); use a new --out")
        return
    atomic_write_json(p, {"settings": settings})


def run_predict(
    predictor: Any,
    samples: Sequence[Sample],
    root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    opts: PredictOptions | None = None,
    shard: tuple[int, int] = (0, 1),
    source: str | None = None,
    progress: bool = True,
) -> PredictSummary:
    """Predict ``samples[i::n]`` that have no record in ``out_dir`` yet; append a record per sample."""
    from tqdm.auto import tqdm

    opts = opts or PredictOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_run_settings(out, _settings(predictor, opts, source or str(predictor.source)))
    i, n = shard
    mine = list(samples)[i::n]
    done = load_records(out)
    todo = [s for s in mine if s.id not in done]
    errors: dict[str, str] = {}
    bs = opts.batch_size
    if opts.generation is not None and opts.generation.seed is not None:
        import torch

        torch.manual_seed(opts.generation.seed)
    with JsonlAppender(part_path(out, shard)) as w:
        bar = tqdm(total=len(todo), desc=f"predict {out.name}", unit="clip", disable=not progress)
        for b in range(0, len(todo), bs):
            chunk = todo[b : b + bs]
            for rec in _predict_chunk(predictor, chunk, root, opts):
                if "error" in rec:
                    errors[rec["name"]] = rec["error"]
                w.write(rec)
            bar.update(len(chunk))
        bar.close()
    return PredictSummary(out, len(mine), len(mine) - len(todo), len(todo) - len(errors), errors, None)


def _predict_chunk(
    predictor: Any, chunk: list[Sample], root: str | os.PathLike[str] | None, opts: PredictOptions
) -> list[dict[str, Any]]:
    from emollm.features.featurizer import FeatureError

    try:
        feats = predictor.features(chunk, root, None)
    except FeatureError as e:
        if len(chunk) == 1:
            return [{"name": chunk[0].id, "error": str(e)}]
        return [rec for s in chunk for rec in _predict_chunk(predictor, [s], root, opts)]  # isolate the bad one(s)
    recs: list[dict[str, Any]] = [
        {"name": s.id, "modalities": list(f.features), "missing": dict(f.missing)}
        for s, f in zip(chunk, feats, strict=True)
    ]
    common = {"prompt_index": opts.prompt_index, "include_subtitle": opts.include_subtitle}
    res = predictor.classify(chunk, root, feats=feats, **common)
    for rec, r in zip(recs, res, strict=True):
        rec.update(discrete=r.label, probs=r.probs, logp=r.logp)
        if getattr(r, "text", None) is not None:  # an endpoint's answer, read by the answer reader
            rec["answer_text"] = r.text
    gen: dict[str, Any] = {"max_new_tokens": opts.max_new_tokens}
    if opts.generation is not None:  # a local model (an endpoint decodes as its EndpointConfig says)
        gen = {**opts.generation.generate_kwargs(predictor.system.tokenizer), **gen}
    stop = opts.generation.stop if opts.generation is not None else []

    def generate(task: str) -> list[str]:
        texts = predictor.generate(chunk, root, task=task, feats=feats, **common, **gen)
        return [cut_at_stop(t, stop)[0] for t in texts] if stop else texts

    if opts.task == "openset":
        texts = generate("openset")
        for rec, t in zip(recs, texts, strict=True):
            rec.update(openset_text=t, openset=read_openset(t, "clean", predictor.labels.mentions))
    if opts.explain:
        texts = generate("reason")
        for rec, t in zip(recs, texts, strict=True):
            rec["explanation"] = t
    return recs


def write_submission(
    out_dir: str | os.PathLike[str], opts: PredictOptions | None = None, valence: ValenceTable | None = None
) -> Path:
    """Rewrite ``submission.csv`` atomically from every record in ``out_dir`` (sorted by name)."""
    opts = opts or PredictOptions()
    recs = load_records(out_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if opts.task == "openset":
        w.writerow(["name", "openset"])
        for name in sorted(recs):
            words = recs[name].get("openset") or []
            w.writerow([name, "[" + ", ".join(repr(x) for x in words) + "]"])
    else:
        w.writerow(["name", "discrete", "valence"])
        for name in sorted(recs):
            r = recs[name]
            v = "" if valence is None or not r.get("probs") else f"{valence.expected(r['probs']):.4f}"
            w.writerow([name, r["discrete"] or "", v])
    p = Path(out_dir) / SUBMISSION
    atomic_write_text(p, buf.getvalue())
    return p


def finish_run(
    out_dir: str | os.PathLike[str], opts: PredictOptions | None = None, valence: ValenceTable | None = None
) -> Path:
    """Write ``submission.csv`` from all records and note the valence table in ``run.json``."""
    out = Path(out_dir)
    csv_path = write_submission(out, opts, valence)
    info = json.loads((out / RUN_JSON).read_text(encoding="utf-8"))
    info["valence"] = valence.describe() if valence is not None else None
    info["submission"] = csv_path.name
    info["n_records"] = len(load_records(out))
    atomic_write_json(out / RUN_JSON, info)
    return csv_path
