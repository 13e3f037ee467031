"""Score a prediction file against a gold file with a named protocol (``emollm score`` calls this).

    from emollm.evaluation.score import score
    r = score("ov", "check-openset.csv", "predict-openset.csv", synonyms="openset-synonym.zip")
    r["score"]        # 0.5397841365461847  (the protocol's main number)
    r = score("mer2023", "test1-label.csv", "pred.csv", split="test1", mode="clean", bootstrap=1000)
    r["bootstrap"]    # {"point", "low", "high", "std", "mean", "n_boot", "alpha", "seed"}

The result is a JSON-ready dict: ``metric``, ``mode``, ``score`` first, then everything the metric
computed. Where the official code yields NaN (a hit rate with no scorable sample on a wheel, an EW
F-score whose P + R is 0), ``score`` is ``None`` and ``undefined`` gives the reason; every other NaN
value is ``None`` too. Options are validated per metric (unknown or misspelt ones are errors); the bootstrap
options ``bootstrap`` (resamples, 0 = off), ``seed`` and ``alpha`` work for every metric. Which
names may be missing or extra, and what ``clean`` changes, is documented per metric in
docs/METRICS.md and in each ``emollm.evaluation.metrics`` module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from emollm.config import validate
from emollm.evaluation.metrics import METRICS
from emollm.evaluation.metrics.bootstrap import bootstrap_ci


def _plain(obj: Any) -> Any:
    """numpy scalars/arrays and Paths -> JSON types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _no_nan(obj: Any) -> Any:
    """NaN -> None, recursively (the JSON stays strict; ``undefined`` says why the main score is missing)."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and math.isnan(obj):
        return None
    return obj


def score(
    metric: str,
    gold: str | Path,
    pred: str | Path,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
    **options: Any,
) -> dict[str, Any]:
    """Score ``pred`` against ``gold`` with metric ``metric`` (``METRICS.names()``); see the module docstring."""
    spec = METRICS.get(metric)
    opts = validate(spec.options, options, source=f"options of metric {metric!r}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0 resamples, got {bootstrap}")
    gold_p, pred_p = Path(gold), Path(pred)
    for role, p in (("gold", gold_p), ("prediction", pred_p)):
        if not p.is_file():
            raise FileNotFoundError(f"{role} file {str(p)!r} not found")
    scored = spec.run(gold_p, pred_p, opts)
    main = scored.values.get("score")
    undefined = scored.values.get("undefined")
    if not isinstance(main, (int, float, np.floating)) or not (math.isfinite(float(main)) or undefined):
        raise RuntimeError(f"metric {metric!r} returned no finite main score")  # a bug, not bad input
    defined = math.isfinite(float(main))
    out: dict[str, Any] = {"metric": metric, "mode": opts.mode, "score": float(main) if defined else None}
    if not defined:
        out["undefined"] = str(undefined)
    out.update({k: _no_nan(v) for k, v in scored.values.items() if k not in ("score", "undefined")})
    out["gold"], out["pred"] = str(gold_p), str(pred_p)
    out["options"] = opts.model_dump(mode="json")
    if bootstrap and not defined:
        out["bootstrap"] = {"skipped": "the main score is undefined"}
    elif bootstrap:
        if scored.resample is None:
            raise ValueError(f"metric {metric!r} does not support bootstrap")
        ci = bootstrap_ci(scored.resample, scored.n_items, bootstrap, seed, alpha, point=out["score"])
        out["bootstrap"] = ci.as_dict()
    return _plain(out)
