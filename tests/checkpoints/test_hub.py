"""Hub ids resolve through huggingface_hub's cache; offline, a clear one-line error."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import transformers

import perceiverkit
from perceiverkit import CheckpointNotFoundError

from ..helpers import relative_error, small_hf_config


def test_hub_id_goes_through_snapshot_download(save_hf, monkeypatch):
    hf, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(directory)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = perceiverkit.from_pretrained("deepmind/language-perceiver", revision="main")
    assert calls[0][0] == "deepmind/language-perceiver" and calls[0][1]["revision"] == "main"
    assert "*.safetensors" in calls[0][1]["allow_patterns"]
    ids = torch.randint(0, 262, (1, 10))
    with torch.no_grad():
        assert relative_error(model(ids).logits, hf(input_ids=ids).logits[:, :10]) < 1e-4


def test_offline_hub_id_gives_one_line_error(tmp_path):
    # A fresh interpreter so that HF_HUB_OFFLINE is read at import, as it is for users.
    code = (
        "import perceiverkit\n"
        "try:\n"
        "    perceiverkit.from_pretrained('deepmind/language-perceiver', cache_dir=r'%s')\n"
        "except perceiverkit.CheckpointNotFoundError as e:\n"
        "    print('ERROR', e)\n" % tmp_path
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, out.stdout + out.stderr
    assert "deepmind/language-perceiver" in lines[0] and "Hugging Face Hub" in lines[0]


@pytest.mark.parametrize("source", ["./does/not/exist", "/no/such/dir", "a/b/c"])
def test_missing_local_path_is_not_sent_to_the_hub(source):
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint directory"):
        perceiverkit.from_pretrained(source)


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointNotFoundError, match="is a file"):
        perceiverkit.from_pretrained(tmp_path / "model.safetensors")


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="neither perceiverkit.json nor config.json"):
        perceiverkit.from_pretrained(tmp_path)


def test_directory_without_weights(save_hf):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match="no weights"):
        perceiverkit.from_pretrained(directory)


def test_hub_downloads_every_file_a_saved_model_holds(tmp_path):
    """Whatever save_pretrained writes (ours or Transformers' format, processor settings included) is fetched."""
    from fnmatch import fnmatch

    from perceiverkit.checkpoints.hub import _PATTERNS

    model = perceiverkit.from_pretrained("fashion-mnist-classifier")
    model.save_pretrained(tmp_path / "ours")
    written = [p.name for p in (tmp_path / "ours").iterdir()]
    assert "preprocessor_config.json" in written
    for name in written + ["README.md", "config.json"]:
        assert any(fnmatch(name, pattern) for pattern in _PATTERNS), name
