"""Fill-mask for byte-level models: every ``[MASK]`` in the text is replaced by the model's best byte."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tasks.text import MaskedLanguageModel
from ..tokenizer import ByteTokenizer


@dataclass
class FilledText:
    """The text with its masks filled, and the top candidates (as text) at each masked byte."""

    text: str
    candidates: list[list[str]]


class FillMask:
    """Fill ``[MASK]`` tokens of texts with a :class:`MaskedLanguageModel`.

    Byte-level models predict one byte per ``[MASK]``: write ``"[MASK]" * n`` for an ``n``-byte gap.
    """

    def __init__(self, model: MaskedLanguageModel, tokenizer: ByteTokenizer | None = None, top_k: int = 3) -> None:
        if not isinstance(model, MaskedLanguageModel):
            raise TypeError(f"fill-mask needs a MaskedLanguageModel, got {type(model).__name__}")
        self.model = model
        self.tokenizer = tokenizer or ByteTokenizer(model_max_length=model.config.max_position_embeddings)
        self.top_k = top_k

    @torch.no_grad()
    def __call__(self, texts: str | list[str]) -> list[FilledText]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("fill-mask needs at least one text")
        missing = [t for t in texts if "[MASK]" not in t]
        if missing:
            raise ValueError(f"every text must contain at least one [MASK]; these have none: {missing[:3]}")
        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=True).to(device)
        logits = self.model(**batch).logits
        ids = batch["input_ids"]
        results = []
        for row in range(len(texts)):
            masked = (ids[row] == self.tokenizer.mask_token_id).nonzero().flatten()
            # Only byte ids are sensible fillers; special tokens never appear inside real text.
            byte_logits = logits[row, masked, self.tokenizer.num_special_tokens:]
            top = byte_logits.topk(min(self.top_k, byte_logits.shape[-1]), dim=-1).indices
            top = top + self.tokenizer.num_special_tokens
            filled = ids[row].clone()
            filled[masked] = top[:, 0]
            length = int(batch["attention_mask"][row].sum())
            text = self.tokenizer.decode(filled[:length], skip_special_tokens=True)
            candidates = [[self.tokenizer.decode([int(i)]) for i in row_top] for row_top in top]
            results.append(FilledText(text, candidates))
        return results
