"""Conversations: typed messages whose content mixes text and media parts.

    conv = Conversation([
        Message("user", [Media("audio"), Media("face"), "The person in video says: I'm fine. ",
                         "[emotion] Which emotion label ...?"]),
        Message("assistant", ["worried"]),
    ])

A ``Media(modality)`` part becomes that modality's placeholder run in the processor; a sample that
lacks a modality simply has no part for it (no placeholder, no zero-filled features). The system
message, when any, comes from the model config and is added by the processor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Media:
    modality: str


Part = str | Media


@dataclass
class Message:
    role: Role
    parts: list[Part]

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise ValueError(f"message role must be system, user or assistant, got {self.role!r}")
        if isinstance(self.parts, str | Media):
            self.parts = [self.parts]

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def modalities(self) -> list[str]:
        return [p.modality for p in self.parts if isinstance(p, Media)]


@dataclass
class Conversation:
    messages: list[Message]
    sample_id: str | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return [m for msg in self.messages for m in msg.modalities]

    def with_answer(self, answer: str) -> Conversation:
        """A copy whose last (user) turn is followed by an assistant ``answer``."""
        if not self.messages or self.messages[-1].role != "user":
            raise ValueError("with_answer needs a conversation that ends with a user turn")
        return Conversation([*self.messages, Message("assistant", [answer])], self.sample_id, dict(self.meta))

    def prompt(self) -> Conversation:
        """A copy without the final assistant turn (what a model sees at inference)."""
        msgs = list(self.messages)
        if msgs and msgs[-1].role == "assistant":
            msgs = msgs[:-1]
        return Conversation(msgs, self.sample_id, dict(self.meta))

    @property
    def answer(self) -> str | None:
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[-1].text
        return None
