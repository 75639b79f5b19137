"""Where training runs: a device name from a setting -> a `torch.device`.

"auto" is CUDA when this machine has it, else the CPU. An explicit CUDA device
that this machine lacks is refused with a clear error, never silently replaced
by the CPU: a worker configured for a GPU should not train ten times slower
unnoticed.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from xsmoe.model.errors import ModelError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
_NAME_RE = re.compile(r"^(auto|cpu|cuda(:\d{1,3})?)$")


class DeviceUnavailable(ModelError, ValueError):
    """The device asked for does not exist on this machine (or is not a device name).
    A ValueError too: a config dataclass or a pydantic validator refuses it as bad input."""


def check_device_name(name: str) -> str:
    """`name` if it is one of auto, cpu, cuda, cuda:N; DeviceUnavailable if not."""
    if not _NAME_RE.match(name):
        shown = name if len(name) <= 32 else name[:32] + "..."
        raise DeviceUnavailable(f"device must be one of {', '.join(DEVICES)}, got {shown!r}")
    return name


def resolve_device(name: str) -> torch.device:
    """The device `name` means on this machine ("auto": CUDA if available, else CPU)."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                f"device {name!r} asked for, but this machine has no usable CUDA GPU "
                "(use 'auto' or 'cpu')"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceUnavailable(
                f"device {name!r} asked for, but this machine has {count} CUDA device(s)"
            )
    return device


def placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a module's parameters (what new tensors must follow)."""
    for param in module.parameters():
        if param.is_floating_point():
            return param.device, param.dtype
    return torch.device("cpu"), torch.get_default_dtype()
