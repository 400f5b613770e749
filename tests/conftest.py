import dataclasses

import pytest

from core.config import DEFAULT, Config, DataConfig, override


def tiny(env: str = "MiniGrid-Empty-5x5-v0", **sets) -> Config:
    """A configuration that trains in a second: real data, model, diffusion and rollouts."""
    config = dataclasses.replace(DEFAULT, data=DataConfig(env=env, episodes=12, seed=0))
    small = {
        "model.hidden": 32,
        "model.depth": 1,
        "model.heads": 2,
        "model.horizon": 4,
        "train.iters": 2,
        "train.steps_per_iter": 5,
        "train.eval_every": 1,
        "train.eval_episodes": 3,
        "train.warmup_steps": 2,
        "train.threads": 1,
    }
    for key, value in {**small, **sets}.items():
        config = override(config, key, value)
    return config


@pytest.fixture
def tiny_config():
    return tiny()
