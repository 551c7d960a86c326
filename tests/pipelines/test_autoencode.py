"""Autoencoding a real clip: the bundled Big Buck Bunny excerpt (© Blender Foundation, CC BY 3.0)."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
import torch

from perceiverkit import EncoderConfig, MultimodalAutoencoder, MultimodalAutoencoderConfig
from perceiverkit.cli import main
from perceiverkit.media import bundled_video, read_clip, write_wav
from perceiverkit.pipelines import psnr


def test_read_clip_resizes_and_resamples():
    clip = read_clip(bundled_video(), num_frames=4, image_size=32, sample_rate=16000, start=1.0)
    assert clip.frames.shape == (4, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert clip.sample_rate == 16000 and clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert 4.0 * 16000 < clip.audio.shape[0] + 16000 < 5.5 * 16000  # ~5.3 s of audio, minus the 1 s skipped
    assert np.abs(clip.audio).max() <= 1.0 and np.abs(clip.audio).max() > 0.01


def test_psnr_closed_form():
    assert psnr(np.full(4, 0.5), np.full(4, 0.6)) == pytest.approx(20.0)  # MSE 0.01 → 20 dB at peak 1
    assert psnr(np.ones(3), np.ones(3)) == float("inf")


def test_wav_round_trip(tmp_path):
    signal = np.sin(np.linspace(0, 20, 800)).astype(np.float32) * 0.5
    path = write_wav(tmp_path / "a.wav", signal, 8000)
    with wave.open(str(path)) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (1, 2, 8000, 800)
        back = np.frombuffer(f.readframes(800), dtype="<i2") / 32767
    assert np.abs(back - signal).max() < 1e-4


def test_autoencode_cli_on_the_bundled_clip(tmp_path, capsys):
    torch.manual_seed(0)
    MultimodalAutoencoder(MultimodalAutoencoderConfig(
        num_frames=4, image_size=32, image_num_bands=4, audio_num_bands=8, num_labels=7, label_query_channels=16,
        output_num_channels=16, labels=tuple(f"class {i}" for i in range(7)),
        encoder=EncoderConfig(num_latents=16, d_latents=32, num_self_attends_per_block=1, num_self_attention_heads=2,
                              num_cross_attention_heads=1))).save_pretrained(tmp_path / "model")
    assert main(["autoencode", "-o", str(tmp_path / "out"), "--model", str(tmp_path / "model"),
                 "--chunk-size", "2000"]) == 0
    out = capsys.readouterr().out
    assert "video PSNR" in out and "label 'class " in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["frames.png", "input.wav", "reconstruction.gif", "reconstruction.wav", "summary.json"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert np.isfinite(summary["video_psnr_db"]) and summary["label"].startswith("class ")
    assert 1 / 7 <= summary["score"] <= 1  # the best of 7 softmax scores
    with wave.open(str(tmp_path / "out" / "reconstruction.wav")) as f:
        assert f.getnframes() == 4 * 1920 and f.getframerate() == 48000


def test_missing_video_is_a_one_line_error(tmp_path, capsys):
    MultimodalAutoencoder(MultimodalAutoencoderConfig(
        num_frames=2, image_size=8, image_num_bands=2, audio_num_bands=2, num_labels=3, label_query_channels=4,
        output_num_channels=4, encoder=EncoderConfig(num_latents=2, d_latents=8, num_self_attends_per_block=1,
                                                     num_self_attention_heads=1, num_cross_attention_heads=1)
    )).save_pretrained(tmp_path / "m")
    assert main(["autoencode", str(tmp_path / "none.mp4"), "--model", str(tmp_path / "m")]) == 2
    assert "no video file" in capsys.readouterr().err
