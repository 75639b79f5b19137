"""The recommender: an item tower over cached features + a SASRec user tower.

Its config carries every shape (per modality, per stage expert counts and which
are frozen), so a fresh process rebuilds the exact architecture before loading
weights, whatever expansions and prunings happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from xsmoe.model.device import placement
from xsmoe.model.item_tower import ContentTower, IdTower, ItemInputs, ItemTable
from xsmoe.model.user_encoder import UserEncoder, UserEncoderConfig, serving_state


@dataclass(frozen=True)
class RecommenderConfig:
    shapes: dict[str, tuple[int, int]]  # modality -> (n_layers kept, hidden)
    experts: dict[str, tuple[int, ...]]  # modality -> experts per stage
    frozen: dict[str, tuple[int, ...]] = field(default_factory=dict)  # leading frozen experts
    embed_dim: int = 128
    bottleneck: int = 64
    max_experts: int = 8
    user: UserEncoderConfig = field(default_factory=UserEncoderConfig)
    n_item_ids: int = 0  # > 0: learned item-ID embeddings instead of content (baseline)
    trained_windows: int = 0  # windows trained so far: a fresh model does not grow first
    id_residual_rows: int = 0  # > 0: content + a warm-item ID residual per catalog row
    # A first snapshot built before any interaction exists: the (untrained) user encoder
    # is bypassed and a user is the mean of their items' content vectors, so it serves
    # items similar in content. Training clears it.
    content_only: bool = False

    @classmethod
    def for_content(
        cls, shapes: dict[str, tuple[int, int]], experts_per_stage: int = 1, **kw: Any
    ) -> RecommenderConfig:
        experts = {m: (experts_per_stage,) * (n_layers - 1) for m, (n_layers, _) in shapes.items()}
        return cls(shapes=shapes, experts=experts, **kw)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shapes"] = {m: list(s) for m, s in self.shapes.items()}
        data["experts"] = {m: list(s) for m, s in self.experts.items()}
        data["frozen"] = {m: list(s) for m, s in self.frozen.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecommenderConfig:
        return cls(
            shapes={m: (int(a), int(b)) for m, (a, b) in data["shapes"].items()},
            experts={m: tuple(int(n) for n in s) for m, s in data["experts"].items()},
            frozen={m: tuple(int(n) for n in s) for m, s in data.get("frozen", {}).items()},
            embed_dim=int(data["embed_dim"]),
            bottleneck=int(data["bottleneck"]),
            max_experts=int(data["max_experts"]),
            user=UserEncoderConfig(**data["user"]),
            n_item_ids=int(data.get("n_item_ids", 0)),
            trained_windows=int(data.get("trained_windows", 0)),
            id_residual_rows=int(data.get("id_residual_rows", 0)),
            content_only=bool(data.get("content_only", False)),
        )


class Recommender(nn.Module):
    def __init__(self, config: RecommenderConfig, item_tower: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        if item_tower is not None:
            self.items: nn.Module = item_tower
        elif config.n_item_ids > 0:
            self.items = IdTower(config.n_item_ids, config.embed_dim)
        else:
            tower = ContentTower(
                config.shapes,
                config.experts,
                config.embed_dim,
                config.bottleneck,
                config.max_experts,
                config.id_residual_rows,
            )
            for m, counts in config.frozen.items():
                tower.ladders[m].freeze_leading(counts)
            self.items = tower
        self.user = UserEncoder(replace(config.user, dim=config.embed_dim))

    # -- architecture changes (XSMoE) ---------------------------------------------
    @property
    def content(self) -> ContentTower | None:
        return self.items if isinstance(self.items, ContentTower) else None

    def current_config(self) -> RecommenderConfig:
        """The config describing the model as it is now (after expand / prune)."""
        tower = self.content
        if tower is None:
            return self.config
        return replace(
            self.config,
            experts={m: moe.experts_per_stage() for m, moe in tower.ladders.items()},
            frozen={m: moe.frozen_per_stage() for m, moe in tower.ladders.items()},
        )

    def utilization(self) -> dict[str, list[list[float]]]:
        """Per modality, per stage: each slot's share of routed output (backbone first)."""
        tower = self.content
        if tower is None:
            return {}
        out = {}
        for m, moe in tower.ladders.items():
            stages = []
            for stage in moe.stage_list:
                usage = stage.utilization()
                stages.append([round(float(x), 4) for x in usage / usage.sum().clamp_min(1e-12)])
            out[m] = stages
        return out

    def reset_utilization(self) -> None:
        tower = self.content
        for moe in tower.ladders.values() if tower is not None else ():
            for stage in moe.stage_list:
                stage.reset_utilization()

    def mark_trained(self) -> None:
        """Count a trained window (the config travels with the snapshot)."""
        self.config = replace(
            self.current_config(), trained_windows=self.config.trained_windows + 1
        )

    def prune_and_expand(self, tau: float, expand: bool = True) -> dict[str, list[int | None]]:
        """Before a window: prune at most one expert per stage (by the utilization of
        the previous window's training), then add one (capped)."""
        tower = self.content
        if tower is None:
            return {}
        pruned = {m: moe.prune(tau) for m, moe in tower.ladders.items()}
        if expand:
            for moe in tower.ladders.values():
                moe.expand()
        self.config = self.current_config()
        return pruned

    # -- forward passes ------------------------------------------------------------
    # Inputs follow the parameters (device and dtype): the caller chooses where the
    # model lives, and cached float32 CPU features then work on any device/precision.
    def encode_items(self, inputs: ItemInputs) -> torch.Tensor:
        return self.items(inputs.to(*placement(self)))  # type: ignore[no-any-return]

    def user_states(self, item_vectors: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, d) right-aligned history vectors -> (B, T, d) user states per position."""
        device, dtype = placement(self)
        items = item_vectors.to(device=device, dtype=dtype)
        return self.user(items, valid.to(device))  # type: ignore[no-any-return]

    @torch.no_grad()
    def item_embeddings(self, table: ItemTable, batch_size: int = 2048) -> torch.Tensor:
        """Embeddings of every item in `table`, in row order: (N, d), on the model's
        device and in its dtype (`.float().cpu()` for numpy or FAISS). Streams the
        table in chunks into one preallocated output: peak memory is the output plus
        one chunk, whatever the catalog's size."""
        was_training = self.training
        self.eval()
        device, dtype = placement(self)
        out = torch.empty(len(table), self.config.embed_dim, device=device, dtype=dtype)
        lo = 0
        for inputs in table.batches(batch_size):
            hi = lo + len(inputs.rows)
            out[lo:hi] = self.encode_items(inputs)
            lo = hi
        self.train(was_training)
        return out

    @torch.no_grad()
    def user_embeddings(self, histories: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, d) right-aligned history item embeddings -> (B, d) user vectors."""
        if self.config.content_only:
            weights = valid.unsqueeze(-1).to(histories.dtype)  # (B, T, 1)
            return (histories * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        device, dtype = placement(self)
        histories, valid = histories.to(device=device, dtype=dtype), valid.to(device)
        # only the last position is read: the eval-mode path that computes just that
        if not self.training:  # serving: no module walk twice per call
            if histories.shape[1] <= self.config.user.max_len:  # what the trace handles
                return serving_state(self.user)(histories, valid)
            return self.user.last_state(histories, valid)
        self.eval()
        out = self.user.last_state(histories, valid)
        self.train()
        return out

    def user_embedding(self, history: torch.Tensor) -> torch.Tensor:
        """One user's history item embeddings (T, d), newest last -> (d,)."""
        history = history[-self.config.user.max_len :]
        valid = torch.ones(1, history.shape[0], dtype=torch.bool, device=history.device)
        return self.user_embeddings(history.unsqueeze(0), valid)[0]

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
