"""A user's install: the wheel built from this tree, installed in a fresh virtual environment, works from a
directory outside the repository, with the configs and the shipped models it carries as package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_in_a_fresh_virtual_environment(tmp_path):
    """Build the wheel (``pip wheel --no-deps --no-build-isolation``, from a copy of the sources so the checkout
    gets no build/ folder), install it with ``--no-deps`` into a new virtual environment outside the repository,
    and from an empty directory run ``perceiverkit --version``, two sections of the demo, ``from_pretrained`` by
    a shipped model's name and a two-step ``perceiverkit train --config digits``.

    Offline and fast: the new environment reuses the development environment's installed dependencies (torch,
    Lightning, …) through a ``.pth`` file naming its site-packages, which Python appends to ``sys.path`` after the
    new environment's own site-packages; so perceiverkit itself is imported from the wheel (checked), never from
    the checkout's ``src/``.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
          str(wheels), str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("perceiverkit-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    dev_site = sysconfig.get_paths()["purelib"]  # the development environment's (this interpreter's)
    (site / "_dev_dependencies.pth").write_text(dev_site + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
          str(wheel)], cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
    command = str(env_dir / "bin" / "perceiverkit")

    where = _run([str(python), "-c", "import perceiverkit; print(perceiverkit.__file__)"], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(site), where  # the wheel's copy, not the checkout's

    assert _run([command, "--version"], cwd=work, env=env).strip() == "perceiverkit 0.1.0"

    out = _run([command, "demo", "--sections", "fill-mask", "architectures", "--output", "demo"], cwd=work, env=env)
    assert "201,108,230" in out  # the language preset's parameter count
    summary = json.loads((work / "demo" / "summary.json").read_text())
    assert "program" in summary["fill_mask"]["filled"][0]  # the shipped byte-level MLM, not random weights

    loaded = _run([str(python), "-c", "import perceiverkit; m = perceiverkit.from_pretrained("
                   "'fashion-mnist-classifier'); print(type(m).__name__, m.config.num_labels)"], cwd=work, env=env)
    assert loaded.split() == ["ImageClassifier", "10"]

    _run([command, "train", "--config", "digits", "--set", "trainer.max_steps=2", "trainer.limit_val_batches=0",
          "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "output_dir=runs/digits"],
         cwd=work, env=env)
    assert (work / "runs" / "digits" / "model" / "model.safetensors").is_file()
