"""Settings declared once: the configuration's and the search's fields give the checks, the
``--set`` coercion, the command-line flags and their help."""

import argparse
import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from core import fields
from core.config import (
    DEFAULT,
    DEFAULTS_VERSION,
    EARLIER_DEFAULTS,
    PRESETS,
    SECTION_TYPES,
    ScheduleName,
    apply_sets,
    flat,
    from_dict,
    from_flat,
    load_yaml,
    sections_of,
    to_dict,
    validate,
)
from data.errors import BadInput
from search.settings import SMOKE_SETTINGS, Settings, SpaceName, check


def test_every_key_is_documented_and_the_defaults_are_the_default_preset():
    for section, cls in SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            assert fields.doc(f), f"{section}.{f.name} has no doc"
    assert from_flat({}) == DEFAULT and PRESETS["default"] == DEFAULT


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_configuration(name):
    """Presets are laid over the defaults without validation at import (core/config.py)."""
    assert validate(PRESETS[name]) == PRESETS[name]


def test_the_schemas_names_are_the_implementations():
    """The configuration and the settings name schedules and spaces without importing torch or
    Optuna; the names must be the ones implemented."""
    from core.diffusion import SCHEDULES
    from search.spaces import SPACES

    assert typing.get_args(ScheduleName) == tuple(SCHEDULES)
    assert typing.get_args(SpaceName) == tuple(SPACES)


@pytest.mark.parametrize(
    "item, message",
    [
        ("diffusion.schedule=cubic", "use one of cosine, linear, loglinear, full"),
        ("model.conditioning=stack", "use one of pool, prefix"),
        ("train.lr=0", "train.lr is 0.0: use a positive number"),
        ("train.weight_decay=-1", "use zero or more"),
        ("data.noise=1", r"data.noise is 1.0: use a value in \[0, 1\)"),
        ("data.val_fraction=0", r"use a value in \(0, 1\)"),
        ("data.episodes=1", "data.episodes is 1: use 2 or more"),
        ("model.hidden=6.5", "model.hidden must be int"),
        ("train.lr=.inf", "use a positive number"),
    ],
)
def test_a_value_outside_its_declaration_is_bad_input(item, message):
    with pytest.raises(BadInput, match=message):
        from_flat({}, apply_sets(DEFAULT, [item]))


def test_values_are_read_as_their_declared_types():
    config = apply_sets(DEFAULT, ["train.lr=3e-4", "model.hidden=32", "diffusion.antithetic=no"])
    values = flat(config)
    assert values["train.lr"] == 3e-4 and values["model.hidden"] == 32
    assert values["diffusion.antithetic"] is False
    assert from_flat(values) == config, "flat and from_flat are inverses"


def search_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    fields.add_flags(parser, Settings)
    return parser


def test_every_search_setting_is_a_flag_with_its_doc_and_default():
    parser = search_parser()
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {f.name for f in dataclasses.fields(Settings)}
    for f in dataclasses.fields(Settings):
        assert fields.doc(f) in flags[f.name].help
        shown = f"{f.default:g}" if isinstance(f.default, float) else f.default
        if f.type != "bool" and shown != "":
            assert f"(default {shown})" in flags[f.name].help, f.name
    given = vars(parser.parse_args(["--num-samples", "3", "--scheduler", "fifo", "--smoke"]))
    assert given == {"num_samples": 3, "scheduler": "fifo", "smoke": True}, "only what was given"
    settings = Settings.given(given)
    assert settings.num_samples == 3 and settings.max_iters == SMOKE_SETTINGS["max_iters"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-samples", "0"], "0 is not 1 or more"),
        (["--reduction-factor", "1"], "1 is not more than 1"),
        (["--space", "huge"], "invalid choice"),
        (["--max-failures", "2.5"], "not a whole number"),
    ],
)
def test_bad_flags_are_refused_by_the_parser(flags, message):
    with pytest.raises(argparse.ArgumentError, match=message):
        search_parser().parse_args(flags)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"scheduler": "pbt"}, "--scheduler is 'pbt': use one of asha, fifo"),
        ({"max_iters": 3, "grace_period": 4}, "--grace-period 4 is more than --max-iters 3"),
        ({"reduction_factor": 1.0}, "--reduction-factor is 1.0: use more than 1"),
        ({"metric": "eval/fun"}, "--metric is 'eval/fun'"),
        ({"env": "MiniGrid-Playground-v0"}, "not of a family this search supports"),
    ],
)
def test_settings_from_the_python_api_are_checked_too(changes, message):
    with pytest.raises(BadInput, match=message):
        check(Settings(**changes))


def test_the_readmes_configuration_block_is_the_default_preset():
    """README shows the `default` preset as a YAML file; it stays the real one."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("defaults:  ")
    block = yaml.safe_load(readme[start : readme.index("```", start)])
    assert from_dict(block) == DEFAULT
    assert block.pop("defaults") == DEFAULTS_VERSION
    assert {k: set(v) for k, v in block.items()} == {
        k: set(v) for k, v in sections_of(DEFAULT).items()
    }, "every key shown"


def test_a_search_recorded_before_finalists_existed_had_none():
    old = {k: v for k, v in Settings().to_dict().items() if k not in ("finalists", "track")}
    assert Settings.from_record(old, "results/old").finalists == 0
    assert Settings.from_record(Settings().to_dict(), "results/new").finalists == 3


def test_a_configuration_keeps_the_meaning_it_was_written_with():
    """Written now, read back the same; written before a default changed (no version: a
    checkpoint, record or file of version 1), a key it leaves out keeps version 1's value;
    a file that names this version gets today's defaults."""
    assert from_dict(to_dict(DEFAULT)) == DEFAULT
    old = sections_of(DEFAULT)
    del old["diffusion"]["temperature"]  # a checkpoint from before the key existed
    assert from_dict(old).diffusion.temperature == EARLIER_DEFAULTS[1]["diffusion.temperature"]
    assert DEFAULT.diffusion.temperature != EARLIER_DEFAULTS[1]["diffusion.temperature"]
    assert from_dict({**old, "defaults": DEFAULTS_VERSION}) == DEFAULT
    assert from_dict({"model": {"hidden": 32}, "defaults": 1}).diffusion.temperature == 0.0
    assert from_dict({"diffusion": {"temperature": 0.5}}).diffusion.temperature == 0.5


def test_a_file_without_a_version_is_read_as_version_1_and_says_so(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  hidden: 32\n")
    assert load_yaml(path).diffusion.temperature == 0.0
    assert "names no defaults version" in capsys.readouterr().err
    path.write_text(f"defaults: {DEFAULTS_VERSION}\nmodel:\n  hidden: 32\n")
    assert load_yaml(path) == apply_sets(DEFAULT, ["model.hidden=32"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("version", [0, DEFAULTS_VERSION + 1, "two", 1.5])
def test_an_unknown_defaults_version_is_bad_input(version):
    with pytest.raises(BadInput, match="is not a defaults version this code knows"):
        from_dict({"defaults": version, "model": {"hidden": 32}})
