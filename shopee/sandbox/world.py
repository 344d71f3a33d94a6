"""A ready-made sandbox world: shops with a seeded catalogue, for the CLI, demos and e2e tests."""

from __future__ import annotations

from collections.abc import Sequence

from shopee.sandbox.config import seeded_random
from shopee.sandbox.state import ModelSpec, SandboxState


def populate(
    state: SandboxState,
    *,
    shops: int = 1,
    shop_ids: Sequence[int] = (),
    region: str = "SG",
    items_per_shop: int = 3,
    stock: int = 100,
    seed: int | None = None,
) -> list[int]:
    """Add shops (``shop_ids`` if given, else ``shops`` new ones) in ``region``, each with
    ``items_per_shop`` items; every third item has no variants (model 0), the others two or
    three models. Every model starts with ``stock``. Returns the shop ids, in order."""
    rng = seeded_random(state.config.seed if seed is None else seed, "world")
    created = [state.add_shop(shop_id, region) for shop_id in shop_ids]
    created += [state.add_shop(None, region) for _ in range(0 if shop_ids else shops)]
    for shop_id in created:
        for index in range(items_per_shop):
            models: list[ModelSpec]
            if index % 3 == 0:
                models = [(0, f"SKU-{shop_id}-{index}", stock)]
            else:
                models = [
                    (rng.randrange(10**11, 10**12), f"SKU-{shop_id}-{index}-{variant}", stock)
                    for variant in range(rng.choice((2, 3)))
                ]
            state.add_item(shop_id, models=models, name=f"Demo product {index + 1}")
    return created
