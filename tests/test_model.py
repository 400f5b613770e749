"""The backbone, the diffusion pieces and the sampler, on small real tensors."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import batch, trained_looking
from core.config import DiffusionConfig, ModelConfig
from core.diffusion import SCHEDULES, corrupt, make_schedule, masked_loss, sample_t
from core.dit import DiT, DiTBlock
from core.sampler import reveal_counts, sample_plan
from core.tokens import MASK, NUM_ACTIONS, STATE_TOKENS, StateTokenizer

LAYOUTS = [("pool", "joint"), ("prefix", "joint"), ("prefix", "encoder")]


@pytest.mark.parametrize(("conditioning", "layout"), LAYOUTS)
def test_dit_shapes(conditioning, layout):
    config = ModelConfig(
        hidden=32, depth=2, heads=4, horizon=8, conditioning=conditioning, layout=layout
    )
    image, direction, actions = batch()
    logits = DiT(config)(image, direction, actions, torch.rand(5))
    assert logits.shape == (5, 8, NUM_ACTIONS)


def test_state_tokenizer_makes_49_tokens():
    image, direction, _ = batch()
    assert StateTokenizer(16)(image, direction).shape == (5, STATE_TOKENS, 16)


def test_adaln_zero_blocks_are_identity_at_init():
    model = DiT(ModelConfig(hidden=32, depth=3, heads=4, horizon=8, dropout=0.0))
    x, c = torch.randn(3, 10, 32), torch.randn(3, 32)
    for block in model.blocks:
        assert isinstance(block, DiTBlock)
        torch.testing.assert_close(block(x, c), x, rtol=0, atol=0)


def test_final_layer_starts_at_zero_logits():
    config = ModelConfig(hidden=32, depth=2, heads=4, horizon=8)
    image, direction, actions = batch()
    logits = DiT(config)(image, direction, actions, torch.rand(5))
    assert torch.count_nonzero(logits) == 0


@pytest.mark.parametrize(("conditioning", "layout"), LAYOUTS)
def test_output_depends_on_state_and_time(conditioning, layout):
    config = ModelConfig(
        hidden=32, depth=2, heads=4, horizon=8, conditioning=conditioning, layout=layout
    )
    model = trained_looking(DiT(config)).eval()
    image, direction, actions = batch()
    t = torch.full((5,), 0.5)
    base = model(image, direction, actions, t)
    assert not torch.allclose(base, model(image, (direction + 1) % 4, actions, t))
    assert not torch.allclose(base, model(image, direction, actions, torch.full((5,), 0.9)))


def test_encoder_layout_shares_the_weights_and_encodes_once():
    """The encoder layout has the joint layout's parameters but computes something else, and
    denoising from one encoding is exactly the full forward pass (what the sampler relies on)."""
    config = ModelConfig(
        hidden=32, depth=3, heads=4, horizon=8, conditioning="prefix", layout="encoder"
    )
    model = trained_looking(DiT(config)).eval()
    image, direction, actions = batch()
    memory = model.encode(image, direction)
    assert len(memory) == config.depth
    joint = trained_looking(DiT(dataclasses.replace(config, layout="joint"))).eval()
    joint.load_state_dict(model.state_dict())  # the layouts share every weight
    t = torch.full((5,), 0.5)
    logits = model(image, direction, actions, t)
    assert not torch.allclose(logits, joint(image, direction, actions, t))
    torch.testing.assert_close(model.denoise(memory, actions, t), logits, rtol=0, atol=0)


def test_corruption_masks_at_the_schedules_rate_and_keeps_the_rest():
    _, _, actions = batch(B=4000, H=8)
    t = torch.tensor([0.2, 0.9]).repeat(2000)
    z, masked = corrupt(actions, t, make_schedule("cosine"), torch.Generator().manual_seed(0))
    assert torch.equal(z[masked], torch.full_like(z[masked], MASK))
    assert torch.equal(z[~masked], actions[~masked]), "unmasked tokens are the clean ones"
    for value in (0.2, 0.9):
        expected = math.cos(math.pi / 2 * (1 - value))
        rate = masked[t == value].float().mean().item()
        assert abs(rate - expected) < 0.01, (value, rate, expected)


@pytest.mark.parametrize("name", ["cosine", "linear", "loglinear"])
def test_schedule_endpoints_and_monotonicity(name):
    schedule = make_schedule(name)
    t = torch.linspace(0, 1, 1001)
    ratio = schedule.mask_ratio(t)
    assert ratio[0].item() == pytest.approx(0.0, abs=1e-6)
    assert ratio[-1].item() == pytest.approx(1.0, abs=1.1e-3)  # loglinear stops at 1 - eps
    assert (ratio[1:] - ratio[:-1] > 0).all()


@pytest.mark.parametrize(
    "name, closed_form",
    [
        ("linear", lambda t: 1 / t),
        ("loglinear", lambda t: 1 / t),
        ("cosine", lambda t: math.pi / 2 * math.tan(math.pi / 2 * (1 - t))),
    ],
)
def test_elbo_weights_match_closed_form_and_autograd(name, closed_form):
    schedule = make_schedule(name)
    t = torch.tensor([0.05, 0.2, 0.5, 0.8, 0.95], dtype=torch.float64, requires_grad=True)
    ratio = schedule.mask_ratio(t)
    (derivative,) = torch.autograd.grad(ratio.sum(), t)
    weight = schedule.elbo_weight(t.detach())
    # -alpha'(t) / (1 - alpha(t)) with alpha = 1 - mask_ratio
    torch.testing.assert_close(weight, derivative / ratio.detach())
    expected = torch.tensor([closed_form(x) for x in t.tolist()], dtype=torch.float64)
    torch.testing.assert_close(weight, expected, rtol=2e-3, atol=0)


def test_full_schedule_masks_everything():
    _, _, actions = batch(B=16, H=1)
    z, masked = corrupt(actions, torch.rand(16), make_schedule("full"), torch.Generator())
    assert masked.all() and (z == MASK).all()


def test_antithetic_times_are_stratified():
    g = torch.Generator().manual_seed(0)
    t = sample_t(8, DiffusionConfig(antithetic=True, timesteps=0), g, torch.device("cpu"))
    gaps = torch.sort(t).values.diff()
    torch.testing.assert_close(gaps, torch.full((7,), (1 - 1e-3) / 8), atol=1e-5, rtol=0)
    discrete = sample_t(256, DiffusionConfig(timesteps=100), g, torch.device("cpu"))
    torch.testing.assert_close(discrete * 100, (discrete * 100).round())
    assert discrete.min() >= 0.01 and discrete.max() <= 1.0


def test_loss_counts_only_masked_tokens():
    _, _, actions = batch(B=4, H=6)
    perfect = torch.nn.functional.one_hot(actions, NUM_ACTIONS).float() * 100
    wrong = perfect.clone()
    masked = torch.zeros(4, 6, dtype=torch.bool)
    masked[:, :3] = True
    wrong[:, 3:] = -perfect[:, 3:]  # only unmasked positions are wrong
    t = torch.full((4,), 0.5)
    for weighting in ("none", "elbo"):
        loss, acc = masked_loss(wrong, actions, masked, t, make_schedule("linear"), weighting)
        assert loss.item() == pytest.approx(0.0, abs=1e-6) and acc.item() == 1.0
    uniform = torch.zeros(4, 6, NUM_ACTIONS)
    plain, _ = masked_loss(uniform, actions, masked, t, make_schedule("linear"), "none")
    elbo, _ = masked_loss(uniform, actions, masked, t, make_schedule("linear"), "elbo")
    assert plain.item() == pytest.approx(math.log(NUM_ACTIONS), rel=1e-5)
    assert elbo.item() == pytest.approx(2.0 * math.log(NUM_ACTIONS) * 0.5, rel=1e-5)


class Recorder(torch.nn.Module):
    """Wraps a model and records the action tokens it is shown at each sampling step."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def encode(self, image, direction, past=None, mission=None):
        return self.model.encode(image, direction, past, mission)

    def denoise(self, memory, actions, t):
        self.seen.append(actions.clone())
        return self.model.denoise(memory, actions, t)


@pytest.mark.parametrize("order", ["confidence", "ancestral"])
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_sampler_fills_every_position_and_never_changes_unmasked(order, schedule, steps):
    H = 8
    config = ModelConfig(hidden=32, depth=1, heads=4, horizon=H, conditioning="pool")
    model = Recorder(trained_looking(DiT(config)).eval())
    image, direction, _ = batch(B=6, H=H)
    g = torch.Generator().manual_seed(0)
    plan = sample_plan(model, image, direction, H, steps, make_schedule(schedule), order, g)
    assert plan.shape == (6, H)
    assert ((plan >= 0) & (plan < NUM_ACTIONS)).all(), "every position holds an action"
    assert len(model.seen) == steps, "exactly K denoiser calls"
    assert (model.seen[0] == MASK).all()
    for k in range(steps):
        before = model.seen[k]
        after = model.seen[k + 1] if k + 1 < steps else plan
        revealed = before != MASK
        assert torch.equal(after[revealed], before[revealed]), f"step {k} changed a token"
    if order == "confidence" and steps > 1:
        still = [(s == MASK).sum(1) for s in model.seen]
        assert all((a > b).all() for a, b in zip(still, still[1:], strict=False)), (
            "each confidence step reveals at least one token"
        )


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_reveal_counts_are_exact_for_every_horizon_and_step_count(schedule):
    """Every step reveals at least one token and the steps reveal all H; for the linear and
    log-linear schedules (mask ratio t, the latter up to its 1e-3) the tokens still masked
    after step k are exactly floor(H (1 - (k + 1) / K)), where float error and the 1e-3 used
    to lose one."""
    ratio = make_schedule(schedule)
    for H in range(1, 65):
        for K in range(1, H + 1):
            counts = reveal_counts(H, K, ratio)
            assert len(counts) == K and sum(counts) == H and min(counts) >= 1, (H, K, counts)
            if schedule in ("linear", "loglinear"):
                left = H - np.cumsum(counts)
                expected = [H * (K - k - 1) // K for k in range(K)]
                assert left.tolist() == expected, (H, K, counts)
    assert reveal_counts(8, 2, make_schedule("loglinear")) == [4, 4]
    assert reveal_counts(8, 8, make_schedule("loglinear")) == [1] * 8


def plans(temperature: float, order: str = "confidence", seed: int = 0, calls: int = 1):
    H = 8
    config = ModelConfig(hidden=32, depth=1, heads=4, horizon=H, conditioning="pool")
    torch.manual_seed(0)
    model = trained_looking(DiT(config)).eval()
    image, direction, _ = batch(B=16, H=H)
    g = torch.Generator().manual_seed(seed)
    schedule = make_schedule("linear")
    return (
        model,
        image,
        direction,
        [
            sample_plan(model, image, direction, H, 4, schedule, order, g, temperature)
            for _ in range(calls)
        ],
    )


def test_temperature_zero_is_greedy_and_needs_no_randomness():
    model, image, direction, (first,) = plans(0.0, seed=0)
    _, _, _, (other,) = plans(0.0, seed=123)
    assert torch.equal(first, other), "greedy plans do not depend on the generator"
    one_step = sample_plan(model, image, direction, 8, 1, make_schedule("linear"), "confidence")
    z = torch.full((16, 8), MASK)
    greedy = model.denoise(model.encode(image, direction), z, torch.ones(16)).argmax(-1)
    assert torch.equal(one_step, greedy), "one step at temperature 0 is the argmax"


@pytest.mark.parametrize("order", ["confidence", "ancestral"])
def test_sampling_draws_fresh_values_from_one_generator(order):
    _, _, _, (a, b) = plans(1.0, order, seed=0, calls=2)
    assert not torch.equal(a, b), "the generator is not reset between plans"
    _, _, _, (again, _) = plans(1.0, order, seed=0, calls=2)
    assert torch.equal(a, again), "the same seed repeats the same plans"
    assert len(torch.unique(a)) > 2, "sampled values spread over several actions"
