"""Tiny, real, offline language models for tests and benchmarks.

- ``tiny_tokenizer("bpe-chatml")``: a byte-level BPE trained in milliseconds with the ``tokenizers``
  library on a fixed built-in corpus, with ChatML special tokens and template.
- ``tiny_tokenizer("sp-llama2")``: a SentencePiece model trained locally and wrapped as transformers'
  ``LlamaTokenizer`` (through ``from_pretrained`` on a folder: ``LlamaTokenizer(vocab_file=...)``
  silently builds a 3-token tokenizer in transformers v5), with the LLaMA-2 ``[INST]`` template.
- ``tiny_llama(cfg, vocab_size)``: a random ``LlamaForCausalLM`` (hidden 64, 2 layers by default).

Both tokenizers are deterministic: the same corpus and settings give the same vocabulary, so a
checkpoint trained on the tiny preset reloads with identical token ids. Results are memoised per
process.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import torch

from emollm.labels import LABEL_SPACES
from emollm.paths import resource_root

_CORPUS = """\
You are an expert in the field of emotions. Please determine which emotion label in the video represents.
What is the emotional state of the person in the video? Please tell me the reason.
Please analyze all the clues in the video and reason out the emotional label of the person.
The person in video says: I can't believe this happened to me today. This is wonderful news, thank you so much.
Why would you do that? I told you not to touch it. Leave me alone. I am so tired of all of this.
Oh no, what if we are late again? I hope everything will be fine. Wow, really? I did not expect that at all!
The person's expression and actions include raised eyebrows, a wide open mouth, a smile, lowered brows,
tight lips, wrinkled nose, and the person's tone is high pitched, fast, loud, soft, slow, trembling, flat.
This person in the video is sitting in a room, looking at the camera, talking to someone.
Taken together, the facial expression, the tone of voice and the words suggest that the person feels this way.
answer with one word. label. options are: the, a, and, of, to, in, is, it, that, with, for, as, on, not, but.
[INST] [/INST] <<SYS>> <</SYS>> system user assistant [emotion] [reason] [reason_v2]
0 1 2 3 4 5 6 7 8 9 . , ; : ! ? ' " ( ) [ ] - / happy sad angry neutral worried surprise fear contempt doubt
"""

CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus_lines() -> list[str]:
    labels = sorted({lab for name in LABEL_SPACES for lab in LABEL_SPACES.get(name).labels})
    return _CORPUS.splitlines() + [" ".join(labels)] * 3


def _template(name: str) -> str:
    return (resource_root() / "prompts" / "templates" / f"{name}.jinja").read_text(encoding="utf-8").strip()


@functools.lru_cache(maxsize=4)
def _tiny_tokenizer_cached(kind: str, vocab_size: int) -> Any:
    if kind == "bpe-chatml":
        return _bpe_chatml(vocab_size)
    if kind == "sp-llama2":
        return _sp_llama2(vocab_size)
    raise ValueError(f"unknown tiny tokenizer {kind!r}; expected bpe-chatml or sp-llama2")


def tiny_tokenizer(kind: str = "bpe-chatml", vocab_size: int = 512) -> Any:
    """A fresh copy of the memoised tiny tokenizer (callers add special tokens to their copy)."""
    import copy

    return copy.deepcopy(_tiny_tokenizer_cached(kind, vocab_size))


def _bpe_chatml(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHATML_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        extra_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = _template("chatml")
    return fast


def _sp_llama2(vocab_size: int) -> Any:
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory() as d:
        corpus = Path(d) / "corpus.txt"
        corpus.write_text("\n".join(_corpus_lines()) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(d) / "sp"),
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            bos_id=1,
            eos_id=2,
            unk_id=0,
            pad_id=-1,
            byte_fallback=True,
            minloglevel=2,
            num_threads=1,
        )
        tdir = Path(d) / "tok"
        tdir.mkdir()
        (Path(d) / "sp.model").rename(tdir / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(str(tdir), add_bos_token=False, add_eos_token=False)
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.chat_template = _template("llama2")
    return tok


def tiny_llama(
    hidden_size: int, intermediate_size: int, layers: int, heads: int, kv_heads: int, vocab_size: int, seed: int
) -> Any:
    """A random LLaMA causal LM built from config (never downloaded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        cfg = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            initializer_range=0.2,  # a 64-wide random head at 0.02 caps logits near uniform; 0.2 lets toy runs learn
        )
        model = LlamaForCausalLM(cfg)
    return model
