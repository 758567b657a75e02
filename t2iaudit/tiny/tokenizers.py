"""Universal byte-level tokenizers with no merges: any text tokenizes, nothing is downloaded."""

from __future__ import annotations

from typing import Any


def byte_vocab(specials: list[str], word_end: str | None = None) -> dict[str, int]:
    """Special tokens, then the 256 byte-unicode characters (and their ``word_end`` forms)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    if word_end:
        for ch in bytes_to_unicode().values():
            vocab.setdefault(ch + word_end, len(vocab))
    return vocab


def tiny_clip_tokenizer() -> Any:
    """A ``CLIPTokenizer`` over the byte characters and their ``</w>`` forms (514 tokens)."""
    from transformers import CLIPTokenizer

    vocab = byte_vocab(["<|startoftext|>", "<|endoftext|>"], word_end="</w>")
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
