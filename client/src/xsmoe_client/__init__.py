"""A typed client of the xsmoe recommendation API, blocking or asyncio.

from xsmoe_client import Client
with Client("http://127.0.0.1:8000", api_key="...") as xs:
    xs.feedback("196", "242")
    print(xs.recommend(user_id="196", k=5).item_ids)
"""

from xsmoe_client.aio import AsyncClient
from xsmoe_client.call import Call
from xsmoe_client.errors import ApiError
from xsmoe_client.inputs import FeedbackEvent, ItemInput, RecommendFilter
from xsmoe_client.models import (
    AcceptedEvent,
    BatchItemResult,
    BatchResult,
    ErrorBody,
    FeedbackAccepted,
    FieldError,
    Health,
    ItemOut,
    ItemPage,
    ModelInfo,
    ModelList,
    ModelVersion,
    Readiness,
    RecommendationList,
    RollbackDone,
    ScoredItem,
    UserErased,
    UserOut,
)
from xsmoe_client.retry import RetryPolicy
from xsmoe_client.sync import Client
from xsmoe_client.version import VERSION

__version__ = VERSION
__all__ = [
    "AcceptedEvent",
    "ApiError",
    "AsyncClient",
    "BatchItemResult",
    "BatchResult",
    "Call",
    "Client",
    "ErrorBody",
    "FeedbackAccepted",
    "FeedbackEvent",
    "FieldError",
    "Health",
    "ItemInput",
    "ItemOut",
    "ItemPage",
    "ModelInfo",
    "ModelList",
    "ModelVersion",
    "Readiness",
    "RecommendFilter",
    "RecommendationList",
    "RetryPolicy",
    "RollbackDone",
    "ScoredItem",
    "UserErased",
    "UserOut",
]
