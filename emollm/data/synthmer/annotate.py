"""MERR-format annotations for one SynthMER clip, built from the cues the clip actually expresses.

Coarse record (``MERR_coarse_grained.json``), as MER-Factory's exporter fills it:

- ``caption``: Emotion-LLaMA's template "This person in the video is {visual objective}. The person's
  expression and actions include {visual expression}, and the person's tone is {audio tone}.
  Saying: {subtitle}", where the expression and tone describe the *face and voice cues*, which may
  contradict the label;
- ``AU_list``: the AU codes in the visual-expression text (AUs at or above threshold at the peak);
- ``visual_prior_list``: its first three comma-separated phrases, codes removed;
- ``audio_prior_list`` (a string): the audio analysis up to its first ``.``;
- ``peak_index`` (a string): the frame where the drawn expression peaks;
- ``peak_AU_list``: AUs active at the peak frame, strongest first;
- ``pseu_emotion``: the emotion the *face* shows at the peak (MERR's AU-based pseudo-label).

Fine record (``MERR_fine_grained.json``): the same keys, with ``smp_reason_caption`` (a short
reasoning that weighs the three clues, says which agree, explains away the others, and ends with
"Taken together, the person feels {label}.") instead of ``caption``, ``text`` (the subtitle), and
``pseu_emotion`` = the true label.

    coarse, fine = annotate(clip, CueModel(cfg.reliability))
"""

from __future__ import annotations

import re
from typing import Any

from emollm.data.synthmer.cues import LABELS, MODALITIES, CueModel
from emollm.data.synthmer.face import AU_THRESHOLD, AU_WEIGHTS, au_intensities, expression_vector
from emollm.data.synthmer.plan import ClipPlan

NOUN = {"neutral": "a neutral state", "angry": "anger", "happy": "happiness", "sad": "sadness", "worried": "worry", "surprise": "surprise"}  # fmt: skip
ADJ = {"neutral": "neutral", "angry": "angry", "happy": "happy", "sad": "sad", "worried": "worried", "surprise": "surprised"}  # fmt: skip

FACE_WORDS: dict[str, str] = {
    "neutral": "a relaxed look with level brows and a closed mouth",
    "angry": "lowered, knitted brows, narrowed eyes and tightly pressed lips",
    "happy": "raised cheeks, smiling eyes and an open smile",
    "sad": "raised inner brows, drooping eyelids and down-turned mouth corners",
    "worried": "raised, pinched inner brows, wide eyes and a stretched, slightly open mouth",
    "surprise": "high-raised brows, wide-open eyes and a dropped jaw",
}
NEUTRAL_FACE_PHRASES = "Relaxed face, Level brows, Closed mouth"

# audio cue -> variants of (tone phrase for the caption, sentence for the audio analysis, pitch word)
VOICE_WORDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "neutral": (
        ("steady and even, at a moderate pace", "speaks in a steady, even voice at a moderate pace", "medium"),
        ("flat and matter-of-fact", "speaks in a flat, matter-of-fact voice", "medium"),
    ),
    "angry": (
        ("loud, fast and harsh, with a falling pitch", "speaks loudly and quickly in a harsh, tense voice", "high"),
        ("sharp and forceful", "speaks in a sharp, forceful voice with a clipped rhythm", "high"),
    ),
    "happy": (
        ("bright and lively, with a bouncy pitch", "speaks in a bright, lively voice with a bouncy pitch", "high"),
        ("cheerful and animated", "speaks in a cheerful, animated voice", "high"),
    ),
    "sad": (
        ("slow, quiet and low, breathy and flat", "speaks slowly and quietly in a low, breathy voice", "low"),
        ("soft and heavy, trailing off", "speaks in a soft, heavy voice that trails off", "low"),
    ),
    "worried": (
        (
            "soft and shaky, rising at the end",
            "speaks softly in a shaky, trembling voice that rises at the end",
            "medium-high",
        ),
        ("hesitant and trembling", "speaks in a hesitant, trembling voice", "medium-high"),
    ),
    "surprise": (
        (
            "excited, very high and rising sharply",
            "speaks with an excited voice that jumps high and rises sharply",
            "very high",
        ),
        (
            "exclamatory, with a sudden high pitch",
            "speaks in an exclamatory voice with a sudden high pitch",
            "very high",
        ),
    ),
}

MODALITY_WORDS = {"face": "facial expression", "audio": "voice", "text": "words"}


def visual_objective(clip: ClipPlan) -> str:
    look, sp = clip.speaker.look, clip.speaker
    length = "long" if look.long_hair else "short"
    return (
        f"a {sp.noun} with {length} {look.hair} hair and a {look.shirt} shirt, "
        f"talking to the camera in front of a {look.background} wall"
    )


def peak_aus(clip: ClipPlan) -> dict[str, float]:
    """AU code -> intensity at the peak frame of the drawn expression."""
    return au_intensities(expression_vector(clip.cues["face"], clip.peak_value))


def visual_expression(clip: ClipPlan) -> str:
    """MER-Factory-style expression text: "Lip corner puller (AU12), Cheek raiser (AU06), ..."."""
    aus = sorted(((v, k) for k, v in peak_aus(clip).items() if v >= AU_THRESHOLD), reverse=True)
    if not aus:
        return NEUTRAL_FACE_PHRASES
    return ", ".join(f"{AU_WEIGHTS[code][0]} ({code})" for _, code in aus)


def _voice(clip: ClipPlan) -> tuple[str, str, str]:
    variants = VOICE_WORDS[clip.cues["audio"]]
    return variants[clip.variant % len(variants)]


def audio_analysis(clip: ClipPlan) -> str:
    _, sentence, pitch = _voice(clip)
    return f"The {clip.speaker.noun} in the video {sentence}. Pitch: {pitch}."


def caption(clip: ClipPlan) -> str:
    expr = visual_expression(clip).lower().replace("(au", "(AU")
    tone = _voice(clip)[0]
    return (
        f"This person in the video is {visual_objective(clip)}. The person's expression and actions include "
        f"{expr}, and the person's tone is {tone}. Saying: {clip.subtitle}"
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _alternatives(model: CueModel, modality: str, cue: str) -> list[str]:
    """Other labels that commonly produce this cue in this modality (P(label | cue) >= 0.2)."""
    post = model.posterior({modality: LABELS.index(cue)})
    return [y for i, y in enumerate(LABELS) if y != cue and post[i] >= 0.2]


def reasoning(clip: ClipPlan, model: CueModel) -> str:
    """The fine-grained explanation: each clue, how they fit together, then the label."""
    sp, cues, label = clip.speaker, clip.cues, clip.label
    Pos = sp.possessive.capitalize()

    face = cues["face"]
    alt = _alternatives(model, "face", face)
    face_txt = f"{Pos} face shows {FACE_WORDS[face]}, which looks like {NOUN[face]}"
    if alt:
        face_txt += f", although the same look often comes with {_join([NOUN[a] for a in alt])}"

    audio = cues["audio"]
    alt = _alternatives(model, "audio", audio)
    voice_txt = f"{Pos} voice is {_voice(clip)[0]}, typical of {NOUN[audio]}"
    if alt:
        voice_txt += f" but also of {_join([NOUN[a] for a in alt])}"

    text = cues["text"]
    said = f'{sp.subject.capitalize()} says "{clip.subtitle.rstrip(".")}"'
    if clip.text_kind == "explicit":
        said += f", which names {NOUN[text]} outright"
    elif clip.text_kind == "sarcastic":
        said += f", which sounds pleasant on the surface but is sarcastic and really expresses {NOUN[text]}"
    elif text == "neutral":
        said += ", which is everyday talk that carries no emotion"
    else:
        said += f", which hints at {NOUN[text]}"

    support = [m for m in MODALITIES if cues[m] == label]
    others = [m for m in MODALITIES if cues[m] != label]
    if len(support) == len(MODALITIES):
        weigh = "All three clues agree."
    else:
        parts = []
        for m in others:
            p_cue = model.matrix(m)[LABELS.index(label), LABELS.index(cues[m])]
            if m == "text":
                cue_noun = NOUN[cues[m]]
                parts.append(
                    "the words add little" if cues[m] == "neutral" else f"the words suggest {cue_noun} but mislead"
                )
            elif p_cue >= 0.1:
                parts.append(f"the {MODALITY_WORDS[m]} is easily confused between {NOUN[cues[m]]} and {NOUN[label]}")
            else:
                parts.append(f"the {MODALITY_WORDS[m]} is misleading here")
        if support:
            verb = "points" if support in (["face"], ["audio"]) else "point"
            weigh = f"The {_join([MODALITY_WORDS[m] for m in support])} {verb} to {NOUN[label]}, while {_join(parts)}."
        else:
            weigh = f"No single clue shows {NOUN[label]} plainly: {_join(parts)}."
    return f"{face_txt}. {voice_txt}. {said}. {weigh} Taken together, the person feels {ADJ[label]}."


def _priors(clip: ClipPlan) -> dict[str, Any]:
    expr = visual_expression(clip)
    aus = peak_aus(clip)
    return {
        "AU_list": re.findall(r"AU\d+", expr),
        "visual_prior_list": [re.sub(r"\(.*?\)", "", p).strip() for p in expr.split(",")[:3]],
        "audio_prior_list": audio_analysis(clip).split(".")[0],
        "peak_index": str(clip.peak_index),
        "peak_AU_list": [k for k, v in sorted(aus.items(), key=lambda kv: (-kv[1], kv[0])) if v >= 0.15],
    }


def annotate(clip: ClipPlan, model: CueModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(coarse record, fine record)`` for MERR_coarse_grained.json / MERR_fine_grained.json."""
    pri = _priors(clip)
    coarse = {**pri, "pseu_emotion": clip.cues["face"], "caption": caption(clip)}
    fine = {**pri, "pseu_emotion": clip.label, "smp_reason_caption": reasoning(clip, model), "text": clip.subtitle}
    return coarse, fine
