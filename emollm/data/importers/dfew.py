"""DFEW importer: the official 5-fold split files (single-labeled) and the clips, 7 classes (``dfew7``).

Layout under the corpus root (DFEW release)::

    EmoLabel_DataSplit/test(single-labeled)/set_1.csv .. set_5.csv    video_name,label
    EmoLabel_DataSplit/train(single-labeled)/set_1.csv .. set_5.csv   video_name,label
    Clip/original/00001.mp4 ...                                       optional (clip id, 5 digits)

``label`` is 1..7 in DFEW's order (1 happy, 2 sad, 3 neutral, 4 angry, 5 surprise, 6 disgust, 7 fear);
a label word is read too. Each test set of the 5 folds becomes split ``fold<k>`` (the five test sets
partition the corpus, so a clip is in one of them); ``train_fold: k`` adds that fold's training set as
split ``train`` (training sets of different folds overlap, so only one at a time). ``video_name`` is
zero-padded to 5 digits (``1`` -> ``00001``), the clip names of the release. Sample.meta.fold = k.

    emollm prepare dfew --root /data/DFEW
"""

from __future__ import annotations

from pydantic import Field

from emollm.data.importers.base import (
    CommonOptions,
    ImportContext,
    MediaIndex,
    read_table,
    register_importer,
    video_media,
)
from emollm.data.sample import Sample


class DFEWOptions(CommonOptions):
    split_dir: str = "EmoLabel_DataSplit"
    """Folder holding ``test(single-labeled)/set_<k>.csv`` and ``train(single-labeled)/set_<k>.csv``."""
    folds: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    """Test sets imported, each as split ``fold<k>``."""
    train_fold: int | None = Field(None, ge=1, le=5)
    """Also import this fold's training set as split ``train`` (fine-tuning); None: test sets only."""
    video_dirs: list[str] = Field(default_factory=lambda: ["Clip/original"])
    """Clip folders searched in order; empty to import labels only."""
    pad: int = Field(5, ge=0)
    """Zero-pad numeric ``video_name`` values to this many digits (0: keep as written)."""


def clip_id(raw: str, pad: int) -> str:
    """``'1'`` -> ``'00001'`` (numeric names are padded); other names are kept, without a video suffix."""
    s = raw.strip()
    for ext in (".mp4", ".avi"):
        if s.lower().endswith(ext):
            s = s[: -len(ext)]
    return s.zfill(pad) if pad and s.isdigit() else s


def read_numbered_label(ctx: ImportContext, raw: str, path: str, row: int, sid: str) -> tuple[str | None, dict]:
    """A 1-based class number in the label space's order, or a label word."""
    text = (raw or "").strip()
    if text.isdigit():
        k = int(text)
        if 1 <= k <= len(ctx.space.labels):
            return ctx.space.labels[k - 1], {}
        ctx.problem(
            path,
            row,
            "label",
            "unknown_label",
            f"class number {k} is outside 1..{len(ctx.space.labels)} ({', '.join(ctx.space.labels)})",
            sample_id=sid,
        )
        return None, {"raw_label": text}
    return ctx.label(text, path, row, "label", sid)


@register_importer("dfew", DFEWOptions, "DFEW: EmoLabel_DataSplit 5-fold single-labeled CSVs + clips (dfew7)")
def load_dfew(opts: DFEWOptions, ctx: ImportContext) -> list[Sample]:
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    sets = [(f"fold{k}", k, f"{opts.split_dir}/test(single-labeled)/set_{k}.csv") for k in opts.folds]
    if opts.train_fold is not None:
        sets.append(("train", opts.train_fold, f"{opts.split_dir}/train(single-labeled)/set_{opts.train_fold}.csv"))
    samples: list[Sample] = []
    for split, fold, rel in sets:
        table = read_table(ctx, rel, id_cols=("video_name", "name"), columns=("label",))
        if table is None:
            continue
        path = str(table.path)
        for row, r in table.rows():
            sid = clip_id(r[table.id_col], opts.pad)
            if not ctx.claim(sid, path, row):
                continue
            label, meta = (
                (None, {}) if "label" in table.missing else read_numbered_label(ctx, r["label"], path, row, sid)
            )
            raw = clip_id(r[table.id_col], 0)
            if videos is not None and sid not in videos.files and raw in videos.files:
                videos.files[sid] = videos.files[raw]  # clips named without the zero padding (1.mp4)
            samples.append(
                Sample(
                    id=sid,
                    corpus=ctx.corpus,
                    split=split,
                    media=video_media(ctx, videos, sid, path, row),
                    label=label,
                    meta={"fold": fold, **meta},
                )
            )
    return samples
