"""The ``ats`` command line: help everywhere, and every mnist command."""

import json
import subprocess
import sys

import keras
import pytest
import tiny_run

from ats.cli import build_parser, main

BACKEND = keras.backend.backend()

COMMANDS = [
    [],
    ["fit"],
    ["evaluate"],
    ["predict"],
    ["datasets"],
    ["datasets", "synthetic"],
    ["datasets", "speed-limits"],
    ["datasets", "colon-cancer"],
    ["mnist"],
    ["mnist", "make-data"],
    ["mnist", "train"],
    ["mnist", "evaluate"],
    ["mnist", "visualize"],
    ["mnist", "report"],
    ["gigapixel"],
    ["gigapixel", "make-data"],
    ["gigapixel", "train"],
    ["gigapixel", "evaluate"],
    ["gigapixel", "visualize"],
]
TINY = tiny_run.DATA
TINY_TRAIN = [*tiny_run.TRAIN, "--quiet"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*command, "--help"])
    assert exit.value.code == 0
    assert "usage: ats" in capsys.readouterr().out


def test_a_group_without_command_prints_its_usage(capsys):
    assert main(["mnist"]) == 2
    assert "make-data" in capsys.readouterr().out
    assert main([]) == 2


def test_groups_register_themselves():
    parser = build_parser()
    assert parser.prog == "ats"
    with pytest.raises(SystemExit):
        parser.parse_args(["nonsense"])


@pytest.mark.parametrize("group", ["mnist", "gigapixel"])
def test_hyperparameter_flags_come_from_the_declaration(group):
    import dataclasses

    from ats.experiments import gigapixel_mnist, megapixel_mnist

    experiment = {"mnist": megapixel_mnist, "gigapixel": gigapixel_mnist}[group]
    args = build_parser().parse_args(
        [
            group,
            "train",
            "--run-dir",
            "r",
            "--learning-rate",
            "0.5",
            "--patch-size",
            "20x30",
            "--replace",
            "--picture-images",
            "4",
            "5",
        ]
    )
    assert (args.learning_rate, args.patch_size, args.replace) == (0.5, (20, 30), True)
    assert args.picture_images == [4, 5]
    # Every field has its flag, left out: None (the preset or default rules).
    for field in dataclasses.fields(experiment.TrainConfig):
        if field.name not in ("learning_rate", "patch_size", "replace"):
            assert getattr(args, field.name, "missing") in (None, [4, 5])
    with pytest.raises(SystemExit):
        build_parser().parse_args([group, "train", "--run-dir", "r", "--lr", "1"])


def test_mnist_choices_are_the_librarys():
    from ats.experiments.megapixel_mnist import PRESETS
    from ats.models.megapixel_mnist import MODELS

    args = build_parser().parse_args(["mnist", "train", "--run-dir", "r"])
    assert (args.preset, args.model) == ("quick", None)
    for model in MODELS:
        build_parser().parse_args(
            ["mnist", "train", "--run-dir", "r", "--model", model]
        )
    for preset in PRESETS:
        build_parser().parse_args(
            ["mnist", "train", "--run-dir", "r", "--preset", preset]
        )


def test_the_strategies_are_the_librarys():
    import ats.cli
    from ats.distribute import STRATEGIES

    assert set(ats.cli.STRATEGIES) == {"auto"}.union(*STRATEGIES.values())


@pytest.mark.parametrize(
    "command",
    [
        ["mnist", "train", "--data", "d", "--run-dir", "r"],
        ["gigapixel", "train", "--data", "d", "--run-dir", "r"],
    ],
    ids=" ".join,
)
def test_training_commands_take_the_device_options(command):
    args = build_parser().parse_args(
        command
        + [
            "--distribute",
            "none",
            "--devices",
            "2",
            "--model-parallel",
            "2",
            "--coordinator",
            "h:1",
            "--num-processes",
            "2",
            "--process-id",
            "1",
            "--simulate-cpu-devices",
            "4",
        ]
    )
    assert (
        args.distribute,
        args.devices,
        args.model_parallel,
        args.coordinator,
        args.num_processes,
        args.process_id,
        args.simulate_cpu_devices,
    ) == ("none", 2, 2, "h:1", 2, 1, 4)
    assert build_parser().parse_args(command).distribute == "auto"


def test_the_console_command_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "ats.cli", "mnist", "train", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "--resume" in result.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "data"
    assert main(["mnist", "make-data", "--out", str(path), *TINY]) == 0
    return path


def test_make_data_reuses_the_same_data_and_refuses_other(data_dir, capsys):
    config = json.loads((data_dir / "config.json").read_text())["config"]
    assert (config["width"], config["n_train"], config["noise"]) == (100, 16, False)
    assert main(["mnist", "make-data", "--out", str(data_dir), *TINY]) == 0
    assert "reusing" in capsys.readouterr().out
    assert (
        main(["mnist", "make-data", "--out", str(data_dir), *TINY[:-2], "--seed", "3"])
        == 1
    )
    assert "different data set" in capsys.readouterr().err


def test_train_evaluate_visualize_report(data_dir, tmp_path, capsys):
    runs = []
    for model, images in (("ats", []), ("low-cnn", ["--train-images", "8"])):
        run = tmp_path / model
        runs.append(str(run))
        assert (
            main(
                [
                    "mnist",
                    "train",
                    "--data",
                    str(data_dir),
                    "--run-dir",
                    str(run),
                    "--model",
                    model,
                    *TINY_TRAIN,
                    *images,
                ]
            )
            == 0
        )
        for name in (
            "config.json",
            "metrics.csv",
            "checkpoint.npz",
            "results.json",
            "report.md",
            "pictures/curves.png",
        ):
            assert (run / name).is_file(), name
    config = json.loads((tmp_path / "ats" / "config.json").read_text())
    assert config["train"]["n_patches"] == 2
    assert config["train"]["patch_size"] == [30, 30]
    pictures = tmp_path / "ats" / "pictures"
    for name in ("epoch_001.png", "final_sampled.png", "final_top_k.png", "curves.png"):
        assert (pictures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()

    assert main(["mnist", "evaluate", "--run-dir", runs[0], "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sampled patches" in out and "top-k patches" in out

    assert main(["mnist", "visualize", "--run-dir", runs[0], "--images", "1"]) == 0
    written = capsys.readouterr().out.split()
    assert any(path.endswith("final_top_k.png") for path in written)

    report = tmp_path / "report.md"
    assert main(["mnist", "report", *runs, "--out", str(report)]) == 0
    text = report.read_text()
    assert "[`ats`](ats/report.md)" in text and "`low-cnn`" in text
    assert "peak memory" in text
    # 16 training images for ats, the first 8 for low-cnn.
    assert "| 1 of 16 images |" in text and "| 1 of 8 images |" in text


def test_train_errors_name_the_problem(data_dir, tmp_path, capsys):
    assert main(["mnist", "train", "--run-dir", str(tmp_path / "r")]) == 1
    assert "--data" in capsys.readouterr().err
    assert main(["mnist", "train", "--run-dir", str(tmp_path / "r"), "--resume"]) == 1
    assert "config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "mnist",
                "train",
                "--data",
                str(data_dir),
                "--run-dir",
                str(tmp_path / "r"),
                "--patch-size",
                "50",
            ]
        )
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
    assert (
        main(
            [
                "mnist",
                "train",
                "--data",
                str(data_dir),
                "--run-dir",
                str(tmp_path / "r"),
                "--train-images",
                "17",
            ]
        )
        == 1
    )
    assert "train_images (17) must be at most" in capsys.readouterr().err
    # A strategy of another backend's engine.
    other = "ddp" if BACKEND == "tensorflow" else "mirrored"
    assert (
        main(
            [
                "mnist",
                "train",
                "--data",
                str(data_dir),
                "--run-dir",
                str(tmp_path / "r"),
                "--distribute",
                other,
            ]
        )
        == 1
    )
    assert "`strategy` must be one of" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
