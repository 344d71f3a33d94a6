"""A Kafka cluster of its own that the chaos suite may SIGKILL, node by node.

``KafkaCluster.start(nodes, workdir)`` runs ``nodes`` combined broker+controller KRaft nodes
from the jars `deploy/local/stack.sh fetch` downloads (the shared stack's broker is never
touched), each on ports of its own, with its data, config and logs under
``workdir/node-<id>``. Every call that starts a node returns only once that node serves;
``kill`` returns only once the process is gone. Nodes keep their ports for their whole life,
so a restarted node is found where clients last saw it.

Replication follows the node count: three (or more) nodes replicate everything three times and
need two in-sync copies for an acknowledged write, so one node may die without losing an
acknowledged record; a single node replicates nothing.

kafka-python is imported here as well as in ``orderflow/kafka.py``: the harness asks the
brokers about replicas and fencing, which the application's adapter has no business knowing.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import kafka
import kafka.errors

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LIBS = ROOT / "deploy" / "local" / "target" / "kafka-libs"

# Small heaps: up to three nodes share this 2-core machine with the pipeline under test.
# Same collector as the shared stack's broker (deploy/local/stack.sh). C1 only: C2's
# compiler threads fight the pipeline for the two cores, and a three-node start took 55-65 s
# with them against 22-27 s without (measured side by side on a loaded machine); the traffic
# of a chaos run is far below what C1-compiled brokers carry.
JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx384m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
FORMAT_JVM_OPTIONS = ("-Xmx128m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")

# How fast the controller gives up on a node that stopped heartbeating (Kafka 4.1's defaults
# are 9000 and 2000 ms; neither has a validator). A SIGKILLed node sends no controlled
# shutdown, so its partitions stay led by a dead process until this lease runs out: the lease
# bounds the producers' pause. Six heartbeats per lease, so a busy 2-core machine does not fence
# a live node.
BROKER_SESSION_TIMEOUT_MS = 4000
BROKER_HEARTBEAT_INTERVAL_MS = 500

STARTED_MARKER = "Kafka Server started"
_POLL_SECONDS = 0.3


class ClusterError(RuntimeError):
    """The cluster did not do what was asked in time; the message carries the log tail."""


@dataclass
class ClusterNode:
    """One node: its ports for life, its directory, and its process while it runs."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    console: IO[bytes] | None = None
    # Where this start's lines begin in server.log: an earlier start's "started" line
    # must not count for this one.
    log_offset: int = 0
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path:
        return self.directory / "server.log"

    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

    @property
    def properties(self) -> Path:
        return self.directory / "server.properties"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def replication(nodes: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``nodes``: at most three
    copies, and an acknowledged write on all but one of them, never fewer than one."""
    factor = min(nodes, 3)
    return factor, max(1, min(2, factor - 1))


def node_properties(node: ClusterNode, voters: Sequence[ClusterNode]) -> str:
    """The server.properties of one combined node (modelled on deploy/local/stack.sh)."""
    factor, min_isr = replication(len(voters))
    quorum = ",".join(f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in voters)
    return f"""\
process.roles=broker,controller
node.id={node.node_id}
controller.quorum.voters={quorum}
listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={node.directory / "data"}
num.partitions=3
auto.create.topics.enable=false
default.replication.factor={factor}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={factor}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={factor}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor={factor}
share.coordinator.state.topic.min.isr={min_isr}
# A record acknowledged by the in-sync replicas must never be dropped for availability.
unclean.leader.election.enable=false
# Leaders move only when the suite kills a node, not when the controller rebalances later.
auto.leader.rebalance.enable=false
broker.session.timeout.ms={BROKER_SESSION_TIMEOUT_MS}
broker.heartbeat.interval.ms={BROKER_HEARTBEAT_INTERVAL_MS}
# Tests create and join groups constantly; the default 3 s delay would slow every one.
group.initial.rebalance.delay.ms=0
# Fewer threads than the defaults (3 network, 8 I/O): three nodes share two cores.
num.network.threads=2
num.io.threads=4
log.segment.bytes=16777216
log.retention.check.interval.ms=60000
"""


def log4j_properties(node: ClusterNode) -> str:
    """Everything the node logs goes to its own server.log (as in deploy/local/stack.sh)."""
    return f"""\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {node.server_log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (Kafka's Uuid form)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # The formatter's command line would read a leading '-' as an option.
        if not text.startswith("-"):
            return text


def ports_outside_ephemeral_range(count: int) -> list[int]:
    """``count`` distinct free ports below the kernel's ephemeral range.

    A restarted node binds its old ports again. A port from the ephemeral range (where a port
    0 bind lands) can meanwhile become the local end of some process's outgoing connection,
    and the restart would fail with "Address already in use"; below that range the kernel
    never hands ports out on its own.
    """
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = list(range(10000, max(10001, low)))
    random.shuffle(candidates)
    chosen: list[int] = []
    for port in candidates:
        if len(chosen) == count:
            break
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < count:
        raise ClusterError(f"found only {len(chosen)} of {count} free ports below {low}")
    return chosen


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return text.splitlines()[-lines:]


@contextlib.contextmanager
def _admin(addresses: Sequence[str], timeout: float) -> Iterator[Any]:
    """A kafka-python admin client bootstrapped from ``addresses`` only."""
    milliseconds = max(1000, int(timeout * 1000))
    client = kafka.KafkaAdminClient(
        bootstrap_servers=list(addresses),
        client_id="chaos-cluster",
        request_timeout_ms=milliseconds,
        bootstrap_timeout_ms=milliseconds,
        # kafka-python 3 backs off up to 30 s from a refused node; a probe must not.
        reconnect_backoff_max_ms=500,
    )
    try:
        yield client
    finally:
        client.close()


# Held strongly: a cluster object dropped without stop() still has its JVMs stopped at exit.
_LIVE: set[KafkaCluster] = set()


@atexit.register
def _stop_leftovers() -> None:
    # A harness that crashed before its `with` block ended must not leave JVMs behind.
    for cluster in list(_LIVE):
        cluster.stop()


class KafkaCluster:
    """``nodes`` combined broker+controller KRaft nodes on free ports under ``workdir``."""

    def __init__(self, nodes: list[ClusterNode], workdir: Path, libs: Path) -> None:
        self._nodes = {node.node_id: node for node in nodes}
        self.workdir = workdir
        self._libs = libs
        self.node_ids: list[int] = [node.node_id for node in nodes]
        self.bootstrap_servers: str = ",".join(node.address for node in nodes)
        self.replication_factor, self.min_insync_replicas = replication(len(nodes))

    # -- life cycle ----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        nodes: int,
        workdir: Path,
        *,
        timeout: float = 120.0,
        libs: Path = KAFKA_LIBS,
    ) -> KafkaCluster:
        """Format storage (one cluster id), start every node and wait until each serves and
        the metadata shows ``nodes`` unfenced brokers; ``ClusterError`` with the log tails
        otherwise (nothing is left running then)."""
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        _check_runtime(libs)
        workdir.mkdir(parents=True, exist_ok=True)
        taken = sorted(str(p) for p in workdir.glob("node-*"))
        if taken:
            raise ClusterError(f"{workdir} already holds a cluster ({', '.join(taken)})")
        deadline = time.monotonic() + timeout
        # Ports are chosen, released and bound again by Java: someone may take one in
        # between. Then the whole cluster starts again on other ports, once.
        for attempt in (1, 2):
            cluster = cls._prepare(nodes, workdir, libs)
            try:
                cluster._format_all(deadline)
                for node in cluster._nodes.values():
                    cluster._launch(node)
                cluster._wait_serving(cluster.node_ids, deadline)
            except BaseException as exc:
                lost_port = any(
                    "Address already in use" in "\n".join(_tail(path, 200))
                    for n in cluster._nodes.values()
                    for path in (n.server_log, n.console_log)
                )
                cluster.stop()
                if attempt == 1 and lost_port and isinstance(exc, ClusterError):
                    log.warning("a port was taken while the cluster started; starting again")
                    for node in cluster._nodes.values():
                        shutil.rmtree(node.directory, ignore_errors=True)
                    continue
                raise
            return cluster
        raise AssertionError("unreachable: the second attempt returns or raises")

    @classmethod
    def _prepare(cls, nodes: int, workdir: Path, libs: Path) -> KafkaCluster:
        ports = ports_outside_ephemeral_range(2 * nodes)
        members = [
            ClusterNode(
                node_id=i + 1,
                port=ports[2 * i],
                controller_port=ports[2 * i + 1],
                directory=workdir / f"node-{i + 1}",
            )
            for i in range(nodes)
        ]
        for node in members:
            (node.directory / "data").mkdir(parents=True)
            node.properties.write_text(node_properties(node, members))
            (node.directory / "log4j2.properties").write_text(log4j_properties(node))
        return cls(members, workdir, libs)

    def _java(self, node: ClusterNode, *options: str) -> list[str]:
        return [
            "java",
            *options,
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
            # Marks every process of this cluster: `pgrep -f orderflow.chaos.cluster=<dir>`.
            f"-Dorderflow.chaos.cluster={self.workdir}",
            "-cp",
            f"{self._libs}/*",
        ]

    def _format_all(self, deadline: float) -> None:
        cluster_id = new_cluster_id()
        formatters = []
        for node in self._nodes.values():
            output = (node.directory / "format.log").open("wb")
            command = [
                *self._java(node, *FORMAT_JVM_OPTIONS),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.properties),
            ]
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
            formatters.append((node, process, output))
        failed = []
        for node, process, output in formatters:
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -1
            output.close()
            if code != 0:
                failed.append(node)
        if failed:
            details = "\n".join(
                f"node {n.node_id} ({n.directory / 'format.log'}):\n"
                + "\n".join(_tail(n.directory / "format.log", 20))
                for n in failed
            )
            raise ClusterError(f"formatting KRaft storage failed:\n{details}")

    def _launch(self, node: ClusterNode) -> None:
        node.log_offset = node.server_log.stat().st_size if node.server_log.exists() else 0
        node.starts += 1
        if node.console is not None:
            node.console.close()
        node.console = node.console_log.open("ab")
        node.console.write(f"--- start {node.starts} ---\n".encode())
        node.console.flush()
        command = [*self._java(node, *JVM_OPTIONS), "kafka.Kafka", str(node.properties)]
        # Same process group as the harness: a Ctrl-C in the terminal stops the nodes too.
        node.process = subprocess.Popen(  # noqa: S603
            command, stdout=node.console, stderr=subprocess.STDOUT
        )
        _LIVE.add(self)

    def kill(self, node: int) -> None:
        """SIGKILL ``node`` and wait until its process is gone."""
        member = self._node(node)
        if not member.running():
            raise ClusterError(f"node {node} is not running")
        assert member.process is not None
        member.process.send_signal(signal.SIGKILL)
        member.process.wait(timeout=30)

    def pause(self, node: int) -> None:
        """SIGSTOP ``node``: a broker that hangs rather than dies. Its sockets stay open and
        the kernel still accepts connections, but nothing is ever answered, so clients learn
        of it only through their request timeouts."""
        member = self._node(node)
        if not member.running():
            raise ClusterError(f"node {node} is not running")
        assert member.process is not None
        member.process.send_signal(signal.SIGSTOP)

    def resume(self, node: int) -> None:
        """SIGCONT a paused ``node``."""
        member = self._node(node)
        assert member.process is not None
        member.process.send_signal(signal.SIGCONT)

    def restart(self, node: int, *, timeout: float = 120.0) -> None:
        """Start a stopped ``node`` again on its data directory and ports, and wait until it
        serves: registered and unfenced, and back in the in-sync replicas of every partition
        it holds (so the next kill of another node cannot drop below min.insync.replicas)."""
        member = self._node(node)
        if member.running():
            raise ClusterError(f"node {node} is still running; kill it first")
        deadline = time.monotonic() + timeout
        self._launch(member)
        self._wait_serving([node], deadline)
        self._wait_in_sync(node, deadline)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every live node, SIGKILL whatever still runs after ``grace`` seconds.
        The data stays under ``workdir``."""
        running = [n for n in self._nodes.values() if n.running()]
        for member in running:
            assert member.process is not None
            member.process.send_signal(signal.SIGCONT)  # a paused node would not see SIGTERM
            member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for member in running:
            assert member.process is not None
            try:
                member.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # The last nodes of a cluster wait for a controller quorum that is gone.
                member.process.kill()
                member.process.wait()
        for member in self._nodes.values():
            if member.console is not None:
                member.console.close()
                member.console = None
        _LIVE.discard(self)

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the cluster says -----------------------------------------------------------------

    def alive(self) -> list[int]:
        """The ids of the nodes whose process runs (serving or not)."""
        return [node_id for node_id, node in self._nodes.items() if node.running()]

    def leader(self, topic: str, partition: int = 0, *, timeout: float = 30.0) -> int:
        """The node id leading ``topic``'s ``partition``, from a metadata request made now.
        Waits up to ``timeout`` while the partition has no leader (an election under way);
        ``ClusterError`` if it still has none, or the topic or partition does not exist."""
        deadline = time.monotonic() + timeout
        while True:
            description = self._describe(topic, partition, deadline)
            leader = int(description["leader_id"])
            if leader >= 0:
                return leader
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{topic}-{partition} has had no leader for {timeout:.0f}s: {description}"
                )
            time.sleep(_POLL_SECONDS)

    def log_tail(self, node: int, lines: int = 40) -> str:
        """The last ``lines`` of the node's server log, and of its console (JVM errors)."""
        member = self._node(node)
        parts = [f"== node {node}: {member.server_log} ==", *_tail(member.server_log, lines)]
        console = [
            line for line in _tail(member.console_log, lines) if not line.startswith("--- start")
        ]
        if console:
            parts += [f"== node {node}: {member.console_log} ==", *console]
        return "\n".join(parts)

    # -- waiting ---------------------------------------------------------------------------------

    def _node(self, node: int) -> ClusterNode:
        try:
            return self._nodes[node]
        except KeyError:
            raise ClusterError(f"no node {node}; the nodes are {self.node_ids}") from None

    def _wait_serving(self, node_ids: Sequence[int], deadline: float) -> None:
        """Until each of ``node_ids`` has started, answers metadata requests on its own port,
        and sees every running node as an unfenced broker."""
        pending = list(node_ids)
        last_answer = "no answer yet"
        while pending:
            node = self._nodes[pending[0]]
            if not node.running():
                raise ClusterError(
                    f"node {node.node_id} exited during start-up\n{self.log_tail(node.node_id)}"
                )
            if self._started(node) and _port_open(node.port):
                try:
                    with _admin([node.address], timeout=5) as admin:
                        brokers = admin.describe_cluster()["brokers"]
                    unfenced = sorted(
                        int(b["broker_id"]) for b in brokers if not b.get("is_fenced", False)
                    )
                    last_answer = f"node {node.node_id} sees unfenced brokers {unfenced}"
                    if unfenced == sorted(self.alive()):
                        pending.pop(0)
                        continue
                except kafka.errors.KafkaError as exc:
                    last_answer = f"node {node.node_id} did not answer: {exc}"
            if time.monotonic() > deadline:
                tails = "\n".join(self.log_tail(n) for n in pending)
                raise ClusterError(
                    f"nodes {pending} did not serve in time ({last_answer})\n{tails}"
                )
            time.sleep(_POLL_SECONDS)

    def _started(self, node: ClusterNode) -> bool:
        if not node.server_log.exists():
            return False
        with node.server_log.open("rb") as handle:
            handle.seek(node.log_offset)
            return STARTED_MARKER.encode() in handle.read()

    def _wait_in_sync(self, node_id: int, deadline: float) -> None:
        lagging: list[str] = []
        while True:
            try:
                with self._live_admin(deadline) as admin:
                    topics = admin.describe_topics()
                lagging = [
                    f"{topic['name']}-{p['partition_index']}"
                    for topic in topics
                    for p in topic["partitions"]
                    if node_id in p["replica_nodes"] and node_id not in p["isr_nodes"]
                ]
                if not lagging:
                    return
            except kafka.errors.KafkaError as exc:
                lagging = [f"(no metadata: {exc})"]
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"node {node_id} serves but did not rejoin the in-sync replicas of "
                    f"{', '.join(lagging[:10])}\n{self.log_tail(node_id)}"
                )
            time.sleep(_POLL_SECONDS)

    def _describe(self, topic: str, partition: int, deadline: float) -> dict[str, Any]:
        while True:
            try:
                with self._live_admin(deadline) as admin:
                    (described,) = admin.describe_topics([topic])
                break
            except kafka.errors.KafkaError as exc:
                # The metadata still names a killed node until its lease runs out, and the
                # admin client may pick it for the request: ask again.
                if time.monotonic() > deadline:
                    raise ClusterError(f"no metadata for {topic}: {exc}") from exc
                time.sleep(_POLL_SECONDS)
        error = kafka.errors.for_code(described["error_code"])
        if error is not kafka.errors.NoError:
            raise ClusterError(f"no metadata for {topic}: {error.__name__}")
        for found in described["partitions"]:
            if found["partition_index"] == partition:
                return dict(found)
        raise ClusterError(f"{topic} has no partition {partition}")

    def _live_admin(self, deadline: float) -> contextlib.AbstractContextManager[Any]:
        # Only nodes that listen: kafka-python's admin client keeps its I/O thread when its
        # bootstrap fails, and a node still starting up would make it wait.
        listening = [self._nodes[n] for n in self.alive() if _port_open(self._nodes[n].port)]
        addresses = [node.address for node in listening]
        if not addresses:
            raise ClusterError(f"no node of the cluster listens (running: {self.alive()})")
        return _admin(addresses, timeout=max(1.0, min(10.0, deadline - time.monotonic())))


def _check_runtime(libs: Path) -> None:
    if not (libs / ".complete").is_file() or not any(libs.glob("kafka_2.13-*.jar")):
        raise ClusterError(
            f"the Kafka jars are not in {libs}: run `deploy/local/stack.sh fetch` "
            "(or `make up`) first"
        )
    if shutil.which("java") is None:
        raise ClusterError("no `java` on PATH: the Kafka nodes need Java 17 or later")
