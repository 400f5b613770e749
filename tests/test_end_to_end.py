"""The whole pipeline, learned for real: expert demonstrations -> default preset -> rollouts."""

import dataclasses

import pytest

from core.config import DEFAULT, override
from core.trainer import Trainer
from data.demos import for_data


@pytest.mark.slow
def test_default_preset_solves_empty_8x8_on_held_out_seeds():
    config = override(DEFAULT, "data.env", "MiniGrid-Empty-8x8-v0")
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, episodes=100),
        train=dataclasses.replace(
            config.train, iters=4, eval_every=4, eval_episodes=100, warmup_steps=50
        ),
    )
    trainer = Trainer(config, for_data(config.data))
    for _ in range(config.train.iters):
        metrics = trainer.train_iteration()
    assert metrics["eval/success"] >= 0.9, metrics
