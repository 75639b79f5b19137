"""Domain errors raised by model code; entrypoints map them to messages or HTTP."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every error the model package raises on purpose."""


class EncoderLoadError(ModelError):
    """An encoder could not be resolved or loaded; names the setting at fault."""

    def __init__(self, modality: str, field: str, value: object, reason: str) -> None:
        self.modality = modality
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{modality} encoder {field}={value!r}: {reason}")


class FeatureStoreMismatch(ModelError):
    """A feature store was built with another encoder than the one configured."""

    def __init__(self, path: str, differences: list[tuple[str, object, object]]) -> None:
        self.path = path
        self.differences = differences
        lines = "; ".join(
            f"{name}: store has {stored!r}, configured {wanted!r}"
            for name, stored, wanted in differences
        )
        super().__init__(
            f"feature store {path} was built with a different encoder ({lines}). "
            "Build into a new directory, or configure the encoder the store was built with."
        )


class FeatureStoreError(ModelError):
    """A feature store is missing, corrupt, or asked for something it cannot do."""


class DatasetError(ModelError):
    """A dataset file is missing or malformed; says where and what is allowed."""
