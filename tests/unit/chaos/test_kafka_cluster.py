"""The pure parts of chaos/kafka_cluster.py: node settings, cluster ids, ports, and the error
when the jars were never fetched. The JVMs themselves: tests/integration/chaos."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from chaos.kafka_cluster import (
    ClusterError,
    ClusterNode,
    KafkaCluster,
    new_cluster_id,
    node_properties,
    ports_outside_ephemeral_range,
    replication,
)


def nodes(count: int) -> list[ClusterNode]:
    return [
        ClusterNode(
            node_id=i, port=20000 + i, controller_port=21000 + i, directory=Path(f"/d/node-{i}")
        )
        for i in range(1, count + 1)
    ]


def settings(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize(
    ("count", "factor", "min_isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_replication_follows_the_node_count(count: int, factor: int, min_isr: int) -> None:
    assert replication(count) == (factor, min_isr)


def test_three_nodes_replicate_everything_and_need_two_copies() -> None:
    members = nodes(3)
    config = settings(node_properties(members[1], members))
    assert config["node.id"] == "2"
    assert (
        config["controller.quorum.voters"]
        == "1@127.0.0.1:21001,2@127.0.0.1:21002,3@127.0.0.1:21003"
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:20002,CONTROLLER://127.0.0.1:21002"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:20002"
    assert config["log.dirs"] == "/d/node-2/data"
    for name in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert config[name] == "3", name
    assert config["min.insync.replicas"] == "2"
    assert config["transaction.state.log.min.isr"] == "2"
    assert config["unclean.leader.election.enable"] == "false"
    assert config["auto.create.topics.enable"] == "false"
    assert int(config["broker.heartbeat.interval.ms"]) < int(config["broker.session.timeout.ms"])


def test_one_node_replicates_nothing() -> None:
    (member,) = nodes(1)
    config = settings(node_properties(member, [member]))
    assert config["controller.quorum.voters"] == "1@127.0.0.1:21001"
    assert {config[name] for name in config if "replication.factor" in name} == {"1"}
    assert {config[name] for name in config if "min.isr" in name or "insync" in name} == {"1"}


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        assert len(text) == 22 and not text.startswith("-")
        assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = ports_outside_ephemeral_range(6)
    assert len(set(ports)) == 6
    assert all(10000 <= port < low for port in ports)


def test_missing_jars_name_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"deploy/local/stack\.sh fetch"):
        KafkaCluster.start(1, tmp_path / "cluster", libs=tmp_path / "no-jars")
    assert not (tmp_path / "cluster").exists()
