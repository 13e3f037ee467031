"""Label spaces and label-word normalisation.

A ``LabelSpace`` is an ordered list of canonical labels plus synonyms (word forms, nouns/adjectives,
Chinese names) that map back to them. The same space is used to build training targets, to list
candidates in prompts, to score candidates and to read free text, so train and eval never disagree.

    space = label_space("mer6")
    space.normalize("Happiness.")   # -> "happy"
    space.normalize("bored")        # -> None   (never a default label)
    space.find_in_text("I think she is mostly angry, not sad")  # -> "angry" (earliest mention)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from emollm.registry import Registry, close_match

# canonical -> synonyms (lower-case). Only unambiguous forms; nothing maps two ways in one space.
_SYNONYMS: dict[str, list[str]] = {
    "neutral": ["neutrality", "calm", "中性", "平静"],
    "angry": ["anger", "mad", "angrily", "angered", "furious", "生气", "愤怒"],
    "happy": ["happiness", "joy", "joyful", "happily", "glad", "高兴", "开心", "快乐"],
    "sad": ["sadness", "sadly", "unhappy", "sorrow", "伤心", "悲伤", "难过"],
    "worried": ["worry", "worrying", "worries", "anxious", "anxiety", "担心", "担忧", "焦虑"],
    "surprise": ["surprised", "surprising", "astonished", "惊讶"],
    "fear": ["fearful", "afraid", "scared", "fright", "害怕", "恐惧"],
    "contempt": ["contemptuous", "scorn", "轻蔑"],
    "doubt": ["doubtful", "doubting", "skeptical", "怀疑"],
    "disgust": ["disgusted", "disgusting", "厌恶"],
    "positive": ["pos"],
    "negative": ["neg"],
}


@dataclass(frozen=True)
class LabelSpace:
    name: str
    labels: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    """Extra surface form -> canonical (e.g. MELD's 'joy' -> 'joy' is canonical there)."""

    def __post_init__(self) -> None:
        table: dict[str, str] = {}
        for lab in self.labels:
            table[lab] = lab
        for lab in self.labels:
            for syn in _SYNONYMS.get(lab, []):
                if syn not in self.labels:
                    table.setdefault(syn, lab)
        for k, v in self.aliases.items():
            if v not in self.labels:
                raise ValueError(f"label space {self.name}: alias {k!r} points to unknown label {v!r}")
            table[k] = v
        object.__setattr__(self, "_table", table)
        words = sorted(table, key=len, reverse=True)
        # ASCII words need word boundaries; CJK words appear inside running text without spaces
        ascii_w = [re.escape(w) for w in words if w.isascii()]
        cjk_w = [re.escape(w) for w in words if not w.isascii()]
        alts = [r"(?<![A-Za-z0-9_])(?:" + "|".join(ascii_w) + r")(?![A-Za-z0-9_])"] if ascii_w else []
        if cjk_w:
            alts.append("(?:" + "|".join(cjk_w) + ")")
        pattern = "(" + "|".join(alts) + ")"
        object.__setattr__(self, "_pattern", re.compile(pattern, re.IGNORECASE))

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        return self.labels.index(label)

    def normalize(self, word: str | None) -> str | None:
        """Canonical label for a single word or short answer, or None if it is not one."""
        if word is None:
            return None
        w = word.strip().lower()
        w = re.sub(r"^[\s\"'`*\-\[\(]+|[\s\"'`*.,!?;:\]\)]+$", "", w)
        return self._table.get(w)  # type: ignore[attr-defined]

    def require(self, word: str, where: str) -> str:
        """Canonical label or a ValueError naming ``where`` and the known labels."""
        lab = self.normalize(word)
        if lab is None:
            raise ValueError(
                f"{where}: unknown label {word!r} for label space {self.name!r}"
                f"{close_match(word.lower(), list(self.labels))}; known: {', '.join(self.labels)}"
            )
        return lab

    def find_in_text(self, text: str) -> str | None:
        """The label mentioned earliest in free text (synonyms included), or None."""
        m = self._pattern.search(text or "")  # type: ignore[attr-defined]
        return self._table[m.group(1).lower()] if m else None  # type: ignore[attr-defined]

    def mentions(self, text: str) -> list[str]:
        """All distinct labels mentioned in ``text``, in order of first mention."""
        seen: list[str] = []
        for m in self._pattern.finditer(text or ""):  # type: ignore[attr-defined]
            lab = self._table[m.group(1).lower()]  # type: ignore[attr-defined]
            if lab not in seen:
                seen.append(lab)
        return seen


LABEL_SPACES: Registry[LabelSpace] = Registry("label space")


def _add(space: LabelSpace) -> None:
    LABEL_SPACES.add(space.name, space)


# MER2023/2024 six classes, canonical order of the official code.
_add(LabelSpace("mer6", ("neutral", "angry", "happy", "sad", "worried", "surprise")))
# MERR (Emotion-LLaMA) nine classes, in the order of its dataset code.
_add(LabelSpace("merr9", ("neutral", "angry", "happy", "sad", "worried", "surprise", "fear", "contempt", "doubt")))
# DFEW / FER-style seven classes, in DFEW's label-file order (label k = labels[k - 1]).
_add(LabelSpace("dfew7", ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")))
# MELD's own surface forms (npz index order).
_add(
    LabelSpace(
        "meld7",
        ("anger", "joy", "sadness", "neutral", "disgust", "fear", "surprise"),
        aliases={"angry": "anger", "happy": "joy", "happiness": "joy", "sad": "sadness", "surprised": "surprise"},
    )
)
# IEMOCAP four classes (excited is merged into happy by the MERBench convention).
_add(LabelSpace("iemocap4", ("happy", "sad", "neutral", "angry"), aliases={"excited": "happy"}))
_add(LabelSpace("sentiment3", ("positive", "negative", "neutral")))
# EmoBench-M scenario label sets, as its EmoBench-M_eval.py lists them ("Example categories").
_add(
    LabelSpace(
        "fgmsa5",
        ("weak negative", "strong negative", "neutral", "strong positive", "weak positive"),
    )
)
_add(LabelSpace("true_false", ("true", "false")))  # EmoBench-M humour (funny) and sarcasm (MUSTARD)
_add(
    LabelSpace(
        "ravdess_song6",
        ("neutral", "calm", "happy", "sad", "angry", "fearful"),
        aliases={"fear": "fearful", "afraid": "fearful", "scared": "fearful"},
    )
)
_add(
    LabelSpace(
        "ravdess_speech8",
        ("neutral", "calm", "happy", "sad", "angry", "fearful", "surprised", "disgust"),
        aliases={"fear": "fearful", "afraid": "fearful", "scared": "fearful", "surprise": "surprised"},
    )
)
# MAFW eleven single labels, in the order of its label files (R1-Omni's eval script numbers them 1..11).
_add(
    LabelSpace(
        "mafw11",
        (
            "anger",
            "disgust",
            "fear",
            "happiness",
            "neutral",
            "sadness",
            "surprise",
            "contempt",
            "anxiety",
            "helplessness",
            "disappointment",
        ),
        aliases={
            "angry": "anger",
            "mad": "anger",
            "furious": "anger",
            "disgusted": "disgust",
            "disgusting": "disgust",
            "fearful": "fear",
            "afraid": "fear",
            "scared": "fear",
            "happy": "happiness",
            "joy": "happiness",
            "joyful": "happiness",
            "calm": "neutral",
            "sad": "sadness",
            "unhappy": "sadness",
            "surprised": "surprise",
            "astonished": "surprise",
            "contemptuous": "contempt",
            "scorn": "contempt",
            "anxious": "anxiety",
            "worried": "anxiety",
            "worry": "anxiety",
            "helpless": "helplessness",
            "disappointed": "disappointment",
        },
    )
)


def label_space(name: str) -> LabelSpace:
    return LABEL_SPACES.get(name)
