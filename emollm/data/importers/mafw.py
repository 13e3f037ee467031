"""MAFW importer: the official 5-fold single-label split lists and the clips, 11 classes (``mafw11``).

Layout under the corpus root (MAFW release)::

    Train & Test Set/single/no_caption/set_1/test.txt .. set_5/test.txt    "<clip> <label>" per line
    Train & Test Set/single/no_caption/set_<k>/train.txt                   the same, training clips
    data/clips/00025.mp4 ...                                               optional

Each line is ``00025.mp4 anger`` (clip file, then one of anger, disgust, fear, happiness, neutral, sadness,
surprise, contempt, anxiety, helplessness, disappointment; a 1-based class number in that order is read
too). Each test set becomes split ``fold<k>``; ``train_fold: k`` adds that fold's training list as split
``train``. The sample id is the clip name without its suffix; Sample.meta.fold = k.

    emollm prepare mafw --root /data/MAFW
"""

from __future__ import annotations

from pydantic import Field

from emollm.data.importers.base import CommonOptions, ImportContext, MediaIndex, register_importer, video_media
from emollm.data.importers.dfew import clip_id, read_numbered_label
from emollm.data.sample import Sample


class MAFWOptions(CommonOptions):
    split_dir: str = "Train & Test Set/single/no_caption"
    """Folder holding ``set_<k>/test.txt`` and ``set_<k>/train.txt``."""
    folds: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    """Test lists imported, each as split ``fold<k>``."""
    train_fold: int | None = Field(None, ge=1, le=5)
    """Also import this fold's training list as split ``train``; None: test lists only."""
    video_dirs: list[str] = Field(default_factory=lambda: ["data/clips"])
    """Clip folders searched in order; empty to import labels only."""


@register_importer("mafw", MAFWOptions, "MAFW: single/no_caption 5-fold test/train lists + clips (mafw11)")
def load_mafw(opts: MAFWOptions, ctx: ImportContext) -> list[Sample]:
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    sets = [(f"fold{k}", k, f"{opts.split_dir}/set_{k}/test.txt") for k in opts.folds]
    if opts.train_fold is not None:
        sets.append(("train", opts.train_fold, f"{opts.split_dir}/set_{opts.train_fold}/train.txt"))
    samples: list[Sample] = []
    for split, fold, rel in sets:
        path = ctx.path(rel)
        if not path.is_file():
            ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
            continue
        for row, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                ctx.problem(
                    path,
                    row,
                    None,
                    "malformed_row",
                    f"expected '<clip> <label>', got {line.strip()!r}",
                    action="excluded",
                )
                continue
            sid = clip_id(parts[0], 0)
            if not ctx.claim(sid, path, row):
                continue
            label, meta = read_numbered_label(ctx, parts[1], str(path), row, sid)
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
