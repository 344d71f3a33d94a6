#!/usr/bin/env bash
# The local real stack without Docker: an Apache Kafka broker (KRaft, one combined
# broker+controller), Apicurio Registry (Confluent-compatible API) and PostgreSQL.
#
#   stack.sh fetch   download the jars through Maven (cached in ~/.m2; offline afterwards)
#   stack.sh up      start whatever is not running yet, wait until it answers, print the env
#   stack.sh down    stop everything this stack directory started; its data stays for the next up
#   stack.sh env     print the ORDERFLOW_* exports for the running stack
#   stack.sh status  one line per service
#
# State survives `down`/`up`: Kafka's log, PostgreSQL's data, and with them the registry's
# schemas (stored in the stack's PostgreSQL, database `registry`), so schema ids stay the ones
# the records in Kafka carry. Without PostgreSQL the registry falls back to memory, with a warning.
#
# Settings (environment): STACK_DIR (state, logs, pids; default deploy/local/.stack),
# KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), REGISTRY_PORT (8081),
# POSTGRES_PORT (5433), STACK_POSTGRES (1 = start PostgreSQL when its binaries exist).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STACK_DIR="${STACK_DIR:-$HERE/.stack}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
POSTGRES_PORT="${POSTGRES_PORT:-5433}"
STACK_POSTGRES="${STACK_POSTGRES:-1}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx512m}"
REGISTRY_HEAP="${REGISTRY_HEAP:--Xms128m -Xmx384m}"
START_TIMEOUT="${START_TIMEOUT:-120}"

KAFKA_LIBS="$HERE/target/kafka-libs"
APICURIO_HOME="$HERE/target/apicurio"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

mvn_quiet() {
  # Maven 3.8's console writes colour resets even with -Dstyle.color=never; jansi.noreset
  # stops them. Callers still send all of Maven's output to stderr: `up` runs the fetch, and
  # its stdout is eval'd.
  MAVEN_OPTS="${MAVEN_OPTS:-} -Djansi.noreset=true" mvn -q -B -Dstyle.color=never "$@"
}

fetch() {
  if [[ -n "$(registry_jar)" && -f "$KAFKA_LIBS/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka and Apicurio jars; install the 'maven' package."
  log "fetching Kafka and Apicurio Registry from Maven Central (first run only)"
  (cd "$HERE" && mvn_quiet package >&2) || die "Maven could not fetch the Kafka jars; see the output above."
  touch "$KAFKA_LIBS/.complete"
  local version repo tarball
  version="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$HERE/pom.xml")"
  # Run outside this project (its pom pins a stricter plugin) with the 2.x goal, which
  # tolerates the missing parent POM when transitive resolution is off.
  (cd / && mvn_quiet org.apache.maven.plugins:maven-dependency-plugin:2.10:get -Dtransitive=false \
    -Dartifact="io.apicurio:apicurio-registry-app:${version}:tar.gz:all" >&2) \
    || die "Maven could not fetch Apicurio Registry ${version}; see the output above."
  # The one Maven answer read from stdout; any escape code another Maven version adds is cut.
  repo="$(cd "$HERE" && mvn_quiet help:evaluate -Dexpression=settings.localRepository -DforceStdout \
    | sed 's/\x1b\[[0-9;]*m//g')"
  tarball="$repo/io/apicurio/apicurio-registry-app/${version}/apicurio-registry-app-${version}-all.tar.gz"
  [[ -f "$tarball" ]] || die "Maven reported its local repository as '$repo', but $tarball is not there."
  rm -rf "$APICURIO_HOME" && mkdir -p "$APICURIO_HOME"
  tar -xzf "$tarball" -C "$APICURIO_HOME" || die "could not unpack $tarball"
}

registry_jar() {
  # Apicurio 3.0 ships a Quarkus legacy jar (*-runner.jar + lib/); later lines ship quarkus-run.jar.
  ls "$APICURIO_HOME"/quarkus-run.jar "$APICURIO_HOME"/*-runner.jar 2>/dev/null | head -n 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  local f="$STACK_DIR/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

wait_until() { # name, seconds, command...
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  until "$@"; do
    if (( SECONDS - start > limit )); then
      die "$name did not answer within ${limit}s; its log is $STACK_DIR/$name.log"
    fi
    if ! pid_alive "$name"; then
      tail -n 30 "$STACK_DIR/$name.log" >&2 || true
      die "$name exited during start-up; its log is $STACK_DIR/$name.log"
    fi
    sleep 0.3
  done
  log "$name ready in $(( SECONDS - start ))s"
}

write_kafka_config() {
  mkdir -p "$STACK_DIR/kafka-data"
  cat >"$STACK_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${STACK_DIR}/kafka-data
num.partitions=3
auto.create.topics.enable=false
# One broker: internal topics cannot be replicated, and few partitions start faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create and join groups constantly; the default 3 s delay would slow every one.
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.check.interval.ms=60000
EOF
  cat >"$STACK_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${STACK_DIR}/kafka-server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

start_kafka() {
  if pid_alive kafka; then log "kafka already running (pid $(cat "$STACK_DIR/kafka.pid"))"; return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set KAFKA_PORT."
  write_kafka_config
  local java_opts=(-Dlog4j2.configurationFile="$STACK_DIR/log4j2.properties" -cp "$KAFKA_LIBS/*")
  if [[ ! -f "$STACK_DIR/kafka-data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid)"
    java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$STACK_DIR/server.properties" >"$STACK_DIR/kafka-format.log" 2>&1 \
      || die "formatting KRaft storage failed; see $STACK_DIR/kafka-format.log"
  fi
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "${java_opts[@]}" -Dorderflow.stack="$STACK_DIR" kafka.Kafka "$STACK_DIR/server.properties" \
    >"$STACK_DIR/kafka.log" 2>&1 &
  echo $! >"$STACK_DIR/kafka.pid"
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$STACK_DIR/kafka-server.log" 2>/dev/null; }

start_registry() {
  if pid_alive registry; then log "registry already running (pid $(cat "$STACK_DIR/registry.pid"))"; return 0; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by another process; set REGISTRY_PORT."
  local storage=()
  if postgres_enabled; then
    # Schema ids must outlive a restart, as they do in production: Kafka keeps the records
    # that carry them. A small pool: one registry, and PostgreSQL serves the tests too.
    storage=(
      -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql
      -Dapicurio.datasource.url="jdbc:postgresql://127.0.0.1:${POSTGRES_PORT}/registry"
      -Dapicurio.datasource.username=orderflow -Dapicurio.datasource.password=unused
      -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2
      -Dapicurio.datasource.jdbc.max-size=20
    )
  else
    log "warning: no PostgreSQL (STACK_POSTGRES=$STACK_POSTGRES, server binaries: ${PG_BIN:-none found})," \
      "so the registry keeps schemas in memory: their ids restart with it, and records already" \
      "in Kafka may decode against the wrong schema after \`down\`/\`up\`"
  fi
  # shellcheck disable=SC2086
  nohup java $REGISTRY_HEAP -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.level=WARN -Dquarkus.banner.enabled=false \
    "${storage[@]}" -Dorderflow.stack="$STACK_DIR" \
    -jar "$(registry_jar)" >"$STACK_DIR/registry.log" 2>&1 &
  echo $! >"$STACK_DIR/registry.pid"
}

registry_ready() {
  curl -fsS -o /dev/null "http://127.0.0.1:${REGISTRY_PORT}/apis/ccompat/v7/subjects" 2>/dev/null
}

postgres_enabled() { [[ "$STACK_POSTGRES" == 1 && -x "$PG_BIN/postgres" ]]; }

as_postgres() {
  # PostgreSQL refuses to run as root; run its tools as the 'postgres' account then.
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where PostgreSQL's files live (its data directory "pg" and "postgres.log"): STACK_DIR,
# unless the stack runs as root and the 'postgres' account cannot reach STACK_DIR (a checkout
# under a directory closed to other users, such as one `mktemp -d` made): then a directory of
# its own under /var/tmp, named after STACK_DIR. The choice is noted in STACK_DIR/pg-home when
# the cluster is created, so that down, env and status find it; a stack directory without
# the note keeps its files in STACK_DIR, as before.
pg_home() {
  if [[ -f "$STACK_DIR/pg-home" ]]; then cat "$STACK_DIR/pg-home"; else echo "$STACK_DIR"; fi
}

choose_pg_home() {
  local home="$STACK_DIR"
  if [[ "$(id -u)" == 0 ]]; then
    chown -R postgres "$STACK_DIR" && chmod 755 "$STACK_DIR"
    if ! runuser -u postgres -- test -w "$STACK_DIR"; then
      home="/var/tmp/orderflow-postgres-$(printf '%s' "$STACK_DIR" | cksum | cut -d' ' -f1)"
      # A new cluster for a new stack directory: whatever an earlier one of the same name left
      # (its stack directory removed by `make clean`) goes.
      rm -rf "$home" && mkdir -p "$home" && chown postgres "$home" && chmod 700 "$home"
      log "the 'postgres' account cannot reach $STACK_DIR (a parent directory is closed to it); PostgreSQL's files go to $home"
    fi
  fi
  echo "$home" >"$STACK_DIR/pg-home"
}

start_postgres() {
  postgres_enabled || return 0
  local home; home="$(pg_home)"
  if as_postgres "$PG_BIN/pg_ctl" -D "$home/pg" status >/dev/null 2>&1; then
    log "postgres already running"
  else
    port_open "$POSTGRES_PORT" && die "port $POSTGRES_PORT is taken by another process; set POSTGRES_PORT."
    if [[ ! -f "$home/pg/PG_VERSION" ]]; then
      choose_pg_home
      home="$(pg_home)"
      as_postgres mkdir -p "$home/pg"
      as_postgres "$PG_BIN/initdb" -D "$home/pg" -U orderflow --auth=trust -E UTF8 >"$STACK_DIR/pg-init.log" 2>&1 \
        || die "initdb failed; see $STACK_DIR/pg-init.log"
    fi
    [[ "$(id -u)" == 0 ]] && touch "$home/postgres.log" && chown postgres "$home/postgres.log"
    as_postgres "$PG_BIN/pg_ctl" -D "$home/pg" -l "$home/postgres.log" -w -t 60 \
      -o "-p $POSTGRES_PORT -k $home/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || die "PostgreSQL did not start; see $home/postgres.log"
  fi
  # orderflow's own database, and the registry's beside it (its tables are its own business).
  # Checked on every start: a stack directory from before the registry used PostgreSQL lacks it.
  create_database orderflow
  create_database registry
  log "postgres ready"
}

create_database() { # name
  local found
  found="$(as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U orderflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='$1'")" || die "PostgreSQL did not answer; see $(pg_home)/postgres.log"
  [[ "$found" == 1 ]] || as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U orderflow "$1" >&2 \
    || die "could not create the PostgreSQL database $1; see $(pg_home)/postgres.log"
}

print_env() {
  echo "export ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT}"
  echo "export ORDERFLOW_SCHEMA_REGISTRY_URL=http://127.0.0.1:${REGISTRY_PORT}/apis/ccompat/v7"
  if postgres_enabled && [[ -f "$(pg_home)/pg/PG_VERSION" ]]; then
    echo "export ORDERFLOW_DATABASE_URL=postgresql://orderflow@127.0.0.1:${POSTGRES_PORT}/orderflow"
  fi
}

save_ports() {
  cat >"$STACK_DIR/ports" <<EOF
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
REGISTRY_PORT=$REGISTRY_PORT
POSTGRES_PORT=$POSTGRES_PORT
STACK_POSTGRES=$STACK_POSTGRES
EOF
}

load_ports() {
  # A running stack keeps the ports it was started with.
  if [[ -f "$STACK_DIR/ports" ]] && { pid_alive kafka || pid_alive registry; }; then
    # shellcheck disable=SC1091
    source "$STACK_DIR/ports"
  fi
}

stop_pid() { # name
  local f="$STACK_DIR/$1.pid"
  [[ -f "$f" ]] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$1 did not stop on SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$f"
  log "$1 stopped"
}

up() {
  fetch
  mkdir -p "$STACK_DIR"
  load_ports
  save_ports
  local started=$SECONDS
  start_kafka
  # The registry keeps its schemas in PostgreSQL, so the database comes first; Kafka boots
  # meanwhile.
  start_postgres
  start_registry
  wait_until kafka "$START_TIMEOUT" kafka_ready
  wait_until registry "$START_TIMEOUT" registry_ready
  log "stack up in $(( SECONDS - started ))s (STACK_DIR=$STACK_DIR)"
  print_env
}

down() {
  [[ -d "$STACK_DIR" ]] || { log "nothing to stop"; return 0; }
  stop_pid registry
  stop_pid kafka
  if postgres_enabled && [[ -f "$(pg_home)/pg/PG_VERSION" ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$(pg_home)/pg" -m fast -w stop >/dev/null 2>&1 && log "postgres stopped" || true
  fi
  # Anything of ours that lost its pid file is found by the marker on its command line.
  pkill -KILL -f -- "-Dorderflow.stack=$STACK_DIR( |$)" 2>/dev/null || true
}

status() {
  load_ports
  for s in kafka registry; do
    if pid_alive "$s"; then echo "$s: running (pid $(cat "$STACK_DIR/$s.pid"))"; else echo "$s: stopped"; fi
  done
  if postgres_enabled; then
    if as_postgres "$PG_BIN/pg_ctl" -D "$(pg_home)/pg" status >/dev/null 2>&1; then echo "postgres: running"; else echo "postgres: stopped"; fi
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  env) load_ports; print_env ;;
  status) status ;;
  *) die "usage: stack.sh fetch|up|down|env|status" ;;
esac
