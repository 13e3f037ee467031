"""Generation scores of EmoBench-M's SMILE scenario (laughter reasoning): sentence BLEU, ROUGE-L, BERTScore and
the two-dimension LLM judge (``LaughterReason_LLMScoring.py``).

    sentence_bleu([ref.split()], pred.split())              # NLTK's sentence_bleu, default 4-gram weights
    rouge_l(ref, pred)                                       # rouge_score's rougeL (P, R, F) on its tokens
    score("emobench_generation", gold_csv, pred_csv)         # avg BLEU / ROUGE-L as EmoBench-M_eval.py
    score("bertscore", gold_csv, pred_csv, model="/models/roberta-large")
    score("emobench_laughter", gold_csv, pred_csv, judge="judge.yaml")

Official generation scorer (``EmoBench-M_eval.py evaluate_generation``): per sample ``sentence_bleu([ref.split()],
pred.split())`` (nltk, no smoothing), ``RougeScorer(['rougeL'], use_stemmer=True)`` F-measure and
``bert_score([pred], [ref], lang='en')`` F1; samples with an empty prediction or reference are skipped; the
averages are reported. None of nltk, rouge-score, sacrebleu or bert-score is a dependency of emollm, so BLEU
and ROUGE-L are written here from the standard definitions, matching those libraries:

- **BLEU** = BP * exp(sum_n 1/4 log p_n), p_n the clipped n-gram precision (n = 1..4, denominator at least 1),
  BP = 1 if c > r else exp(1 - r/c) (0 for an empty hypothesis; r the closest reference length, the shorter
  on ties). As in nltk: no unigram match -> 0; an order with no match counts as ``sys.float_info.min`` (nltk's
  ``method0``: BLEU is then ~1e-77, not exactly 0).
- **ROUGE-L** = LCS-based F: P = LCS/|pred|, R = LCS/|ref|, F = 2PR/(P+R), on rouge_score's tokens (lower case,
  runs of characters other than a-z0-9 are separators). The official scorer also Porter-stems tokens longer
  than 3 characters: ``stemmer: porter`` does this with nltk's ``PorterStemmer`` (errors, naming it, when nltk
  is not installed); ``auto`` (default) stems when nltk is importable and otherwise scores unstemmed, and the
  result says which (``stemmer``): unstemmed ROUGE-L differs from the official one when words differ in suffix.
- **BERTScore** (``bertscore``): needs the pretrained model bert_score downloads (roberta-large, layer 17 for
  lang='en'); offline it is an explicit metric that names what is missing unless ``model`` is a local folder.
  Token embeddings of that layer, cosine greedy matching, no idf (the CLS and SEP tokens weigh 0), no baseline
  rescaling: bert_score's defaults.

Files: gold ``names,reasons`` (what ``emollm eval`` writes for explanation tasks) or ``name,reference``;
predictions ``names,reasons`` or ``name,prediction``. Modes: published skips samples with an empty prediction
(the official rule); clean scores them 0. Main score: ROUGE-L F (``emobench_generation``), BERTScore F1
(``bertscore``), the judge's total / 10 (``emobench_laughter``).

The laughter judge (``emobench_laughter``) sends the official two prompts (``prompts/judges/emobench_m/``)
per sample through emollm's judge backends (``judge``: a ``JudgeConfig`` YAML; the official default judge is
Qwen/Qwen2.5-72B-Instruct on an OpenAI-compatible endpoint) and reads ``Logical Judgment Dimension: <n>`` and
``Multimodal Content Association Dimension: <n>``. Published: an unreadable reply scores 0 (the official
``or 0``); clean: such a sample is left out of that dimension's mean. Replies are cached. emollm's judge backends
ask greedily (temperature 0); the official script leaves the server's default temperature.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emollm.evaluation.metrics.registry import Scored, ScoreOptions, register_metric
from emollm.evaluation.readers import _read_rows

# ----------------------------------------------------------------------------------------------
# BLEU (nltk.translate.bleu_score.sentence_bleu)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(references: Sequence[Sequence[str]], hypothesis: Sequence[str], n: int) -> tuple[int, int]:
    """(clipped n-gram matches, max(1, hypothesis n-grams)): BLEU's modified precision p_n as a fraction."""
    counts = _ngrams(hypothesis, n) if len(hypothesis) >= n else Counter()
    max_ref: Counter[tuple[str, ...]] = Counter()
    for ref in references:
        for g, c in _ngrams(ref, n).items():
            max_ref[g] = max(max_ref[g], c)
    clipped = sum(min(c, max_ref[g]) for g, c in counts.items())
    return clipped, max(1, sum(counts.values()))


def brevity_penalty(references: Sequence[Sequence[str]], hyp_len: int) -> float:
    r = min((len(ref) for ref in references), key=lambda x: (abs(x - hyp_len), x))
    if hyp_len > r:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - r / hyp_len)


def sentence_bleu(
    references: Sequence[Sequence[str]],
    hypothesis: Sequence[str],
    weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25),
) -> float:
    """nltk's ``sentence_bleu`` without smoothing (``method0``) and without auto re-weighting."""
    if not references:
        raise ValueError("sentence_bleu needs at least one reference")
    p = [modified_precision(references, hypothesis, i) for i in range(1, len(weights) + 1)]
    if p[0][0] == 0:
        return 0.0
    bp = brevity_penalty(references, len(hypothesis))
    logs = [w * math.log(num / den if num else sys.float_info.min) for w, (num, den) in zip(weights, p, strict=True)]
    return bp * math.exp(math.fsum(logs))


# ----------------------------------------------------------------------------------------------
# ROUGE-L (rouge_score.rouge_scorer, 'rougeL')

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _porter() -> Any:
    try:
        from nltk.stem import porter  # type: ignore[import-not-found]
    except ImportError:
        return None
    return porter.PorterStemmer()


def rouge_tokens(text: str, stemmer: Any = None) -> list[str]:
    """rouge_score's default tokenizer: lower case, non-alphanumerics split, tokens > 3 chars stemmed."""
    toks = [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]
    if stemmer is not None:
        toks = [stemmer.stem(t) if len(t) > 3 else t for t in toks]
    return [t for t in toks if re.fullmatch(r"[a-z0-9]+", t)]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(reference: str, prediction: str, stemmer: Any = None) -> tuple[float, float, float]:
    """(precision, recall, F) of ROUGE-L; all 0 when either side has no token."""
    ref, pred = rouge_tokens(reference, stemmer), rouge_tokens(prediction, stemmer)
    if not ref or not pred:
        return 0.0, 0.0, 0.0
    lcs = lcs_length(ref, pred)
    p, r = lcs / len(pred), lcs / len(ref)
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def _stemmer(choice: str) -> tuple[Any, str]:
    if choice == "none":
        return None, "none"
    st = _porter()
    if st is None:
        if choice == "porter":
            raise ValueError(
                "stemmer: porter needs nltk's PorterStemmer (the official rouge_score use_stemmer=True), but nltk is "
                "not installed; install nltk or use stemmer: none (unstemmed ROUGE-L)"
            )
        return None, "none (nltk not installed: unstemmed, differs from the official use_stemmer=True)"
    return st, "porter (nltk)"


# ----------------------------------------------------------------------------------------------
# files


def read_pairs(gold_path: Path, pred_path: Path) -> tuple[list[str], list[str], list[str]]:
    """(names, references, predictions) in gold order; every gold name needs a prediction."""

    def table(path: Path, role: str, text_cols: tuple[str, ...]) -> dict[str, str]:
        rows = _read_rows(path, ())
        name_col = "names" if "names" in rows.header else "name"
        col = next((c for c in text_cols if c in rows.header), None)
        if name_col not in rows.header or col is None:
            raise ValueError(
                f"{path}: a {role} file needs columns names,reasons or name,{text_cols[-1]}; header is {rows.header}"
            )
        out: dict[str, str] = {}
        for row_no, r in rows.rows:
            n = (r.get(name_col) or "").strip()
            if n in out:
                raise ValueError(f"{path}: row {row_no}, column {name_col}: duplicate name {n!r}")
            out[n] = (r.get(col) or "").strip()
        return out

    gold = table(gold_path, "gold", ("reasons", "reference"))
    pred = table(pred_path, "prediction", ("reasons", "prediction"))
    missing = [n for n in gold if n not in pred]
    if missing:
        raise ValueError(f"{pred_path}: no prediction for {len(missing)} gold name(s) of {gold_path}: {missing[:5]}")
    empty = [n for n, g in gold.items() if not g]
    if empty:
        raise ValueError(f"{gold_path}: empty reference for {empty[:5]}")
    names = list(gold)
    return names, [gold[n] for n in names], [pred[n] for n in names]


def _kept(preds: list[str], mode: str) -> np.ndarray:
    """Which samples are averaged: published drops empty predictions (the official ``continue``)."""
    return np.asarray([bool(p) or mode == "clean" for p in preds])


class GenerationOptions(ScoreOptions):
    stemmer: Literal["auto", "porter", "none"] = "auto"
    """ROUGE-L stemming: porter (the official use_stemmer=True, needs nltk), none, or auto (porter when nltk is
    installed)."""


@register_metric(
    "emobench_generation", "EmoBench-M SMILE: sentence BLEU and ROUGE-L F (main), averaged", GenerationOptions
)
def score_generation(gold_path: Path, pred_path: Path, opts: GenerationOptions) -> Scored:
    names, refs, preds = read_pairs(gold_path, pred_path)
    stem, stem_note = _stemmer(opts.stemmer)
    bleu = np.asarray([sentence_bleu([r.split()], p.split()) if p else 0.0 for r, p in zip(refs, preds, strict=True)])
    rl = np.asarray([rouge_l(r, p, stem)[2] if p else 0.0 for r, p in zip(refs, preds, strict=True)])
    keep = _kept(preds, opts.mode)
    idx_all = np.arange(len(names))

    def mean(a: np.ndarray, idx: np.ndarray) -> float:
        sel = idx[keep[idx]]
        return float(a[sel].mean()) if len(sel) else 0.0

    values = {
        "score": mean(rl, idx_all),
        "main": "avg_rouge_l",
        "avg_bleu": mean(bleu, idx_all),
        "avg_rouge_l": mean(rl, idx_all),
        "n": int(keep.sum()),
        "n_empty_pred": int(sum(1 for p in preds if not p)),
        "stemmer": stem_note,
        "bleu": "nltk sentence_bleu, whitespace tokens, 4-gram, no smoothing",
    }
    return Scored(values, len(names), lambda idx: mean(rl, idx))


# ----------------------------------------------------------------------------------------------
# BERTScore

BERTSCORE_MISSING = (
    "bertscore needs a pretrained model, which emollm never downloads: the official scorer calls bert_score with "
    "lang='en', i.e. roberta-large, layer 17. Give model=DIR (a local Hugging Face folder of roberta-large, or "
    "another model with num_layers set), e.g. metrics: [{name: bertscore, optional: true, options: {model: "
    '"{root:bertscore_model}"}}] and --root bertscore_model=DIR'
)


class BertScoreOptions(ScoreOptions):
    model: Path | None = None
    """Local model folder (the official: roberta-large); None is an error naming what is missing."""
    num_layers: int | None = None
    """Hidden layer whose embeddings are matched (bert_score: 17 for roberta-large); None: 17 for a roberta-large
    config (24 layers), else the last layer."""
    device: str = "cpu"
    max_length: int = 510


def _layer(cfg: Any, num_layers: int | None) -> int:
    if num_layers is not None:
        if not 0 <= num_layers <= cfg.num_hidden_layers:
            raise ValueError(f"num_layers {num_layers} out of range 0..{cfg.num_hidden_layers}")
        return num_layers
    if getattr(cfg, "model_type", "") == "roberta" and cfg.num_hidden_layers == 24:
        return 17
    return int(cfg.num_hidden_layers)


def bert_scores(
    refs: Sequence[str], preds: Sequence[str], model_dir: Path, num_layers: int | None = None, **kw: Any
) -> list[tuple[float, float, float]]:
    """(P, R, F1) per pair: greedy cosine matching of one layer's token embeddings, CLS / SEP left out."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"bertscore: model folder {str(model_dir)!r} not found. {BERTSCORE_MISSING}")
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).to(kw.get("device", "cpu")).eval()
    layer = _layer(model.config, num_layers)
    special = {tok.cls_token_id, tok.sep_token_id} - {None}  # bert_score gives these (only) idf weight 0

    @torch.no_grad()
    def embed(text: str) -> torch.Tensor:
        # bert_score encodes roberta/gpt2-style sentences with a prefix space
        t = (" " + text.strip()) if getattr(model.config, "model_type", "") in ("roberta", "gpt2") else text.strip()
        enc = tok(t, return_tensors="pt", truncation=True, max_length=kw.get("max_length", 510))
        enc = {k: v.to(model.device) for k, v in enc.items()}
        hs = model(**enc, output_hidden_states=True).hidden_states[layer][0]
        ids = enc["input_ids"][0].tolist()
        keep = [i for i, t_id in enumerate(ids) if t_id not in special]
        e = hs[keep].float()
        return e / e.norm(dim=-1, keepdim=True)

    out = []
    for r, p in zip(refs, preds, strict=True):
        er, ep = embed(r), embed(p)
        if not len(er) or not len(ep):
            out.append((0.0, 0.0, 0.0))
            continue
        sim = ep @ er.T
        prec, rec = float(sim.max(dim=1).values.mean()), float(sim.max(dim=0).values.mean())
        out.append((prec, rec, 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0))
    return out


@register_metric("bertscore", "BERTScore F1 (EmoBench-M SMILE); needs a local model folder", BertScoreOptions)
def score_bertscore(gold_path: Path, pred_path: Path, opts: BertScoreOptions) -> Scored:
    if opts.model is None:
        raise ValueError(BERTSCORE_MISSING)
    names, refs, preds = read_pairs(gold_path, pred_path)
    keep = _kept(preds, opts.mode)
    scored = [i for i, p in enumerate(preds) if p]
    f1 = np.zeros(len(names))
    prf = np.zeros((len(names), 3))
    if scored:
        res = bert_scores(
            [refs[i] for i in scored], [preds[i] for i in scored], opts.model, opts.num_layers,
            device=opts.device, max_length=opts.max_length,
        )  # fmt: skip
        for i, r in zip(scored, res, strict=True):
            prf[i] = r
            f1[i] = r[2]

    def mean(a: np.ndarray, idx: np.ndarray) -> float:
        sel = idx[keep[idx]]
        return float(a[sel].mean()) if len(sel) else 0.0

    all_idx = np.arange(len(names))
    values = {
        "score": mean(f1, all_idx),
        "main": "avg_bert_f1",
        "avg_bert_f1": mean(f1, all_idx),
        "avg_bert_precision": mean(prf[:, 0], all_idx),
        "avg_bert_recall": mean(prf[:, 1], all_idx),
        "n": int(keep.sum()),
        "model": str(opts.model),
    }
    return Scored(values, len(names), lambda idx: mean(f1, idx))


# ----------------------------------------------------------------------------------------------
# the laughter-reasoning judge (LaughterReason_LLMScoring.py)

LAUGHTER_PROMPTS = "prompts/judges/emobench_m"
_DIMENSIONS = {
    "logical": ("laughter_logical", re.compile(r"Logical Judgment Dimension:\s*(\d+)", re.IGNORECASE)),
    "multimodal": (
        "laughter_multimodal",
        re.compile(r"Multimodal Content Association Dimension:\s*(\d+)", re.IGNORECASE),
    ),
}


def parse_laughter_score(reply: str | None, dimension: str) -> int | None:
    """The official ``extract_*_score``: the integer after the dimension's name, else None."""
    m = _DIMENSIONS[dimension][1].search(reply or "")
    return int(m.group(1)) if m else None


def _laughter_prompt(name: str) -> Any:
    from emollm.evaluation.judge.judge import JudgePrompt
    from emollm.paths import resolve_resource

    f = resolve_resource(LAUGHTER_PROMPTS, kind="judge prompt folder") / f"{name}.txt"
    return JudgePrompt(name, f.read_text(encoding="utf-8"), ("reference", "prediction"), str(f))


class LaughterOptions(ScoreOptions):
    judge: Path
    """A ``JudgeConfig`` YAML (emollm.evaluation.judge: backend local or openai, model...)."""
    cache_dir: Path | None = None
    """Judge reply cache; default ``<prediction folder>/judge_cache``."""


@register_metric(
    "emobench_laughter", "EmoBench-M SMILE laughter-reasoning judge: logical + multimodal (0-5 each)", LaughterOptions
)
def score_laughter(gold_path: Path, pred_path: Path, opts: LaughterOptions) -> Scored:
    from emollm.config import load_config
    from emollm.evaluation.judge.backends import JudgeConfig
    from emollm.evaluation.judge.judge import Judge

    names, refs, preds = read_pairs(gold_path, pred_path)
    cfg = load_config(JudgeConfig, opts.judge)
    if cfg.cache_dir is None:
        cfg = cfg.model_copy(update={"cache_dir": str(opts.cache_dir or pred_path.parent / "judge_cache")})
    prompts = {d: _laughter_prompt(p) for d, (p, _) in _DIMENSIONS.items()}
    raw: dict[str, list[int | None]] = {d: [] for d in _DIMENSIONS}
    with Judge(cfg) as judge:
        for n, r, p in zip(names, refs, preds, strict=True):
            for d, prompt in prompts.items():
                # the official script sends str(prediction) even when it is empty
                reply = judge.ask(n, f"emobench.{d}", prompt.render(reference=r, prediction=p))
                raw[d].append(parse_laughter_score(reply, d))
        calls, hits, judge_id = judge.calls, judge.cache_hits, judge.judge_id
    arr = {d: np.asarray([np.nan if v is None else float(v) for v in vs]) for d, vs in raw.items()}

    def dim_mean(d: str, idx: np.ndarray) -> float:
        a = arr[d][idx]
        if opts.mode == "published":
            return float(np.nan_to_num(a, nan=0.0).mean()) if len(a) else 0.0  # official: unreadable -> 0
        ok = ~np.isnan(a)
        return float(a[ok].mean()) if ok.any() else 0.0

    all_idx = np.arange(len(names))
    lg, mm = dim_mean("logical", all_idx), dim_mean("multimodal", all_idx)
    values = {
        "score": (lg + mm) / 10,
        "main": "avg_total / 10",
        "avg_logical": lg,
        "avg_multimodal": mm,
        "avg_total": lg + mm,
        "n": len(names),
        "n_unparsed": {d: int(np.isnan(a).sum()) for d, a in arr.items()},
        "judge": {
            "id": judge_id,
            "calls": calls,
            "cache_hits": hits,
            "prompt_hashes": {d: p.hash for d, p in prompts.items()},
        },
    }
    return Scored(values, len(names), lambda idx: (dim_mean("logical", idx) + dim_mean("multimodal", idx)) / 10)
