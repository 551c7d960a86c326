"""Resolving a checkpoint source: a local directory, or a Hugging Face Hub id fetched into the hub's cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .files import CheckpointNotFoundError

# Files worth downloading: the config and the weights in either format (never e.g. TF or Flax weights).
_PATTERNS = ["config.json", "perceiverkit.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
             "pytorch_model.bin.index.json"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_source(
    source: str | os.PathLike[str],
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> Path:
    """The local directory that holds ``source``: the path itself, or a hub snapshot in the cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointNotFoundError(f"{source} is a file; expected a checkpoint directory or a hub id")
    text = os.fspath(source)
    if not _REPO_ID.match(text):
        raise CheckpointNotFoundError(f"no checkpoint directory at {text!r} (and it is not a valid hub id)")
    try:
        from huggingface_hub import snapshot_download

        cache = None if cache_dir is None else Path(cache_dir)
        return Path(snapshot_download(repo_id=text, revision=revision, cache_dir=cache,
                                      local_files_only=local_files_only, allow_patterns=_PATTERNS))
    except Exception as error:  # network, offline mode, missing repo, auth: all end the same way for the user
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointNotFoundError(
            f"could not get {text!r} from the Hugging Face Hub ({type(error).__name__}: {first_line}). "
            "It is neither a local directory nor in the hub cache; check the id, or download it while online."
        ) from None
