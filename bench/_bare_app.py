"""The framework floor: a bare FastAPI endpoint served like the real one.

It parses the same request model and returns a fixed answer of the same shape,
so the gap to the real service is our work (Redis, model, FAISS), not FastAPI.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from xsmoe.service.schemas import RecommendationList, RecommendRequest, ScoredItem

app = FastAPI()
ANSWER = RecommendationList(
    items=[ScoredItem(item_id=str(i), score=1.0 - i / 100) for i in range(10)],
    model_version="v000000",
)


@app.get("/v1/users/{user_id}/recommendations")
async def user_recommendations(user_id: str, k: int = 10) -> RecommendationList:
    return ANSWER


@app.post("/v1/recommendations")
async def recommendations(body: RecommendRequest) -> RecommendationList:
    return ANSWER


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
        access_log=False, loop="uvloop", http="httptools",
    )  # fmt: skip
