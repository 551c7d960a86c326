"""pipeline("text-generation") and ``perceiverkit generate``: the model's greedy continuation as text, streamed in
whole characters, and sampling settings checked in one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from perceiverkit.cli import main
from perceiverkit.pipelines import pipeline
from perceiverkit.pipelines.text_generation import TextGeneration
from perceiverkit.tasks.causal_lm import PerceiverAR, PerceiverARConfig
from perceiverkit.tokenizer import ByteTokenizer

CONFIG = PerceiverARConfig(d_model=32, num_latents=8, num_self_attention_layers=1, num_heads=2,
                           num_cross_attention_heads=2, widening_factor=1)


def tiny_model(**overrides: object) -> PerceiverAR:
    torch.manual_seed(0)
    return PerceiverAR(dataclasses.replace(CONFIG, **overrides)).eval()  # type: ignore[arg-type]


def test_generated_text_is_the_prompt_and_the_models_greedy_bytes() -> None:
    model = tiny_model()
    generate = pipeline("text-generation", model, max_new_tokens=20)
    assert isinstance(generate, TextGeneration)
    prompt = "The Jargon File"
    ids = torch.tensor([ByteTokenizer().encode(prompt, add_special_tokens=False)])
    expected = ByteTokenizer().decode(model.generate(ids, 20)[0], skip_special_tokens=True)
    assert generate(prompt) == [{"generated_text": expected}]
    assert generate([prompt, prompt]) == [[{"generated_text": expected}]] * 2
    assert prompt + "".join(generate.stream(prompt)) == expected


def test_streaming_yields_whole_characters() -> None:
    # Steps scripted as fixed bytes: "é" (2 bytes) and "€" (3 bytes) arrive one byte at a time.
    model = tiny_model()
    script = [b + 6 for b in "aé€b".encode()]
    steps = iter(script)

    def fake_steps(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        from perceiverkit.tasks.causal_lm import GenerationStep
        for token in steps:
            yield GenerationStep(tokens=torch.tensor([token]), logits=torch.zeros(1, 262))

    model.iter_generate = fake_steps  # type: ignore[method-assign]
    pieces = list(TextGeneration(model, max_new_tokens=len(script)).stream("x"))
    assert pieces == ["a", "é", "€", "b"]


def test_sampling_is_reproducible_with_a_seed_and_settings_are_checked() -> None:
    generate = pipeline("perceiver-ar", tiny_model(), max_new_tokens=15, do_sample=True, top_p=0.9)
    assert generate("abc", seed=3) == generate("abc", seed=3)
    with pytest.raises(ValueError, match="temperature must be positive"):
        generate("abc", temperature=-1.0)
    with pytest.raises(ValueError, match="the prompt is empty"):
        generate("")


def test_generate_command_streams_the_continuation(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model()
    model.save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "Hello", "--max-new-tokens", "12", "--device", "cpu"]) == 0
    expected = pipeline("text-generation", model, max_new_tokens=12)("Hello")[0]["generated_text"]
    assert capsys.readouterr().out == expected + "\n"
    assert main(["generate", "--model", str(tmp_path), "Hello", "--top-k", "0", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "perceiverkit generate: error: top_k must be a positive integer, got 0"
    assert main(["generate", "--model", str(tmp_path), "Hello", "--num-latents", "0", "--device", "cpu"]) == 2
    captured = capsys.readouterr()  # refused before the prompt is echoed
    assert captured.out == "" and "num_latents must be a positive integer, got 0" in captured.err


def test_generate_command_refuses_a_prompt_beyond_the_position_table(tmp_path, capsys):  # type: ignore[no-untyped-def]
    tiny_model(position_encoding="learned", max_position_embeddings=16).save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "x" * 10, "--max-new-tokens", "10", "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "longer than the position table (max_position_embeddings=16)" in error
