"""The fault scenarios of `make chaos`, each against the whole pipeline.

Each scenario builds a :class:`~chaos.world.ChaosWorld` (its own topics, groups and database;
its own Kafka or PostgreSQL when it takes them away), runs traffic while it injects its
trouble on a fixed schedule, lifts the trouble, and hands over to ``ChaosWorld.finish`` for
convergence and the pass criteria (``chaos.checks``). The names are stable: results are
compared between runs by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chaos.kafka_cluster import KafkaCluster
from chaos.results import ScenarioResult
from chaos.schedule import kill_plan, spread
from chaos.world import PROCESSES, ChaosWorld, Scale
from shopee.sandbox import FaultConfig
from shopee.sandbox.config import AFTER_EFFECT_KINDS
from tests.e2e.postgres_instance import PostgresInstance
from tests.integration.stack import Stack

BROKER_RESTARTS = 3
BROKER_DOWN_SECONDS = 5.0
BROKER_UP_SECONDS = 10.0
# Longer than orderflow's producers' delivery_timeout_ms (30 s, orderflow/kafka.py).
LONG_OUTAGE_SECONDS = 45.0
KILLS_PER_PROCESS = 5
OUTAGE_SECONDS = 15.0
# The sandbox-faults scenario: orderflow's client waits 2 s for Shopee, a held request 5 s.
CLIENT_TIMEOUT_SECONDS = 2.0
HANG_SECONDS = 5.0
CLUSTER_DOWN_SECONDS = 15.0
AUTO_CANCEL_BEHIND_SECONDS = 10.0

Run = Callable[[Stack, Path, Scale], ScenarioResult]


@contextmanager
def own_kafka(stack: Stack, workdir: Path, nodes: int = 1) -> Iterator[tuple[KafkaCluster, Stack]]:
    """A Kafka of the scenario's own, and the stack with it in place of the shared broker
    (the registry and PostgreSQL stay shared). Every scenario runs on one: the shared broker
    is never killed, and does not gather a run's topics (a 512 MB broker holding thousands
    of partitions from many runs ran out of heap)."""
    with KafkaCluster.start(nodes, workdir / "kafka") as cluster:
        yield (
            cluster,
            Stack(cluster.bootstrap_servers, stack.registry_url, stack.postgres_url, None),
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    injects: str
    run: Run


def _broker_down(
    stack: Stack, workdir: Path, scale: Scale, name: str, down_seconds: Sequence[float]
) -> ScenarioResult:
    """A single-node Kafka of the scenario's own (the shared stack's broker is never
    touched), SIGKILLed once per entry of ``down_seconds`` while orders flow, and started
    again that long after (plus the time it takes to start). Between two outages the broker
    serves at least ``BROKER_UP_SECONDS``: separate restarts, not one long outage."""
    with own_kafka(stack, workdir) as (cluster, kafka):
        (node,) = cluster.node_ids
        outages: list[float] = []
        with ChaosWorld(kafka, workdir / "pipeline", scale) as world:
            world.start_traffic()
            moments = spread(len(down_seconds), 0, scale.traffic_seconds)
            for at, down in zip(moments, down_seconds, strict=True):
                pause = at - world.traffic_elapsed()
                world.wait(max(pause, BROKER_UP_SECONDS if outages else 0.0))
                cluster.kill(node)
                went = time.monotonic()
                world.wait(down)
                cluster.restart(node)
                outages.append(round(time.monotonic() - went, 1))
            world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
            world.stop_traffic()
            return world.finish(name, faults=len(outages), details={"broker_down_seconds": outages})


def broker_restarts(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """The broker SIGKILLed and restarted three times while orders flow, each outage shorter
    than the producers' delivery timeout."""
    downs = [BROKER_DOWN_SECONDS] * BROKER_RESTARTS
    return _broker_down(stack, workdir, scale, "broker-restarts", downs)


def broker_outage(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """The broker SIGKILLed once and kept down longer than the producers' delivery timeout
    (30 s): records queued meanwhile expire, and every producer must still write again once
    the broker is back."""
    return _broker_down(stack, workdir, scale, "broker-outage", [LONG_OUTAGE_SECONDS])


def process_kills(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """Every orderflow process SIGKILLed five times mid-run, each restarted at once."""
    with own_kafka(stack, workdir) as (_, kafka), ChaosWorld(kafka, workdir, scale) as world:
        world.start_traffic()
        kills: list[str] = []
        for at, name in kill_plan(PROCESSES, KILLS_PER_PROCESS, scale.traffic_seconds):
            world.wait(max(0.0, at - world.traffic_elapsed()))
            world.kill_and_restart(name)
            kills.append(name)
        world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
        world.stop_traffic()
        per_process = {name: kills.count(name) for name in PROCESSES}
        return world.finish("process-kills", faults=len(kills), details={"kills": per_process})


def database_outage(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """The database every process uses (ERP, ledger, outbox, tokens, ingest state) stopped
    for 15 s mid-run and started again; a PostgreSQL server of the scenario's own."""
    postgres = PostgresInstance.create()
    try:
        postgres.start()
        with (
            own_kafka(stack, workdir) as (_, kafka),
            ChaosWorld(kafka, workdir, scale, database_url=postgres.url) as world,
        ):
            world.start_traffic()
            world.wait(scale.traffic_seconds / 3)
            postgres.stop()
            world.wait(OUTAGE_SECONDS)
            postgres.start()
            world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
            world.stop_traffic()
            return world.finish(
                "database-outage", faults=1, details={"outage_seconds": OUTAGE_SECONDS}
            )
    finally:
        postgres.remove()


SANDBOX_FAULTS = FaultConfig(
    error_rates={"*": 0.2},
    error_kinds=("error_rate_limit", "error_system_busy", "timeout", *AFTER_EFFECT_KINDS),
    hang_seconds=HANG_SECONDS,
    push_drop_rate=0.3,
    push_duplicate_rate=0.1,
    push_reorder_max_delay_seconds=2.0,
    # Dropped without a trace at first (only polling finds those changes), then into the
    # lost-push store (the poller's drain).
    dropped_push_to_lost_store=False,
)


def sandbox_faults(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """Shopee misbehaving: 20% of API calls fail (rate limit, server busy, timeouts, failures
    after the effect), 30% of pushes dropped, 10% duplicated, deliveries reordered."""
    env = {"ORDERFLOW_SHOPEE_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT_SECONDS)}
    with (
        own_kafka(stack, workdir) as (_, kafka),
        ChaosWorld(kafka, workdir, scale, faults=SANDBOX_FAULTS, env=env) as world,
    ):
        world.start_traffic()
        world.wait(scale.traffic_seconds / 2)
        world.sandbox.state.set_faults(
            SANDBOX_FAULTS.model_copy(update={"dropped_push_to_lost_store": True})
        )
        world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
        world.stop_traffic()
        # Recovery: Shopee behaves again; what the faults left behind must now drain.
        world.sandbox.state.set_faults(FaultConfig())
        api = [call for call in world.sandbox.calls if call.fault is not None]
        by_kind: dict[str, int] = {}
        for call in api:
            by_kind[str(call.fault)] = by_kind.get(str(call.fault), 0) + 1
        pushes = world.push_faults()
        cancels_in_doubt = sum(
            1
            for call in world.sandbox.state.call_log.snapshot("order.cancel_order")
            if call.fault in AFTER_EFFECT_KINDS and call.applied
        )
        return world.finish(
            "sandbox-faults",
            faults=len(api) + sum(pushes.values()),
            details={
                "api_faults": dict(sorted(by_kind.items())),
                "push_faults": pushes,
                "cancels_applied_then_failed": cancels_in_doubt,
            },
        )


def shop_revoked(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """One shop's authorisation revoked a third into the traffic and restored (the real code
    exchange) at two thirds; its records wait parked meanwhile, the other shops flow.
    Auto-cancel is stopped (SIGTERM) for a while before the revocation, so it meets the shop's
    orders from before it as a backlog: their cancels are parked too, not only the
    enricher's notices."""
    with own_kafka(stack, workdir) as (_, kafka), ChaosWorld(kafka, workdir, scale) as world:
        shop = world.shops[0]
        world.start_traffic()
        world.wait(max(0.0, scale.traffic_seconds / 3 - AUTO_CANCEL_BEHIND_SECONDS))
        auto_cancel_exit = world.pipeline.stop("auto-cancel")
        world.wait(AUTO_CANCEL_BEHIND_SECONDS)
        world.sandbox.state.deauthorize(shop)
        world.pipeline.restart("auto-cancel", world.sandbox)
        world.wait(scale.traffic_seconds / 3)
        parked_while_revoked = world.pipeline.parked()
        refused = sum(
            1
            for call in world.sandbox.calls
            if call.shop_id == shop and call.error == "shop_no_linked"
        )
        world.pipeline.authorize(world.sandbox, shop)
        world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
        world.stop_traffic()
        return world.finish(
            "shop-revoked",
            faults=1,
            details={
                "shop_id": shop,
                "parked_while_revoked": parked_while_revoked,
                "calls_refused_shop_no_linked": refused,
                "auto_cancel_stopped_exit_code": auto_cancel_exit,
            },
        )


def cluster_leader_killed(stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """Three KRaft brokers, every topic replicated three times with min.insync.replicas=2;
    the leader of the orders topic's partition 0 SIGKILLed a third into the traffic, then
    the leader of the notices topic's partition 0 at two thirds, each restarted 15 s later."""
    with (
        own_kafka(stack, workdir, nodes=3) as (cluster, kafka),
        ChaosWorld(kafka, workdir / "pipeline", scale, replication_factor=3) as world,
    ):
        settings = world.pipeline.settings
        killed: list[dict[str, object]] = []
        world.start_traffic()
        for at, topic in zip(
            spread(2, 0, scale.traffic_seconds),
            (settings.topic_orders, settings.topic_notices),
            strict=True,
        ):
            world.wait(max(0.0, at - world.traffic_elapsed()))
            leader = cluster.leader(topic, 0)
            cluster.kill(leader)
            world.wait(CLUSTER_DOWN_SECONDS)
            new_leader = cluster.leader(topic, 0)
            cluster.restart(leader)
            killed.append({"topic": topic, "killed": leader, "new_leader": new_leader})
        world.wait(max(0.0, scale.traffic_seconds - world.traffic_elapsed()))
        world.stop_traffic()
        return world.finish(
            "cluster-leader-killed", faults=len(killed), details={"leaders_killed": killed}
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "broker-restarts",
            "the broker SIGKILLed 3 times, each time restarted after 5 s",
            broker_restarts,
        ),
        Scenario(
            "broker-outage",
            "the broker SIGKILLed once and restarted after 45 s (past the producers' 30 s "
            "delivery timeout)",
            broker_outage,
        ),
        Scenario("process-kills", "each of the 6 processes SIGKILLed 5 times", process_kills),
        Scenario("database-outage", "PostgreSQL stopped for 15 s", database_outage),
        Scenario(
            "sandbox-faults",
            "20% API errors (incl. timeouts and failures after the effect), 30% of pushes "
            "dropped, 10% duplicated, reordered",
            sandbox_faults,
        ),
        Scenario("shop-revoked", "a shop's authorisation revoked, then restored", shop_revoked),
        Scenario(
            "cluster-leader-killed",
            "3 brokers, RF 3, min ISR 2; partition leaders SIGKILLed",
            cluster_leader_killed,
        ),
    )
}
