"""Expandable side mixture-of-experts over a frozen backbone's cached layers (XSMoE).

One `SideMoE` per modality is a ladder of stages. With kept layers h[0..S]:

    x = h[0]
    for stage s = 1..S:
        candidates = [h[s]] + [E_k(x) for each expert k]    # slot 0: the backbone
        w = softmax(R_s x)                                  # bias-free, dense
        x = sum_j w_j * candidates_j

Experts are bottleneck adapters with a residual, `E(x) = x + Up(GELU(Down(x)))`.
`expand()` freezes every existing expert and appends one initialised to their
mean; `prune(tau)` drops at most one expert per stage whose utilization share
is below `tau`. Utilization is tracked only in training passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SideMoEConfig:
    dim: int  # backbone hidden size
    experts_per_stage: tuple[int, ...]  # one entry per stage (= kept layers - 1)
    bottleneck: int = 64
    init_std: float = 0.01
    max_experts: int = 8  # cap per stage: serving cost grows with experts


class Expert(nn.Module):
    """Bottleneck adapter with residual; starts near the identity."""

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        init_std: float,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck, bias=False, device=device, dtype=dtype)
        self.up = nn.Linear(bottleneck, dim, bias=False, device=device, dtype=dtype)
        nn.init.normal_(self.down.weight, std=init_std)
        nn.init.normal_(self.up.weight, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.up(F.gelu(self.down(x)))
        return out


class MoEStage(nn.Module):
    """One ladder stage: router over [backbone slot + experts]."""

    def __init__(self, dim: int, n_experts: int, bottleneck: int, init_std: float) -> None:
        super().__init__()
        self.dim, self.bottleneck, self.init_std = dim, bottleneck, init_std
        self.experts = nn.ModuleList(Expert(dim, bottleneck, init_std) for _ in range(n_experts))
        self.router = nn.Linear(dim, 1 + n_experts, bias=False)
        # Persistent: a snapshot carries the usage its next window's prune reads.
        self.register_buffer("usage_sum", torch.zeros(1 + n_experts))
        self.register_buffer("usage_count", torch.zeros(()))

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor, backbone: torch.Tensor) -> torch.Tensor:
        # x, backbone: (B, D)
        candidates = torch.stack([backbone] + [e(x) for e in self.experts], dim=1)  # (B, 1+E, D)
        weights = torch.softmax(self.router(x), dim=-1)  # (B, 1+E)
        weighted = weights.unsqueeze(-1) * candidates
        if self.training:  # utilization counts training passes only
            with torch.no_grad():
                self.usage_sum += weighted.norm(dim=-1).sum(0)
                self.usage_count += x.shape[0]
        return weighted.sum(dim=1)

    def utilization(self) -> torch.Tensor:
        """Mean ||w_j * candidate_j|| per slot (backbone first) over training passes."""
        return self.usage_sum / self.usage_count.clamp_min(1.0)

    def _new_router(self, n_slots: int) -> nn.Linear:
        like = self.router.weight  # a new module joins the old ones' device and dtype
        return nn.Linear(self.dim, n_slots, bias=False, device=like.device, dtype=like.dtype)

    def reset_utilization(self) -> None:
        like = self.router.weight
        # At least float32: a half-precision counter stops growing (bfloat16 keeps 8 bits,
        # so `count += 64` is lost beyond ~16k) or overflows (float16 at 65504).
        dtype = torch.promote_types(like.dtype, torch.float32)
        self.usage_sum = torch.zeros(1 + self.n_experts, dtype=dtype, device=like.device)
        self.usage_count = torch.zeros((), dtype=dtype, device=like.device)

    def expand(self) -> None:
        """Freeze existing experts; append one initialised to their mean; add a router row."""
        like = self.router.weight
        new = Expert(self.dim, self.bottleneck, self.init_std, like.device, like.dtype)
        if self.experts:
            with torch.no_grad():
                for name, param in new.named_parameters():
                    stacked = torch.stack([e.get_parameter(name) for e in self.experts])
                    param.copy_(stacked.mean(0))
        for expert in self.experts:
            expert.requires_grad_(False)
        self.experts.append(new)
        old = self.router.weight.detach()
        router = self._new_router(1 + self.n_experts)
        with torch.no_grad():
            router.weight[: old.shape[0]] = old
            # The new expert starts with the mean routing logit of the old experts
            # (or of the backbone when there were none): no slot is favoured.
            router.weight[-1] = old[1:].mean(0) if old.shape[0] > 1 else old[0]
        self.router = router
        self.reset_utilization()

    def prune(self, tau: float) -> int | None:
        """Drop the least-used expert if its share (backbone slot excluded) < tau."""
        if self.n_experts == 0 or self.usage_count.item() == 0:
            return None
        usage = self.utilization()[1:]
        share = usage / usage.sum().clamp_min(1e-12)
        victim = int(share.argmin())
        if share[victim] >= tau or self.n_experts == 1:
            return None
        del self.experts[victim]
        keep = [j for j in range(self.router.out_features) if j != victim + 1]
        router = self._new_router(len(keep))
        with torch.no_grad():
            router.weight.copy_(self.router.weight[keep])
        self.router = router
        self.reset_utilization()
        return victim


class SideMoE(nn.Module):
    """The ladder of stages for one modality: (B, L, D) cached layers -> (B, D)."""

    def __init__(self, config: SideMoEConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = nn.ModuleList(
            MoEStage(config.dim, n, config.bottleneck, config.init_std)
            for n in config.experts_per_stage
        )

    @property
    def stage_list(self) -> list[MoEStage]:
        return [cast(MoEStage, stage) for stage in self.stages]

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        x = layers[:, 0]
        for s, stage in enumerate(self.stages, start=1):
            x = stage(x, layers[:, s])
        return x

    def experts_per_stage(self) -> tuple[int, ...]:
        return tuple(stage.n_experts for stage in self.stage_list)

    def frozen_per_stage(self) -> tuple[int, ...]:
        """How many leading experts of each stage are frozen (expand freezes a prefix)."""
        return tuple(
            sum(not any(p.requires_grad for p in e.parameters()) for e in stage.experts)
            for stage in self.stage_list
        )

    def freeze_leading(self, counts: tuple[int, ...]) -> None:
        """Restore which experts are frozen (e.g. after loading a snapshot)."""
        for stage, n_frozen in zip(self.stage_list, counts, strict=True):
            for k, expert in enumerate(stage.experts):
                expert.requires_grad_(k >= n_frozen)

    def expand(self) -> None:
        """Add one expert to every stage below the cap."""
        for stage in self.stage_list:
            if stage.n_experts < self.config.max_experts:
                stage.expand()

    def prune(self, tau: float) -> list[int | None]:
        return [stage.prune(tau) for stage in self.stage_list]
