"""``perceiverkit bench``: the tiny suite runs every workload and agrees with Transformers (the oracle); the
measurements, reports, CLI and errors behave as documented."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import pytest
import torch
import torch.nn.functional as F
import transformers

import perceiverkit
import perceiverkit.checkpoints as checkpoints
from perceiverkit.benchmark import (
    SCHEMA,
    WORKLOADS,
    BenchOptions,
    PeakMemory,
    add_arguments,
    compact_table,
    count_flops,
    load_report,
    measure,
    relative_error,
    run_benchmark,
    run_workload,
    settings_text,
    stitch_tiles,
    time_steps,
)
from perceiverkit.cli import main

CPU = torch.device("cpu")
INFERENCE = [name for name, w in WORKLOADS.items() if w.mode == "infer"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    report = run_benchmark(BenchOptions(scale="tiny", warmup=0, steps=1, progress=False, out=out))
    return report, out


# --- the suite against the oracle -------------------------------------------------------------------------------

def test_every_workload_runs_and_agrees_with_transformers(tiny_run):
    report, _ = tiny_run
    assert [r.workload for r in report.results] == list(WORKLOADS)
    for r in report.results:
        assert r.error is None, f"{r.workload}: {r.error}"
        assert r.max_rel_error is not None and r.max_rel_error < 1e-4 and r.agreement_ok, r.workload
        assert set(r.errors) == ({"loss", "grad_norm"} if r.mode == "train" else {"output"})
        for impl in (r.ours, r.transformers):
            assert len(impl.times_ms) == 1 and impl.median_ms == impl.times_ms[0] > 0
            assert impl.samples_per_s == pytest.approx(r.batch_size / (impl.median_ms / 1000))
            assert impl.flops_per_step > 0 and impl.peak_memory_bytes is not None
        assert r.speedup == pytest.approx(r.transformers.median_ms / r.ours.median_ms)


def test_flops_show_the_extra_work_of_transformers_and_equal_work_elsewhere(tiny_run):
    results = {r.workload: r for r in tiny_run[0].results}
    train = results["mlm-train"]
    # Transformers decodes all 40 positions (and their logits); ours decodes only the 6 masked ones.
    assert train.transformers.flops_per_step > 1.5 * train.ours.flops_per_step
    for name in INFERENCE:  # counted independently on each side
        ours, theirs = results[name].ours.flops_per_step, results[name].transformers.flops_per_step
        if name.startswith(("vision", "flow")):
            # image inputs: our encoder attends to [pixels, positions] without projecting them (layers/factored.py)
            assert ours < 0.9 * theirs, name
        elif name == "multimodal":
            # video and audio likewise, each in its own basis; at this tiny size the encoder's cross-attention is
            # a small share of the work (at full size: docs/benchmarks.md)
            assert ours < 0.995 * theirs, name
        else:  # the same computation
            assert abs(ours - theirs) <= 0.01 * theirs, name


@pytest.mark.parametrize("name", ["mlm-train", "vision-conv"])
def test_a_wrong_weight_is_reported_as_disagreement(monkeypatch, name):
    """The agreement check is not vacuous: shifting our latents must show up as a large error."""
    real = checkpoints.from_pretrained

    def broken(*args, **kwargs):
        model = real(*args, **kwargs)
        with torch.no_grad():
            # random, not constant: LayerNorm would remove a constant shift
            model.perceiver.encoder.latents.add_(torch.randn_like(model.perceiver.encoder.latents))
        return model

    monkeypatch.setattr(checkpoints, "from_pretrained", broken)
    result, _ = run_workload(WORKLOADS[name], BenchOptions(scale="tiny", warmup=0, steps=1))
    assert result.error is None
    assert result.max_rel_error > 1e-3 and result.agreement_ok is False


# --- reports ----------------------------------------------------------------------------------------------------

IMPL_FIELDS = {"median_ms", "mean_ms", "min_ms", "times_ms", "samples_per_s", "peak_memory_bytes", "flops_per_step",
               "tflops", "fraction_of_peak"}
RESULT_FIELDS = {"workload", "description", "mode", "setup", "batch_size", "steps", "warmup", "agreement", "errors",
                 "max_rel_error", "tolerance", "agreement_ok", "speedup", "memory_ratio", "error", "ours",
                 "transformers"}
ENVIRONMENT_FIELDS = {"device", "device_name", "threads", "omp_num_threads", "dtype", "reference_dtype", "compile",
                      "compile_mode", "scale", "torch", "transformers",
                      "perceiverkit", "python", "date", "matmul_peak_tflops", "matmul_size", "memory_method"}


def test_json_has_the_documented_fields(tiny_run):
    _, out = tiny_run
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    env = data["environment"]
    assert ENVIRONMENT_FIELDS <= set(env)
    assert env["device"] == "cpu" and env["scale"] == "tiny" and env["transformers"] == transformers.__version__
    assert env["perceiverkit"] == perceiverkit.__version__ and env["matmul_peak_tflops"] > 0
    assert data["options"]["steps"] == 1 and data["options"]["warmup"] == 0
    assert len(data["results"]) == len(WORKLOADS)
    for row in data["results"]:
        assert set(row) == RESULT_FIELDS
        assert set(row["ours"]) == set(row["transformers"]) == IMPL_FIELDS
        assert row["ours"]["tflops"] == pytest.approx(row["ours"]["flops_per_step"] / row["ours"]["median_ms"] / 1e9)
    assert load_report(out).to_dict() == data  # and it reads back


def test_markdown_has_a_header_and_one_row_per_workload(tiny_run):
    report, out = tiny_run
    text = (out / "bench.md").read_text(encoding="utf-8")
    for fact in ("device: cpu", "torch ", "transformers ", "perceiverkit ", "date: ", "matmul peak: "):
        assert fact in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| workload")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {n} ({WORKLOADS[n].mode})" for n in WORKLOADS]
    assert all(row.count(" | ") == 13 for row in rows)  # 14 columns
    compact = compact_table(report.results).splitlines()
    assert len(compact) == 2 + len(WORKLOADS)


# --- command line -----------------------------------------------------------------------------------------------

def test_cli_bench_prints_and_writes_the_table(tmp_path, capsys):
    args = ["bench", "--scale", "tiny", "--workloads", "mlm-infer,vision-conv", "--steps", "1", "--warmup", "0",
            "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| mlm-infer (infer) |" in out and "| vision-conv (infer) |" in out and "vision-learned" not in out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert [r["workload"] for r in data["results"]] == ["mlm-infer", "vision-conv"]
    assert all(r["error"] is None and r["agreement_ok"] for r in data["results"])


@pytest.mark.parametrize("dtype, agrees", [("fp16", True), ("bf16", False)])
def test_half_precision_against_an_fp32_reference_is_judged_by_the_one_percent_rule(tmp_path, capsys, dtype,
                                                                                     agrees):
    # Ours under autocast, Transformers in fp32: the error is half-precision rounding, above fp32's 1e-4. On
    # this tiny random flow model fp16 (10-bit mantissa) lands at about 0.2 %, bf16 (7-bit) at about 1.4 %:
    # the 1 % rule must tell them apart.
    args = ["bench", "--scale", "tiny", "--workloads", "flow-368x496", "--steps", "1", "--warmup", "0",
            "--dtype", dtype, "--reference-dtype", "fp32", "--out", str(tmp_path)]
    assert main(args) == 0
    assert f"dtype: {dtype}; Transformers' dtype: fp32; scale: tiny" in capsys.readouterr().out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert data["environment"]["dtype"] == dtype and data["environment"]["reference_dtype"] == "fp32"
    (row,) = data["results"]
    assert row["error"] is None and row["tolerance"] == 1e-2
    assert row["max_rel_error"] > 1e-4 and row["agreement_ok"] is agrees


def test_cast_weights_runs_inference_in_half_precision_and_training_under_autocast(tmp_path, capsys):
    args = ["bench", "--scale", "tiny", "--workloads", "mlm-train,vision-fourier", "--steps", "1", "--warmup", "0",
            "--dtype", "bf16", "--reference-dtype", "fp32", "--cast-weights", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "dtype: bf16; Transformers' dtype: fp32; ours with weights cast to dtype for inference: yes" in \
        capsys.readouterr().out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert data["environment"]["cast_weights"] is True
    train, infer = data["results"]
    assert train["error"] is None and "weights" not in train["setup"]
    # bf16 end to end against Transformers' fp32: rounding well above fp32's, within the 1 % rule.
    assert infer["error"] is None and infer["setup"].endswith("(bf16 weights)")
    assert 1e-4 < infer["max_rel_error"] < 1e-2 and infer["agreement_ok"]


def test_half_precision_latents_are_used_and_reported(tmp_path, capsys, monkeypatch):
    from perceiverkit.encoder import PerceiverEncoder

    settings, forward = [], PerceiverEncoder.forward
    monkeypatch.setattr(PerceiverEncoder, "forward",
                        lambda self, *a, **k: settings.append(self.half_precision_latents) or forward(self, *a, **k))
    args = ["bench", "--scale", "tiny", "--workloads", "mlm-train", "--steps", "1", "--warmup", "0",
            "--dtype", "bf16", "--half-precision-latents", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "dtype: bf16; ours with half-precision latents: yes; scale: tiny" in capsys.readouterr().out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert data["environment"]["half_precision_latents"] is True
    (row,) = data["results"]
    assert row["error"] is None and row["agreement_ok"]
    assert set(settings) == {True}  # every step of ours ran with the setting (the effect: tests/test_half_precision.py)


def test_attention_kernel_is_used_and_reported(tmp_path, capsys, monkeypatch):
    from perceiverkit.layers.attention import MultiHeadAttention

    kernels, forward = set(), MultiHeadAttention.forward
    monkeypatch.setattr(MultiHeadAttention, "forward",
                        lambda self, *a, **k: kernels.add(self.kernel) or forward(self, *a, **k))
    args = ["bench", "--scale", "tiny", "--workloads", "mlm-infer", "--steps", "1", "--warmup", "0",
            "--attention-kernel", "explicit", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "our attention kernel: explicit" in capsys.readouterr().out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert data["environment"]["attention_kernel"] == "explicit"
    (row,) = data["results"]
    assert row["error"] is None and row["agreement_ok"] and row["max_rel_error"] < 1e-5
    assert kernels == {"explicit"}


@pytest.mark.slow  # compiles with Inductor
def test_compile_mode_and_memory_budget_are_reported(tmp_path, capsys):
    args = ["bench", "--scale", "tiny", "--workloads", "mlm-infer", "--steps", "1", "--warmup", "1",
            "--compile-mode", "reduce-overhead", "--memory-budget", "0.5", "--out", str(tmp_path)]
    assert main(args) == 0
    # --compile-mode implies --compile
    assert "ours compiled: yes; compile mode: reduce-overhead; activation memory budget: 0.5" in \
        capsys.readouterr().out
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert data["environment"]["compile"] is True and data["environment"]["compile_mode"] == "reduce-overhead"
    assert data["environment"]["memory_budget"] == 0.5
    (row,) = data["results"]
    assert row["error"] is None and row["agreement_ok"] and "output (compiled)" in row["errors"]


def test_unknown_workload_is_a_one_line_error_listing_the_valid_ones(capsys):
    assert main(["bench", "--scale", "tiny", "--workloads", "mlm-infer", "vision-nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("perceiverkit bench: error:") and "vision-nope" in err
    assert all(name in err for name in WORKLOADS)


@pytest.mark.parametrize("options, message", [
    (dict(steps=0), "steps >= 1"), (dict(warmup=-1), "warmup >= 0"), (dict(batch_size=0), "batch size"),
    (dict(dtype="fp64"), "dtype"), (dict(reference_dtype="fp64"), "reference_dtype"), (dict(scale="huge"), "scale"),
    (dict(device="tpu"), "device"),
    (dict(compile=True, warmup=0), "compile needs warmup >= 1"),
    (dict(compile_mode="reduce-overhead", warmup=0), "compile needs warmup >= 1"),
    (dict(compile=True, compile_mode="fastest"), "compile_mode must be one of"),
    (dict(cast_weights=True), "cast_weights needs dtype bf16 or fp16"),
    (dict(memory_budget=0.5), "memory_budget needs compile=True"),
    (dict(half_precision_latents=True), "half_precision_latents needs dtype bf16 or fp16"),
    (dict(attention_kernel="flash"), "attention_kernel must be one of"),
    (dict(dtype="bf16", cast_weights=True, half_precision_latents=True), "half_precision_latents needs"),
    (dict(compile=True, memory_budget=1.5), r"memory_budget must be a number in \[0, 1\]"),
])
def test_bad_options_are_rejected_before_any_work(options, message):
    with pytest.raises(ValueError, match=message):
        BenchOptions(**options).resolve()


def _resolved(**options) -> tuple:
    resolved = BenchOptions(**options).resolve()
    return resolved.scale, resolved.warmup, resolved.steps, resolved.compile


def test_defaults_follow_the_scale_and_compile_always_warms_up():
    assert _resolved(scale="cpu") == ("cpu", 0, 1, False)
    assert _resolved(scale="cpu", compile=True) == ("cpu", 1, 1, True)
    assert _resolved(scale="cpu", compile_mode="reduce-overhead") == ("cpu", 1, 1, True)  # a mode implies compile
    assert _resolved(scale="tiny", steps=5) == ("tiny", 1, 5, False)
    assert _resolved()[0] == "cpu"  # on a CPU device


# --- one definition: flags and settings come from the dataclass's fields ---------------------------------------

def test_every_field_is_a_flag_and_no_flags_means_the_defaults():
    flags = {action.dest: action for action in _bench_parser()._actions if action.dest != "help"}
    fields = {f.name: f for f in dataclasses.fields(BenchOptions)}
    assert set(flags) == {name for name, f in fields.items() if f.metadata["flag"]} == set(fields) - {"progress"}
    assert BenchOptions.from_args(_bench_parser().parse_args([])) == BenchOptions()
    assert flags["dtype"].choices == ("fp32", "bf16", "fp16") and flags["scale"].choices == ("full", "cpu", "tiny")
    assert flags["memory_budget"].type is float and flags["steps"].type is int
    assert all(flag.help for flag in flags.values())


def test_flags_give_the_options_they_name():
    args = _bench_parser().parse_args(["--dtype", "bf16", "--reference-dtype", "fp32", "--cast-weights",
                                       "--workloads", "mlm-infer", "vision-conv", "--batch-size", "3",
                                       "--memory-budget", "0.5", "--compile-mode", "default"])
    assert BenchOptions.from_args(args) == BenchOptions(
        dtype="bf16", reference_dtype="fp32", cast_weights=True, workloads=["mlm-infer", "vision-conv"],
        batch_size=3, memory_budget=0.5, compile_mode="default")


def test_settings_text_shows_the_precision_and_scale_and_every_setting_that_is_not_the_default():
    assert settings_text(BenchOptions(scale="cpu").settings()) == "dtype: fp32; scale: cpu"
    text = settings_text(BenchOptions(dtype="fp16", compile=True, memory_budget=0.0, scale="full",
                                      attention_kernel="explicit").settings())
    assert text == ("dtype: fp16; our attention kernel: explicit; ours compiled: yes; "
                    "activation memory budget: 0; scale: full")


def _bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


# --- the workloads are the published ones -----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(WORKLOADS))
def test_full_and_cpu_scales_build_the_published_architectures(name):
    workload = WORKLOADS[name]
    with torch.device("meta"):  # shapes only
        expected = perceiverkit.create_model(workload.preset).num_parameters()
        for scale in ("full", "cpu"):
            case = workload.case(scale)
            theirs = getattr(transformers, case.hf_class)(transformers.PerceiverConfig(**case.hf_config))
            assert sum(p.numel() for p in theirs.parameters()) == expected, scale


def test_full_scale_inputs_follow_the_published_setups():
    gen = torch.Generator().manual_seed(0)
    mlm = WORKLOADS["mlm-train"].case("full").make_inputs(gen)
    assert mlm["input_ids"].shape == (64, 2048) and mlm["output_points"].shape == (64, 307)  # 15 % of 2048
    masked = mlm["labels"] != -100
    assert masked.sum(1).tolist() == [307] * 64
    assert bool((mlm["input_ids"][masked] == perceiverkit.ByteTokenizer.mask_token_id).all())
    # Transformers' documented multimodal example: the first of 128 chunks = 6272 pixels, 15 audio patches.
    multimodal = WORKLOADS["multimodal"].case("full", batch_size=1).make_inputs(gen)
    assert multimodal["inputs"]["image"].shape == (1, 16, 3, 224, 224)
    assert multimodal["inputs"]["audio"].shape == (1, 30720, 1)
    assert len(multimodal["points"]["image"]) == 6272 and len(multimodal["points"]["audio"]) == 15
    assert WORKLOADS["flow-436x1024"].case("full").setup == "1 pair(s) 436×1024, 6 tiles of 368×496"
    assert WORKLOADS["vision-fourier"].case("full").batch_size == 64


# --- measurement helpers ----------------------------------------------------------------------------------------

def test_stitched_tiles_reassemble_the_frame():
    # If every tile's "flow" is its own pixels, blending the overlapping tiles must give back the frame.
    frames = torch.rand(2, 2, 27, 20, 30)
    stitched = stitch_tiles(lambda tile: tile[:, 0, :2].permute(0, 2, 3, 1), frames, (12, 16), 3)
    torch.testing.assert_close(stitched, frames[:, 0, :2].permute(0, 2, 3, 1))
    with pytest.raises(ValueError, match="smaller than a 12×16 tile"):
        stitch_tiles(lambda tile: tile, torch.rand(1, 2, 27, 10, 30), (12, 16), 3)


def test_flop_count_of_a_matmul_is_2mnk():
    a, b = torch.randn(32, 48), torch.randn(48, 16)
    assert count_flops(lambda: a @ b)[1] == 2 * 32 * 48 * 16


def test_fused_attention_counts_like_explicit_matmuls():
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 6)

    def explicit(q, k, v):
        return ((q @ k.transpose(-1, -2)) * 8**-0.5).softmax(-1) @ v

    with torch.no_grad():
        fused = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))[1]
        plain = count_flops(lambda: explicit(q, k, v))[1]
    assert fused == plain == 2 * 2 * 4 * 10 * 12 * (8 + 6)
    for t in (q, k, v):
        t.requires_grad_()
    fused_train = count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())[1]
    plain_train = count_flops(lambda: explicit(q, k, v).sum().backward())[1]
    assert fused_train == plain_train == 3 * fused


@pytest.mark.parametrize("high_water_mark", [True, False], ids=["VmHWM", "sampled"])
def test_cpu_peak_memory_sees_a_transient_allocation(monkeypatch, high_water_mark):
    if measure.resident_bytes() is None:
        pytest.skip("no way to read resident memory here")
    if not high_water_mark:
        monkeypatch.setattr(measure, "_reset_high_water_mark", lambda: False)
    size = 128 * 2**20
    with PeakMemory(CPU) as memory:
        block = torch.ones(size // 4)  # written, so resident
        time.sleep(0.05)  # long enough for the sampler
        del block
    assert memory.method.startswith("VmHWM" if high_water_mark else "VmRSS")
    assert 0.9 * size <= memory.peak_bytes < 2 * size


def test_time_steps_times_each_call():
    calls = []
    timing = time_steps(lambda: calls.append(time.sleep(0.01)) or len(calls), 3, CPU, keep_first=True)
    assert len(calls) == 3 and len(timing.times_s) == 3 and timing.first_output == 1
    assert all(t >= 0.009 for t in timing.times_s) and timing.median_s >= 0.009
    with pytest.raises(ValueError, match="at least 1"):
        time_steps(lambda: None, 0, CPU)


def test_relative_error_is_max_difference_over_max_reference():
    assert relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])) == 0.5
    pair = {"a": torch.tensor([1.0]), "b": torch.tensor([2.0, 2.0])}
    assert relative_error({"a": torch.tensor([1.0]), "b": torch.tensor([2.0, 3.0])}, pair) == 0.5
    with pytest.raises(ValueError, match="shape"):
        relative_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="keys"):
        relative_error({"a": torch.zeros(1)}, pair)


def test_bench_options_name_the_library_choices():
    """options.py spells out the kernel choices so that `bench --help` needs no torch; they must stay accel's."""
    from perceiverkit.accel import ATTENTION_KERNELS
    from perceiverkit.benchmark import options

    assert options.ATTENTION_KERNELS == ATTENTION_KERNELS
