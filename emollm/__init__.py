"""emollm: multimodal emotion recognition and reasoning with LLMs.

Frozen encoders (audio, face, face clip, frame) feed per-modality trainable projectors whose outputs
are scattered into an LLM's token embeddings; LoRA adapts the LLM. One processor builds model inputs
for training, evaluation, prediction, chat and the server alike.

Run ``emollm --help`` for the command line; ``emollm demo`` runs the whole job on the embedded
``mini`` preset.
"""

__version__ = "0.1.0"
