"""A 4xx/5xx answer as one exception, with everything the body said."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from xsmoe_client.models import ErrorBody, FieldError
from xsmoe_client.retry import retry_after


class ApiError(Exception):
    """The server refused: `status`, `error` (machine code), `detail` (what to fix),
    `fields` (each request field at fault) and `retry_after` (seconds, on a 503/429)."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        fields: list[FieldError] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.fields = fields or []
        self.retry_after = retry_after

    @property
    def field_names(self) -> list[str]:
        return [f.field for f in self.fields]

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error of a response; a body that is not the API's (a proxy's page)
        becomes `http_error` with the start of its text."""
        wait = retry_after(response)
        try:
            body = ErrorBody.model_validate_json(response.content)
        except ValidationError:
            detail = response.text[:200] or response.reason_phrase
            return cls(response.status_code, "http_error", detail, retry_after=wait)
        return cls(response.status_code, body.error, body.detail, body.fields, retry_after=wait)
