"""Deployment settings, read from the environment with the prefix XSMOE_.

Nested groups use a double underscore: XSMOE_TEXT__MODEL, XSMOE_IMAGE__LAYERS='[0,6,12]'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.keys import Keys
from common.redis_url import parse_redis_url
from model.encoders import IMAGE_BUILTIN, TEXT_BUILTIN, ImageEncoderConfig, TextEncoderConfig


class TextEncoderSettings(BaseModel):
    model: str = Field(TEXT_BUILTIN, description="built-in name, local HF folder or hub id")
    layers: list[int] = Field([0, 3, 6], description="hidden states kept (0 = embeddings)")
    pooling: Literal["cls", "mean"] = "mean"
    max_tokens: int = Field(40, ge=2, le=512)

    def to_config(self) -> TextEncoderConfig:
        return TextEncoderConfig(self.model, tuple(self.layers), self.pooling, self.max_tokens)


class ImageEncoderSettings(BaseModel):
    model: str = Field(IMAGE_BUILTIN, description="built-in name, local HF folder or hub id")
    layers: list[int] = Field([0, 6, 12], description="hidden states kept (0 = embeddings)")
    pooling: Literal["cls", "mean"] = "cls"
    image_size: int = Field(224, ge=14, le=1024)
    resize_size: int = Field(256, ge=14, le=2048)

    def to_config(self) -> ImageEncoderConfig:
        return ImageEncoderConfig(
            self.model, tuple(self.layers), self.pooling, self.image_size, self.resize_size
        )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="XSMOE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(Path("var"), description="where stores and snapshots live")
    redis_url: str = Field(
        "redis://localhost:6379/0",
        description="Redis for streams and state: redis://, redis+sentinel:// or redis+cluster://",
    )
    redis_prefix: str = Field(
        "xsmoe", pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="key prefix in Redis"
    )
    redis_shards: int = Field(
        1,
        ge=1,
        le=1024,
        description="feedback streams and user keys are spread over this many hash-tag "
        "shards (by user); more than 1 pays off on a Redis Cluster. Every API replica and "
        "the worker must use the same number",
    )
    snapshot_dir: Path | None = Field(None, description="snapshots (default DATA_DIR/snapshots)")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "xsmoe", description="converted encoder weights"
    )
    torch_threads: int = Field(0, ge=0, description="0 = leave torch's default")
    log_level: str = "INFO"
    text: TextEncoderSettings = TextEncoderSettings()
    image: ImageEncoderSettings = ImageEncoderSettings()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        parse_redis_url(url)  # refuses a malformed URL now, saying what is allowed
        return url

    @property
    def keys(self) -> Keys:
        return Keys(self.redis_prefix, self.redis_shards)

    @property
    def snapshots(self) -> Path:
        return self.snapshot_dir or self.data_dir / "snapshots"

    def features_dir(self, dataset: str) -> Path:
        return self.data_dir / "features" / dataset
