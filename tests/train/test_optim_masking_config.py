"""Optimiser, schedule, masking and config parsing against closed-form expectations."""

from __future__ import annotations

import math

import pytest
import torch

from perceiverkit import ByteTokenizer, ConfigError
from perceiverkit.train import Lamb, adamw, load_train_config, mask_tokens, warmup_cosine
from perceiverkit.train.config import apply_override


def test_lamb_step_closed_form():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # ‖w‖ = 5
    w.grad = torch.tensor([1.0, -2.0])
    Lamb([w], lr=0.1, betas=(0.9, 0.999), eps=1e-12, weight_decay=0.0).step()
    # first step: m̂ = g, v̂ = g², so the Adam update is sign(g) = (1, -1) with norm √2; trust ratio 5/√2
    expected = torch.tensor([3.0, 4.0]) - 0.1 * (5 / math.sqrt(2)) * torch.tensor([1.0, -1.0])
    torch.testing.assert_close(w.detach(), expected)


def test_lamb_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="invalid LAMB"):
        Lamb([torch.nn.Parameter(torch.zeros(1))], lr=-1)


def test_adamw_fuses_on_cpu_and_matches_the_reference_update():
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    grads = [[torch.randn_like(t) for t in start] for _ in range(3)]

    def run(make):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        opt = make([{"params": iter(params[:1]), "weight_decay": 0.1}, {"params": iter(params[1:]), "weight_decay": 0.0}])
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        return opt, params

    ours, fused_params = run(lambda groups: adamw(groups, lr=1e-2, betas=(0.8, 0.99)))
    assert ours.defaults["fused"] is True
    assert [len(g["params"]) for g in ours.param_groups] == [1, 1]  # generators were read once, not lost
    _, reference = run(lambda groups: torch.optim.AdamW(groups, lr=1e-2, betas=(0.8, 0.99), foreach=False))
    for a, b in zip(fused_params, reference):
        torch.testing.assert_close(a, b)


def test_adamw_falls_back_where_no_fused_kernel_exists():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2, device="meta"))]
    assert not adamw(params, lr=1e-3).defaults["fused"]


def test_importing_train_pieces_does_not_import_lightning():
    import subprocess
    import sys

    code = ("import sys, perceiverkit.train as t; from perceiverkit.train import adamw, mask_tokens, TrainConfig; "
            "assert 'lightning' not in sys.modules, 'lightning imported'; assert 'train' in dir(t)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=14, min_ratio=0.1)
    rates = []
    for _ in range(14):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert min(rates[4:]) >= 0.1


def test_masking_chooses_only_real_bytes():
    tok = ByteTokenizer()
    batch = tok(["the quick brown fox jumps over", "a lazy dog"], padding=True)
    out = mask_tokens(batch.input_ids, batch.attention_mask, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.output_points.shape == (2, round(0.3 * 10))
    chosen = batch.input_ids.gather(1, out.output_points)
    assert (chosen >= ByteTokenizer.num_special_tokens).all()
    assert torch.equal(out.labels.gather(1, out.output_points), chosen)
    assert (out.labels != -100).sum() == out.output_points.numel()
    unchanged = torch.ones_like(batch.input_ids, dtype=torch.bool).scatter(1, out.output_points, False)
    assert torch.equal(out.input_ids[unchanged], batch.input_ids[unchanged])


def test_masking_rates():
    ids = torch.randint(6, 262, (64, 200))
    out = mask_tokens(ids, torch.ones_like(ids), 0.15, generator=torch.Generator().manual_seed(1))
    new = out.input_ids.gather(1, out.output_points)
    masked = (new == ByteTokenizer.mask_token_id).float().mean()
    kept = (new == ids.gather(1, out.output_points)).float().mean()
    assert 0.75 < masked < 0.85 and 0.07 < kept < 0.14


def test_whole_word_masking_masks_whole_words():
    tok = ByteTokenizer()
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    batch = tok([text])
    out = mask_tokens(batch.input_ids, batch.attention_mask, 0.2, whole_word=True,
                      generator=torch.Generator().manual_seed(0))
    chosen = set(out.output_points[0].tolist())
    words = [(i + 1, i + 1 + len(w)) for i, w in zip([text.index(w) for w in text.split()], text.split())]
    touched = [range(a, b) for a, b in words if chosen & set(range(a, b))]
    # all touched words but possibly the last are entirely chosen
    assert sum(set(r) <= chosen for r in touched) >= len(touched) - 1


def test_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: image-classification\ndata: {source: digits, batch_size: 8}\n")
    config = load_train_config(None, path, ["optim.lr=3e-4", "data.options.augment=false", "trainer.devices=2"])
    assert config.optim.lr == 3e-4 and config.data.options == {"augment": False} and config.trainer.devices == 2
    with pytest.raises(ConfigError, match="not 'masked-lm'"):
        load_train_config("masked-lm", path)
    with pytest.raises(ConfigError, match="unknown field"):
        load_train_config(None, path, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_override({}, "optim.lr")
    with pytest.raises(ConfigError, match="no training config"):
        load_train_config(None, tmp_path / "missing.yaml")


def test_sinusoidal_position_init_keeps_scale_and_makes_neighbours_similar():
    from perceiverkit.train.init_schemes import sinusoidal_position_init
    from perceiverkit.tasks.text import MaskedLanguageModel, MaskedLanguageModelConfig
    from perceiverkit.config import EncoderConfig

    model = MaskedLanguageModel(MaskedLanguageModelConfig(
        max_position_embeddings=32, d_model=16,
        encoder=EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1)))
    tables = [model.perceiver.preprocessor.position_embedding.weight, model.perceiver.decoder.queries.encoding.embeddings]
    before = [t.detach().clone() for t in tables]
    assert sinusoidal_position_init(model) == 2
    for table, old in zip(tables, before):
        assert torch.allclose(table.pow(2).mean().sqrt(), old.pow(2).mean().sqrt(), rtol=1e-4)
        unit = torch.nn.functional.normalize(table, dim=-1)
        similarity = unit @ unit.T
        # neighbouring positions are more alike than distant ones (random tables have no such order)
        assert similarity.diagonal(1).mean() > similarity.diagonal(16).mean() + 0.2


def test_local_attention_init_starts_with_local_cross_attention():
    from perceiverkit.config import EncoderConfig
    from perceiverkit.tasks.text import MaskedLanguageModel, MaskedLanguageModelConfig
    from perceiverkit.train.init_schemes import local_attention_init

    def attention_distance(model):
        ids = torch.randint(6, 262, (4, 32), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = model(ids, output_attentions=True)
        encoder, decoder = (w.mean(dim=(0, 1)) for w in out.cross_attentions)  # (queries, keys)
        positions = torch.arange(32, dtype=torch.float32)
        # mean distance between a query's own position and where its attention goes
        enc = (encoder * (positions[None, :] - positions[::2, None]).abs()).sum(-1).mean()
        dec = (decoder * (positions[:, None] - positions[None, ::2]).abs()).sum(-1).mean()
        return float(enc), float(dec)

    config = MaskedLanguageModelConfig(max_position_embeddings=32, d_model=64, decoder_num_heads=4, encoder=EncoderConfig(
        num_latents=16, d_latents=64, num_self_attends_per_block=1, num_cross_attention_heads=4))
    torch.manual_seed(0)
    plain = MaskedLanguageModel(config).eval()
    local = MaskedLanguageModel(config).eval()
    local_attention_init(local)
    # uniform attention over 32 positions is ~10.7 positions away on average; local init attends within a few
    assert max(attention_distance(plain)) > 8
    assert max(attention_distance(local)) < 4


def test_local_attention_init_rejects_other_models():
    from perceiverkit.train.init_schemes import local_attention_init

    with pytest.raises(ConfigError, match="masked-lm"):
        local_attention_init(torch.nn.Linear(2, 2))


# --- text tokenizers of classification runs ----------------------------------------------------------------------

def _text_config(vocab_size):
    from perceiverkit import SequenceClassifierConfig

    return SequenceClassifierConfig(num_labels=3, vocab_size=vocab_size, max_position_embeddings=16)


def test_text_runs_pick_bytes_or_hashed_words_and_check_the_vocabulary():
    from perceiverkit.train.datamodules import text_tokenizer
    from perceiverkit.word_tokenizer import WordHashTokenizer

    assert isinstance(text_tokenizer({}, _text_config(ByteTokenizer.vocab_size)), ByteTokenizer)
    words = text_tokenizer({"tokenizer": "words", "num_buckets": 100, "ngrams": 1}, _text_config(101))
    assert isinstance(words, WordHashTokenizer) and (words.num_buckets, words.ngrams) == (100, 1)
    assert words.model_max_length == 16
    with pytest.raises(ConfigError, match=r"has 131073 ids but model.config.vocab_size is 262; set "
                                          r"model.config.vocab_size: 131073"):
        text_tokenizer({"tokenizer": "words"}, _text_config(262))
    with pytest.raises(ConfigError, match="'bytes' or 'words', got 'bpe'"):
        text_tokenizer({"tokenizer": "bpe"}, _text_config(262))
    with pytest.raises(ConfigError, match="only apply to tokenizer: words"):
        text_tokenizer({"num_buckets": 100}, _text_config(262))
