"""A small CLIP BPE tokenizer for the toy world, cut from the real CLIP vocabulary.

The real CLIP BPE (shipped inside open_clip) has 49,408 tokens; an embedding table that
size would dwarf the toy text encoder. We keep the 512 byte symbols, the specials and
exactly the merges the real BPE applies to toy-world words, in their original order, so
toy words tokenise as they would with the real vocabulary; any other word falls back to
byte symbols. The result is a standard ``CLIPTokenizer`` saved with ``save_pretrained``.
"""
from __future__ import annotations

import gzip
import os
import re

from sb2bench.toyworld.world import (BACKGROUNDS, COLOURS, POSITION_PHRASE, SHAPES, SIZES,
                                     STYLE_SUFFIX)

TOY_MAX_LENGTH = 20


def toy_words() -> list[str]:
    text = " ".join(["a on the in background", *SHAPES, *COLOURS, *SIZES, *BACKGROUNDS,
                     *POSITION_PHRASE.values(), *STYLE_SUFFIX.values()])
    return sorted(set(re.findall(r"[a-z]+|[^\sa-z]", text.lower())))


def _real_merges() -> list[tuple[str, str]]:
    import open_clip

    path = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    return [tuple(x.split()) for x in lines[1:49152 - 256 - 2 + 1]]


def _bpe_used_merges(word: str, ranks: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Run CLIP's BPE on one word and return the merges it applied."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    used = []
    while len(symbols) > 1:
        pairs = [(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)]
        best = min(pairs, key=lambda p: ranks.get(p, 1 << 30))
        if best not in ranks:
            break
        used.append(best)
        merged, i = [], 0
        while i < len(symbols):
            if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return used


def build_toy_tokenizer(max_length: int = TOY_MAX_LENGTH):
    """Build the toy ``CLIPTokenizer`` (offline; a few hundred tokens)."""
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPTokenizer

    merges = _real_merges()
    ranks = {m: i for i, m in enumerate(merges)}
    used = {m for w in toy_words() for m in _bpe_used_merges(w, ranks)}
    kept = [m for m in merges if m in used]  # original rank order
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in kept]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(vocab_list))}
    return CLIPTokenizer(vocab=vocab, merges=kept, model_max_length=max_length)
