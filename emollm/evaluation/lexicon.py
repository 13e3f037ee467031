"""Emotion words in free text (English and Chinese): an ``EmotionLexicon`` built from a label space, a
word list, or an emotion wheel folder (``emollm.evaluation.metrics.wheel``), and the bilingual
tokenizer it reads text with. Used by the judge-free explanation metrics and by the report.

    lex = EmotionLexicon.from_label_space("mer6")
    lex.find("She sounds furious and a bit sad.")     # emotion words found, in text order
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from emollm.labels import LabelSpace, label_space

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


_TOKEN_RE = re.compile(rf"[{_CJK}]+|[A-Za-z]+(?:['-][A-Za-z]+)*")


_IS_CJK = re.compile(rf"[{_CJK}]")


class EmotionLexicon:
    """Finds emotion words in English or Chinese free text and maps them to canonical names.

    English: words and phrases of up to ``max_words`` words, longest match first. Chinese (no
    spaces): inside each run of CJK characters, the longest lexicon entry of up to ``max_chars``
    characters starting at each position. Negation is not handled ("不高兴" contains "高兴").

    ``lookup`` maps one lower-cased word or phrase to a canonical name (or None); build one with
    ``from_label_space``, ``from_words``, ``from_file`` or ``from_wheel``.
    """

    def __init__(self, name: str, lookup: Callable[[str], str | None], max_words: int = 3, max_chars: int = 4) -> None:
        self.name = name
        self.lookup = lookup
        self.max_words = max_words
        self.max_chars = max_chars

    @classmethod
    def from_label_space(cls, space: str | LabelSpace, extra: Mapping[str, str] | None = None) -> EmotionLexicon:
        """Labels and synonyms of a label space, plus ``extra`` surface forms (word -> canonical label)."""
        sp = label_space(space) if isinstance(space, str) else space
        table = {k.strip().lower(): sp.require(v, f"extra emotion word {k!r}") for k, v in (extra or {}).items()}

        def lookup(word: str) -> str | None:
            return table.get(word) or sp.normalize(word)

        return cls(f"labels:{sp.name}", lookup, max_chars=max([4, *(len(k) for k in table)]))

    @classmethod
    def from_words(cls, words: Mapping[str, str] | Iterable[str], name: str = "words") -> EmotionLexicon:
        """A word list (each word its own class) or a mapping word -> canonical name."""
        table = (
            {k.strip().lower(): v.strip().lower() for k, v in words.items()}
            if isinstance(words, Mapping)
            else {w.strip().lower(): w.strip().lower() for w in words}
        )
        table = {k: v for k, v in table.items() if k}
        if not table:
            raise ValueError(f"emotion lexicon {name!r} is empty")
        longest = max((len(k.split()) for k in table), default=1)
        return cls(name, table.get, max_words=max(1, longest), max_chars=max(len(k) for k in table))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EmotionLexicon:
        """One entry per line: ``word`` or ``word<TAB>canonical`` / ``word,canonical``; ``#`` starts a comment."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"emotion word list {str(p)!r} not found")
        table: dict[str, str] = {}
        for n, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [x.strip() for x in re.split(r"[\t,]", line) if x.strip()]
            if len(parts) > 2:
                raise ValueError(f"{p}: line {n}: expected 'word' or 'word<TAB>canonical', got {raw!r}")
            table[parts[0]] = parts[-1]
        return cls.from_words(table, name=f"file:{p.name}")

    @classmethod
    def from_wheel(
        cls, wheel_dir: str | os.PathLike[str], version: str = "affectgpt2025", wheel: int = 1, level: int = 1
    ) -> EmotionLexicon:
        """English emotion words mapped to their cluster on emotion wheel ``wheel`` (1-5) at ``level`` (1-2).

        Uses ``emollm.evaluation.metrics.wheel`` (the OV-MER M3 mapping; resources sha256-checked).
        Words the wheel does not know, ``neutral`` included, are not emotion words here.
        """
        metric = f"M3_W{wheel}_L{level}"
        from emollm.evaluation.metrics.wheel import load_wheel  # lazy: the wheel resources load on demand

        ew = load_wheel(wheel_dir, version)
        ew.map_word("happy", metric)  # validates the metric name early

        def lookup(word: str) -> str | None:
            return ew.map_word(word, metric)

        return cls(f"wheel:{version}:W{wheel}L{level}", lookup, max_words=1, max_chars=0)

    def find(self, text: str) -> list[str]:
        """Canonical emotions mentioned in ``text``, in order of first mention."""
        found: list[str] = []

        def add(c: str | None) -> bool:
            if c is None:
                return False
            if c not in found:
                found.append(c)
            return True

        tokens = _TOKEN_RE.findall(text or "")
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if _IS_CJK.match(tok):
                self._scan_cjk(tok, add)
                i += 1
                continue
            step = 1
            for n in range(min(self.max_words, len(tokens) - i), 0, -1):
                words = tokens[i : i + n]
                if any(_IS_CJK.match(w) for w in words):
                    continue
                if add(self.lookup(" ".join(words).lower())):
                    step = n
                    break
            i += step
        return found

    def _scan_cjk(self, run: str, add: Callable[[str | None], bool]) -> None:
        j = 0
        while j < len(run):
            for n in range(min(self.max_chars, len(run) - j), 0, -1):
                if add(self.lookup(run[j : j + n])):
                    j += n
                    break
            else:
                j += 1
