"""Text generation with a causal language model (Perceiver AR): a prompt in, its continuation out, whole
(``generated_text``, as Transformers' text-generation pipeline) or streamed piece by piece."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypedDict, overload

import torch
from torch import Tensor

from ..tasks.causal_lm import PerceiverAR, check_sampling
from ..tokenizer import ByteTokenizer

#: What a byte that ends in the middle of a UTF-8 character decodes to until its last byte arrives.
REPLACEMENT = "\ufffd"
#: A UTF-8 character is at most 4 bytes: at most 3 incomplete ones are held back while streaming.
MAX_HELD_BACK = 3


class TextCodec(Protocol):
    """What text generation needs of a tokenizer (ours, or a Transformers one)."""

    def encode(self, text: str, *, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int], *, skip_special_tokens: bool = ...) -> str: ...


class GenerationResult(TypedDict):
    """One generated text: the prompt followed by its continuation (Transformers' ``return_full_text``)."""

    generated_text: str


@dataclass(frozen=True)
class GenerationSettings:
    """How to choose each next token (see :meth:`~perceiverkit.tasks.causal_lm.PerceiverAR.generate`); ``seed``
    makes sampling reproducible."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    num_latents: int | None = None
    seed: int | None = None

    def check(self) -> GenerationSettings:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative integer, got {self.max_new_tokens!r}")
        check_sampling(self.temperature, self.top_k, self.top_p)
        return self


class TextGeneration:
    """Continue prompts with a :class:`PerceiverAR`; byte-level by default (any tokenizer with
    ``encode(text, add_special_tokens=False)`` and ``decode(ids, skip_special_tokens=True)`` works).

    ``settings`` (``max_new_tokens``, ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``num_latents``,
    ``seed``) are the defaults of every call; a call may override any of them.
    """

    def __init__(self, model: PerceiverAR, tokenizer: TextCodec | None = None, **settings: Any) -> None:
        if not isinstance(model, PerceiverAR):
            raise TypeError(f"text-generation needs a PerceiverAR, got {type(model).__name__}")
        self.model = model
        self.tokenizer = tokenizer or ByteTokenizer()
        self.settings = GenerationSettings(**settings).check()

    @overload
    def __call__(self, texts: str, **settings: Any) -> list[GenerationResult]: ...
    @overload
    def __call__(self, texts: list[str], **settings: Any) -> list[list[GenerationResult]]: ...

    def __call__(self, texts: str | list[str],
                 **settings: Any) -> list[GenerationResult] | list[list[GenerationResult]]:
        """For one prompt ``[{"generated_text": ...}]``; for a list of prompts a list of those (Transformers'
        shapes)."""
        prompts = [texts] if isinstance(texts, str) else list(texts)
        if not prompts:
            raise ValueError("text-generation needs at least one prompt")
        results = [[GenerationResult(generated_text=prompt + "".join(self.stream(prompt, **settings)))]
                   for prompt in prompts]
        return results[0] if isinstance(texts, str) else results

    def stream(self, prompt: str, **settings: Any) -> Iterator[str]:
        """The continuation of ``prompt`` as it is generated, in pieces of text (a multi-byte character comes out
        whole, once its last byte is generated). The prompt and settings are checked before this returns."""
        chosen = replace(self.settings, **settings).check()
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("the prompt is empty; give at least one character to continue")
        ids = torch.tensor([self.tokenizer.encode(prompt, add_special_tokens=False)], device=self.model.device)
        generator = None
        if chosen.seed is not None:
            generator = torch.Generator(device=self.model.device).manual_seed(chosen.seed)
        steps = self.model.iter_generate(ids, chosen.max_new_tokens, chosen.do_sample, chosen.temperature,
                                         chosen.top_k, chosen.top_p, chosen.num_latents, generator)
        return self._pieces(step.tokens[0] for step in steps)

    def _pieces(self, tokens: Iterator[Tensor]) -> Iterator[str]:
        generated: list[int] = []
        emitted = 0
        for token in tokens:
            generated.append(int(token))
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            # Trailing replacement characters may be a character still being generated: hold them back.
            ready = len(text.rstrip(REPLACEMENT))
            if len(text) - ready > MAX_HELD_BACK:
                ready = len(text) - MAX_HELD_BACK
            if ready > emitted:
                yield text[emitted:ready]
                emitted = ready
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        if len(text) > emitted:
            yield text[emitted:]


__all__ = ["GenerationResult", "GenerationSettings", "TextGeneration"]
