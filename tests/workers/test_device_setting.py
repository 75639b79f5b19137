"""The worker's `device` setting: auto by default, bad names and absent GPUs refused at
start-up (a failing window would dead-letter its events)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from xsmoe.workers.settings import WorkerOptions


def test_device_defaults_to_auto_and_bad_names_are_refused() -> None:
    assert WorkerOptions().device == "auto"
    assert WorkerOptions(device="cpu").device == "cpu"
    with pytest.raises(ValidationError, match="device must be one of auto, cpu, cuda, cuda:N"):
        WorkerOptions(device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="no usable CUDA GPU"):
        WorkerOptions(device="cuda")
