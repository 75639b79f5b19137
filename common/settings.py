"""Deployment settings, read from the environment with the prefix XSMOE_.

Nested groups use a double underscore: XSMOE_TEXT__MODEL, XSMOE_IMAGE__LAYERS='[0,6,12]'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xsmoe.common.keys import Keys
from xsmoe.common.redis_url import parse_redis_url
from xsmoe.model.encoders import IMAGE_BUILTIN, TEXT_BUILTIN, ImageEncoderConfig, TextEncoderConfig


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


class S3Settings(BaseModel):
    """How to reach an S3-compatible store (XSMOE_SNAPSHOT_STORE=s3://bucket/prefix)."""

    endpoint_url: str | None = Field(
        None, description="e.g. http://minio:9000; unset: AWS's endpoint for the region"
    )
    access_key: SecretStr | None = Field(None, description="unset: boto3's own credential chain")
    secret_key: SecretStr | None = None
    region: str = Field("us-east-1", min_length=1)
    connect_timeout_s: float = Field(2.0, gt=0, description="per connection attempt")
    read_timeout_s: float = Field(30.0, gt=0, description="longest wait for a response's bytes")
    max_attempts: int = Field(3, ge=1, le=10, description="tries per request, retries included")

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> Self:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError(
                "set both XSMOE_S3__ACCESS_KEY and XSMOE_S3__SECRET_KEY, or neither "
                "(then boto3 finds credentials itself: environment, profile, instance role)"
            )
        return self


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
    snapshot_store: str | None = Field(
        None,
        description="where versions are published and fetched: a directory or "
        "s3://bucket/prefix (default: the snapshot directory itself)",
    )
    snapshot_cache_dir: Path | None = Field(
        None, description="fetched versions (default DATA_DIR/cache/snapshots)"
    )
    s3: S3Settings = S3Settings()
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

    @property
    def snapshot_cache(self) -> Path:
        return self.snapshot_cache_dir or self.data_dir / "cache" / "snapshots"

    def features_dir(self, dataset: str) -> Path:
        return self.data_dir / "features" / dataset
