"""WordNet lexicographer-class classification: a Perceiver IO against TF-IDF + logistic regression.

Both are trained on the same training split of WordNet 3.0 definitions and scored on the same test split
(``perceiverkit.datasets.WordNetLexnames``, 45 classes); the baseline's word n-grams and C are chosen on the
validation split the Perceiver run validated on. Run from the repository root::

    python examples/wordnet_vs_tfidf.py                       # bytes in: trains with the packaged wordnet config
    python examples/wordnet_vs_tfidf.py --config wordnet-words   # hashed words and word pairs in
    python examples/wordnet_vs_tfidf.py --model runs/wordnet/model   # score an already trained model
    python examples/wordnet_vs_tfidf.py --set trainer.max_steps=500  # any training override

Prints both accuracies and writes them to ``OUTPUT_DIR/comparison.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from perceiverkit import from_pretrained
from perceiverkit.datasets.wordnet import WordNetLexnames
from perceiverkit.evaluation.text_baselines import tune_tfidf_logistic_regression
from perceiverkit.train.datamodules import TextTokenizer


@torch.inference_mode()
def perceiver_accuracy(model: torch.nn.Module, tokenizer: TextTokenizer, texts: list[str], labels: list[int],
                       batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for start in tqdm(range(0, len(texts), batch_size), desc="Perceiver on the test split", unit="batch"):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True)
        predicted = model(batch.input_ids, batch.attention_mask).logits.argmax(-1)
        correct += int((predicted == torch.tensor(labels[start:start + batch_size])).sum())
    return correct / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="wordnet", help="a packaged config's name or a path")
    parser.add_argument("--set", nargs="*", default=[], help="training overrides, e.g. trainer.max_steps=500")
    parser.add_argument("--model", default=None, help="score this trained model instead of training one")
    args = parser.parse_args()

    from perceiverkit.resources import resolve_config
    from perceiverkit.train import load_train_config, train
    from perceiverkit.train.datamodules import text_tokenizer

    config = load_train_config(None, resolve_config(args.config), args.set)
    # the split the training run validated on is cut by the run's seed: score both methods on its test part
    train_split, test_split = WordNetLexnames("train", seed=config.seed), WordNetLexnames("test", seed=config.seed)
    val_split = WordNetLexnames("val", seed=config.seed)  # where the run chose its recipe; the baseline is tuned here
    if args.model is None:
        model_dir, output = train(config).model_dir, Path(config.output_dir)
    else:
        model_dir, output = Path(args.model), Path(args.model).parent
    # the tokenizer the run trained with (data.options.tokenizer), checked against the saved model's vocabulary
    model = from_pretrained(model_dir)
    tokenizer = text_tokenizer(config.data.options, model.config)
    ours = perceiver_accuracy(model, tokenizer, test_split.texts, test_split.labels)
    tuned = tune_tfidf_logistic_regression(train_split.texts, train_split.labels, val_split.texts, val_split.labels,
                                           test_split.texts, test_split.labels)
    baseline = tuned.test
    print(f"WordNet lexnames, {len(train_split):,} training / {len(test_split):,} test definitions, 45 classes")
    reads = "bytes" if config.data.options.get("tokenizer", "bytes") == "bytes" else "hashed words + word pairs"
    print(f"  Perceiver IO ({reads}):  {ours:.2%}   ({model_dir})")
    print(f"  {baseline.description}:  {baseline.accuracy:.2%}   (chosen on the validation split: "
          + ", ".join(f"{name} {accuracy:.2%}" for name, accuracy in tuned.validation.items()) + ")")
    result = {"perceiver": ours, "baseline": baseline.accuracy, "baseline_description": baseline.description,
              "baseline_validation": tuned.validation,
              "model": str(model_dir), "train": len(train_split), "test": len(test_split)}
    (output / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
