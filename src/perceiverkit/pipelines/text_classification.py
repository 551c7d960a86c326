"""Text classification: texts in, their ``top_k`` labels with scores out, as Transformers' pipeline."""

from __future__ import annotations

from typing import overload

import torch

from ..tasks.text import SequenceClassifier
from ..tokenizer import ByteTokenizer
from ..word_tokenizer import WordHashTokenizer
from .progress import batches
from .results import ClassificationResult, check_batch_size, check_top_k, label_names, top_labels


class TextClassification:
    """Classify texts with a :class:`SequenceClassifier`, in batches.

    Scores are a softmax over the labels; a one-output model (regression) and a multi-label model get a sigmoid
    per label instead, as in Transformers. ``tokenizer`` defaults to the one the model was saved with
    (:meth:`SequenceClassifier.make_tokenizer`: UTF-8 bytes, or hashed words for a model trained on them).
    """

    def __init__(self, model: SequenceClassifier, tokenizer: ByteTokenizer | WordHashTokenizer | None = None,
                 top_k: int = 1, batch_size: int = 8) -> None:
        if not isinstance(model, SequenceClassifier):
            raise TypeError(f"text classification needs a SequenceClassifier, got {type(model).__name__}")
        config = model.config
        self.tokenizer = tokenizer or model.make_tokenizer()  # the tokenizer saved with the model
        if self.tokenizer.vocab_size != config.vocab_size:
            raise ValueError(f"the tokenizer has {self.tokenizer.vocab_size} ids but the model reads "
                             f"{config.vocab_size}; pass the tokenizer it was trained with (tokenizer=...)")
        self.model = model
        self.top_k = check_top_k(top_k)
        self.batch_size = check_batch_size(batch_size)
        self.labels = label_names(config.labels, config.num_labels)

    @overload
    def __call__(self, texts: str, top_k: int | None = None,
                 progress: bool = False) -> list[ClassificationResult]: ...
    @overload
    def __call__(self, texts: list[str], top_k: int | None = None,
                 progress: bool = False) -> list[list[ClassificationResult]]: ...

    def __call__(self, texts: str | list[str], top_k: int | None = None,
                 progress: bool = False) -> list[ClassificationResult] | list[list[ClassificationResult]]:
        """For one text, its ``top_k`` results (``label``, ``score``), best first; for a list, one such list each."""
        results = self.predict([texts] if isinstance(texts, str) else texts, top_k, progress)
        return results[0] if isinstance(texts, str) else results

    @torch.no_grad()
    def predict(self, texts: str | list[str], top_k: int | None = None,
                progress: bool = False) -> list[list[ClassificationResult]]:
        """For every text, its ``top_k`` results; one text is a list of one (not a sequence of characters)."""
        top_k = check_top_k(self.top_k if top_k is None else top_k)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("text classification needs one text or a non-empty list of texts")
        limit = self.model.config.max_position_embeddings
        results: list[list[ClassificationResult]] = []
        for batch_texts in batches(texts, self.batch_size, "classifying", progress):
            batch = self.tokenizer(list(batch_texts), padding=True)
            if batch["input_ids"].shape[1] > limit:
                raise ValueError(f"a text is {batch['input_ids'].shape[1]} tokens long; this model reads at most "
                                 f"{limit}: shorten it")
            logits = self.model(**{k: v.to(self.model.device) for k, v in batch.items()}).logits  # (B, num_labels)
            results.extend(top_labels(self._scores(logits), self.labels, top_k))
        return results

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        config = self.model.config
        if config.num_labels == 1 or config.problem_type == "multi_label_classification":
            return logits.float().sigmoid()
        return logits.float().softmax(-1)
