"""Emotion-wheel (EW) grouping of open-vocabulary emotion words and the OV-MER / MER2025-26 set metrics.

    wheel = load_wheel("/data/emotion_wheel", "affectgpt2025")   # sha256-checked, cached per process
    wheel.m3("fear", "wheel2", "level1")                          # 'happy' (a published quirk)
    m = ew_scores(gold_lists, pred_lists, wheel)                  # M1, M2, M3_Wk_Lj, EW_L1_mean, ...
    m["EW_L1_mean"]["F"]

Resources (read from a folder the user gives; never shipped): ``format.csv`` (word forms),
``synonym.xlsx`` (8 GPT synonym runs), ``wheel1.xlsx`` .. ``wheel5.xlsx`` (level1/level2/level3 columns,
blank cells inherit from the row above), plus ``wheel_mapping.npz`` for ``mer2026``. Two pinned versions:

- ``affectgpt2025`` (MERTools MER2025 Track2/3 = AffectGPT / OV-MER ``emotion_wheel``): 7,386 forms;
  reproduces the published AffectGPT MER-UniBench and OV-MER numbers.
- ``mer2026`` (MER2026 Track2): 7,356 forms (30 spurious forms removed); synonyms and wheels identical.

Every file is checked against the sha256 in ``PINNED`` before use; the folder may hold the files
directly or a sub-folder named after the version.

Mapping one word (lower-cased and stripped):

- ``format_mapping``: each form of a ``format.csv`` row -> the row's name (and the name -> itself);
  values are lists since a form can belong to several names.
- ``raw_mapping``: in each synonym run, the word -> itself and each synonym -> the word; union of runs.
- wheel map, level 1: every level-1/2/3 word -> its level-1 root; level 2: level-2/3 words -> their
  level-2 parent and a level-1 root -> its alphabetically first level-2 child (later rows win).
- ``M1(w) = sorted(format_mapping[w])[0]``; ``M2(w) = sorted(raw_mapping[M1(w)])[0]``;
  ``M3(w, Wk, Lj)`` = the cluster of the first word, in sorted order, of the concatenation of
  ``raw_mapping[b]`` over ``b in format_mapping[w]`` that the wheel map knows. A word that is not a known
  form, or has no hit, is dropped (``None``) - so ``neutral`` is always dropped.

Set metric per mapping m (``set_scores``): G_i, P_i = mapped gold / predicted sets without dropped words;
samples with empty G_i are skipped; precision_i = |G&P|/|P|, recall_i = |G&P|/|G| (0, 0 when P is
empty); P, R = means over scored samples; F = 2PR/(P+R). When P+R = 0 the MER2026 code gives F = 0 and
the AffectGPT/MER2025 code 0/0 = NaN; with no scored sample P and R are NaN (``np.mean([])``). The
``wheel`` metric in published mode keeps these NaNs (affectgpt2025: NaN F; mer2026: 0) and names the
reason in ``undefined``; clean mode uses F = 0. The pure functions default to 0 (``empty``/``zero_f``).
EW-Lj = mean over the 5 wheels of F (P and R reported as means too; F is *not* recomputed from them).
M-avg = mean of the 12 F-scores M1, M2 and M3 W1..W5 x L1/L2 (OV-MER paper).

The ``wheel`` metric of ``emollm score`` reads ``name,openset`` gold and predictions. Published mode
parses lists with the AffectGPT rule (``emollm.answers.parse_emotion_list(style="affectgpt")``; an empty
cell or one pandas reads as missing is an empty list); clean mode uses the
strict ``clean`` rule (malformed lists are errors). On well-formed files both give the same numbers.
Every gold name needs a prediction (error otherwise); extra predictions are ignored (``n_extra_pred``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emollm.evaluation.metrics.registry import Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.readers import read_openset_csv
from emollm.io import sha256_file

WheelVersion = Literal["affectgpt2025", "mer2026"]
WHEELS: tuple[str, ...] = ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")
LEVELS: tuple[str, ...] = ("level1", "level2")
N_SYNONYM_RUNS = 8

_SHARED = {
    "synonym.xlsx": "23f81f9ab1d2418aaf96775304fb5dc52c62bb5d5ef652a97471d045fc9d2e29",
    "wheel1.xlsx": "e70485d354b82a7491ff24648273182a5f4f13f92c76e6b3e4f9033f5e6afcc1",
    "wheel2.xlsx": "acc001e076a8e60440361f58dd8c05ed900c4890c84bb7d8d1df93708a7d9c87",
    "wheel3.xlsx": "d62f30bf88c17c55876634cd088eacaef98278fc25457474364439872f9dbf83",
    "wheel4.xlsx": "660260561b7fe15550f3679a01e7c783608ce3403d4c28db0a88520f68d83aea",
    "wheel5.xlsx": "2dd4595b2cf8e7628ca06a416a8e38ac831614b244f23d1ae613dc34007649f1",
}
PINNED: dict[str, dict[str, str]] = {
    "affectgpt2025": {"format.csv": "ba6de7d61db8e129d1d7ef8a2aae22a9e93a2c2e3e683e6f2735d04455f016f2", **_SHARED},
    "mer2026": {"format.csv": "82234299875465ecf6c196ace42ffbe745baaeea72b5e39de955af36929982a4", **_SHARED},
}
"""sha256 of every resource file per pinned version (MERTools @ 89120b7)."""
NPZ_SHA256 = "4cb21790c3392a14fb2ace6d1b7ed63e38c708872621a1c75b8872808211427b"
"""sha256 of MER2026 ``wheel_mapping.npz`` (optional file; checked when present)."""


def _undefined_reasons(summary: dict[str, Any], mappings: Sequence[str], zero_f: float) -> str | None:
    """Why the main score is NaN (None when it is a number): which wheel mappings gave NaN and why."""
    no_sample = [m for m in mappings if summary[m]["n_scored"] == 0]
    zero = [m for m in mappings if summary[m]["n_scored"] > 0 and summary[m]["P"] + summary[m]["R"] == 0]
    parts = []
    if no_sample:
        parts.append(f"no sample has a gold word that {', '.join(no_sample)} maps (P and R are a mean of nothing)")
    if zero and np.isnan(zero_f):
        parts.append(
            f"P + R = 0 on {', '.join(zero)} (no predicted word hits a gold word, e.g. every prediction is "
            "empty), and the AffectGPT/MER2025 scorer's F = 2PR/(P+R) is then 0/0"
        )
    return "F undefined (NaN in the official code): " + "; ".join(parts) if parts else None


def metric_names() -> list[str]:
    """The 12 OV-MER mapping names: M1, M2, M3_W1_L1 .. M3_W5_L1, M3_W1_L2 .. M3_W5_L2."""
    return ["M1", "M2"] + [f"M3_W{k}_L{j}" for j in (1, 2) for k in range(1, 6)]


@dataclass
class EmotionWheel:
    """The lexical resources of one pinned version and the word mappings built from them."""

    version: str
    folder: Path
    format_mapping: dict[str, list[str]]
    raw_mapping: dict[str, list[str]]
    """word -> sorted wheel words (the union over the 8 runs)."""
    wheel_maps: dict[str, dict[str, dict[str, str]]]
    """wheelK -> levelJ -> word -> cluster word."""
    roots: dict[str, list[str]]
    """wheelK -> level-1 roots in file order."""
    level2_words: dict[str, list[str]]
    """wheelK -> distinct level-2 words in file order."""
    _memo: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False)

    @property
    def wheel_words(self) -> set[str]:
        """Every word on any wheel at any level."""
        return {w for wm in self.wheel_maps.values() for w in wm["level1"]}

    def m1(self, word: str) -> str | None:
        forms = self.format_mapping.get(word.strip().lower())
        return sorted(forms)[0] if forms else None

    def m2(self, word: str) -> str | None:
        base = self.m1(word)
        if base is None or not self.raw_mapping.get(base):
            return None
        return sorted(self.raw_mapping[base])[0]

    def m3(self, word: str, wheel: str, level: str) -> str | None:
        wmap = self.wheel_maps[wheel][level]
        cands: list[str] = []
        for b in self.format_mapping.get(word.strip().lower(), []):
            cands += self.raw_mapping.get(b, [])
        for c in sorted(cands):
            if c in wmap:
                return wmap[c]
        return None

    def map_word(self, word: str, metric: str) -> str | None:
        """``metric``: M1, M2 or M3_Wk_Lj (k in 1..5, j in 1..2); None = dropped."""
        key = (word, metric)
        if key not in self._memo:
            if metric == "M1":
                out = self.m1(word)
            elif metric == "M2":
                out = self.m2(word)
            elif metric.startswith("M3_W") and metric in metric_names():
                _, w, lv = metric.split("_")
                out = self.m3(word, f"wheel{w[1:]}", f"level{lv[1:]}")
            else:
                raise ValueError(f"unknown wheel mapping {metric!r}; known: {', '.join(metric_names())}")
            self._memo[key] = out
        return self._memo[key]


# ----------------------------------------------------------------------------------------------
# reading the resources


def _xlsx_rows(path: Path) -> list[tuple[Any, ...]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several unrelated types for a bad file
        raise ValueError(f"{path}: not a readable xlsx workbook ({e})") from None
    try:
        return [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def _cell(v: Any) -> str:
    return "" if v is None else str(v).strip().lower()


def build_format_mapping(path: Path) -> dict[str, list[str]]:
    """``format.csv`` (name, format) -> form -> [names] (each form of a row, then the name itself)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"name", "format"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns name,format; got {reader.fieldnames}")
        out: dict[str, list[str]] = {}
        for row in reader:
            name = (row["name"] or "").strip()
            if not name:
                raise ValueError(f"{path}: row {reader.line_num}, column name: empty")
            for form in (row["format"] or "").split(","):
                form = form.strip()
                if form:
                    out.setdefault(form, []).append(name)
            out.setdefault(name, []).append(name)
    return out


def build_raw_mapping(path: Path) -> dict[str, list[str]]:
    """``synonym.xlsx`` (word_runK, synonym_runK for K = 1..8) -> word -> sorted wheel words."""
    rows = _xlsx_rows(path)
    if not rows:
        raise ValueError(f"{path}: empty workbook")
    header = [_cell(h) for h in rows[0]]
    out: dict[str, set[str]] = {}
    for run in range(1, N_SYNONYM_RUNS + 1):
        try:
            wi, si = header.index(f"word_run{run}"), header.index(f"synonym_run{run}")
        except ValueError:
            raise ValueError(f"{path}: missing column word_run{run} or synonym_run{run}; header {header}") from None
        for r in rows[1:]:
            word = _cell(r[wi] if wi < len(r) else None)
            if not word:
                continue
            out.setdefault(word, set()).add(word)
            syns = r[si] if si < len(r) else None
            for s in ("" if syns is None else str(syns)).split(","):
                s = s.strip().lower()
                if s:
                    out.setdefault(s, set()).add(word)
    return {k: sorted(v) for k, v in out.items()}


def read_wheel_tree(path: Path) -> dict[str, dict[str, list[str]]]:
    """``wheelK.xlsx`` -> {level1: {level2: [level3, ...]}} in file order (blank cells inherit from above)."""
    rows = _xlsx_rows(path)
    if not rows or [_cell(h) for h in rows[0][:3]] != ["level1", "level2", "level3"]:
        raise ValueError(f"{path}: expected columns level1, level2, level3 in the first row")
    tree: dict[str, dict[str, list[str]]] = {}
    prev = ["", "", ""]
    for i, r in enumerate(rows[1:], start=2):
        cur = [_cell(r[j] if j < len(r) else None) or prev[j] for j in range(3)]
        if not any(_cell(r[j] if j < len(r) else None) for j in range(3)):
            continue  # blank row
        if not cur[0] or not cur[1]:
            raise ValueError(f"{path}: row {i}: no level1/level2 word (nothing to inherit from above)")
        prev = cur
        level3 = tree.setdefault(cur[0], {}).setdefault(cur[1], [])
        if cur[2] and cur[2] not in level3:
            level3.append(cur[2])
    return tree


def wheel_cluster_maps(tree: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, str]]:
    """level1: every word -> its root; level2: level-2/3 words -> parent, a root -> its first child (sorted)."""
    l1: dict[str, str] = {}
    l2: dict[str, str] = {}
    for root, children in tree.items():
        l1[root] = root
        l2[root] = sorted(children)[0]
        for mid, leaves in children.items():
            l1[mid] = root
            l2[mid] = mid
            for leaf in leaves:
                l1[leaf] = root
                l2[leaf] = mid
    return {"level1": l1, "level2": l2}


def resolve_wheel_folder(folder: str | Path, version: str) -> Path:
    """``folder`` if it holds format.csv, else ``folder/<version>``; errors name both."""
    if version not in PINNED:
        raise ValueError(f"unknown emotion-wheel version {version!r}; known: {', '.join(PINNED)}")
    p = Path(folder).expanduser()
    if (p / "format.csv").is_file():
        return p
    if (p / version / "format.csv").is_file():
        return p / version
    raise FileNotFoundError(
        f"emotion-wheel resources not found: neither {p / 'format.csv'} nor {p / version / 'format.csv'} exists "
        f"(give the folder holding format.csv, synonym.xlsx and wheel1..5.xlsx of version {version})"
    )


def verify_wheel_folder(folder: Path, version: str) -> None:
    """Check every pinned file (and ``wheel_mapping.npz`` if present) against its sha256."""
    for name, want in PINNED[version].items():
        f = folder / name
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing emotion-wheel resource of version {version}")
        got = sha256_file(f)
        if got != want:
            raise ValueError(
                f"{f}: sha256 {got} does not match the pinned {version} resource ({want}); "
                "scores would not be comparable with published numbers"
            )
    npz = folder / "wheel_mapping.npz"
    if npz.is_file() and version == "mer2026" and sha256_file(npz) != NPZ_SHA256:
        raise ValueError(f"{npz}: sha256 does not match the pinned mer2026 wheel_mapping.npz ({NPZ_SHA256})")


_CACHE: dict[tuple[str, str], EmotionWheel] = {}


def load_wheel(folder: str | Path, version: str = "affectgpt2025", *, verify: bool = True) -> EmotionWheel:
    """Read (and cache per process) the resources of a pinned version from ``folder``.

    verify: check sha256 of every file against ``PINNED`` (turn off only for experiments with edited files).
    """
    path = resolve_wheel_folder(folder, version)
    key = (str(path.resolve()), version)
    if verify:
        verify_wheel_folder(path, version)
    elif key in _CACHE:
        del _CACHE[key]  # unverified files may have changed; rebuild
    if key in _CACHE:
        return _CACHE[key]
    wheel_maps: dict[str, dict[str, dict[str, str]]] = {}
    roots: dict[str, list[str]] = {}
    level2: dict[str, list[str]] = {}
    for w in WHEELS:
        tree = read_wheel_tree(path / f"{w}.xlsx")
        wheel_maps[w] = wheel_cluster_maps(tree)
        roots[w] = list(tree)
        level2[w] = list(dict.fromkeys(mid for children in tree.values() for mid in children))
    wheel = EmotionWheel(
        version=version,
        folder=path,
        format_mapping=build_format_mapping(path / "format.csv"),
        raw_mapping=build_raw_mapping(path / "synonym.xlsx"),
        wheel_maps=wheel_maps,
        roots=roots,
        level2_words=level2,
    )
    if verify:
        _CACHE[key] = wheel
    return wheel


def load_wheel_mapping_npz(path: str | Path) -> dict[str, Any]:
    """MER2026's pre-built ``wheel_mapping.npz`` -> {format_mapping, raw_mapping, wheel_map_whole} dicts.

    The file is a pickle inside an npz, so it is only opened after its sha256 matches ``NPZ_SHA256``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found")
    got = sha256_file(p)
    if got != NPZ_SHA256:
        raise ValueError(f"{p}: sha256 {got} is not the pinned mer2026 wheel_mapping.npz; refusing to unpickle it")
    with np.load(p, allow_pickle=True) as z:
        return {k: z[k].tolist() for k in ("format_mapping", "raw_mapping", "wheel_map_whole")}


# ----------------------------------------------------------------------------------------------
# set metrics


def fscore(p: float, r: float) -> float:
    """2PR/(P+R), 0 when P+R = 0."""
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@dataclass
class SetScore:
    """Per-sample precision/recall (NaN where skipped) and the corpus P, R, F of one mapping."""

    precision: np.ndarray
    """[N] per-sample precision; NaN for skipped samples (empty mapped gold)."""
    recall: np.ndarray
    """[N] per-sample recall; NaN for skipped samples."""

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.precision)

    def summary(
        self, idx: np.ndarray | None = None, *, empty: float = 0.0, zero_f: float = 0.0
    ) -> dict[str, float | int]:
        """P, R, F and n_scored, over all samples or a resample ``idx`` [M].

        ``empty``: P and R when no sample is scored (the official ``np.mean([])`` is NaN); ``zero_f``: F
        when P + R = 0 (0 in MER2026; NaN in AffectGPT / MER2025, whose ``2PR/(P+R)`` is 0/0).
        """
        p = self.precision if idx is None else self.precision[idx]
        r = self.recall if idx is None else self.recall[idx]
        ok = ~np.isnan(p)
        n = int(ok.sum())
        pm = float(np.mean(p[ok])) if n else empty
        rm = float(np.mean(r[ok])) if n else empty
        f = zero_f if pm + rm == 0 else 2 * pm * rm / (pm + rm)
        return {"F": f, "P": pm, "R": rm, "n_scored": n}


def set_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mapper: Callable[[str], str | None]
) -> SetScore:
    """Set-level scores of aligned word lists after mapping each word (None = dropped)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold lists but {len(pred)} predicted lists")
    prec = np.full(len(gold), np.nan)
    rec = np.full(len(gold), np.nan)
    for i, (gw, pw) in enumerate(zip(gold, pred, strict=True)):
        g = {m for w in gw if (m := mapper(w)) is not None}
        if not g:
            continue
        p = {m for w in pw if (m := mapper(w)) is not None}
        if p:
            hit = len(g & p)
            prec[i], rec[i] = hit / len(p), hit / len(g)
        else:
            prec[i], rec[i] = 0.0, 0.0
    return SetScore(prec, rec)


def ew_mean(scores: Sequence[dict[str, float | int]]) -> dict[str, float]:
    """Mean F, P and R over wheels (F averaged per wheel, not recomputed)."""
    return {k: float(np.mean([s[k] for s in scores])) for k in ("F", "P", "R")}


def ew_set_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel
) -> dict[str, SetScore]:
    """The 12 OV-MER mappings -> ``SetScore`` (M1, M2, M3_Wk_Lj)."""
    return {m: set_scores(gold, pred, lambda w, m=m: wheel.map_word(w, m)) for m in metric_names()}


def summarize_ew(
    per: dict[str, SetScore], idx: np.ndarray | None = None, *, empty: float = 0.0, zero_f: float = 0.0
) -> dict[str, Any]:
    """Per-mapping P/R/F, EW_L1_mean, EW_L2_mean and M_avg_12 (optionally on a resample ``idx``).

    ``empty`` / ``zero_f``: see ``SetScore.summary`` (NaN propagates into the means, as in the official code).
    """
    out: dict[str, Any] = {m: s.summary(idx, empty=empty, zero_f=zero_f) for m, s in per.items()}
    for j in (1, 2):
        out[f"EW_L{j}_mean"] = ew_mean([out[f"M3_W{k}_L{j}"] for k in range(1, 6)])
    out["M_avg_12"] = float(np.mean([out[m]["F"] for m in metric_names()]))
    return out


def ew_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel) -> dict[str, Any]:
    """All OV-MER EW numbers for aligned gold and predicted word lists."""
    return summarize_ew(ew_set_scores(gold, pred, wheel))


class WheelOptions(ScoreOptions):
    wheel: Path
    """Folder with the emotion-wheel resources (or a parent holding one folder per version)."""
    wheel_version: WheelVersion = "affectgpt2025"
    level: Literal[1, 2] = 1
    """Which EW mean is the main score: 1 (MER-UniBench OV column, MER2026 Track2) or 2."""


@register_metric(
    "wheel", "EW-L1 (or L2) set F-score, mean over 5 emotion wheels (main score); M1, M2, M-avg", WheelOptions
)
def score_wheel(gold_path: Path, pred_path: Path, opts: WheelOptions) -> Scored:
    style = "affectgpt" if opts.mode == "published" else "clean"
    wheel = load_wheel(opts.wheel, opts.wheel_version)
    gold = read_openset_csv(gold_path, style=style)
    pred = read_openset_csv(pred_path, style=style)
    names, extra = align_names(gold, pred)
    per = ew_set_scores([gold.items[n] for n in names], [pred.items[n] for n in names], wheel)
    # the official P, R are np.mean over the scored samples (NaN when none); F = 2PR/(P+R) is NaN when
    # P + R = 0 in the AffectGPT/MER2025 code (affectgpt2025) and 0 in MER2026; clean mode uses 0
    nan_f = opts.mode == "published" and wheel.version == "affectgpt2025"
    zero_f = float("nan") if nan_f else 0.0
    summary = summarize_ew(per, empty=float("nan"), zero_f=zero_f)
    main = f"EW_L{opts.level}_mean"
    level_metrics = [f"M3_W{k}_L{opts.level}" for k in range(1, 6)]
    values = {
        "score": summary[main]["F"],
        "main": main,
        **summary,
        "n": len(names),
        "n_empty_pred": sum(1 for n in names if not pred.items[n]),
        "n_extra_pred": len(extra),
        "wheel_version": wheel.version,
        "level": opts.level,
        "list_style": style,
    }
    why = _undefined_reasons(summary, level_metrics, zero_f)
    if why:
        values["undefined"] = why

    def resample(idx: np.ndarray) -> float:
        return float(np.mean([per[m].summary(idx)["F"] for m in level_metrics]))

    return Scored(values, len(names), resample)
