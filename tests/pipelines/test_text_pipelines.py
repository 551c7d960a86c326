"""Fill-mask and text classification on tiny random models: Transformers' result names and shapes, scores equal
to a computation by hand with the model, batching that changes nothing."""

from __future__ import annotations

import pytest
import torch

from perceiverkit import (
    EncoderConfig,
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
)
from perceiverkit.pipelines import FillMask, TextClassification
from perceiverkit.tokenizer import ByteTokenizer
from perceiverkit.word_tokenizer import WordHashTokenizer

TINY = EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                     num_cross_attention_heads=2)


@pytest.fixture(scope="module")
def mlm() -> MaskedLanguageModel:
    torch.manual_seed(0)
    return MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=24, encoder=TINY,
                                                         decoder_num_heads=1, decoder_qk_channels=8)).eval()


def _classifier(num_labels: int = 3, labels: tuple[str, ...] | None = ("neg", "pos", "neutral"),
                **config: object) -> SequenceClassifier:
    torch.manual_seed(1)
    return SequenceClassifier(SequenceClassifierConfig(
        d_model=16, max_position_embeddings=32, encoder=TINY, num_labels=num_labels, labels=labels,
        **config)).eval()  # type: ignore[arg-type]


# --- fill-mask -------------------------------------------------------------------------------------------------

def test_fill_mask_scores_are_the_models_softmax_at_each_mask(mlm):
    text = "ab[MASK]d[MASK]"
    per_mask = FillMask(mlm, top_k=4).predict([text])[0]
    tokenizer = ByteTokenizer()
    batch = tokenizer([text])
    with torch.no_grad():
        probs = mlm(**batch).logits[0].softmax(-1)  # (L, 262), the oracle: the model by hand
    positions = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    assert len(per_mask) == 2 and positions == [3, 5]  # [CLS] a b [MASK] d [MASK] [SEP]
    best = {}
    for position, candidates in zip(positions, per_mask, strict=True):
        byte_probs = probs[position, 6:]  # special tokens never fill a mask
        expected = byte_probs.topk(4)
        assert [c["score"] for c in candidates] == pytest.approx(expected.values.tolist(), abs=1e-6)
        assert [c["token"] for c in candidates] == (expected.indices + 6).tolist()
        assert [c["token_str"] for c in candidates] == [bytes([int(i)]).decode("utf-8", "replace")
                                                       for i in expected.indices]
        assert all(set(c) == {"score", "token", "token_str", "sequence"} for c in candidates)
        best[position] = candidates[0]["token_str"]
    first, second = per_mask
    # each candidate's sequence: this candidate at its mask, the other mask at its own best byte
    assert first[0]["sequence"] == second[0]["sequence"] == f"ab{best[3]}d{best[5]}"
    assert first[1]["sequence"] == f"ab{first[1]['token_str']}d{best[5]}"
    assert second[2]["sequence"] == f"ab{best[3]}d{second[2]['token_str']}"


def test_fill_mask_follows_transformers_shapes(mlm):
    fill = FillMask(mlm, top_k=2)
    one = fill("a[MASK]c")  # one text, one mask: the candidates
    assert isinstance(one, list) and len(one) == 2 and isinstance(one[0], dict)
    two = fill("[MASK]b[MASK]")  # one text, two masks: a list per mask
    assert len(two) == 2 and all(len(candidates) == 2 and isinstance(candidates[0], dict) for candidates in two)
    many = fill(["a[MASK]c", "[MASK]b[MASK]"], top_k=3)  # a list of texts: a result per text
    assert len(many) == 2 and len(many[0]) == 3 and len(many[1]) == 2 and len(many[1][0]) == 3


def test_predict_takes_one_text_as_a_list_of_one(mlm):
    # .predict always nests; a bare string is one text, never a sequence of one-character texts
    fill = FillMask(mlm, top_k=2)
    assert fill.predict("a[MASK]c") == fill.predict(["a[MASK]c"])
    classify = TextClassification(_classifier(), top_k=2)
    one = classify.predict("what a match")
    assert len(one) == 1 and one == classify.predict(["what a match"])


def test_fill_mask_batches_change_nothing(mlm):
    texts = ["the [MASK]at", "a[MASK]", "one two th[MASK]ee four", "[MASK][MASK]x"]
    together = FillMask(mlm, batch_size=4).predict(texts, progress=True)
    one_by_one = FillMask(mlm, batch_size=1).predict(texts)
    for a, b in zip(together, one_by_one, strict=True):
        for x, y in zip(a, b, strict=True):
            assert [c["token"] for c in x] == [c["token"] for c in y]
            assert [c["score"] for c in x] == pytest.approx([c["score"] for c in y], abs=1e-5)


def test_fill_mask_bad_input_says_what_to_do(mlm):
    with pytest.raises(ValueError, match="must contain at least one"):
        FillMask(mlm)(["no mask"])
    with pytest.raises(ValueError, match=r"this model reads at most 24: shorten the text around its \[MASK\]s to "
                                         r"22 bytes or fewer"):
        FillMask(mlm)("x" * 30 + "[MASK]")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        FillMask(mlm, top_k=0)


# --- text classification -------------------------------------------------------------------------------------

def test_text_classification_scores_are_the_models_softmax():
    model = _classifier()
    texts = ["a fine day", "rain again and again", "ok"]
    results = TextClassification(model, top_k=3, batch_size=2)(texts, progress=True)
    with torch.no_grad():
        probs = model(**ByteTokenizer()(texts, padding=True)).logits.softmax(-1)  # the oracle, by hand
    assert len(results) == 3
    for row, ranked in zip(probs, results, strict=True):
        assert all(set(r) == {"label", "score"} for r in ranked)
        order = row.argsort(descending=True).tolist()
        assert [r["label"] for r in ranked] == [("neg", "pos", "neutral")[i] for i in order]
        assert [r["score"] for r in ranked] == pytest.approx(row[order].tolist(), abs=1e-5)
    single = TextClassification(model)("ok")  # one text: its top_k (default 1) results
    assert len(single) == 1 and single[0] == pytest.approx(results[2][0], abs=1e-5)


def test_text_classification_unnamed_regression_and_multi_label_scores():
    unnamed = TextClassification(_classifier(labels=None), top_k=3)("abc")
    assert sorted(r["label"] for r in unnamed) == ["LABEL_0", "LABEL_1", "LABEL_2"]
    regression = _classifier(num_labels=1, labels=None)
    with torch.no_grad():
        logit = regression(**ByteTokenizer()(["abc"])).logits[0, 0]
    assert TextClassification(regression)("abc")[0]["score"] == pytest.approx(float(logit.sigmoid()), abs=1e-6)
    multi = TextClassification(_classifier(problem_type="multi_label_classification"), top_k=3)("abc")
    assert sum(r["score"] for r in multi) != pytest.approx(1.0)  # one sigmoid per label, not a softmax


def test_text_classification_needs_the_models_tokenizer():
    words = WordHashTokenizer(num_buckets=64)
    with pytest.raises(ValueError, match="pass the tokenizer it was trained with"):
        TextClassification(_classifier(vocab_size=words.vocab_size))  # the default tokenizer reads bytes
    results = TextClassification(_classifier(vocab_size=words.vocab_size), tokenizer=words)("hashed words")
    assert results[0]["label"] in {"neg", "pos", "neutral"}
    with pytest.raises(ValueError, match="reads at most 32: shorten it"):
        TextClassification(_classifier())("x" * 40)


def test_sentiment_analysis_is_transformers_other_name_for_text_classification():
    from perceiverkit import pipeline

    model = _classifier()
    classify = pipeline("sentiment-analysis", model=model)
    assert isinstance(classify, TextClassification)
    (got,), (expected,) = classify("ok"), TextClassification(model)("ok")
    assert got["label"] == expected["label"] and got["score"] == pytest.approx(expected["score"])
