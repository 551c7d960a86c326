"""Short video+audio windows cut from real clips, for training the multimodal autoencoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..media import bundled_video, read_clip


class VideoClips(Dataset[dict[str, torch.Tensor]]):
    """Every window of ``num_frames`` consecutive frames (stride ``stride``) of the given videos, with its audio.

    Items are ``{"image": (T, 3, S, S) in [0, 1], "audio": (T·samples_per_frame,), "label": (num_labels,) zeros}``
    — the label input is masked by the published model, so it carries no information here. Videos are decoded
    once, at ``image_size`` and ``sample_rate = samples_per_frame × fps``.
    """

    def __init__(self, videos: Sequence[str | Path] | None = None, num_frames: int = 4, image_size: int = 32,
                 samples_per_frame: int = 1920, num_labels: int = 700, stride: int = 2, max_frames: int = 132,
                 fps: float = 25.0) -> None:
        videos = list(videos) if videos else [bundled_video()]
        self.num_frames, self.samples_per_frame, self.num_labels = num_frames, samples_per_frame, num_labels
        self.clips = [read_clip(v, max_frames, image_size, round(samples_per_frame * fps), allow_short=True)
                      for v in videos]
        self.index: list[tuple[int, int]] = []
        for c, clip in enumerate(self.clips):
            usable = min(len(clip.frames), len(clip.audio) // samples_per_frame)
            self.index += [(c, start) for start in range(0, usable - num_frames + 1, stride)]
        if not self.index:
            raise ValueError(f"no window of {num_frames} frames with audio in {[str(v) for v in videos]}")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c, start = self.index[i]
        clip = self.clips[c]
        frames = clip.frames[start:start + self.num_frames]
        audio = clip.audio[start * self.samples_per_frame:(start + self.num_frames) * self.samples_per_frame]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255,
            "audio": torch.from_numpy(np.ascontiguousarray(audio)).float(),
            "label": torch.zeros(self.num_labels),
        }
