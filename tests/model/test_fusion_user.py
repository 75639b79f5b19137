from __future__ import annotations

import torch

from xsmoe.model.fusion import ModalityGateFusion
from xsmoe.model.user_encoder import UserEncoder, UserEncoderConfig


def test_missing_modality_is_masked_out_of_the_gate() -> None:
    torch.manual_seed(0)
    fusion = ModalityGateFusion({"text": 6, "image": 5}, out_dim=4)
    text, image = torch.randn(3, 6), torch.randn(3, 5)
    present = {
        "text": torch.tensor([True, True, False]),
        "image": torch.tensor([True, False, False]),
    }
    out = fusion({"text": text, "image": image}, present)
    # Text only: the gate gives text all the weight, whatever the image features are.
    torch.testing.assert_close(out[1], fusion.proj["text"](text[1]))
    out2 = fusion({"text": text, "image": torch.randn(3, 5) * 100}, present)
    torch.testing.assert_close(out[1], out2[1])
    # No modality at all: the zero vector, not NaN.
    assert torch.equal(out[2], torch.zeros(4))
    # Both present: a convex mix of the two projections.
    assert torch.isfinite(out).all()


def test_user_encoder_is_causal_and_ignores_padding() -> None:
    torch.manual_seed(0)
    enc = UserEncoder(UserEncoderConfig(dim=8, max_len=6, n_heads=2, dropout=0.0)).eval()
    items = torch.randn(1, 4, 8)
    valid = torch.ones(1, 4, dtype=torch.bool)
    out = enc(items, valid)
    changed = items.clone()
    changed[0, 3] += 5.0
    torch.testing.assert_close(enc(changed, valid)[0, :3], out[0, :3])  # no peeking ahead
    # Left padding (right-aligned history) leaves the last state unchanged.
    padded = torch.cat([torch.randn(1, 2, 8), items], dim=1)
    pad_valid = torch.tensor([[False, False, True, True, True, True]])
    torch.testing.assert_close(enc(padded, pad_valid)[0, -1], out[0, -1], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(enc(padded, pad_valid)).all()
