from __future__ import annotations

import pytest
import torch

from xsmoe.model.side_moe import MoEStage, SideMoE, SideMoEConfig


def _stage(n: int = 1) -> MoEStage:
    torch.manual_seed(0)
    return MoEStage(dim=8, n_experts=n, bottleneck=4, init_std=0.01)


def test_expert_starts_near_identity() -> None:
    stage = _stage()
    x = torch.randn(5, 8)
    assert torch.allclose(stage.experts[0](x), x, atol=1e-2)


def test_expand_freezes_old_adds_mean_expert_and_keeps_router_rows() -> None:
    stage = _stage(2)
    with torch.no_grad():
        stage.experts[1].down.weight.add_(1.0)
    old_router = stage.router.weight.detach().clone()
    old_downs = [e.down.weight.detach().clone() for e in stage.experts]
    stage.expand()
    assert stage.n_experts == 3 and stage.router.weight.shape == (4, 8)
    torch.testing.assert_close(stage.router.weight[:3], old_router)  # rows carried over
    torch.testing.assert_close(stage.experts[2].down.weight, (old_downs[0] + old_downs[1]) / 2)
    assert [any(p.requires_grad for p in e.parameters()) for e in stage.experts] == [
        False,
        False,
        True,
    ]
    assert stage.router.weight.requires_grad


def test_frozen_experts_get_no_gradient() -> None:
    moe = SideMoE(SideMoEConfig(dim=8, experts_per_stage=(1, 1), bottleneck=4))
    moe.expand()
    moe(torch.randn(6, 3, 8)).pow(2).sum().backward()
    for stage in moe.stages:
        assert stage.experts[0].down.weight.grad is None
        assert stage.experts[0].up.weight.grad is None
        assert stage.experts[1].down.weight.grad is not None
        assert stage.router.weight.grad is not None


def test_utilization_tracked_only_in_training_passes() -> None:
    stage = _stage(2)
    x = torch.randn(4, 8)
    stage.eval()
    stage(x, x)
    assert stage.usage_count.item() == 0
    stage.train()
    stage(x, x)
    assert stage.usage_count.item() == 4
    assert stage.utilization().shape == (3,) and bool((stage.utilization() > 0).all())


def test_prune_drops_least_used_expert_and_its_router_row() -> None:
    stage = _stage(3)
    with torch.no_grad():
        stage.router.weight.zero_()
        stage.router.weight[2] = -50.0  # expert 1 (slot 2): never routed to
    x = torch.ones(16, 8)
    stage.train()
    stage(x, x)
    kept_rows = stage.router.weight.detach()[[0, 1, 3]].clone()
    assert stage.prune(tau=0.1) == 1
    assert stage.n_experts == 2 and stage.router.weight.shape == (3, 8)
    torch.testing.assert_close(stage.router.weight, kept_rows)
    assert stage.prune(tau=0.1) is None  # no usage since the last change


def test_prune_keeps_experts_above_tau_and_at_most_one() -> None:
    stage = _stage(3)
    with torch.no_grad():
        stage.router.weight.zero_()
    x = torch.ones(8, 8)
    stage.train()
    stage(x, x)
    assert stage.prune(tau=0.1) is None  # equal shares of 1/3
    assert stage.n_experts == 3


def test_cap_on_experts_per_stage() -> None:
    moe = SideMoE(SideMoEConfig(dim=8, experts_per_stage=(1,), bottleneck=4, max_experts=3))
    for _ in range(5):
        moe.expand()
    assert moe.experts_per_stage() == (3,)
    assert moe.frozen_per_stage() == (2,)


@pytest.mark.parametrize("n", [0, 1, 4])
def test_forward_shapes_any_expert_count(n: int) -> None:
    moe = SideMoE(SideMoEConfig(dim=8, experts_per_stage=(n, n), bottleneck=4))
    layers = torch.randn(5, 3, 8)
    out = moe(layers)
    assert out.shape == (5, 8)
    if n == 0:  # the backbone slot alone: the ladder returns the last kept layer
        torch.testing.assert_close(out, layers[:, 2])
