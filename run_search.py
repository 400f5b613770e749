#!/usr/bin/env python
"""The one entry point: the search (the default subcommand), and data, train, evaluate, export.

    python run_search.py [search options]          # Ray Tune + Optuna TPE + ASHA
    python run_search.py export   RESULTS_DIR      # (re)write a search's exports
    python run_search.py data     --env ID [--episodes N] [--seed S] [--out FILE]
    python run_search.py train    [--config FILE] [--env ID] [--preset NAME] [--iters N]
                                  [--seeds N] [--jobs J] [--out DIR] [--set key=value ...]
    python run_search.py evaluate CHECKPOINT [--episodes N] [--seed S] [--gif FILE] [--set K=V]
                                  [--out FILE.json] [--run FOLDER]
    python run_search.py compare  RUN_OR_SEARCH ...  # each against the first, paired

A user's mistake exits with status 2 and one line on stderr saying what is wrong and how to
fix it; nothing already written is touched.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
import typing
from dataclasses import fields
from pathlib import Path

from core.config import DataConfig
from core.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, add_flags, flag_type
from data.errors import BadInput, command
from data.files import writable_file, writable_folder
from data.labels import Expert
from search.settings import Settings

RESULTS = Path("results")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage block), and a
    flag is taken only when spelled whole (``--seed`` is not ``--seeds``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


positive_int = flag_type(int, AT_LEAST_ONE)
non_negative_int = flag_type(int, NON_NEGATIVE)
positive_float = flag_type(float, POSITIVE)
non_negative_float = flag_type(float, NON_NEGATIVE)

SUBCOMMANDS = ("search", "train", "evaluate", "export", "data", "envs", "compare")


def build_parser() -> Parser:
    parser = Parser(
        prog=Path(sys.argv[0]).name if sys.argv[0].endswith("mdps") else "run_search.py",
        description="Masked-diffusion policies for MiniGrid: hyperparameter search, "
        "demonstrations, training, evaluation. With no subcommand, runs the search.",
        epilog=f"Search options: {command()} search --help",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    commands.add_parser(
        "envs", help="list the supported MiniGrid and BabyAI environments, by family"
    )
    for add in (add_search, add_compare, add_export, add_data, add_train, add_evaluate):
        add(commands)
    return parser


def add_search(commands) -> None:
    """The search's flags: one a setting (search/settings.py), then where it runs."""
    search = commands.add_parser(
        "search",
        help="hyperparameter search (the default subcommand)",
        description="Search the policy's hyperparameters with Ray Tune: Optuna TPE proposes, "
        "ASHA stops weak trials early, the best configuration is exported for `train "
        "--config`. Other subcommands: train, evaluate, export, data (see their --help).",
    )
    add_flags(search, Settings)
    s = search.add_argument
    s("--cpus-per-trial", type=positive_float, help="default 1 (CPU machines)")
    s("--gpus-per-trial", type=non_negative_float, help="fractions share a GPU (default 0.25)")
    s("--max-concurrent", type=positive_int, help="trials at once (default: what fits)")
    s("--address", help="join a Ray cluster: auto, HOST:PORT or ray://HOST:PORT")
    s("--dashboard-host", default="127.0.0.1", help="local dashboard bind address")
    s("--name", help="search folder name under --results-dir (default: env and time)")
    s("--results-dir", type=Path, default=RESULTS, help="default results")
    s("--resume", action="store_true", help="continue the interrupted search --name")
    s(
        "--ray-progress",
        action="store_true",
        help="Ray Tune's own status tables and trial boxes instead of one line a trial",
    )


def add_compare(commands) -> None:
    """`compare`: runs side by side."""
    compare = commands.add_parser(
        "compare",
        help="one table and one plot of several searches' finalists and train runs",
        description="Compare runs on their test figures (mean ± 95%% interval over seeds) and "
        "learning curves: each finalist of a search folder is a row, and each `train` run.",
    )
    compare.add_argument("runs", type=Path, nargs="+", help="results/NAME or a train --out")
    compare.add_argument(
        "--out", type=Path, default=RESULTS / "compare", help="where compare.md and .png go"
    )


def add_export(commands) -> None:
    """`export`: the exports of a search folder."""
    export = commands.add_parser("export", help="(re)write the exports of a search folder")
    export.add_argument("folder", type=Path, help="results/NAME of a search, finished or not")


def add_data(commands) -> None:
    """`data`: expert demonstrations, with the presets' defaults."""
    data = commands.add_parser(
        "data",
        help="generate expert demonstrations",
        description="Expert demonstrations of an environment; the defaults are the presets' "
        "own, so without --out they land in the dataset cache where `train` finds them.",
    )
    preset_data = DataConfig()
    data.add_argument("--env", required=True, help="e.g. MiniGrid-DoorKey-8x8-v0 (`envs`)")
    data.add_argument(
        "--episodes", type=positive_int, default=preset_data.episodes, help="default %(default)s"
    )
    data.add_argument("--seed", type=non_negative_int, default=0, help="default %(default)s")
    data.add_argument(
        "--noise",
        type=float,
        default=preset_data.noise,
        help="chance of a random executed action (DART); default %(default)s",
    )
    data.add_argument(
        "--expert",
        choices=typing.get_args(Expert),
        default=preset_data.expert,
        help="auto: the task's own; shortest: plans on the whole grid; explorer: acts only on "
        "what the agent saw (default %(default)s)",
    )
    data.add_argument("--out", type=Path, help="output .npz (default: the dataset cache)")
    data.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="processes that demonstrate side by side (default: every core, %(default)s); "
        "the file is the same byte for byte",
    )


def add_train(commands) -> None:
    """`train`: a policy from scratch, from a preset or a configuration file."""
    train = commands.add_parser(
        "train",
        help="train a policy from scratch",
        description="Train a policy from a preset or a config file (a search's best_config.yaml).",
    )
    train.add_argument(
        "--config", type=Path, help="YAML with sections data, model, diffusion, train"
    )
    train.add_argument(
        "--preset", default=None, help="seed | default | bc | memory (default: default)"
    )
    train.add_argument("--env", help="override data.env")
    train.add_argument(
        "--data", type=Path, help="train on this demonstrations .npz (from `data --out`)"
    )
    train.add_argument("--iters", type=positive_int, help="override train.iters")
    train.add_argument("--seeds", type=positive_int, help="train this many seeds (default 1)")
    train.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="train this many seeds side by side, one process each (default 1: one by one)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out"
    )
    train.add_argument(
        "--track",
        choices=["none", "wandb", "mlflow"],
        default="none",
        help="log every iteration to Weights & Biases or MLflow (pip install -e '.[track]')",
    )
    train.add_argument("--out", type=Path, help="output dir (default: results/train/<name>)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key, e.g. --set model.hidden=64 --set train.lr=3e-4",
    )


def add_evaluate(commands) -> None:
    """`evaluate`: a checkpoint rolled out on test episodes."""
    evaluate = commands.add_parser("evaluate", help="roll a checkpoint out in the environment")
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--episodes", type=positive_int, default=300, help="test episodes")
    evaluate.add_argument(
        "--seed", type=non_negative_int, help="test episode block (default: the data seed)"
    )
    evaluate.add_argument("--gif", type=Path, help="save the first episode as an animated GIF")
    evaluate.add_argument("--out", type=Path, help="also write the figures to this .json file")
    evaluate.add_argument(
        "--run",
        type=Path,
        metavar="FOLDER",
        help="also write FOLDER, which `compare` reads as a one-seed run with each test "
        "episode's figures: pairs this way of planning with another run on the same episodes",
    )
    evaluate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="plan differently from the trained configuration: diffusion.sampler, "
        "sampling_steps, temperature or exec_steps, e.g. --set diffusion.temperature=0.5",
    )


def run_search(args) -> None:
    from search.console import report
    from search.tuner import run

    flags = {f.name: getattr(args, f.name) for f in fields(Settings) if hasattr(args, f.name)}
    if args.resume and not args.name:
        raise BadInput("--resume needs the --name of the search to continue")
    extend_to = flags.pop("num_samples", None) if args.resume else None
    if args.resume and flags:
        raise BadInput(
            "--resume continues a search with its own settings (--num-samples N extends it); "
            "drop the other search options"
        )
    settings = None if args.resume else Settings.given(flags)
    name = args.name if args.name is not None else default_name(settings)
    outcome, _ = run(
        settings,
        args.results_dir,
        name,
        resume=args.resume,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        dashboard_host=args.dashboard_host,
        extend_to=extend_to,
        ray_progress=args.ray_progress,
    )
    report(outcome)
    if not outcome.finished:
        print(f"the search was interrupted; continue it with: {command()} --name {name} --resume")


def default_name(settings) -> str:
    env = settings.env.removeprefix("MiniGrid-").removesuffix("-v0").lower()
    return f"{env}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_export(args) -> None:
    from search.console import report
    from search.export import export

    outcome = export(args.folder)
    report(outcome)


def run_compare(args) -> None:
    from search.compare import compare, table

    writable_folder(args.out, "--out")
    rows = compare(args.runs, args.out)
    print(table(rows), end="")
    print(f"wrote {args.out / 'compare.md'}, {args.out / 'compare.png'}")


def print_err(line: str) -> None:
    """Progress on stderr: stdout is the JSON a script reads."""
    print(line, file=sys.stderr, flush=True)


def run_data(args) -> None:
    from data.demos import cached, generate, save

    if args.out is None:
        from data.demos import DATA_CACHE

        demos, meta, path = cached(
            args.env,
            args.episodes,
            args.seed,
            DATA_CACHE,
            args.noise,
            log=print_err,
            expert=args.expert,
            jobs=args.jobs,
        )
    else:
        if args.out.suffix != ".npz":
            raise BadInput(f"--out {args.out} must end in .npz")
        writable_file(args.out, "--out")
        demos, meta = generate(
            args.env, args.episodes, args.seed, args.noise, args.expert, args.jobs, print_err
        )
        save(demos, meta, args.out)
        path = args.out
    print(json.dumps({**meta, "path": str(path)}, indent=2))


def run_train(args) -> None:
    from core.console import describe_unseen
    from core.metrics import TEST
    from core.seed_runs import train_seeds
    from core.tracking import require

    require(args.track)
    if args.resume:
        config, seeds, demos, out = resumed_run(args)
    else:
        config, demos = train_config(args)
        seeds = args.seeds or 1
        name = args.config.stem if args.config else args.preset or "default"
        out = args.out or RESULTS / "train" / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        if (out / "metrics.json").exists():
            raise BadInput(f"{out} already holds a finished run; pass another --out or delete it")
        if out.exists() and not out.is_dir():
            raise BadInput(f"--out {out} is a file; pass a folder for the run")
        if (out / RUN_FILE).exists():
            raise BadInput(f"{out} holds an unfinished run: add --resume to continue it")
        writable_folder(out, "--out")
        write_run(out, config, seeds, args.data)
    print(f"training on {config.data.env} -> {out} (continue it with --out {out} --resume)")
    summary = train_seeds(
        config, seeds, out, demos=demos, resume=args.resume, track=args.track, jobs=args.jobs
    )
    mean, half = summary["mean"], summary["ci95"]
    over = f"over {seeds} seed(s)" + (", 95% interval" if seeds > 1 else "")
    for key in (*TEST, "eval/return"):
        if key in mean:
            interval = f" ± {half[key]:.3f}" if math.isfinite(half[key]) else ""
            print(f"{key}: {mean[key]:.3f}{interval} {over}")
    if "test/episodes" in mean:
        print(describe_unseen(next(iter(summary["seeds"].values()))))
    print(f"wrote {out / 'metrics.json'}")


RUN_FILE = "train.yaml"  # what a `train` run is (its configuration, seeds, data): --resume reads it


def train_config(args):
    """The configuration (and demonstrations, with --data) the command line asks for."""
    from core import config as cfg

    if args.config and args.preset:
        raise BadInput("give either --config or --preset, not both")
    base = cfg.preset(args.preset or "default")
    config = cfg.load_yaml(args.config, base) if args.config else base
    if args.env:
        config = cfg.override(config, "data.env", args.env, "--env")
    if args.iters:
        config = cfg.override(config, "train.iters", args.iters, "--iters")
    config = cfg.apply_sets(config, args.set)
    demos = None
    if args.data:
        from data.demos import load

        demos, meta = load(args.data)
        if args.env and meta.get("env_id") not in (None, args.env):
            raise BadInput(f"--data {args.data} holds {meta['env_id']}, not --env {args.env}")
        if demos.episodes < 2:
            raise BadInput(f"--data {args.data} has one episode; training needs at least 2")
        names = {
            "env_id": "env",
            "episodes": "episodes",
            "seed": "seed",
            "noise": "noise",
            "expert": "expert",
        }
        for key, field in names.items():
            if meta.get(key) is not None:  # the saved config then names the data it used
                config = cfg.override(config, f"data.{field}", meta[key], "--data")
    return cfg.validate(config), demos


def write_run(out: Path, config, seeds: int, data: Path | None) -> None:
    import yaml

    from core.config import to_dict
    from data.files import write_atomically

    run = {"config": to_dict(config), "seeds": seeds, "data": str(data.resolve()) if data else None}
    write_atomically(out / RUN_FILE, yaml.safe_dump(run, sort_keys=False).encode())


def resumed_run(args):
    """The run in --out, as its first command wrote it, to go on from its checkpoints."""
    import yaml

    from core.config import from_dict

    given = [
        flag
        for flag, value in (
            ("--config", args.config),
            ("--preset", args.preset),
            ("--env", args.env),
            ("--data", args.data),
            ("--iters", args.iters),
            ("--seeds", args.seeds),
            ("--set", args.set),
        )
        if value
    ]
    if not args.out:
        raise BadInput("--resume needs the --out of the run to continue")
    if given:
        raise BadInput(f"--resume continues a run as it was started; drop {', '.join(given)}")
    if (args.out / "metrics.json").exists():
        raise BadInput(f"{args.out} already holds a finished run; there is nothing to resume")
    try:
        run = yaml.safe_load((args.out / RUN_FILE).read_text())
        config = from_dict(run["config"], where=f"{args.out / RUN_FILE}")
        seeds, data = int(run["seeds"]), run["data"]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        raise BadInput(
            f"{args.out} holds no run of `train` to resume ({RUN_FILE} is missing or damaged); "
            "start it without --resume"
        ) from None
    demos = None
    if data:
        from data.demos import load

        demos, _ = load(Path(data))
    return config, seeds, demos, args.out


def run_evaluate(args) -> None:
    from core.checkpoint import jsonable, write_json
    from core.console import describe_unseen
    from core.evaluate import evaluate_checkpoint

    if args.gif is not None and args.gif.suffix.lower() != ".gif":
        raise BadInput(f"--gif {args.gif} must end in .gif")
    if args.out is not None and args.out.suffix.lower() != ".json":
        raise BadInput(f"--out {args.out} must end in .json")
    for path, flag in ((args.gif, "--gif"), (args.out, "--out")):
        if path is not None:
            writable_file(path, flag)  # before the rollouts, not after
    if args.run is not None:
        if (args.run / "metrics.json").exists():
            raise BadInput(f"--run {args.run} already holds a run; pass a new folder")
        writable_folder(args.run, "--run")
    # Progress on stderr: stdout is the JSON a script reads.
    say = functools.partial(print, file=sys.stderr)
    metrics = evaluate_checkpoint(
        args.checkpoint, args.episodes, args.seed, args.gif, args.set, log=say, run=args.run
    )
    print(json.dumps(jsonable(metrics), indent=2))  # NaN (no success to measure) is null
    print(describe_unseen(metrics))
    if args.out is not None:
        write_json(args.out, metrics)
    for path in (args.gif, args.out, args.run):
        if path is not None:
            print(f"wrote {path}")


def run_envs(args) -> None:
    """Every supported id, one a line, under a line that names its family and its expert."""
    from data.envs import by_family

    for family, (expert, env_ids) in by_family().items():
        print(f"# {family}: {expert}")
        for env_id in env_ids:
            print(env_id)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mdpolicy-search")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "search")  # the search is the default subcommand
    args = parser.parse_args(argv)
    commands = {
        "search": run_search,
        "export": run_export,
        "data": run_data,
        "train": run_train,
        "evaluate": run_evaluate,
        "envs": run_envs,
        "compare": run_compare,
    }
    try:
        commands[args.command](args)
    except BadInput as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`envs | head`): not an error
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - Python flushes it on exit
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
