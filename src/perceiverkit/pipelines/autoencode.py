"""Autoencode a real clip: video frames and audio in, reconstructions, PSNR and the predicted label out."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..media import Clip, read_clip, write_wav
from ..tasks.multimodal import AUDIO, IMAGE, LABEL, MultimodalAutoencoder
from .progress import progress_callback


def psnr(reconstruction: np.ndarray, reference: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10·log10(peak² / MSE)`` (infinite for a perfect reconstruction)."""
    mse = float(np.mean((np.asarray(reconstruction, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@dataclass
class AutoencodeResult:
    """Reconstructed ``video`` ``(T, H, W, 3)`` in [0, 1] and ``audio`` ``(S,)``, with quality and the label
    (``label`` and ``score``, the names of Transformers' classification results)."""

    video: np.ndarray
    audio: np.ndarray
    video_psnr: float
    audio_psnr: float
    label: str
    """The predicted class of the clip (its name, or ``LABEL_i``), with its softmax ``score``."""
    score: float
    label_index: int


class Autoencode:
    """Run a :class:`MultimodalAutoencoder` on a clip (frames in [0, 1], mono audio in [-1, 1], label masked)."""

    def __init__(self, model: MultimodalAutoencoder, chunk_size: int = 16384) -> None:
        if not isinstance(model, MultimodalAutoencoder):
            raise TypeError(f"autoencoding needs a MultimodalAutoencoder, got {type(model).__name__}")
        self.model = model
        self.chunk_size = chunk_size

    def read(self, path: str | Path, start: float = 0.0) -> Clip:
        """The part of a video file the model sees: its frame count, size and audio rate."""
        c = self.model.config
        sample_rate = round(c.audio_samples_per_frame * 25)  # the published model: 25 fps video, 48 kHz audio
        clip = read_clip(path, c.num_frames, c.image_size, sample_rate, start)
        if clip.audio.shape[0] < c.num_audio_samples:
            raise ValueError(f"{path} has {clip.audio.shape[0]} audio samples after {start} s; "
                             f"{c.num_audio_samples} are needed")
        clip.audio = clip.audio[: c.num_audio_samples]
        return clip

    def inputs(self, clip: Clip) -> dict[str, torch.Tensor]:
        c = self.model.config
        video = torch.from_numpy(clip.frames).float().div(255).permute(0, 3, 1, 2)[None]
        audio = torch.from_numpy(clip.audio)[None, :, None]
        return {IMAGE: video, AUDIO: audio, LABEL: torch.zeros(1, c.num_labels)}

    @torch.no_grad()
    def __call__(self, clip: Clip, progress: bool = False) -> AutoencodeResult:
        inputs = {k: v.to(self.model.device) for k, v in self.inputs(clip).items()}
        with progress_callback("decoding", "chunk", progress) as report:
            out = self.model.reconstruct(inputs, self.chunk_size, progress=report)
        video = out[IMAGE][0].clamp(0, 1).float().cpu().numpy()
        audio = out[AUDIO][0].float().cpu().numpy()
        probs = out[LABEL][0].float().softmax(-1)
        index = int(probs.argmax())
        names = self.model.config.labels
        return AutoencodeResult(
            video=video, audio=audio,
            video_psnr=psnr(video, clip.frames / 255.0),
            # Audio is rarely at full scale: measure against the clip's own peak so silence doesn't score well.
            audio_psnr=psnr(np.clip(audio, -1, 1), clip.audio, peak=float(np.abs(clip.audio).max()) or 1.0),
            label=names[index] if names else f"LABEL_{index}", score=float(probs[index]), label_index=index,
        )


def save_outputs(clip: Clip, result: AutoencodeResult, directory: str | Path, sample_rate: int) -> dict[str, Path]:
    """Write a PNG grid (inputs above reconstructions), an animated GIF, WAVs and a JSON summary."""
    from ..viz.video import save_comparison_gif, save_frame_grid

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    original = clip.frames
    reconstructed = (result.video * 255).round().astype(np.uint8)
    paths = {
        "grid": save_frame_grid([original, reconstructed], out / "frames.png", row_titles=["input", "reconstruction"]),
        "gif": save_comparison_gif(original, reconstructed, out / "reconstruction.gif", fps=clip.fps),
        "audio": write_wav(out / "reconstruction.wav", result.audio, sample_rate),
        "audio_input": write_wav(out / "input.wav", clip.audio, sample_rate),
    }
    summary = {"video_psnr_db": result.video_psnr, "audio_psnr_db": result.audio_psnr,
               "label": result.label, "label_index": result.label_index, "score": result.score}
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    return paths
