"""Hub failures are whole sentences that say what to do; no test reaches the network.

The hub's own exception classes are raised from a stand-in ``snapshot_download`` (built without an HTTP response,
which their constructors would otherwise need); offline mode is the real one, in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import huggingface_hub
import pytest
from huggingface_hub import errors

import perceiverkit
from perceiverkit import CheckpointNotFoundError


def _hub_error(cls: type[Exception], message: str) -> Exception:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def _is_a_sentence(text: str) -> bool:
    return text[0].isupper() and text.endswith(".") and "\n" not in text


@pytest.mark.parametrize(("cls", "expected"), [
    (errors.RepositoryNotFoundError, "There is no model 'someone/no-such-model' on the Hugging Face Hub"),
    (errors.GatedRepoError, "is gated: accept its terms at https://huggingface.co/someone/no-such-model"),
    (errors.RevisionNotFoundError, "has no revision 'v9'"),
])
def test_hub_errors_are_sentences_that_say_what_to_do(monkeypatch, cls, expected):
    def refuse(repo_id, **kwargs):
        raise _hub_error(cls, "404 Client Error. (Request ID: Root=1-abc)\n\nRepository Not Found for url: ...")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    with pytest.raises(CheckpointNotFoundError) as caught:
        perceiverkit.from_pretrained("someone/no-such-model", revision="v9")
    message = str(caught.value)
    assert expected in message and _is_a_sentence(message), message
    assert "Request ID" not in message  # the hub's own wording stays out of these three


def test_a_network_failure_names_the_cause_and_the_way_out(monkeypatch):
    def unreachable(repo_id, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(CheckpointNotFoundError) as caught:
        perceiverkit.from_pretrained("someone/no-such-model")
    message = str(caught.value)
    assert _is_a_sentence(message) and "ConnectionError: Failed to resolve" in message
    assert "check the connection" in message


def test_local_files_only_says_downloads_are_off(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as caught:
        perceiverkit.from_pretrained("someone/no-such-model", local_files_only=True, cache_dir=tmp_path)
    message = str(caught.value)
    assert _is_a_sentence(message) and "downloads are switched off" in message and "online" in message


def test_offline_mode_says_downloads_are_off(tmp_path):
    # A fresh interpreter so that HF_HUB_OFFLINE is read at import, as it is for users.
    code = ("import perceiverkit\ntry:\n"
            f"    perceiverkit.from_pretrained('someone/no-such-model', cache_dir={str(tmp_path)!r})\n"
            "except perceiverkit.CheckpointNotFoundError as e:\n    print(e)\n")
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    message = out.stdout.strip()
    assert _is_a_sentence(message) and "HF_HUB_OFFLINE=1" in message, out.stdout + out.stderr


def test_neither_a_folder_nor_a_hub_id_lists_the_shipped_models():
    with pytest.raises(CheckpointNotFoundError) as caught:
        perceiverkit.from_pretrained("no such model!")
    message = str(caught.value)
    assert _is_a_sentence(message) and "fashion-mnist-classifier" in message
