"""The command line: real subprocess-free calls of main(), one-line errors, exit codes."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers

import perceiverkit
from perceiverkit import EncoderConfig, MaskedLanguageModel, MaskedLanguageModelConfig
from perceiverkit.cli import COMMANDS, build_parser, main
from perceiverkit.cli._errors import OPTIONAL_MODULES
from perceiverkit.resources import packaged_config

from .helpers import small_hf_config


def test_presets_lists_the_language_model(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "language-perceiver" in out and "201,108,230" in out


def test_convert_then_fill_mask(save_hf, tmp_path, capsys):
    _, directory = save_hf(transformers.PerceiverForMaskedLM, small_hf_config())
    assert main(["convert", str(directory), str(tmp_path / "ours")]) == 0
    assert (tmp_path / "ours" / "perceiverkit.json").is_file()
    assert main(["fill-mask", "ab[MASK]d", "--model", str(tmp_path / "ours"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "'ab[MASK]d' →" in out and "mask 0:" in out


def test_fill_mask_without_mask_is_a_one_line_error(tmp_path, capsys):
    torch.manual_seed(0)
    MaskedLanguageModel(MaskedLanguageModelConfig(d_model=16, max_position_embeddings=16, encoder=EncoderConfig(
        num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
        num_cross_attention_heads=2))).save_pretrained(tmp_path)
    assert main(["fill-mask", "no masks here", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must contain at least one [MASK]" in err


def test_missing_checkpoint_is_a_one_line_error(capsys):
    assert main(["fill-mask", "[MASK]", "--model", "/definitely/not/here"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/definitely/not/here" in err


# --- which errors are one line, which show their traceback ------------------------------------------------------

def test_every_command_is_listed_with_its_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per command
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out and command.HELP in out for name, command in COMMANDS.items())


def test_a_bug_shows_its_traceback(monkeypatch):
    def broken(args):
        return len(3)  # a TypeError: a bug, not bad input

    monkeypatch.setattr(COMMANDS["presets"], "run", broken)
    with pytest.raises(TypeError):
        main(["presets"])


def test_a_value_error_from_outside_the_library_shows_its_traceback(monkeypatch):
    monkeypatch.setattr(COMMANDS["presets"], "run", lambda args: int("three"))
    with pytest.raises(ValueError, match="three"):
        main(["presets"])


def test_a_missing_optional_extra_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails as if not installed
    assert main(["bench", "--scale", "tiny", "--workloads", "mlm-infer"]) == 2
    err = capsys.readouterr().err
    assert err == ('perceiverkit bench: error: needs the optional extra bench (transformers is not installed): '
                   'pip install "perceiverkit[bench]"\n')


def test_each_optional_module_is_installed_by_its_extra():
    """The table of the CLI against pyproject.toml, through the installed distributions that provide each module."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    providers = importlib.metadata.packages_distributions()
    for module, extra in OPTIONAL_MODULES.items():
        required = {re.split(r"[<>=\[ ]", requirement)[0].lower() for requirement in extras[extra]}
        installed = {name.lower() for name in providers.get(module, [])}
        assert not installed or installed & required, (module, extra, installed, required)


# --- manners: --version, a quick --help, packaged configs and models ----------------------------------------------

#: Commands whose flags are built from modules that import torch (bench: BenchOptions' fields and their choices).
TORCH_FOR_FLAGS: set[str] = set()  # every command builds its flags without torch


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"perceiverkit {perceiverkit.__version__}\n"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_does_not_import_torch(command):
    """--help and --version must not wait for torch: a fresh interpreter parses and checks sys.modules."""
    argv = ["--help"] if command is None else [command, "--help"]
    code = (f"import sys\nfrom perceiverkit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert done.returncode == 0 and "usage: perceiverkit" in done.stdout, done.stderr
    if command in TORCH_FOR_FLAGS:
        return
    assert done.stderr.strip().splitlines()[-1] == "NO TORCH"
    assert seconds < 2, f"perceiverkit {' '.join(argv)} took {seconds:.2f} s"


def test_demo_sections_match_the_library():
    from perceiverkit import demo
    from perceiverkit.cli import demo as demo_command

    assert demo_command.SECTIONS == demo.SECTIONS


def test_train_config_by_name_from_another_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "digits", "--print-config", "--set", "trainer.max_steps=2"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 2" in out and "image-classification" in out


def test_unknown_config_name_lists_the_packaged_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "digitz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'digitz'" in err and "fashion-mnist" in err


def test_a_config_path_still_works(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(packaged_config("digits").read_text())
    assert main(["train", "--config", str(path), "--print-config"]) == 0
    assert "image-classification" in capsys.readouterr().out


def test_shipped_model_by_name_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = perceiverkit.from_pretrained("fashion-mnist-classifier")
    assert type(model).__name__ == "ImageClassifier" and model.config.num_labels == 10


def test_a_local_folder_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    perceiverkit.from_pretrained("byte-mlm").save_pretrained(tmp_path / "fashion-mnist-classifier")
    assert type(perceiverkit.from_pretrained("fashion-mnist-classifier")).__name__ == "MaskedLanguageModel"


def test_every_install_hint_in_the_library_names_an_extra_that_exists():
    """A lazily imported optional module's ImportError says `pip install 'perceiverkit[extra]'` with a real extra."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    extras, core = set(project["optional-dependencies"]), " ".join(project["dependencies"]).lower()
    package = Path(perceiverkit.__file__).parent
    hints = {(path.name, hint) for path in package.rglob("*.py") if path.name != "_errors.py"  # formats {extra}
             for hint in re.findall(r"pip install (\S+)", path.read_text(encoding="utf-8"))
             if hint.strip("\"'`).").lower() not in core}  # a core dependency (Pillow) has no extra to name
    named = {re.search(r"perceiverkit\[(\w+)\]", hint) for _, hint in hints}
    assert None not in named, sorted(hints)  # no bare `pip install scikit-learn`
    assert {match.group(1) for match in named if match} <= extras


# --- inference commands: classify-text, --device and --dtype -------------------------------------------------------

INFERENCE_COMMANDS = ("fill-mask", "classify-image", "classify-text", "flow", "autoencode", "eval-flow", "generate",
                      "predict")


def _tiny_text_classifier(directory: Path) -> Path:
    from perceiverkit import SequenceClassifier, SequenceClassifierConfig

    torch.manual_seed(0)
    return SequenceClassifier(SequenceClassifierConfig(
        d_model=16, max_position_embeddings=32, num_labels=3, labels=("sport", "music", "food"),
        encoder=EncoderConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1, num_self_attention_heads=2,
                              num_cross_attention_heads=1))).save_pretrained(directory)


def test_every_inference_command_takes_device_and_dtype():
    parser = build_parser()
    for name in INFERENCE_COMMANDS:
        words = {"fill-mask": ["[MASK]"], "classify-text": ["t", "--model", "m"], "autoencode": ["v.mp4"],
                 "eval-flow": [], "generate": ["a prompt", "--model", "m"],
                 "predict": ["--model", "m", "in.csv", "-o", "out.jsonl"]}.get(name, ["a", "b"])
        args = parser.parse_args([name, *words, "--device", "cpu", "--dtype", "bfloat16"])
        assert (args.device, args.dtype) == ("cpu", "bfloat16")
        assert parser.parse_args([name, *words]).device == "auto"  # an accelerator when present


def test_classify_text_in_bfloat16(tmp_path, capsys):
    model = _tiny_text_classifier(tmp_path / "model")
    assert main(["classify-text", "a goal in the last minute", "pasta with basil", "--model", str(model),
                 "--top-k", "2", "--device", "auto", "--dtype", "bfloat16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("'a goal in the last minute': ")
    assert all(line.count("%)") == 2 and re.search(r"(sport|music|food) \(\d+\.\d%\)", line) for line in lines)


def test_eval_flow_in_bfloat16_on_the_shipped_model(capsys):
    """The EPE in bfloat16 is close to float32's 1.64 px at 93×62 (docs/results.md), not equal to it."""
    assert main(["eval-flow", "--model", "optical-flow-small", "--scale", "0.125", "--dtype", "bfloat16"]) == 0
    epe = float(re.search(r"EPE (\d+\.\d+) px", capsys.readouterr().out).group(1))
    assert abs(epe - 1.64) < 0.05


def test_fill_mask_on_the_shipped_model_with_device_and_dtype(capsys):
    assert main(["fill-mask", "the cat s[MASK]t", "--model", "byte-mlm", "--device", "cpu",
                 "--dtype", "float16"]) == 0
    out = capsys.readouterr().out
    assert "'the cat s[MASK]t' → 'the cat s" in out and "mask 0: '" in out


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--device", "tpu", "unknown device 'tpu'; expected one of ['auto', 'cpu', 'cuda', 'mps']"),
    ("--dtype", "float64", "unknown dtype 'float64'; expected one of ['float32', 'bfloat16', 'float16']"),
    ("--device", "cuda", "device 'cuda' is not available: this machine has no CUDA; choose cpu, or auto"),
])
def test_a_wrong_device_or_dtype_is_one_line_naming_the_choices(flag, value, message, tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = _tiny_text_classifier(tmp_path / "model")
    assert main(["classify-text", "hello", "--model", str(model), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"perceiverkit classify-text: error: {message}")


def test_classify_text_refuses_a_model_of_another_task(capsys):
    assert main(["classify-text", "hello", "--model", "byte-mlm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected task 'text-classification'" in err
