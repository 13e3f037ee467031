"""``ChatSession``: multi-turn emotion chat over clips, with media attachable at any turn and streaming.

The session is what ``emollm chat``, the HTTP server and the web demo run on. Each user turn is built
by the same ``PromptContract.user_message`` the evaluation uses (media parts in model order, the
subtitle sentence, ``[tag] instruction``); the first turn of a session is therefore exactly the
conversation ``Predictor.classify`` / ``Predictor.generate`` build for that clip, so with greedy
decoding chat, predict, serve and eval give the same answer.

    pred = open_predictor("runs/mini/final")                   # system + featurizer (feature cache) once
    chat = ChatSession(pred)
    chat.attach("video", "clip.mp4"); chat.set_subtitle("I can't believe it.")
    r = chat.ask(task="label")                                 # constrained: scores every label
    r.text, r.label, r.probs                                   # "happy", "happy", {"neutral": 0.02, ...}
    r = chat.ask("Why?", on_text=lambda s: print(s, end=""))   # streamed explanation, history kept
    chat.attach("audio", "other.wav"); chat.ask("And this one?")
    chat.reset()

Tasks: ``label`` (constrained choice over the label space via ``EmoLLM.score_labels``; the answer is
the argmax label), ``explain`` (free generation; default instruction from the ``reason`` pool),
``openset`` (open-vocabulary emotion words). With no text the task's first pool instruction is used;
free text gets the task's tag (``[reason] why is she upset?``) because that is how the model was
trained, unless it already starts with ``[``. Generation is greedy unless ``do_sample`` is passed.

Streaming runs ``EmoLLM.generate`` in a thread with a ``TextIteratorStreamer`` subclass that emits text
deltas whose concatenation is exactly the final decoded answer (a multi-byte character that is not
complete yet, and trailing spaces, are held back). ``cancel`` (a ``threading.Event``) stops generation
early.

Shapes: per turn, features are ``{modality: Tensor[tokens, dim]}``; the model receives, per modality,
``Tensor[n_m, tokens, dim]`` stacked over the turns that carry it, in turn order — the order of the
placeholder runs in the prompt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from emollm.data.conversation import Conversation, Message
from emollm.data.sample import Sample
from emollm.features.featurizer import FeatureError, SampleFeatures
from emollm.inference.engine import Predictor
from emollm.inference.media_input import MEDIA_KINDS, make_sample
from emollm.log import get_logger

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

log = get_logger(__name__)

TASKS: dict[str, str] = {"label": "emotion", "explain": "reason", "openset": "openset"}
"""Chat task -> the default contract's task; a checkpoint's own contract decides (``ChatSession.contract_task``)."""
TASK_ALIASES = {"emotion": "label", "reason": "explain", "describe": "explain", "open": "openset"}


class ChatInputError(ValueError):
    """A request the session cannot serve (unreadable media, a conversation longer than max_length...)."""

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


def normalize_task(task: str) -> str:
    t = TASK_ALIASES.get(task.strip().lower(), task.strip().lower())
    if t not in TASKS:
        raise ChatInputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return t


def open_predictor(
    spec: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = "runs/features",
    device: str | None = "auto",
    batch_size: int = 16,
) -> Predictor:
    """Load a model (preset name or checkpoint folder) once and wrap it in a ``Predictor`` whose
    ``Featurizer`` uses the shared feature cache (``cache_dir=None``: compute live, cache nothing)."""
    from emollm.device import choose_device
    from emollm.log import quiet_known_warnings

    quiet_known_warnings()  # before peft/bitsandbytes load: their harmless warnings stay out of the terminal
    from emollm.features.cache import FeatureCache
    from emollm.features.featurizer import Featurizer
    from emollm.model.resolve import load_system

    dev = choose_device(device) if device == "auto" else device
    system = load_system(str(spec), device=dev)
    system.model.eval()
    if cache_dir is None:
        fz = Featurizer(system.encoders, None, mode="live")
    else:
        fz = Featurizer(system.encoders, FeatureCache(cache_dir), mode="auto")
    return Predictor(system, fz, batch_size=batch_size)


@dataclass
class Reply:
    """One assistant answer."""

    text: str
    task: str
    label: str | None = None
    """The label (task ``label``: the scored argmax)."""
    probs: dict[str, float] | None = None
    """Label probabilities: of this answer (task ``label``) or, when asked for with another task, the
    eval-style classification of the latest clip."""
    modalities: list[str] = field(default_factory=list)
    """Modalities the model received for the media of this turn (or the latest clip)."""
    missing: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    """``stop`` (end of turn), ``length`` (max_new_tokens reached) or ``cancelled``."""


@dataclass
class Turn:
    sample: Sample | None
    """Media and subtitle attached at this turn (None: text only)."""
    feats: SampleFeatures | None
    message: Message
    task: str
    answer: str | None = None
    n_tokens: int | None = None
    """Tokens of this exchange on its own (cached by ``ChatSession._fit``)."""


class _Cancel(StoppingCriteria):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class DeltaStreamer(TextIteratorStreamer):
    """A ``TextIteratorStreamer`` whose chunks concatenate to exactly ``processor.decode(new tokens)``.

    Each step decodes all new tokens and emits what was added to the visible text; a trailing
    replacement character (an unfinished multi-byte character) and trailing spaces wait for the next
    token. The prompt (the first ``put``) is skipped.
    """

    def __init__(self, processor: Any, timeout: float | None = None) -> None:
        super().__init__(processor.tok, skip_prompt=True, timeout=timeout)
        self.processor = processor
        self.ids: list[int] = []
        self.emitted = ""

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1:
            if value.shape[0] > 1:
                raise ValueError("streaming supports one conversation at a time")
            value = value[0]
        if self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.ids.extend(int(t) for t in value.tolist())
        text = self.processor.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.emitted) or len(text) == len(self.emitted):
            return
        delta, self.emitted = text[len(self.emitted) :], text
        self.on_finalized_text(delta)

    def end(self) -> None:
        text = self.processor.decode(self.ids)
        delta = ""
        if text.startswith(self.emitted):
            delta, self.emitted = text[len(self.emitted) :], text
        else:  # decoding a longer prefix rewrote emitted text; the final answer is still `text`
            log.warning("streamed text diverged from the final decode; the final answer is authoritative")
        self.next_tokens_are_prompt = True
        self.on_finalized_text(delta, stream_end=True)


class ChatSession:
    """Multi-turn state over one loaded model (not thread-safe: one session per conversation)."""

    def __init__(
        self,
        predictor: Predictor,
        task: str = "explain",
        max_new_tokens: int = 256,
        include_subtitle: bool | None = None,
        system: str | None = None,
    ) -> None:
        self.predictor = predictor
        self.task = normalize_task(task)
        self.max_new_tokens = max_new_tokens
        self.include_subtitle = include_subtitle
        self.system_prompt = system if system is not None else predictor.contract.system_prompt
        """The system message of every turn (default: the checkpoint's prompt contract's)."""
        self.turns: list[Turn] = []
        self._media: dict[str, Path] = {}
        self._sample: tuple[Sample, Path | None] | None = None
        self._subtitle: str | None = None
        self._base: int | None = None

    # ------------------------------------------------------------------ state

    @property
    def system(self) -> EmoSystem:
        """The loaded ``EmoSystem`` (model, processor, encoders, labels)."""
        return self.predictor.system

    @property
    def pending(self) -> dict[str, Any]:
        """What the next turn will carry: media paths and subtitle."""
        out: dict[str, Any] = {k: str(v) for k, v in self._media.items()}
        if self._sample is not None:
            out["sample"] = self._sample[0].id
        if self._subtitle:
            out["subtitle"] = self._subtitle
        return out

    def attach(self, kind: str, path: str | os.PathLike[str]) -> None:
        """Attach a video, audio or image file to the next turn (replaces one of the same kind)."""
        if kind not in MEDIA_KINDS:
            raise ChatInputError(f"unknown media kind {kind!r}; expected one of {', '.join(MEDIA_KINDS)}")
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"{kind} file not found: {p}")
        if self._sample is not None:  # a new file replaces an attached manifest sample (and its subtitle)
            if self._subtitle == self._sample[0].subtitle:
                self._subtitle = None
            self._sample = None
        self._media[kind] = p.resolve()

    def attach_sample(self, sample: Sample, root: str | os.PathLike[str] | None) -> None:
        """Attach a manifest sample (its media, subtitle and meta such as ``peak_index``) to the next turn."""
        self._sample = (sample, Path(root) if root is not None else None)
        self._media.clear()
        if sample.subtitle:
            self._subtitle = sample.subtitle

    def set_subtitle(self, text: str | None) -> None:
        """The clip's subtitle (the spoken words) for the next turn."""
        self._subtitle = text.strip() if text and text.strip() else None

    def reset(self) -> None:
        """Forget the history and any pending media."""
        self.turns.clear()
        self._media.clear()
        self._sample = None
        self._subtitle = None

    # ------------------------------------------------------------------ building turns

    def _take_pending(self) -> tuple[Sample | None, Path | None]:
        root = None
        if self._sample is not None:
            sample, root = self._sample
            if self._subtitle != sample.subtitle:
                sample = sample.model_copy(update={"subtitle": self._subtitle})
        elif self._media or self._subtitle:
            sample = make_sample(self._media, self._subtitle, sample_id=f"turn{len(self.turns) + 1}")
        else:
            sample = None
        self._media.clear()
        self._sample = None
        self._subtitle = None
        return sample, root

    def _featurize(self, sample: Sample | None, root: Path | None) -> SampleFeatures | None:
        if sample is None or not sample.media:
            return None
        try:
            return self.predictor.features([sample], root, None)[0]
        except FeatureError as e:
            raise ChatInputError(str(e), code="invalid_media") from None

    def _instruction(self, task: str, text: str | None) -> str | None:
        if text is None or not text.strip():
            return None
        t = text.strip()
        if t.startswith("["):
            return t
        return self.predictor.contract.tagged(self.contract_task(task), t)

    def contract_task(self, task: str) -> str:
        """The prompt-contract task a chat task is asked with (``explain`` -> ``reason``, or ``describe``
        for a model trained to describe under another tag...)."""
        return self.predictor.contract.chat_task(normalize_task(task))  # type: ignore[arg-type]

    def _user_message(
        self, sample: Sample | None, feats: SampleFeatures | None, task: str, text: str | None
    ) -> Message:
        mods = [m for m in self.system.modalities if feats is not None and m in feats.features]
        return self.predictor.contract.user_message(
            sample or Sample(id="chat"),
            self.contract_task(task),
            mods,
            prompt_index=0,
            include_subtitle=self.include_subtitle,
            instruction=self._instruction(task, text),
        )

    def prepare_turn(self, text: str | None = None, task: str | None = None, fit: bool = True) -> Turn:
        """Build the next user turn now (pending media are encoded here, errors surface here); pass it
        to ``ask(turn=...)`` to answer it. ``ask`` does both steps when given no turn. ``fit=False``
        skips the context check (replaying a history: only the turn asked about is checked)."""
        task = normalize_task(task or self.task)
        sample, root = self._take_pending()
        feats = self._featurize(sample, root)
        turn = Turn(sample, feats, self._user_message(sample, feats, task, text), task)
        if fit:
            self._fit([*self.turns, turn])  # a prompt too long for the model fails here, before any generation
        return turn

    def conversation(self, turns: list[Turn] | None = None) -> Conversation:
        turns = self.turns if turns is None else turns
        msgs: list[Message] = [Message("system", [self.system_prompt])] if self.system_prompt else []
        for t in turns:
            msgs.append(t.message)
            if t.answer is not None:
                msgs.append(Message("assistant", [t.answer]))
        return Conversation(msgs, sample_id="chat")

    def _turn_tokens(self, turn: Turn) -> int:
        """Tokens of one turn (its user message and answer) on its own, computed once per turn; past
        ``max_length`` counts as ``max_length + 1``."""
        if turn.n_tokens is None:
            msgs = [turn.message] + ([Message("assistant", [turn.answer])] if turn.answer is not None else [])
            try:
                enc = self.system.processor.encode(Conversation(msgs, sample_id="chat"), generation=turn.answer is None)
                n = len(enc) + (1 if enc.truncated else 0)
            except ValueError:
                n = self.system.processor.max_length + 1
            if turn.answer is not None:
                turn.n_tokens = n  # an answered turn no longer changes
            return n
        return turn.n_tokens

    def _base_tokens(self) -> int:
        """Tokens of an empty one-turn prompt (BOS, default system prompt, turn markers)."""
        if getattr(self, "_base", None) is None:
            try:
                empty = Conversation([Message("user", [""])], sample_id="chat")
                self._base = len(self.system.processor.encode(empty, generation=True))
            except ValueError:
                self._base = 0
        return self._base

    def _fit(self, turns: list[Turn]) -> tuple[list[Turn], Conversation, Any]:
        """``(kept turns, conversation, encoding)`` of the newest turns that fit the model's ``max_length``.

        Linear in the history: each turn is tokenized once on its own; the last turn is always kept, the
        first (which usually carries the clip) when it fits, then the newest turns while their cumulative
        length fits, and only that short conversation is encoded (dropping one more of the older kept
        turns in the rare case the template overhead tips it over). ChatInputError when the last turn
        alone does not fit."""
        proc = self.system.processor
        budget = proc.max_length
        base = self._base_tokens()  # counted in every turn's own length, once in the conversation
        last = turns[-1]
        used = self._turn_tokens(last)
        head: list[Turn] = []
        if len(turns) > 1 and used + self._turn_tokens(turns[0]) - base <= budget:
            head = [turns[0]]
            used += self._turn_tokens(turns[0]) - base
        middle: list[Turn] = []
        for t in reversed(turns[len(head) : -1]):
            n = self._turn_tokens(t) - base
            if used + n > budget:
                break
            middle.append(t)
            used += n
        middle.reverse()
        while True:
            kept = [*head, *middle, last]
            conv = self.conversation(kept)
            try:
                enc = proc.encode(conv, generation=True)
            except ValueError as e:
                if "max_length" not in str(e):
                    raise
                enc = None
            # with history, the processor truncates (past answers count as labels) instead of raising;
            # a generation prompt must never lose its end, so both cases mean "too long"
            if enc is not None and not enc.truncated:
                return kept, conv, enc
            if middle:
                middle.pop(0)
            elif head:
                head = []
            else:
                raise ChatInputError(
                    f"the message is longer than the model's max_length={proc.max_length} tokens on its own; "
                    "shorten it (older turns are dropped automatically)",
                    code="context_length_exceeded",
                )

    def _inputs(self, turns: list[Turn]) -> tuple[Conversation, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Prompt batch (``input_ids``/``attention_mask`` ``[1, L]``) and features ``{m: [n_m, T_m, D_m]}``."""
        kept, conv, enc = self._fit(turns)
        proc = self.system.processor
        dev = self.system.model.device
        batch = {k: v.to(dev) for k, v in proc.collate([enc], padding_side="left").items()}
        feats: dict[str, torch.Tensor] = {}
        for m in self.system.modalities:
            rows = [t.feats.features[m] for t in kept if t.feats is not None and m in t.feats.features]
            if rows:
                feats[m] = torch.stack(rows).to(dev)
        return conv, batch, feats

    # ------------------------------------------------------------------ model calls

    @torch.no_grad()
    def _score(self, turns: list[Turn]) -> tuple[str, dict[str, float], int, int]:
        conv, batch, feats = self._inputs(turns)
        labels = list(self.system.labels.labels)
        cands = self.predictor.candidates(conv, labels)
        logp = self.system.model.score_labels(batch["input_ids"], batch["attention_mask"], feats, cands).float().cpu()
        probs = logp.softmax(-1)[0]
        best = int(probs.argmax())
        return (
            labels[best],
            {lab: float(probs[j]) for j, lab in enumerate(labels)},
            int(batch["input_ids"].shape[1]),
            len(cands[best]),
        )

    @torch.no_grad()
    def _generate(
        self,
        turns: list[Turn],
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
        gen: dict[str, Any],
    ) -> tuple[str, int, int, str]:
        _, batch, feats = self._inputs(turns)
        model, proc = self.system.model, self.system.processor
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, **gen}
        if cancel is not None:  # the caller's stopping criteria (and logits processors) stay in force
            kw["stopping_criteria"] = StoppingCriteriaList([*(kw.get("stopping_criteria") or []), _Cancel(cancel)])
        if on_text is None:
            new = model.generate(batch["input_ids"], batch["attention_mask"], feats, **kw)[0]
        else:
            new = self._stream(batch, feats, kw, on_text, cancel)
        ids = new.tolist()
        stop = set(proc.stop_ids)
        n = next((i + 1 for i, t in enumerate(ids) if t in stop), len(ids))
        if cancel is not None and cancel.is_set():
            reason = "cancelled"
        elif n == len(ids) and (not ids or ids[-1] not in stop) and len(ids) >= kw["max_new_tokens"]:
            reason = "length"
        else:
            reason = "stop"
        return proc.decode(new[:n]), int(batch["input_ids"].shape[1]), n, reason

    def _stream(
        self,
        batch: dict[str, torch.Tensor],
        feats: dict[str, torch.Tensor],
        kw: dict[str, Any],
        on_text: Callable[[str], None],
        cancel: threading.Event | None,
    ) -> torch.Tensor:
        streamer = DeltaStreamer(self.system.processor)
        out: dict[str, Any] = {}

        def work() -> None:
            try:
                with torch.no_grad():
                    out["ids"] = self.system.model.generate(
                        batch["input_ids"], batch["attention_mask"], feats, streamer=streamer, **kw
                    )[0]
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                out["error"] = e
                streamer.end()

        th = threading.Thread(target=work, name="emollm-generate", daemon=True)
        th.start()
        try:
            for delta in streamer:
                if delta:
                    on_text(delta)
        except BaseException:
            if cancel is not None:
                cancel.set()
            for _ in streamer:  # drain so the generating thread never blocks
                pass
            raise
        finally:
            th.join()
        if "error" in out:
            raise out["error"]
        return out["ids"]

    def classify_latest(self) -> tuple[dict[str, float], SampleFeatures | None]:
        """Eval-style label probabilities for the most recent turn that carried media or a subtitle
        (single-turn ``[emotion]`` conversation, no history)."""
        turn = next((t for t in reversed(self.turns) if t.sample is not None), None)
        sample = turn.sample if turn is not None else Sample(id="chat")
        feats = turn.feats if turn is not None else None
        probe = Turn(sample, feats, self._user_message(sample, feats, "label", None), "label")
        _, probs, _, _ = self._score([probe])
        return probs, feats

    # ------------------------------------------------------------------ public API

    def add_exchange(self, text: str | None, answer: str, task: str | None = None) -> Turn:
        """Replay a past exchange (pending media and subtitle attach to it) without running the model."""
        turn = self.prepare_turn(text, task, fit=False)  # the next question's prompt is what must fit
        turn.answer = answer
        self.turns.append(turn)
        return turn

    def ask(
        self,
        text: str | None = None,
        task: str | None = None,
        probs: bool = False,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        turn: Turn | None = None,
        **gen: Any,
    ) -> Reply:
        """Answer a user turn (pending media and subtitle attach to it); the exchange joins the history.

        ``on_text`` receives streamed text deltas (generation tasks; a ``label`` answer arrives as one
        chunk). ``gen`` goes to ``generate`` as given (``GenerationOptions.generate_kwargs()``, or
        ``max_new_tokens``, ``do_sample``, ``temperature``, ``stopping_criteria``, ``logits_processor``...);
        ``cancel`` is added to the caller's stopping criteria. A cancelled answer (``finish_reason``
        ``cancelled``) joins the history as far as it got.
        ``turn``: a turn from ``prepare_turn`` (then ``text`` and ``task`` are ignored).
        """
        turn = turn or self.prepare_turn(text, task)
        task = turn.task
        turns = [*self.turns, turn]
        model = self.system.model
        was_training = model.training
        model.eval()
        try:
            if task == "label":
                label, label_probs, n_prompt, n_new = self._score(turns)
                reply = Reply(label, task, label=label, probs=label_probs, prompt_tokens=n_prompt)
                reply.completion_tokens = n_new
                if on_text is not None:
                    on_text(label)
            else:
                text_out, n_prompt, n_new, reason = self._generate(turns, on_text, cancel, gen)
                reply = Reply(text_out, task, prompt_tokens=n_prompt, completion_tokens=n_new, finish_reason=reason)
            turn.answer = reply.text
            self.turns.append(turn)
            if probs and reply.probs is None:
                reply.probs, _ = self.classify_latest()
        finally:
            model.train(was_training)
        latest = next((t for t in reversed(self.turns) if t.feats is not None), None)
        if latest is not None and latest.feats is not None:
            reply.modalities = list(latest.feats.features)
            reply.missing = dict(latest.feats.missing)
        return reply
