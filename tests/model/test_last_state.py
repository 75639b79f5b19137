"""The serving path (last position only) against the full forward pass."""

from __future__ import annotations

import pytest
import torch

from xsmoe.model.user_encoder import UserEncoder, UserEncoderConfig, serving_state, traced_for


def _histories(batch: int, t: int, dim: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    items = torch.randn(batch, t, dim, generator=gen)
    lengths = torch.randint(1, t + 1, (batch,), generator=gen)
    valid = torch.arange(t).unsqueeze(0) >= (t - lengths).unsqueeze(1)  # right-aligned
    return items * valid.unsqueeze(-1), valid


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize(
    "config",
    [UserEncoderConfig(), UserEncoderConfig(dim=48, max_len=7, n_blocks=3, n_heads=4)],
    ids=["shipped", "3-blocks-4-heads"],
)
def test_last_state_equals_the_full_path_last_position(
    batch: int, config: UserEncoderConfig
) -> None:
    torch.manual_seed(0)
    enc = UserEncoder(config).eval()
    gen = torch.Generator().manual_seed(1)
    # every history length, and inputs longer than max_len (cut to the newest items)
    for t in range(1, config.max_len + 3):
        items, valid = _histories(batch, t, config.dim, gen)
        with torch.no_grad():
            full = enc(items, valid)[:, -1]
        fast = enc.last_state(items, valid)
        assert fast.shape == (batch, config.dim)
        torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
        assert full.abs().max() > 0.1  # a real state, not zeros matching zeros


def test_padding_does_not_reach_the_last_state() -> None:
    # a history of 4 padded to 10 = the same 4 alone (positions are right-aligned)
    torch.manual_seed(0)
    enc = UserEncoder(UserEncoderConfig()).eval()
    items = torch.randn(1, 4, 128)
    padded = torch.cat([torch.randn(1, 6, 128), items], dim=1)
    valid = torch.arange(10).unsqueeze(0) >= 6
    alone = enc.last_state(items, torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(enc.last_state(padded, valid), alone, atol=1e-5, rtol=1e-5)


def test_last_state_refuses_training_mode() -> None:
    enc = UserEncoder(UserEncoderConfig()).train()
    items, valid = torch.zeros(1, 3, 128), torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(RuntimeError, match="eval-mode"):
        enc.last_state(items, valid)


@pytest.mark.parametrize("batch", [1, 64])
def test_the_traced_serving_path_equals_the_full_path(batch: int) -> None:
    torch.manual_seed(0)
    config = UserEncoderConfig()
    enc = UserEncoder(config).eval()
    fn = serving_state(enc)
    assert isinstance(traced_for(enc), torch.jit.ScriptModule)  # not the eager fallback
    assert serving_state(enc) is fn  # bound once per encoder
    gen = torch.Generator().manual_seed(3)
    for t in range(1, config.max_len + 1):  # other shapes than the one traced
        items, valid = _histories(batch, t, config.dim, gen)
        with torch.no_grad():
            full = enc(items, valid)[:, -1]
        with torch.inference_mode():
            torch.testing.assert_close(fn(items, valid), full, atol=1e-5, rtol=1e-5)


def test_the_trace_follows_in_place_weight_updates() -> None:
    torch.manual_seed(0)
    enc = UserEncoder(UserEncoderConfig()).eval()
    fn = serving_state(enc)
    items, valid = _histories(4, 10, 128, torch.Generator().manual_seed(4))
    with torch.no_grad():
        enc.norm.bias.add_(1.0)  # what an optimizer step does to a shared tensor
        expected = enc(items, valid)[:, -1]
    with torch.inference_mode():
        torch.testing.assert_close(fn(items, valid), expected, atol=1e-5, rtol=1e-5)


def test_encoders_of_one_architecture_share_one_trace_with_their_own_weights() -> None:
    # a trace per encoder leaked TorchScript types on every snapshot swap
    first, second = (UserEncoder(UserEncoderConfig()).eval() for _ in range(2))
    assert traced_for(first) is traced_for(second) is not None
    items, valid = _histories(3, 7, 128, torch.Generator().manual_seed(5))
    with torch.inference_mode():
        for enc in (first, second):
            expected = enc.last_state(items, valid)
            torch.testing.assert_close(serving_state(enc)(items, valid), expected)
        assert not torch.allclose(serving_state(first)(items, valid), expected)
