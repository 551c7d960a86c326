"""Text task models: shapes, decoding only needed positions, losses, padding invariance, presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers

import perceiverkit
from perceiverkit import (
    ByteTokenizer,
    EncoderConfig,
    MaskedLanguageModel,
    MaskedLanguageModelConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
)

SMALL = EncoderConfig(num_latents=8, d_latents=32, num_self_attends_per_block=2, num_self_attention_heads=4,
                      num_cross_attention_heads=2, attention_dropout=0.0)


@pytest.fixture(scope="module")
def mlm() -> MaskedLanguageModel:
    torch.manual_seed(0)
    return MaskedLanguageModel(MaskedLanguageModelConfig(d_model=24, max_position_embeddings=64, encoder=SMALL)).eval()


def test_preset_has_the_published_parameter_count():
    with torch.device("meta"):
        ours = perceiverkit.create_model("language-perceiver")
        reference = transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(qk_channels=256, v_channels=1280))
    assert ours.num_parameters() == 201_108_230 == sum(p.numel() for p in reference.parameters())


def test_create_model_overrides_and_errors():
    with torch.device("meta"):
        model = perceiverkit.create_model("language-perceiver", max_position_embeddings=512)
    assert model.perceiver.preprocessor.position_embedding.num_embeddings == 512
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        perceiverkit.create_model("nope")
    with pytest.raises(ValueError, match="no field"):
        perceiverkit.create_model("language-perceiver", max_positions=3)


def test_logits_have_input_length(mlm):
    with torch.no_grad():
        assert mlm(torch.randint(0, 262, (2, 17))).logits.shape == (2, 17, 262)


def test_padding_into_a_longer_batch_leaves_logits_unchanged(mlm):
    tokenizer = ByteTokenizer()
    texts = ["short one", "a considerably longer sentence than the first one"]
    batch = tokenizer(texts, padding=True)
    single = tokenizer(texts[0])
    with torch.no_grad():
        alone = mlm(**single).logits[0]
        in_batch = mlm(**batch).logits[0, : alone.shape[0]]
    torch.testing.assert_close(in_batch, alone, rtol=1e-5, atol=1e-5)


def test_output_points_decode_only_those_positions(mlm):
    ids = torch.randint(0, 262, (2, 20))
    with torch.no_grad():
        full = mlm(ids).logits
        some = mlm(ids, output_points=torch.tensor([2, 11])).logits
        per_row = mlm(ids, output_points=torch.tensor([[0, 1], [18, 19]])).logits
    torch.testing.assert_close(some, full[:, [2, 11]], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(per_row[1], full[1, [18, 19]], rtol=1e-5, atol=1e-6)


def test_masked_loss_equals_cross_entropy_at_masked_positions(mlm):
    ids = torch.randint(6, 262, (2, 20))
    labels = torch.full_like(ids, -100)
    masked = torch.tensor([[1, 4], [7, 19]])
    labels.scatter_(1, masked, ids.gather(1, masked))
    with torch.no_grad():
        full = mlm(ids, labels=labels)
        sparse = mlm(ids, labels=labels, output_points=masked)
    expected = F.cross_entropy(full.logits.gather(1, masked[..., None].expand(-1, -1, 262)).flatten(0, 1),
                               ids.gather(1, masked).flatten())
    torch.testing.assert_close(full.loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.loss, expected, rtol=1e-5, atol=1e-6)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = MaskedLanguageModel(MaskedLanguageModelConfig(d_model=24, max_position_embeddings=16, encoder=SMALL))
    ids = torch.randint(6, 262, (4, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]  # from log(262) to about the unigram entropy


@pytest.mark.parametrize("bad,error,match", [
    (torch.randint(0, 262, (1, 65)), ValueError, "65 exceeds the model's 64 position embeddings"),
    (torch.tensor([[5, 262]]), ValueError, r"token ids must lie in \[0, 262\)"),
    (torch.tensor([[-1, 5]]), ValueError, r"token ids must lie in \[0, 262\)"),
    (torch.ones(1, 4), TypeError, "integer tensor"),
    (torch.ones(4, dtype=torch.long), ValueError, r"\(batch, sequence_length\)"),
    (torch.ones(1, 0, dtype=torch.long), ValueError, "must not be empty"),
    ([[1, 2, 3]], TypeError, "torch.Tensor"),
])
def test_bad_token_inputs(mlm, bad, error, match):
    with pytest.raises(error, match=match):
        mlm(bad)


def test_inputs_alias_conflict(mlm):
    ids = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="not both"):
        mlm(ids, inputs=ids)
    with pytest.raises(ValueError, match="input_ids is required"):
        mlm()


def test_classifier_problem_types():
    torch.manual_seed(0)
    ids = torch.randint(0, 262, (3, 10))
    single = SequenceClassifier(SequenceClassifierConfig(d_model=16, max_position_embeddings=10, encoder=SMALL, num_labels=4))
    out = single(ids, labels=torch.tensor([0, 3, 1]))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([0, 3, 1])))
    multi_targets = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    out = single(ids, labels=multi_targets)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi_targets))
    regression = SequenceClassifier(SequenceClassifierConfig(d_model=16, max_position_embeddings=10, encoder=SMALL, num_labels=1))
    out = regression(ids, labels=torch.tensor([0.5, 1.0, -2.0]))
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits[:, 0], torch.tensor([0.5, 1.0, -2.0])))


def test_config_validation_messages():
    with pytest.raises(perceiverkit.ConfigError, match="labels names 1 classes, expected 2"):
        SequenceClassifier(SequenceClassifierConfig(encoder=SMALL, d_model=16, labels=("a",)))
    with pytest.raises(perceiverkit.ConfigError, match="activation must be one of"):
        MaskedLanguageModel(MaskedLanguageModelConfig(encoder=EncoderConfig(activation="gelu2")))
    with pytest.raises(ValueError, match=r"encoder self-attention: v_channels \(30\) must be divisible by .*\(4\)"):
        MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, encoder=EncoderConfig(
            num_latents=4, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=4,
            num_cross_attention_heads=2, v_channels=30)))
