"""Demonstrations: an expert's episodes (data/teachers.py), stored as one .npz plus a JSON
sidecar.

The .npz is byte-identical for the same (env_id, episodes, seed, noise, expert), so a cache
file can be compared or hashed, and it holds only plain arrays, so it loads with
allow_pickle=False.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from minigrid.core.actions import Actions

from data.blocks import Progress, in_blocks
from data.envs import (
    CHAINED_MISSION_WORDS,
    DODGING,
    check_env_id,
    episode_seeds,
    family_of,
    instructed,
    make_env,
    mission_words,
)
from data.errors import BadInput, command
from data.files import write_atomically
from data.labels import PLAN_LENGTH, Expert
from data.missions import mission_tokens
from data.teachers import expert_for, teachers

FORMAT_VERSION = 5
DONE = int(Actions.done)  # pads a plan past the end of its episode

# name -> (dtype, shape of one row); written in this order, after format_version.
ARRAYS = {
    "image": (np.uint8, (7, 7, 3)),
    "direction": (np.uint8, ()),
    "position": (np.uint8, (2,)),
    "plan": (np.uint8, (PLAN_LENGTH,)),
    "executed": (np.uint8, ()),
    "episode_start": (np.int64, ()),
    "env_seed": (np.int64, ()),
    "mission": (np.uint8, (CHAINED_MISSION_WORDS,)),
}
PER_EPISODE = ("env_seed", "mission")  # one row an episode; the others one a step
REGENERATE = f"delete it and rerun `{command()} data ...` to regenerate it"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold; fixed for determinism
DATA_CACHE = Path("data/cache")  # where `train` and the search keep demonstrations


@dataclass(frozen=True, eq=False)
class Demos:
    """N steps from E episodes. Episode e is rows episode_start[e]:episode_start[e + 1].

    image: (N, 7, 7, 3) uint8, the egocentric obs["image"] seen before acting;
    direction: (N,) uint8, obs["direction"];
    position: (N, 2) uint8, the agent's cell (x, y): where each view was seen from, which
    places it on the map of what the agent has seen (data/known_map.py);
    plan: (N, PLAN_LENGTH) uint8, the expert's shortest plan from that state, padded with
    done (its first entry, ``action``, is the expert's action there);
    executed: (N,) uint8, the action taken there (the expert's, or with noise a random one):
    with the views, what a policy with memory remembers of the step;
    episode_start: (E + 1,) int64 row offsets; env_seed: (E,) int64, the seed each episode's
    env.reset used; mission: (E, W) uint8, the word ids of each episode's mission
    (data/missions.py; all PAD on tasks whose mission never varies).
    """

    image: np.ndarray
    direction: np.ndarray
    position: np.ndarray
    plan: np.ndarray
    executed: np.ndarray
    episode_start: np.ndarray
    env_seed: np.ndarray
    mission: np.ndarray

    def __post_init__(self):
        problem = _problem(self)
        if problem is not None:
            raise ValueError(problem)

    @property
    def episodes(self) -> int:
        return len(self.env_seed)

    @property
    def action(self) -> np.ndarray:
        """(N,) the expert's action at each step: the first of its plan."""
        return self.plan[:, 0]

    @property
    def samples(self) -> int:
        return len(self.plan)

    def split(self, val_fraction: float) -> tuple[Demos, Demos]:
        """(train, validation), split by whole episodes: the last ceil(E * val_fraction)
        episodes validate. With two or more episodes each side gets at least one; with one,
        validation is empty. Splitting by episode keeps the steps of one layout on one side."""
        cut = training_episodes(self.episodes, val_fraction)
        return self._episodes(0, cut), self._episodes(cut, self.episodes)

    def _episodes(self, first: int, stop: int) -> Demos:
        rows = slice(self.episode_start[first], self.episode_start[stop])
        return Demos(
            image=self.image[rows],
            direction=self.direction[rows],
            position=self.position[rows],
            plan=self.plan[rows],
            executed=self.executed[rows],
            episode_start=self.episode_start[first : stop + 1] - self.episode_start[first],
            env_seed=self.env_seed[first:stop],
            mission=self.mission[first:stop],
        )


def training_episodes(total: int, val_fraction: float) -> int:
    """How many of ``total`` demonstration episodes train (the first ones); the rest
    validate (see ``Demos.split``)."""
    if not 0 <= val_fraction < 1:
        raise BadInput(f"val_fraction must be in [0, 1), got {val_fraction}; pass e.g. 0.1")
    if total < 2:
        return total
    # Rounding first stops float noise (100 * 0.07 = 7.000000000000001) from adding one.
    validation = math.ceil(round(total * val_fraction, 9))
    return total - min(max(validation, 1), total - 1)


def _problem(demos: Demos) -> str | None:
    """What is inconsistent about `demos`, or None."""
    for name, (dtype, row_shape) in ARRAYS.items():
        array = getattr(demos, name)
        if not isinstance(array, np.ndarray) or array.dtype != dtype:
            found = getattr(array, "dtype", type(array).__name__)
            return f"{name} has dtype {found}, expected {np.dtype(dtype)}"
        if array.shape[1:] != row_shape or array.ndim != 1 + len(row_shape):
            expected = ", ".join(["rows", *map(str, row_shape)])
            return f"{name} has shape {array.shape}, expected ({expected})"
    samples, starts = len(demos.plan), demos.episode_start
    rows = {
        len(getattr(demos, name)) for name in ARRAYS if name not in ("episode_start", *PER_EPISODE)
    }
    if rows != {samples}:
        return "image, direction, position, plan and executed have different numbers of rows"
    if len(demos.mission) != len(demos.env_seed):
        return "mission and env_seed have different numbers of rows"
    if len(starts) != len(demos.env_seed) + 1:
        return "episode_start must have one more entry than env_seed"
    if starts[0] != 0 or starts[-1] != samples or np.any(np.diff(starts) <= 0):
        return "episode_start must rise strictly from 0 to the number of rows"
    actions = max(demos.plan.max(), demos.executed.max()) if samples else 0
    if samples and (actions >= len(Actions) or demos.direction.max() > 3):
        return "plan, executed or direction holds a value MiniGrid does not have"
    return None


def generate(
    env_id: str,
    episodes: int,
    seed: int,
    noise: float = 0.0,
    expert: Expert = "auto",
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
) -> tuple[Demos, dict]:
    """Run the expert for `episodes` episodes on the demonstration seeds of `seed`.

    With `noise` > 0 the executed action is, with that probability, a random turn or step
    instead of the expert's (never a step into lava), and the expert replans from where it
    lands: the data then also shows how to recover from states off the expert's path, which
    a cloned policy drifts into (DART, Laskey et al. 2017). Every label is still the expert's
    plan from the state it labels (data/teachers.py). An episode the expert fails (BabyAIBot
    gives up on a few) is left out and counted (``expert_failures``); a reach-the-goal episode
    cut by the step limit is kept, its labels still the shortest plans.

    ``jobs`` processes demonstrate blocks of BLOCK episodes side by side; the blocks are put
    back in order, so the demonstrations are the same, byte for byte, as one process's.
    ``log`` hears how far it is, with an estimate of the time left, every PROGRESS_EVERY
    seconds and at the end.
    """
    check_noise(noise)
    expert = expert_for(env_id, expert)
    check_env_id(env_id)
    env_seeds = episode_seeds("training", seed, episodes)
    blocks = [env_seeds[i : i + BLOCK] for i in range(0, episodes, BLOCK)]
    work = functools.partial(demonstrate_block, env_id, expert, noise)
    rows = {name: [] for name in ("image", "direction", "position", "plan", "executed")}
    starts, kept, missions, failed = [0], [], [], []
    progress = Progress(f"demonstrations of {env_id}", episodes, log, "episodes")
    for block in in_blocks(work, blocks, jobs, progress):
        for episode in block["episodes"]:
            for name, values in episode.items():
                rows[name].extend(values)
            starts.append(len(rows["plan"]))
        kept += block["kept"]
        missions += block["missions"]
        failed += block["failed"]
    if not kept:
        raise BadInput(
            f"the {expert} expert failed every one of {episodes} episodes of {env_id}; "
            "use a supported environment (`envs` lists them)"
        )
    demos = Demos(
        image=np.stack(rows["image"]).astype(np.uint8),
        direction=np.asarray(rows["direction"], dtype=np.uint8),
        position=np.asarray(rows["position"], dtype=np.uint8).reshape(-1, 2),
        plan=np.asarray(rows["plan"], dtype=np.uint8),
        executed=np.asarray(rows["executed"], dtype=np.uint8),
        episode_start=np.asarray(starts, dtype=np.int64),
        env_seed=np.asarray(kept, dtype=np.int64),
        mission=np.stack(missions),
    )
    meta = {
        "format_version": FORMAT_VERSION,
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "noise": noise,
        "expert": expert,
        "expert_failures": failed,  # env seeds of the episodes left out
        "expert_success_rate": 1 - len(failed) / episodes,
        "mean_episode_length": demos.samples / demos.episodes,
        "samples": demos.samples,
    }
    return demos, meta


@dataclass
class Demonstration:
    """One episode of an expert: each step's view, direction, position, the expert's plan and
    the action taken; whether it succeeded, and whether the expert gave up before the end."""

    rows: dict[str, list]
    success: bool
    gave_up: bool

    @property
    def kept(self) -> bool:
        """Whether it joins the demonstrations: a success, or a reach-the-goal episode cut by
        the step limit (its labels are still the shortest plans). Where the bot failed, no."""
        return bool(self.rows["plan"]) and (self.success or not self.gave_up)


def check_noise(noise: float) -> None:
    if not 0.0 <= noise < 1.0:
        raise BadInput(f"noise must be in [0, 1), got {noise}; pass e.g. 0.2")


BLOCK = 100  # episodes one process demonstrates at a time


def demonstrate_block(env_id: str, expert: Expert, noise: float, env_seeds) -> dict:
    """The episodes of ``env_seeds`` the expert succeeds in (their rows), their seeds and
    missions, and the seeds of those it fails (see ``generate``)."""
    env = make_env(env_id)
    teacher_in = teachers(expert, env_id)
    block = {"episodes": [], "kept": [], "missions": [], "failed": []}
    for env_seed in env_seeds:
        obs, _ = env.reset(seed=int(env_seed))
        rng = np.random.default_rng(int(env_seed))
        episode = demonstrate(env, obs, teacher_in(env), rng, noise)
        if not episode.kept:
            block["failed"].append(int(env_seed))
            continue
        block["episodes"].append(episode.rows)
        block["kept"].append(int(env_seed))
        block["missions"].append(mission_of(env_id, env.unwrapped.mission))
    env.close()
    return block


def demonstrate(env, obs, teacher, rng: np.random.Generator, noise: float) -> Demonstration:
    """One episode of the expert from ``env`` just reset (observing ``obs``)."""
    rows = {name: [] for name in ("image", "direction", "position", "plan", "executed")}
    plan = teacher.label(env, obs)
    terminated = truncated = False
    reward = 0.0
    while plan and not (terminated or truncated):
        rows["image"].append(obs["image"])
        rows["direction"].append(obs["direction"])
        rows["position"].append(env.unwrapped.agent_pos)
        rows["plan"].append(padded(list(plan)))
        action = plan[0]
        if noise and rng.random() < noise:
            action = _perturbation(env, rng)
        rows["executed"].append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        if not (terminated or truncated):
            teacher.moved(plan, action, env)
            plan = teacher.label(env, obs)
    # The bot's failures are its own (it gives up, or explores until the step limit).
    gave_up = not plan or instructed(env.spec.id)
    return Demonstration(rows, bool(terminated and reward > 0), gave_up)


def mission_of(env_id: str, mission: str) -> np.ndarray:
    """The stored words of an episode's mission: its word ids where the task's mission varies
    (all PAD where it never does: then nothing reads it)."""
    if not mission_words(env_id):
        return np.zeros(CHAINED_MISSION_WORDS, dtype=np.uint8)
    return mission_tokens(mission, CHAINED_MISSION_WORDS)


def padded(plan: list[int]) -> list[int]:
    """A plan cut or padded with done to PLAN_LENGTH actions: the stored label of one step."""
    return plan[:PLAN_LENGTH] + [DONE] * (PLAN_LENGTH - len(plan))


def _perturbation(env, rng: np.random.Generator) -> int:
    """A random left, right or forward; forward only where it cannot end the episode without
    a reward: into lava, beside the wrong object of a Memory task, or, among moving
    obstacles, into anything but the goal."""
    choices = [Actions.left, Actions.right]
    if not _forward_fails(env):
        choices.append(Actions.forward)
    return int(rng.choice(choices))


def _forward_fails(env) -> bool:
    """Whether a step forward from here ends the episode without a reward."""
    u = env.unwrapped
    ahead = u.grid.get(*u.front_pos)
    if family_of(env.spec.id) == DODGING:  # anything but the goal: a ball or a wall
        return ahead is not None and ahead.type != "goal"
    if ahead is not None and ahead.type == "lava":
        return True
    return tuple(u.front_pos) == getattr(u, "failure_pos", None)  # Memory's wrong side


def save(demos: Demos, meta: dict, path: Path) -> None:
    """Write `path` (.npz) and its JSON sidecar, each atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, _npz_bytes(demos))
    sidecar = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    write_atomically(path.with_suffix(".json"), sidecar.encode())


def _npz_bytes(demos: Demos) -> bytes:
    # np.savez stamps the current time into each zip entry; writing the entries ourselves with a
    # fixed time, fixed order and fixed attributes makes the bytes depend on the arrays alone.
    arrays = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    arrays.update((name, getattr(demos, name)) for name in ARRAYS)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            content = io.BytesIO()
            np.lib.format.write_array(content, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(entry, content.getvalue(), compresslevel=6)
    return buffer.getvalue()


def load(path: Path) -> tuple[Demos, dict]:
    """Read a file written by save(); BadInput if it is missing, corrupt or inconsistent."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"demonstrations file {path} is a folder; pass the .npz file in it")
    if not path.is_file():
        raise BadInput(
            f"demonstrations file {path} does not exist; "
            f"create it with `{command()} data ...` or fix the path"
        )
    arrays = _read_arrays(path)
    version = arrays.pop("format_version")
    if version.size != 1 or version.dtype.kind not in "iu" or int(version.item()) != FORMAT_VERSION:
        raise BadInput(
            f"demonstrations file {path} has format version {version.ravel()[:1].tolist()}, "
            f"but this code reads version {FORMAT_VERSION}; {REGENERATE}"
        )
    try:
        demos = Demos(**arrays)
    except ValueError as exc:
        raise BadInput(f"demonstrations file {path} is inconsistent ({exc}); {REGENERATE}") from exc
    return demos, _read_meta(path, demos)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    wanted = ["format_version", *ARRAYS]
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an archive")
        with loaded:
            missing = [name for name in wanted if name not in loaded.files]
            if missing:
                raise BadInput(
                    f"demonstrations file {path} lacks array(s) {', '.join(missing)}; {REGENERATE}"
                )
            return {name: loaded[name] for name in wanted}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # numpy's own messages here can mislead (e.g. suggest allow_pickle=True); name the type.
        raise BadInput(
            f"demonstrations file {path} is not a readable .npz archive "
            f"(truncated or corrupt: {type(exc).__name__}); {REGENERATE}"
        ) from exc


def _read_meta(path: Path, demos: Demos) -> dict:
    """The sidecar's metadata when it matches the arrays; otherwise what the arrays and the file
    name can tell (values nothing can tell are None), since the arrays are what matter."""
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(path.with_suffix(".json").read_text())
        if (
            isinstance(meta, dict)
            and meta.get("format_version") == FORMAT_VERSION
            and meta.get("episodes") == demos.episodes + len(meta.get("expert_failures", []))
            and meta.get("samples") == demos.samples
        ):
            return meta
    named = CacheName.parse(path.stem)
    return {
        "format_version": FORMAT_VERSION,
        "env_id": named.env_id if named else None,
        "episodes": demos.episodes,
        "seed": named.seed if named else None,
        "noise": named.noise if named else None,
        "expert": named.expert if named else None,
        "expert_success_rate": None,
        "mean_episode_length": demos.samples / demos.episodes if demos.episodes else 0.0,
        "samples": demos.samples,
    }


def cached(
    env_id: str,
    episodes: int,
    seed: int,
    cache_dir: Path,
    noise: float = 0.0,
    log=None,
    expert: Expert = "auto",
    jobs: int = 1,
) -> tuple[Demos, dict, Path]:
    """The demonstrations for (env_id, episodes, seed, noise, expert), read from `cache_dir`
    when a valid file is there, else generated (by ``jobs`` processes) and saved there
    (replacing a corrupt or stale file)."""
    check_env_id(env_id)
    check_noise(noise)
    expert = expert_for(env_id, expert)
    env_seeds = episode_seeds("training", seed, episodes)
    path = Path(cache_dir) / f"{CacheName(env_id, episodes, seed, noise, expert)}.npz"
    if path.exists():
        with contextlib.suppress(BadInput):  # unreadable: fall through and regenerate it
            demos, meta = load(path)
            failed = meta.get("expert_failures") or []
            whole = len(demos.env_seed) + len(failed) == episodes
            if whole and np.isin(demos.env_seed, env_seeds).all():
                return demos, meta, path
    if log is not None:
        log(f"building {episodes} {expert} expert demonstrations of {env_id} in {path}")
    demos, meta = generate(env_id, episodes, seed, noise, expert, jobs, log)
    save(demos, meta, path)
    return demos, meta, path


def for_data(data, cache_dir: Path = DATA_CACHE, log=None, jobs: int = 1) -> Demos:
    """The cached demonstrations a configuration's data section names (env, episodes, seed,
    noise, expert); ``log`` hears of it, and of their progress, when ``jobs`` processes have
    to build them first."""
    demos, _, _ = cached(
        data.env, data.episodes, data.seed, cache_dir, data.noise, log, data.expert, jobs
    )
    return demos


@dataclass(frozen=True)
class CacheName:
    """A cache file's name says what it holds: ``ENV-nEPISODES-sSEED-pNOISE[-eEXPERT]-vVERSION``
    (the shortest-path expert's files name no expert)."""

    env_id: str
    episodes: int
    seed: int
    noise: float
    expert: str = "shortest"

    PATTERN = re.compile(r"^(.+)-n(\d+)-s(\d+)-p([\d.e-]+)(?:-e([a-z]+))?-v(\d+)$")

    def __str__(self) -> str:
        expert = f"-e{self.expert}" if self.expert != "shortest" else ""
        head = f"{self.env_id}-n{self.episodes}-s{self.seed}-p{self.noise:g}"
        return f"{head}{expert}-v{FORMAT_VERSION}"

    @classmethod
    def parse(cls, stem: str) -> CacheName | None:
        """The name's parts when ``stem`` is one of this version's cache names, else None."""
        found = cls.PATTERN.match(stem)
        if found is None or int(found[6]) != FORMAT_VERSION:
            return None
        expert = found[5] or "shortest"
        return cls(found[1], int(found[2]), int(found[3]), float(found[4]), expert)
