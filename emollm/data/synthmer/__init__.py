"""SynthMER: a small synthetic multimodal emotion corpus in MERR (Emotion-LLaMA) format.

Every clip shows a drawn face, has a synthetic voice and an English subtitle; each modality
independently expresses the true emotion with some probability or a confusable one otherwise, so
every modality alone is imperfect and fusion clearly helps. Generated in seconds, deterministic by
seed. See docs/SYNTHMER.md for the design and each modality's ceiling.

    from emollm.data.synthmer import SynthMERConfig, generate_synthmer
    summary = generate_synthmer(Path("data/synthmer"), SynthMERConfig())
    summary["ceilings"]   # {"face": 0.65, "audio": 0.6, "text": 0.5, ..., "face+audio+text": 0.889}

Command line: ``python -m emollm.data.synthmer OUT_DIR [--tiny] [--no-media] [--seed N]``.

Modules: config (knobs), cues (generative model, exact ceilings), plan (per-clip random choices),
face / voice / text (the three renderers), speakers, annotate (MERR records), container (mp4
writing), generate (files, idempotence).
"""

from emollm.data.synthmer.config import SynthMERConfig
from emollm.data.synthmer.cues import LABELS, MODALITIES, CueModel
from emollm.data.synthmer.generate import GENERATOR_VERSION, generate_synthmer

__all__ = ["GENERATOR_VERSION", "LABELS", "MODALITIES", "CueModel", "SynthMERConfig", "generate_synthmer"]
