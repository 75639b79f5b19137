"""The API's routes, once, as methods of both clients (see endpoint.py)."""

from __future__ import annotations

from xsmoe_client import calls
from xsmoe_client.endpoint import Endpoint, Pager


class Routes:
    # recommendations
    recommend = Endpoint(calls.recommend)
    user_recommendations = Endpoint(calls.user_recommendations)
    # feedback
    feedback = Endpoint(calls.feedback)
    feedback_batch = Endpoint(calls.feedback_batch)
    # items
    add_item = Endpoint(calls.add_item)
    upload_item = Endpoint(calls.upload_item)
    put_item = Endpoint(calls.put_item)
    put_items = Endpoint(calls.put_items)
    get_item = Endpoint(calls.get_item)
    delete_item = Endpoint(calls.delete_item)
    list_items = Endpoint(calls.list_items)
    iter_items = Pager(calls.iter_items, calls.next_items_page)
    # users
    get_user = Endpoint(calls.get_user)
    delete_user = Endpoint(calls.delete_user)
    # models
    model_info = Endpoint(calls.model_info)
    list_models = Endpoint(calls.list_models)
    get_model = Endpoint(calls.get_model)
    rollback = Endpoint(calls.rollback)
    # health
    health = Endpoint(calls.health)
    readiness = Endpoint(calls.readiness)
