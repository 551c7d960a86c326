"""The Hugging Face Hub, both ways: resolving a checkpoint source (a local directory, the name of a model shipped
with the package, or a Hub id fetched into the hub's cache), and ``push_to_hub`` (a saved model and its model
card uploaded as a Hub repository).

A failure is one whole sentence that says what went wrong and what to do (check the id, log in for a gated
model or to upload, go online once), whatever ``huggingface_hub`` raised underneath.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..errors import PerceiverKitError
from ..resources import packaged_model, packaged_model_names
from ..tasks.base import TaskModel, install_hub_upload
from ..tasks.registry import PRESETS
from .files import CheckpointNotFoundError

# Files worth downloading: the config and the weights in either format (never e.g. TF or Flax weights).
#: What a model folder holds: configs, weights, the processor settings that travel with them and the model card.
_PATTERNS = ["config.json", "perceiverkit.json", "preprocessor_config.json", "README.md", "*.safetensors",
             "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_source(
    source: str | os.PathLike[str],
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """The local directory that holds ``source``: the path itself; the shipped model of that name (a bare name
    such as ``fashion-mnist-classifier``, when no such folder exists here); or a hub snapshot in the cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointNotFoundError(f"{source} is a file; pass the folder that holds it, a Lightning .ckpt of a "
                                      "perceiverkit training run, or a hub id.")
    text = os.fspath(source)
    shipped = packaged_model(text)
    if shipped is not None:
        return shipped
    preset = PRESETS.get(text)
    if preset is not None:  # a preset is an architecture; loading one by name would only try the hub in vain
        published = f", or its published checkpoint {preset.hub_id}" if preset.hub_id else ""
        raise CheckpointNotFoundError(
            f"{text!r} names a preset (an architecture whose weights are untrained), not a checkpoint: pass a "
            f"trained model's folder, a training run's output folder or a .ckpt{published}; "
            f"perceiverkit.create_model({text!r}) builds it untrained.")
    if not _REPO_ID.match(text):
        raise CheckpointNotFoundError(
            f"There is no checkpoint directory at {text!r}, and it is not a hub id (owner/name) either; pass a "
            f"folder saved by save_pretrained, a hub id, or a shipped model ({', '.join(packaged_model_names())}).")
    from huggingface_hub import constants, snapshot_download

    try:
        cache = None if cache_dir is None else Path(cache_dir)
        return Path(snapshot_download(repo_id=text, revision=revision, cache_dir=cache, token=token,
                                      local_files_only=local_files_only, allow_patterns=_PATTERNS))
    except Exception as error:  # everything the hub raises becomes one sentence for the user
        offline = local_files_only or bool(constants.HF_HUB_OFFLINE)
        raise CheckpointNotFoundError(hub_error_message(text, revision, error, offline)) from None


def hub_error_message(repo_id: str, revision: str | None, error: Exception, offline: bool) -> str:
    """The sentence that explains why ``repo_id`` could not be fetched, and what to do about it."""
    # By class name: the classes moved between huggingface_hub releases (utils → errors); the names did not.
    kinds = {cls.__name__ for cls in type(error).__mro__}
    if "GatedRepoError" in kinds:
        return (f"The hub model {repo_id!r} is gated: accept its terms at https://huggingface.co/{repo_id}, then "
                "pass token=... or set HF_TOKEN.")
    if "RepositoryNotFoundError" in kinds:
        return (f"There is no model {repo_id!r} on the Hugging Face Hub, or it is private: check the id, or pass "
                "token=... (or set HF_TOKEN) if it is private; a local folder must exist at that path.")
    if "RevisionNotFoundError" in kinds:
        return (f"The hub model {repo_id!r} has no revision {revision!r}: check the branch, tag or commit name.")
    if offline:
        return (f"The model {repo_id!r} is not in this machine's Hugging Face Hub cache and downloads are switched "
                "off (HF_HUB_OFFLINE=1 or local_files_only=True): download it once while online, or pass a local "
                "folder.")
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return (f"Could not download {repo_id!r} from the Hugging Face Hub, and it is not in the local cache "
            f"({type(error).__name__}: {first_line}); check the connection and the id, or pass a local folder.")


class HubUploadError(PerceiverKitError, RuntimeError):
    """An upload to the Hugging Face Hub failed; the message says why and what to do."""


def push_to_hub(model: TaskModel[Any], repo_id: str, *, token: str | None = None, private: bool | None = None,
                commit_message: str = "Upload perceiverkit model", revision: str | None = None,
                training_record: str | os.PathLike[str] | None = None, endpoint: str | None = None) -> str:
    """Save ``model`` with its model card into a temporary folder and upload it as the hub repository ``repo_id``
    (created if missing, ``private`` if asked); returns the commit's URL. ``endpoint`` overrides the Hub's address
    (default: ``HF_ENDPOINT`` or huggingface.co). Progress bars are huggingface_hub's own."""
    from huggingface_hub import HfApi

    from .model_card import TrainingRecord, write_model_card

    if not _REPO_ID.match(repo_id) or "/" not in repo_id:
        raise ConfigError(f"{repo_id!r} is not a hub repository id; pass one as owner/name.")
    record = TrainingRecord.read(training_record) if training_record is not None else None
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="perceiverkit-push-") as folder:
        model.save_pretrained(folder)
        write_model_card(folder, model, name=repo_id.split("/")[-1], record=record, source=repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                       revision=revision, repo_type="model")
        except Exception as error:  # everything the hub raises becomes one sentence for the user
            raise HubUploadError(upload_error_message(repo_id, error)) from None
    return str(commit.commit_url)


def upload_error_message(repo_id: str, error: Exception) -> str:
    """The sentence that explains why uploading to ``repo_id`` failed."""
    kinds = {cls.__name__ for cls in type(error).__mro__}
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return (f"The Hugging Face Hub refused the upload to {repo_id!r}: pass token=... (or set HF_TOKEN, or run "
                "`hf auth login`) with a token that may write to that namespace.")
    if "OfflineModeIsEnabled" in kinds:
        return (f"Cannot upload to {repo_id!r}: Hugging Face Hub access is switched off (HF_HUB_OFFLINE=1); "
                "unset it to upload.")
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return (f"Could not upload to {repo_id!r} on the Hugging Face Hub ({type(error).__name__}: {first_line}); "
            "check the connection, the id and the token.")


install_hub_upload(push_to_hub)
