"""Fill-mask for byte-level models: each ``[MASK]`` is one byte, ranked as Transformers' fill-mask pipeline ranks
tokens (``score``, ``token``, ``token_str``, ``sequence``)."""

from __future__ import annotations

from typing import overload

import torch

from ..tasks.text import MaskedLanguageModel
from ..tokenizer import ByteTokenizer
from .progress import batches
from .results import FillMaskResult, check_batch_size, check_top_k

#: What fill-mask returns for one text: the candidates of its one mask, or one such list per mask.
FilledText = list[FillMaskResult] | list[list[FillMaskResult]]


class FillMask:
    """Fill the ``[MASK]`` tokens of texts with a :class:`MaskedLanguageModel`, in batches.

    Byte-level models predict one byte per ``[MASK]``: write ``"[MASK]" * n`` for an ``n``-byte gap. Each
    candidate's ``sequence`` is the text with that candidate at its mask and every other mask filled with its own
    best byte, so the first candidate's ``sequence`` is the text with every mask filled.
    """

    def __init__(self, model: MaskedLanguageModel, tokenizer: ByteTokenizer | None = None, top_k: int = 5,
                 batch_size: int = 8) -> None:
        if not isinstance(model, MaskedLanguageModel):
            raise TypeError(f"fill-mask needs a MaskedLanguageModel, got {type(model).__name__}")
        self.model = model
        self.tokenizer = tokenizer or ByteTokenizer(model_max_length=model.config.max_position_embeddings)
        self.top_k = check_top_k(top_k)
        self.batch_size = check_batch_size(batch_size)

    @overload
    def __call__(self, texts: str, top_k: int | None = None, progress: bool = False) -> FilledText: ...
    @overload
    def __call__(self, texts: list[str], top_k: int | None = None, progress: bool = False) -> list[FilledText]: ...

    def __call__(self, texts: str | list[str], top_k: int | None = None,
                 progress: bool = False) -> FilledText | list[FilledText]:
        """Transformers' shapes: for one text with one mask a list of ``top_k`` candidates; with several masks a
        list of such lists, one per mask; for a list of texts a list of those. :meth:`predict` always nests."""
        results = self.predict([texts] if isinstance(texts, str) else texts, top_k, progress)
        unwrapped: list[FilledText] = [per_mask[0] if len(per_mask) == 1 else per_mask for per_mask in results]
        return unwrapped[0] if isinstance(texts, str) else unwrapped

    @torch.no_grad()
    def predict(self, texts: str | list[str], top_k: int | None = None,
                progress: bool = False) -> list[list[list[FillMaskResult]]]:
        """For every text, for every ``[MASK]`` in it (left to right), the ``top_k`` candidates, best first; one
        text is a list of one (not a sequence of characters)."""
        top_k = check_top_k(self.top_k if top_k is None else top_k)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("fill-mask needs at least one text")
        missing = [t for t in texts if "[MASK]" not in t]
        if missing:
            raise ValueError(f"every text must contain at least one [MASK]; these have none: {missing[:3]}")
        self._check_lengths(texts)
        results: list[list[list[FillMaskResult]]] = []
        for batch_texts in batches(texts, self.batch_size, "fill-mask", progress):
            results.extend(self._fill_batch(list(batch_texts), top_k))
        return results

    def _check_lengths(self, texts: list[str]) -> None:
        limit = self.model.config.max_position_embeddings
        for i, text in enumerate(texts):
            length = len(self.tokenizer(text, return_tensors=None)["input_ids"])
            if length > limit:
                raise ValueError(f"text {i} is {length} tokens long (its bytes, [MASK]s and 2 special tokens); "
                                 f"this model reads at most {limit}: shorten the text around its [MASK]s to "
                                 f"{limit - 2} bytes or fewer")

    def _fill_batch(self, texts: list[str], top_k: int) -> list[list[list[FillMaskResult]]]:
        batch = self.tokenizer(texts, padding=True).to(self.model.device)
        logits = self.model(**batch).logits  # (B, L, vocab)
        ids, lengths = batch["input_ids"], batch["attention_mask"].sum(-1).tolist()
        first_byte = self.tokenizer.num_special_tokens
        results = []
        for row, length in enumerate(lengths):
            masked = (ids[row] == self.tokenizer.mask_token_id).nonzero().flatten()  # (M,)
            # Only byte ids are sensible fillers (special tokens never appear inside real text); the scores are
            # the softmax over the whole vocabulary, as Transformers'.
            probs = logits[row, masked].float().softmax(-1)[:, first_byte:]  # (M, 256)
            top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
            top_ids = top.indices + first_byte
            best = ids[row, :length].clone()
            best[masked] = top_ids[:, 0]
            per_mask = []
            for m, position in enumerate(masked.tolist()):
                candidates = []
                for score, token in zip(top.values[m].tolist(), top_ids[m].tolist(), strict=True):
                    filled = best.clone()
                    filled[position] = token
                    candidates.append(FillMaskResult(
                        score=score, token=token, token_str=self.tokenizer.decode([token]),
                        sequence=self.tokenizer.decode(filled, skip_special_tokens=True)))
                per_mask.append(candidates)
            results.append(per_mask)
        return results
