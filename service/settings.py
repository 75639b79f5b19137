"""Settings of the API process: the shared ones plus keys, limits and serving knobs."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from xsmoe.common.settings import Settings

KEY_NAMES = ("read_key", "write_key", "admin_key")
PROD_KEY_CHARS = 16  # `openssl rand -hex 16` gives 32
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")


class ApiSettings(BaseModel):
    mode: Literal["dev", "prod"] = Field(
        "dev", description="prod: every route needs a key and keys are mandatory"
    )
    read_key: SecretStr | None = Field(None, description="X-API-Key for reads (prod)")
    write_key: SecretStr | None = Field(None, description="X-API-Key for feedback and items")
    admin_key: SecretStr | None = Field(None, description="X-API-Key for admin routes")
    dashboard_session_hours: float = Field(
        12.0, gt=0, le=24 * 7, description="how long a dashboard sign-in lasts"
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, description="JSON request body limit")
    max_image_bytes: int = Field(8 << 20, ge=1024, description="decoded image size limit")
    max_image_pixels: int = Field(
        25_000_000,
        ge=1,
        description="width x height limit of an uploaded image, read from its header before "
        "any pixel is decoded (25 M: a 6000x4000 photo; decoded RGB is 3 bytes a pixel)",
    )
    max_history: int = Field(200, ge=1, description="items kept per user history")
    max_events: int = Field(1000, ge=1, description="events per feedback request")
    max_header_bytes: int = Field(
        32 << 10, ge=1024, description="request line + headers limit (431 above)"
    )
    max_headers: int = Field(100, ge=8, description="header lines per request (431 above)")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="time a client has to send a request's line and headers"
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="longest wait for the next piece of a request body (408 after)"
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="API processes sharing the port (`xsmoe serve --workers`); each loads "
        "and swaps the snapshot itself and keeps its own /metrics",
    )
    keep_alive_seconds: int = Field(
        5, ge=1, description="an idle keep-alive connection is closed after this"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="browser origins allowed to call the API (CORS), e.g. "
        '\'["https://shop.example"]\' or a comma list; empty: CORS off; "*": any origin '
        "(keys still apply; cookies are never sent cross-origin)",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # XSMOE_API__CORS_ORIGINS=https://a.example,https://b
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"XSMOE_API__CORS_ORIGINS: {origin[:80]!r} is not an origin; give "
                    "scheme://host[:port] without a path (e.g. https://shop.example) or *"
                )
        return origins

    @field_validator(*KEY_NAMES)
    @classmethod
    def _no_blank_keys(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if key is None or key.get_secret_value() == "":
            return None  # an empty variable (compose's `${X:-}`) means not set
        value = key.get_secret_value()
        if value != value.strip():
            raise ValueError(
                f"XSMOE_API__{str(info.field_name).upper()} is blank or starts or ends with "
                "whitespace (a header value never does, so no request could match it)"
            )
        return key

    @model_validator(mode="after")
    def _keys_in_prod(self) -> Self:
        if self.mode != "prod":
            return self
        missing = [f"XSMOE_API__{n.upper()}" for n in KEY_NAMES if getattr(self, n) is None]
        if missing:
            raise ValueError(
                f"production mode needs API keys: set {', '.join(missing)} "
                "(or XSMOE_API__MODE=dev for an open development server)"
            )
        short = [
            f"XSMOE_API__{n.upper()} has {len(getattr(self, n).get_secret_value())}"
            for n in KEY_NAMES
            if len(getattr(self, n).get_secret_value()) < PROD_KEY_CHARS
        ]
        if short:
            raise ValueError(
                f"production keys need at least {PROD_KEY_CHARS} characters: "
                f"{', '.join(short)} (make one with `openssl rand -hex 16`)"
            )
        return self


class ServingSettings(BaseModel):
    poll_seconds: float = Field(1.0, gt=0, description="how often the snapshot pointer is read")
    retry_max_seconds: float = Field(
        60.0, gt=0, description="a refused version is tried again after 1, 2, 4 ... s, up to this"
    )
    sync_block_ms: int = Field(200, ge=10, description="item-log wait per read (replica sync)")
    threads: int = Field(1, ge=1, description="torch and FAISS threads per process")
    warmup_queries: int = Field(8, ge=0, description="queries run on a snapshot before serving")
    event_ttl_seconds: int = Field(
        86400, ge=60, description="how long a client-given event_id is remembered (dedup)"
    )
    user_ttl_seconds: int = Field(
        30 * 86400, ge=60, description="a user's history and dislikes expire this long after use"
    )
    wait_replicas: int = Field(
        0,
        ge=0,
        description="feedback is acknowledged only once this many replicas have it (Redis WAIT)",
    )
    wait_timeout_ms: int = Field(200, ge=1, description="longest WAIT for those replicas")


class ServiceSettings(Settings):
    api: ApiSettings = ApiSettings()
    serving: ServingSettings = ServingSettings()
