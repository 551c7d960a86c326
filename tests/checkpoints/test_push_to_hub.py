"""push_to_hub uploads the saved model and its card through huggingface_hub, to a local stand-in for the Hub.

The server below answers the four Hub API calls that ``HfApi.create_repo`` + ``HfApi.upload_folder`` make
(``/api/repos/create``, ``/api/validate-yaml``, ``…/preupload/{revision}``, ``…/commit/{revision}``) and records
each request. It answers "regular" for every file's upload mode, so the files' contents arrive inline (base64) in
the commit's NDJSON, as the Hub receives small files, and no LFS or Xet transfer is involved. Nothing reaches
the internet: the server listens on 127.0.0.1 and huggingface_hub is given its address as ``endpoint``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
import yaml

from perceiverkit import create_model
from perceiverkit.checkpoints.hub import HubUploadError

TOKEN = "hf_test_token_not_real"
REPO = "someone/tiny-classifier"


class FakeHub:
    """A recording of what the local Hub stand-in received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.reject_with: int | None = None  # answer every call with this status instead

    def calls(self, path_part: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if path_part in r["path"]]


def _handler(hub: FakeHub, address: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest's output clean
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            hub.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
            self._reply(404, {"error": "not served by the test hub"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hub.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
            if hub.reject_with is not None:
                return self._reply(hub.reject_with, {"error": "Invalid credentials in Authorization header"})
            path = self.path.split("?")[0]
            if path == "/api/repos/create":
                payload = json.loads(body)
                return self._reply(200, {"url": f"{address[0]}/{payload['organization']}/{payload['name']}"})
            if path == "/api/validate-yaml":
                return self._reply(200, {})
            if "/preupload/" in path:
                files = json.loads(body)["files"]
                return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                   for f in files]})
            if "/commit/" in path:
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                return self._reply(200, {"commitUrl": f"{address[0]}/{REPO}/commit/{'0' * 40}",
                                         "commitOid": "0" * 40})
            return self._reply(404, {"error": f"not served by the test hub: {path}"})

    return Handler


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHub, str]]:
    import huggingface_hub.constants

    # The suite may run with HF_HUB_OFFLINE=1 (it must never download); this test talks only to 127.0.0.1.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    hub, address = FakeHub(), [""]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub, address))  # port 0: a free port
    server.daemon_threads = True
    address[0] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hub, address[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _tiny_classifier() -> Any:
    torch.manual_seed(0)
    return create_model("vision-perceiver-conv", num_labels=3, labels=["cat", "dog", "fox"],
                        **_tiny_overrides())


def _tiny_overrides() -> dict[str, Any]:
    from perceiverkit.tasks.registry import preset_config

    config = preset_config("vision-perceiver-conv")
    encoder = type(config.encoder)(num_latents=8, d_latents=32, num_self_attends_per_block=1,
                                   num_self_attention_heads=2, num_cross_attention_heads=1)
    return {"encoder": encoder}


def test_push_to_hub_uploads_weights_config_and_card(fake_hub, tmp_path, monkeypatch):
    hub, endpoint = fake_hub
    model = _tiny_classifier()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: image-classification\ndata: {source: image-folder, batch_size: 8}\n"
                                     "optim: {lr: 0.001}\ntrainer: {max_steps: 20}\nseed: 3\n")
    (run / "metrics.json").write_text(json.dumps({"val/accuracy": 0.8333333, "val/loss": 0.41234567,
                                                  "train/loss": 0.3}))

    saved: dict[str, bytes] = {}
    save = model.save_pretrained

    def save_and_keep(directory, *args, **kwargs):  # the folder push_to_hub uploads is temporary: keep its files
        result = save(directory, *args, **kwargs)
        saved.update({path.name: path.read_bytes() for path in Path(directory).iterdir()})
        return result

    monkeypatch.setattr(model, "save_pretrained", save_and_keep)
    url = model.push_to_hub(REPO, token=TOKEN, private=True, training_record=run, endpoint=endpoint)

    assert url.startswith(endpoint) and "/commit/" in url
    create = hub.calls("/api/repos/create")
    assert len(create) == 1
    assert json.loads(create[0]["body"]) == {"name": "tiny-classifier", "organization": "someone",
                                              "visibility": "private", "type": "model"}
    posts = [r for r in hub.requests if r["method"] == "POST"]
    assert posts and all(r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in posts)
    assert hub.calls(f"/api/models/{REPO}/preupload/main") and hub.calls(f"/api/models/{REPO}/commit/main")

    # The uploaded files are exactly what save_pretrained wrote, plus the card; the weights are the model's.
    assert set(hub.files) == {*saved, "README.md"} and {"model.safetensors", "perceiverkit.json"} <= set(saved)
    assert all(hub.files[name] == saved[name] for name in saved)
    uploaded = safetensors.torch.load(hub.files["model.safetensors"])
    assert uploaded.keys() == model.state_dict().keys()
    assert all(torch.equal(uploaded[key], value) for key, value in model.state_dict().items())
    assert json.loads(hub.files["perceiverkit.json"])["task"] == "image-classification"

    card = hub.files["README.md"].decode()
    assert card.startswith("---\n")
    metadata = yaml.safe_load(card.split("---\n")[1])
    assert metadata["library_name"] == "perceiverkit"
    assert metadata["pipeline_tag"] == "image-classification"
    assert {"perceiver-io", "perceiverkit"} <= set(metadata["tags"])
    assert metadata["datasets"] == ["image-folder"]
    assert metadata["metrics"] == ["accuracy", "loss"]
    results = metadata["model-index"][0]["results"][0]
    assert results["task"]["type"] == "image-classification" and results["dataset"]["split"] == "validation"
    values = {m["type"]: m["value"] for m in results["metrics"]}
    assert values == {"accuracy": 0.8333, "loss": 0.4123}  # train/ metrics are not results
    body = card.split("---\n", 2)[2]
    assert "**0.8333** accuracy" in body and "**0.4123** loss" in body  # the text states the metadata's values
    assert "`cat`, `dog`, `fox`" in body and f'from_pretrained("{REPO}")' in body
    assert "seed 3" in body


def test_push_to_hub_private_unset_leaves_visibility_to_the_hub(fake_hub):
    hub, endpoint = fake_hub
    _tiny_classifier().push_to_hub(REPO, token=TOKEN, endpoint=endpoint)
    assert "visibility" not in json.loads(hub.calls("/api/repos/create")[0]["body"])
    card = hub.files["README.md"].decode()
    assert "model-index" not in card  # no record, no results: nothing is made up


def test_refused_upload_is_one_sentence(fake_hub):
    hub, endpoint = fake_hub
    hub.reject_with = 401
    with pytest.raises(HubUploadError) as caught:
        _tiny_classifier().push_to_hub(REPO, token="wrong", endpoint=endpoint)
    message = str(caught.value)
    assert "\n" not in message and REPO in message and "token" in message


def test_bad_repo_id_is_refused_before_any_request(fake_hub):
    hub, endpoint = fake_hub
    with pytest.raises(ValueError, match="owner/name"):
        _tiny_classifier().push_to_hub("no-owner", token=TOKEN, endpoint=endpoint)
    assert hub.requests == []


def test_pushed_card_states_the_uploaded_weights_size(fake_hub):
    """The card lists the file size of the weights it went up with."""
    hub, endpoint = fake_hub
    _tiny_classifier().push_to_hub(REPO, token=TOKEN, endpoint=endpoint)
    size_mb = len(hub.files["model.safetensors"]) / 1e6
    assert f"{size_mb:.1f} MB (`model.safetensors`)" in hub.files["README.md"].decode()
