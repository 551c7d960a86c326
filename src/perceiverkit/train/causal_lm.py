"""Training Perceiver AR (task ``causal-lm``): its Lightning module and its data source, packed byte windows.

The causal language model reads long windows of running text: a corpus's documents are joined (``"\\n\\n"``
between them) and cut into windows of ``sequence_length`` bytes with no padding and no special tokens, so that
every position of every window is real text. The loss is the next-byte cross-entropy on the latent positions (the
last ``num_latents`` of each window); it is also logged in bits per byte, the unit compressors are compared in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..config import ConfigError
from ..tasks.causal_lm import PerceiverARConfig
from ..tokenizer import ByteTokenizer
from .datamodules import HF_OPTIONS, HFTextStreamData, PerceiverDataModule, reading_data
from .modules import PerceiverModule, accuracy


class CausalLMModule(PerceiverModule):
    """Next-token loss on the latent positions, with bits per byte and next-byte accuracy."""

    monitor = ("val/bits_per_byte", "min")

    def compute(self, batch: dict[str, Tensor], stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model(batch["input_ids"], labels=batch["labels"])
        count = out.logits.shape[1]
        targets = batch["labels"][:, -count + 1:]  # latent at position p predicts p + 1; the last has no target
        return out.loss, {"bits_per_byte": out.loss.detach() / math.log(2),
                          "accuracy": accuracy(out.logits[:, :-1].detach(), targets)}


def corpus_readers() -> dict[str, Callable[[], list[str]]]:
    """The corpora installed with the system, by name: each reads its documents."""
    from ..datasets import read_jargon_file, wordnet_gloss_corpus

    return {"jargon": lambda: [read_jargon_file()], "wordnet": wordnet_gloss_corpus}


class PackedTextData(PerceiverDataModule):
    """Byte windows of ``sequence_length`` (default four times the model's ``num_latents``) packed from
    ``corpus`` (``jargon``, ``wordnet`` or both joined by ``+``) and text files under ``paths``; a contiguous
    ``val_fraction`` of the bytes is held out for validation (:class:`~perceiverkit.datasets.ByteChunks`)."""

    source = "packed-text"
    options: ClassVar[tuple[str, ...]] = ("corpus", "paths", "sequence_length", "val_fraction")

    def sequence_length(self) -> int:
        config = self.expect(self.model_config, PerceiverARConfig)
        length = int(self.option("sequence_length", 4 * config.num_latents))
        if length < config.num_latents:
            raise ConfigError(f"data.options.sequence_length ({length}) must be at least the model's num_latents "
                              f"({config.num_latents})")
        if config.position_encoding == "learned" and length > config.max_position_embeddings:
            raise ConfigError(f"data.options.sequence_length ({length}) is longer than the model's position table "
                              f"(max_position_embeddings={config.max_position_embeddings})")
        return length

    def build(self) -> tuple[Dataset, Dataset]:
        from ..datasets import read_text_documents

        readers = corpus_readers()
        names = [name for name in str(self.option("corpus", "jargon+wordnet") or "").split("+") if name]
        unknown = sorted(set(names) - set(readers))
        if unknown:
            raise ConfigError(f"unknown corpus {unknown[0]!r}; use {' and/or '.join(readers)} (joined by +), "
                              "or text files under paths")
        documents = [document for name in names for document in readers[name]()]
        paths = [self.existing_path(path, f"data.options.paths[{i}]")  # from the config file's folder
                 for i, path in enumerate(self.option("paths", []) or [])]
        documents += [document for path in paths for document in read_text_documents(path)]
        if not documents:
            raise ConfigError("the text corpus is empty: choose corpus: jargon+wordnet or give paths")
        return self.windows(documents)

    def windows(self, corpus: Any, validation: Any = None) -> tuple[Dataset, Dataset]:
        """Training and validation windows of ``corpus`` (documents, or a byte source read on demand): validation
        from ``validation`` when given (a held-out split, read whole into windows), else the contiguous
        ``val_fraction`` region of ``corpus`` at a position seeded by the run's seed."""
        from ..datasets import ByteChunks

        length, fraction = self.sequence_length(), float(self.option("val_fraction", 0.05))
        with reading_data():  # "no window fits" and the like, as one line
            if validation is not None:
                return (ByteChunks(corpus, length, "train", val_fraction=0.0, seed=self.seed),
                        ByteChunks(validation, length, "train", val_fraction=0.0, seed=self.seed))
            return (ByteChunks(corpus, length, "train", val_fraction=fraction, seed=self.seed),
                    ByteChunks(corpus, length, "val", val_fraction=fraction, seed=self.seed))

    def collate(self, items: list[Any]) -> dict[str, Tensor]:
        offset = ByteTokenizer.num_special_tokens
        ids = torch.tensor([[byte + offset for byte in window] for window in items])  # (B, sequence_length)
        return {"input_ids": ids, "labels": ids}


class HFPackedTextData(HFTextStreamData, PackedTextData):
    """Perceiver AR on the text column of a Hugging Face data set (local Arrow, Parquet, CSV or JSON files, a
    ``save_to_disk`` folder, or a hub name; the options of :class:`~perceiverkit.train.datamodules._HFData`):
    ``text_column`` (default ``text``) packed into windows of ``sequence_length`` bytes exactly as ``packed-text``
    packs its documents (rows joined by a blank line, no padding). The rows are read one at a time from the
    memory-mapped Arrow files (:class:`~perceiverkit.datasets.hf.ArrowTextBytes`: only the rows' byte lengths
    are held in memory), so a corpus larger than memory trains. Validation is the data set's validation split
    when it has one (or ``val_split``), else the contiguous, seeded ``val_fraction`` region of the training
    split's bytes; ``evaluate`` reads the test split's windows."""

    source = "hf-dataset"
    options = (*(o for o in HF_OPTIONS if o != "validation_size"), "text_column", "sequence_length",
               "val_fraction")


__all__ = ["CausalLMModule", "HFPackedTextData", "PackedTextData"]
