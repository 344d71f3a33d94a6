"""Unsigned JSON control routes under ``/sandbox/`` for demos, scripts and tests.

* ``GET /sandbox/health``: ``{"ok": true}``.
* ``GET /sandbox/state``: partner, shops, order counts by status, push summary, faults.
* ``GET /sandbox/shops``; ``POST /sandbox/shops`` ``{shop_id?, region?, name?, authorize?}``.
* ``POST /sandbox/shops/{id}/authorize``: a fresh authorisation code ``{"shop_id", "code"}``;
  ``.../deauthorize``, ``.../expire_access_tokens``, ``.../expire_refresh_tokens``.
* ``GET /sandbox/items?shop_id=``; ``POST /sandbox/items`` ``{shop_id, item_id?, name?,
  price?, models: [{model_id, model_sku?, stock, price?}]}``.
* ``GET /sandbox/orders?shop_id=&status=``; ``POST /sandbox/orders`` ``{shop_id, lines:
  [{item_id, model_id?, quantity?}], paid?, cod?, allow_oversell?}``.
* ``GET /sandbox/orders/{sn}``: every field of one order.
* ``POST /sandbox/orders/{sn}/advance`` ``{"status": "PROCESSED"}`` (see
  ``SandboxState.advance``); ``POST /sandbox/orders/{sn}/buyer_cancel`` ``{request?, reason?}``.
* ``GET /sandbox/calls?api=order.get_order_detail``; ``DELETE /sandbox/calls``;
  ``GET /sandbox/calls/counts``.
* ``GET|PUT|PATCH /sandbox/faults``: fault settings (PUT replaces, PATCH merges).
* ``GET /sandbox/traffic``; ``POST /sandbox/traffic/start`` ``{rate, seed?, time_factor?,
  shop_ids?, odds?}`` (``odds``: ``LifecycleOdds`` fields to change, e.g.
  ``{"ready_buyer_requests_cancel": 0.2}``); ``POST /sandbox/traffic/stop``.
* ``PUT /sandbox/callback`` ``{"callback_url": url or null, "verify"?: bool}``.
* ``GET /sandbox/pushes``: delivery summary and the latest attempts;
  ``POST /sandbox/pushes/verify`` ``{"url"?}`` sends the code-0 verification push.

Errors answer ``{"error", "message"}`` with 400 (bad input), 404 (unknown entity) or 409
(the simulated world does not allow it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shopee.sandbox.api import VerifyCallback
from shopee.sandbox.config import FaultConfig
from shopee.sandbox.errors import SandboxError, ShopeeApiError, UnknownEntity
from shopee.sandbox.render import full_order
from shopee.sandbox.state import ModelSpec, OrderLineSpec, SandboxState
from shopee.sandbox.traffic import TrafficRunner, odds_from


class _BadRequest(Exception):
    pass


def _require(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _BadRequest(f"{name} is required and must be {kind.__name__}")
    return value


def _optional(data: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    if data.get(name) is None:
        return default
    return _require(data, name, kind)


ControlHandler = Callable[[Request, dict[str, Any]], Any]


def _endpoint(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"error": "bad_request", "message": "body is not JSON"}, 400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "bad_request", "message": "body must be an object"}, 400)
        try:
            result = await run_in_threadpool(handler, request, data)
        except (_BadRequest, ValidationError, ValueError) as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
        except UnknownEntity as exc:
            return JSONResponse({"error": "not_found", "message": str(exc)}, 404)
        except SandboxError as exc:
            return JSONResponse({"error": "conflict", "message": str(exc)}, 409)
        except ShopeeApiError as exc:
            return JSONResponse({"error": exc.error, "message": exc.message}, 400)
        return JSONResponse(result)

    return endpoint


def control_routes(
    state: SandboxState, traffic: TrafficRunner, verify_callback: VerifyCallback
) -> list[Route]:
    """The ``/sandbox/...`` routes bound to one sandbox."""

    def health(request: Request, data: dict[str, Any]) -> Any:
        return {"ok": True}

    def overview(request: Request, data: dict[str, Any]) -> Any:
        return {
            "partner_id": state.config.partner_id,
            "shops": [asdict(state.shop(shop_id)) for shop_id in state.shop_ids()],
            "orders_by_status": dict(Counter(order.status for order in state.orders())),
            "callback_url": state.callback_url,
            "pushes": state.pushes.summary(),
            "faults": state.faults.model_dump(mode="json"),
            "traffic": traffic_status(request, data),
        }

    def shops(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "GET":
            return [asdict(state.shop(shop_id)) for shop_id in state.shop_ids()]
        shop_id = state.add_shop(
            _optional(data, "shop_id", int),
            _optional(data, "region", str, "SG"),
            name=_optional(data, "name", str, ""),
        )
        answer: dict[str, Any] = {"shop_id": shop_id, "region": state.shop(shop_id).region}
        if _optional(data, "authorize", bool, False):
            answer["code"] = state.authorize(shop_id)
        return answer

    def shop_action(request: Request, data: dict[str, Any]) -> Any:
        shop_id = int(request.path_params["shop_id"])
        action = request.path_params["action"]
        if action == "authorize":
            return {
                "shop_id": shop_id,
                "code": state.authorize(shop_id),
                "expires_in": state.config.auth_code_ttl_seconds,
            }
        if action == "deauthorize":
            state.deauthorize(shop_id)
        elif action == "expire_access_tokens":
            state.expire_access_tokens(shop_id)
        elif action == "expire_refresh_tokens":
            state.expire_refresh_tokens(shop_id)
        else:
            raise UnknownEntity(f"no shop action {action}")
        return {"shop_id": shop_id, "done": action}

    def items(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "GET":
            raw_shop = request.query_params.get("shop_id")
            return [asdict(item) for item in state.items(int(raw_shop) if raw_shop else None)]
        models: list[ModelSpec] = []
        for raw in _optional(data, "models", list, []):
            if not isinstance(raw, dict):
                raise _BadRequest("models entries must be objects")
            model_id = _require(raw, "model_id", int)
            sku = _optional(raw, "model_sku", str, f"SKU-{model_id}")
            stock = _require(raw, "stock", int)
            price = raw.get("price")
            if price is None:
                models.append((model_id, sku, stock))
            else:
                models.append((model_id, sku, stock, float(price)))
        item_id = state.add_item(
            _require(data, "shop_id", int),
            _optional(data, "item_id", int),
            models or None,
            name=_optional(data, "name", str, ""),
            price=float(data["price"]) if data.get("price") is not None else None,
        )
        return asdict(state.item(item_id))

    def orders(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "GET":
            raw_shop = request.query_params.get("shop_id")
            status = request.query_params.get("status")
            return [
                {
                    "order_sn": order.order_sn,
                    "shop_id": order.shop_id,
                    "status": order.status,
                    "update_time": order.update_time,
                }
                for order in state.orders(int(raw_shop) if raw_shop else None)
                if status is None or order.status == status
            ]
        lines: list[OrderLineSpec] = []
        for raw in _require(data, "lines", list):
            if not isinstance(raw, dict):
                raise _BadRequest("lines entries must be objects")
            lines.append(
                (
                    _require(raw, "item_id", int),
                    _optional(raw, "model_id", int, 0),
                    _optional(raw, "quantity", int, 1),
                )
            )
        order_sn = state.create_order(
            _require(data, "shop_id", int),
            lines,
            paid=_optional(data, "paid", bool, True),
            cod=_optional(data, "cod", bool, False),
            allow_oversell=_optional(data, "allow_oversell", bool, False),
        )
        return full_order(state.order(order_sn))

    def order(request: Request, data: dict[str, Any]) -> Any:
        return full_order(state.order(request.path_params["order_sn"]))

    def advance(request: Request, data: dict[str, Any]) -> Any:
        order_sn = request.path_params["order_sn"]
        return full_order(state.advance(order_sn, _require(data, "status", str)))

    def buyer_cancel(request: Request, data: dict[str, Any]) -> Any:
        order_sn = request.path_params["order_sn"]
        reason = _optional(data, "reason", str, "Change of mind / others")
        changed = state.buyer_cancel(
            order_sn, request=_optional(data, "request", bool), reason=reason
        )
        return full_order(changed)

    def calls(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            state.call_log.clear()
            return {"cleared": True}
        return [asdict(call) for call in state.call_log.snapshot(request.query_params.get("api"))]

    def call_counts(request: Request, data: dict[str, Any]) -> Any:
        return state.call_log.counts()

    def faults(request: Request, data: dict[str, Any]) -> Any:
        if request.method == "PUT":
            state.set_faults(FaultConfig.model_validate(data))
        elif request.method == "PATCH":
            merged = {**state.faults.model_dump(), **data}
            state.set_faults(FaultConfig.model_validate(merged))
        return state.faults.model_dump(mode="json")

    def traffic_status(request: Request, data: dict[str, Any]) -> Any:
        generator = traffic.generator
        return {
            "running": traffic.running,
            "stats": generator.stats if generator is not None else None,
        }

    def traffic_start(request: Request, data: dict[str, Any]) -> Any:
        rate = data.get("rate")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0:
            raise _BadRequest("rate (orders per second, >= 0) is required")
        time_factor = data.get("time_factor")
        if time_factor is not None and not isinstance(time_factor, int | float):
            raise _BadRequest("time_factor must be a number")
        shop_ids = _optional(data, "shop_ids", list)
        odds = _optional(data, "odds", dict)
        traffic.start(
            rate=float(rate),
            seed=_optional(data, "seed", int),
            time_factor=float(time_factor) if time_factor is not None else None,
            odds=odds_from(odds) if odds is not None else None,
            shop_ids=[int(s) for s in shop_ids] if shop_ids else None,
        )
        return traffic_status(request, data)

    def traffic_stop(request: Request, data: dict[str, Any]) -> Any:
        traffic.stop()
        return traffic_status(request, data)

    def callback(request: Request, data: dict[str, Any]) -> Any:
        if "callback_url" not in data:
            raise _BadRequest("callback_url (a URL or null) is required")
        url = data["callback_url"]
        if url is not None and not isinstance(url, str):
            raise _BadRequest("callback_url must be a string or null")
        answer: dict[str, Any] = {}
        if url is not None and _optional(data, "verify", bool, False):
            result = verify_callback(url)
            answer["verification"] = asdict(result)
            if not result.ok:
                raise SandboxError(f"the verification push to {url} failed: {result.detail}")
        state.set_callback_url(url)
        answer["callback_url"] = url
        return answer

    def pushes(request: Request, data: dict[str, Any]) -> Any:
        attempts = state.pushes.attempts()[-50:]
        return {
            "callback_url": state.callback_url,
            "summary": state.pushes.summary(),
            "latest_attempts": [
                {
                    "msg_id": a.msg_id,
                    "code": a.code,
                    "attempt": a.attempt,
                    "at": a.at,
                    "ok": a.result.ok,
                    "http_status": a.result.http_status,
                    "detail": a.result.detail,
                }
                for a in attempts
            ],
        }

    def verify(request: Request, data: dict[str, Any]) -> Any:
        url = _optional(data, "url", str, state.callback_url)
        if url is None:
            raise _BadRequest("no url given and no callback URL configured")
        return asdict(verify_callback(url))

    return [
        Route("/health", _endpoint(health), methods=["GET"]),
        Route("/state", _endpoint(overview), methods=["GET"]),
        Route("/shops", _endpoint(shops), methods=["GET", "POST"]),
        Route("/shops/{shop_id:int}/{action}", _endpoint(shop_action), methods=["POST"]),
        Route("/items", _endpoint(items), methods=["GET", "POST"]),
        Route("/orders", _endpoint(orders), methods=["GET", "POST"]),
        Route("/orders/{order_sn}", _endpoint(order), methods=["GET"]),
        Route("/orders/{order_sn}/advance", _endpoint(advance), methods=["POST"]),
        Route("/orders/{order_sn}/buyer_cancel", _endpoint(buyer_cancel), methods=["POST"]),
        Route("/calls", _endpoint(calls), methods=["GET", "DELETE"]),
        Route("/calls/counts", _endpoint(call_counts), methods=["GET"]),
        Route("/faults", _endpoint(faults), methods=["GET", "PUT", "PATCH"]),
        Route("/traffic", _endpoint(traffic_status), methods=["GET"]),
        Route("/traffic/start", _endpoint(traffic_start), methods=["POST"]),
        Route("/traffic/stop", _endpoint(traffic_stop), methods=["POST"]),
        Route("/callback", _endpoint(callback), methods=["PUT"]),
        Route("/pushes", _endpoint(pushes), methods=["GET"]),
        Route("/pushes/verify", _endpoint(verify), methods=["POST"]),
    ]
