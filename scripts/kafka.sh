#!/usr/bin/env bash
# scripts/kafka.sh - fetch and run a REAL Apache Kafka (KRaft mode) on loopback,
# for integration tests and local runs of mailroom.
#
# Why this way: there is no Docker here or in CI, and the only downloads that
# work are package registries, not apache.org tarballs. So the broker comes from
# Maven Central: org.apache.kafka:kafka_2.13 (the broker, incl. kafka.Kafka and
# kafka.tools.StorageTool) + kafka-tools (TopicCommand, BrokerApiVersionsCommand)
# + log4j-slf4j-impl (so slf4j logs go to log4j2), with their runtime
# dependencies, copied by `mvn dependency:copy-dependencies` from a small pom
# generated into the cache. Each node is `java -cp 'LIBS/*' kafka.Kafka FILE`.
#
# Usage:
#   scripts/kafka.sh fetch                        download the jars (no-op when cached)
#   scripts/kafka.sh up [--nodes 1|3] [--dir D]   fresh cluster, wait until ready,
#                                                 print the bootstrap servers on stdout
#   scripts/kafka.sh down [--dir D]               stop all nodes, remove the state dir
#   scripts/kafka.sh kill NODE_ID [--dir D]       SIGKILL one node (HA tests)
#   scripts/kafka.sh stop NODE_ID [--dir D]       SIGTERM one node (graceful)
#   scripts/kafka.sh start NODE_ID [--dir D]      start a node again on its old storage
#   scripts/kafka.sh stop-all|start-all [--dir D] stop/start every node, keep data (outage tests)
#   scripts/kafka.sh restart [--dir D]            stop-all then start-all, one at a time per state
#                                                 dir (a second restart waits for the first)
#   scripts/kafka.sh status [--dir D]             nodes + bootstrap; exit 0 iff all run, else 3
#   scripts/kafka.sh bootstrap [--dir D]          print only the bootstrap servers string
#   scripts/kafka.sh pids [--dir D]               print the running nodes' pids, comma-separated
#                                                 (benchmarks read the brokers' CPU time); exit 3 if none
#   scripts/kafka.sh wait [--dir D]               wait until every running node is ready
#   scripts/kafka.sh topics [--dir D] ARGS...     kafka-topics (--bootstrap-server added if absent)
#   scripts/kafka.sh run-class CLASS ARGS...      any Kafka tool main class with the jars
#
# Node ids are 1..N. Ports (P = KAFKA_LOCAL_PORT_BASE, default 9092):
#   node k: client (PLAINTEXT) 127.0.0.1:P+2(k-1), controller 127.0.0.1:P+2(k-1)+1
#   --nodes 1: node 1 = 9092 / 9093                     bootstrap 127.0.0.1:9092
#   --nodes 3: 9092/9093, 9094/9095, 9096/9097          bootstrap 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096
# Every node is a combined broker+controller; the controller quorum is static
# (controller.quorum.voters). Broker settings (see write_server_properties):
#   replication factor of internal topics and default.replication.factor = N,
#   min.insync.replicas = 1 (N=1) or 2 (N=3), auto.create.topics.enable = true
#   (Kafka's default), group.initial.rebalance.delay.ms = 0, 10 partitions for
#   __consumer_offsets / __transaction_state (not 50: faster first group join),
#   broker session timeout 6 s (a SIGKILLed broker is fenced after ~6 s).
#
# Environment (all optional):
#   KAFKA_LOCAL_VERSION        Kafka version from Maven Central   (4.1.2)
#   KAFKA_LOCAL_HOME           jar cache, outside the repo        ($HOME/.cache/mailroom/kafka)
#   KAFKA_LOCAL_STATE          state dir (configs, data, logs)    (/tmp/mailroom-kafka)
#   KAFKA_LOCAL_PORT_BASE      first client port                  (9092)
#   KAFKA_LOCAL_HEAP           broker -Xmx                        (512m)
#   KAFKA_LOCAL_READY_TIMEOUT  seconds to wait for readiness      (120)
#   KAFKA_LOCAL_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (15)
#   KAFKA_LOCAL_LOG_LEVEL      broker root log level              (INFO)
#   KAFKA_LOCAL_JVM_OPTS       broker GC/JIT flags  (-XX:+UseSerialGC -XX:TieredStopAtLevel=1;
#                                 for load tests use e.g. -XX:+UseG1GC)
#   KAFKA_LOCAL_EXTRA_PROPS    extra server.properties lines, appended (later wins)
#   KAFKA_LOCAL_MVN_ARGS       extra mvn arguments for fetch (e.g. -Dmaven.repo.local=...)
#   JAVA_HOME                     Java 17+ to use (else `java` on PATH)
#
# Stopping: SIGTERM, then SIGKILL after KAFKA_LOCAL_STOP_TIMEOUT. A clean stop
# of all 3 nodes takes ~7 s (the last controller waits 5 s for its lost quorum).
# Now and then one node hangs: its broker waits (up to 5 min) for a controller
# to approve its controlled shutdown, but the other nodes, hence the quorum, are
# already gone. It is then SIGKILLed; Kafka recovers its log on the next start.
#
# State dir layout: cluster.env, broker-log4j2.properties, node-K/{server.properties,
# data/, node.pid, node.log}. Node stdout/stderr (the Kafka log) is node-K/node.log.
set -euo pipefail

# These settings were named MAILROOM_KAFKA_* once. Mailroom's config refuses unknown
# MAILROOM_* variables (a leftover one stops `mailroom serve`), and ignoring it here
# would silently run with the default: refuse it by its new name.
for legacy in VERSION HOME STATE PORT_BASE HEAP READY_TIMEOUT STOP_TIMEOUT LOG_LEVEL JVM_OPTS EXTRA_PROPS MVN_ARGS; do
  old="MAILROOM_KAFKA_$legacy"
  if [[ -n "${!old+set}" ]]; then
    printf 'kafka.sh: error: %s is now KAFKA_LOCAL_%s (and Mailroom would refuse the old name)\n' "$old" "$legacy" >&2
    exit 1
  fi
done
unset legacy old
KAFKA_VERSION="${KAFKA_LOCAL_VERSION:-4.1.2}"
LOG4J_VERSION="2.25.3" # matches log4j-core that kafka-server 4.1.2 depends on
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CACHE_ROOT="${KAFKA_LOCAL_HOME:-${HOME:-/tmp}/.cache/mailroom/kafka}"
CACHE_DIR="$CACHE_ROOT/$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
STATE="${KAFKA_LOCAL_STATE:-/tmp/mailroom-kafka}"
HOST="127.0.0.1"
PORT_BASE="${KAFKA_LOCAL_PORT_BASE:-9092}"
HEAP="${KAFKA_LOCAL_HEAP:-512m}"
READY_TIMEOUT="${KAFKA_LOCAL_READY_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_LOCAL_STOP_TIMEOUT:-15}"
LOG_LEVEL="${KAFKA_LOCAL_LOG_LEVEL:-INFO}"
# Serial GC + C1 only: on 2 cores this halves the CPU a node burns to start
# (~2.6 vs ~4.8 CPU-s) and idles at ~2% of a core; fine for test traffic.
JVM_OPTS="${KAFKA_LOCAL_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- fetch

pom_xml() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by scripts/kafka.sh: the jars needed to run a Kafka broker -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mailroom.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <!-- TopicCommand, BrokerApiVersionsCommand; Connect is not needed -->
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>jackson-jakarta-rs-json-provider</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <!-- slf4j 1.7 -> log4j2 binding (without it slf4j logs go nowhere) -->
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

# log4j2 config for CLI tools: warnings and errors to stderr only.
write_tools_log4j() {
  local tmp="$CACHE_DIR/tools-log4j2.properties.$$"
  cat >"$tmp" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  mv -f "$tmp" "$CACHE_DIR/tools-log4j2.properties"
}

# Cached = a complete fetch made from the same pom (editing the pom refetches).
fetched() {
  [[ -f "$CACHE_DIR/.complete" && -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] &&
    [[ "$(pom_xml)" == "$(<"$CACHE_DIR/pom.xml")" ]]
}

cmd_fetch() {
  if ! fetched; then
    command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION)"
    mkdir -p "$CACHE_DIR"
    # Serialise concurrent fetches (parallel test packages) on a lock file.
    exec 8>"$CACHE_DIR/.lock"
    command -v flock >/dev/null && flock 8
    if ! fetched; then
      log "fetching Kafka $KAFKA_VERSION from Maven Central into $CACHE_DIR"
      rm -f "$CACHE_DIR/.complete"
      pom_xml >"$CACHE_DIR/pom.xml"
      rm -rf "$LIBS.tmp"
      # shellcheck disable=SC2086 # KAFKA_LOCAL_MVN_ARGS is a word list
      if ! mvn -B -q -f "$CACHE_DIR/pom.xml" ${KAFKA_LOCAL_MVN_ARGS:-} \
        "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime \
        -DoutputDirectory="$LIBS.tmp" >"$CACHE_DIR/fetch.log" 2>&1; then
        tail -n 30 "$CACHE_DIR/fetch.log" >&2
        die "mvn failed; full log in $CACHE_DIR/fetch.log"
      fi
      rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
      touch "$CACHE_DIR/.complete"
      log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
    fi
    exec 8>&-
  fi
  [[ -f "$CACHE_DIR/tools-log4j2.properties" ]] || write_tools_log4j
}

# ---------------------------------------------------------------- java

check_java() {
  command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is version '${v:-?}'"
}

# Run a Kafka CLI main class: small, quick-starting JVM, logs to stderr.
run_class() {
  local class="$1"; shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CACHE_DIR/tools-log4j2.properties" \
    -cp "$LIBS/*" "$class" "$@"
}

# ---------------------------------------------------------------- cluster layout

client_port() { echo $((PORT_BASE + 2 * ($1 - 1))); }
controller_port() { echo $((PORT_BASE + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$STATE/node-$1"; }

bootstrap_servers() {
  local k out=""
  for ((k = 1; k <= NODES; k++)); do out+="${out:+,}$HOST:$(client_port "$k")"; done
  echo "$out"
}

quorum_voters() {
  local k out=""
  for ((k = 1; k <= NODES; k++)); do out+="${out:+,}$k@$HOST:$(controller_port "$k")"; done
  echo "$out"
}

# Loads NODES, PORT_BASE, KAFKA_VERSION (and paths) of an existing cluster.
load_cluster() {
  [[ -f "$STATE/cluster.env" ]] || die "no cluster in $STATE (run: scripts/kafka.sh up)"
  STATE="$(cd "$STATE" && pwd)"
  # shellcheck source=/dev/null
  source "$STATE/cluster.env"
  CACHE_DIR="$CACHE_ROOT/$KAFKA_VERSION"
  LIBS="$CACHE_DIR/libs"
}

check_node_id() {
  [[ "$1" =~ ^[0-9]+$ && "$1" -ge 1 && "$1" -le "$NODES" ]] || die "node id must be 1..$NODES, got '$1'"
}

write_server_properties() {
  local k="$1" dir min_isr
  dir="$(node_dir "$k")"
  min_isr=$((NODES >= 3 ? 2 : 1))
  cat >"$dir/server.properties" <<EOF
# generated by scripts/kafka.sh (node $k of $NODES)
process.roles=broker,controller
node.id=$k
controller.quorum.voters=$(quorum_voters)
listeners=PLAINTEXT://$HOST:$(client_port "$k"),CONTROLLER://$HOST:$(controller_port "$k")
advertised.listeners=PLAINTEXT://$HOST:$(client_port "$k")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# durability/availability settings the tests rely on
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=$NODES
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$NODES
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$NODES
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$NODES
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0

# small machine (2 cores), fast failure detection and shutdown
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
EOF
  if [[ -n "${KAFKA_LOCAL_EXTRA_PROPS:-}" ]]; then
    printf '\n# KAFKA_LOCAL_EXTRA_PROPS\n%s\n' "$KAFKA_LOCAL_EXTRA_PROPS" >>"$dir/server.properties"
  fi
}

write_broker_log4j() {
  # shutdownHook = disable: else log4j stops logging before Kafka's own
  # shutdown hook has finished, and the shutdown is missing from node.log.
  cat >"$STATE/broker-log4j2.properties" <<EOF
status = warn
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $LOG_LEVEL
rootLogger.appenderRef.stdout.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# Generate a Kafka cluster id: 16 random bytes, URL-safe base64 without padding
# (what StorageTool random-uuid prints), not starting with '-'.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

# ---------------------------------------------------------------- processes

# Pid of node k if its java process is alive (pid file checked against cmdline).
node_pid() {
  local pidfile pid
  pidfile="$(node_dir "$1")/node.pid"
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(node_dir "$1")/server.properties" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

check_ports_free() {
  local k p
  for k in "$@"; do
    for p in "$(client_port "$k")" "$(controller_port "$k")"; do
      port_open "$p" && die "port $p is already in use (another Kafka? set KAFKA_LOCAL_PORT_BASE)"
    done
  done
  return 0
}

start_node() {
  local k="$1" dir pid p
  dir="$(node_dir "$k")"
  if pid="$(node_pid "$k")"; then log "node $k already running (pid $pid)"; return 0; fi
  check_ports_free "$k"
  # setsid: the broker outlives this script and the caller's process group. 8>&- 9>&-:
  # it must not inherit the fetch and restart lock files, or it holds the lock for
  # as long as it runs and the next restart waits for it forever.
  # shellcheck disable=SC2086 # JVM_OPTS is a word list
  setsid "$JAVA" -Xms128m -Xmx"$HEAP" $JVM_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STATE/broker-log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/node.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/node.pid"
  disown "$!" # no "Killed" job notices from bash
  # Until the forked shell has exec'd the JVM, node_pid does not recognise the
  # process, and wait_ready (which waits for the nodes node_pid sees) would wait for
  # a cluster without this node and then never see the one it got (a loaded
  # machine's clean-clone run met this). Wait for the exec, briefly.
  local seen=$((SECONDS + 10))
  until node_pid "$k" >/dev/null; do
    ((SECONDS < seen)) || { print_logs; die "node $k: process $(<"$dir/node.pid") is not the broker 10 s after its start"; }
    sleep 0.05
  done
  log "node $k started (pid $(<"$dir/node.pid"), client $HOST:$(client_port "$k"), log $dir/node.log)"
}

# Send a signal to the given nodes, wait for them to exit; SIGKILL after timeout.
stop_nodes() {
  local sig="$1" timeout="$2"; shift 2
  local k pid pids=() deadline
  for k in "$@"; do
    if pid="$(node_pid "$k")"; then kill "-$sig" "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  deadline=$((SECONDS + timeout))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)) && [[ "$sig" != KILL ]]; then
        log "pid $pid still running ${timeout}s after SIG$sig, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sig=KILL
      fi
      sleep 0.2
    done
  done
  for k in "$@"; do rm -f "$(node_dir "$k")/node.pid"; done
}

all_nodes() { seq 1 "$NODES"; }

running_nodes() {
  local k
  for k in $(all_nodes); do node_pid "$k" >/dev/null && echo "$k"; done
  return 0
}

print_logs() {
  local k
  for k in $(all_nodes); do
    log "---- tail of node $k log ($(node_dir "$k")/node.log)"
    tail -n 40 "$(node_dir "$k")/node.log" >&2 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- readiness

# Ready = every given node's client port accepts connections, the node answers
# ApiVersions, and the cluster metadata lists every running node as a broker.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) k out want ids
  want="$(running_nodes | sort | tr '\n' ' ')"
  [[ -n "$want" ]] || die "no node is running"
  for k in $want; do
    until port_open "$(client_port "$k")"; do
      node_pid "$k" >/dev/null || { print_logs; die "node $k exited during startup"; }
      ((SECONDS < deadline)) || { print_logs; die "node $k: port not open after ${READY_TIMEOUT}s"; }
      sleep 0.5
    done
  done
  while :; do
    out="$(run_class org.apache.kafka.tools.BrokerApiVersionsCommand \
      --bootstrap-server "$(running_bootstrap)" 2>/dev/null || true)"
    # One block per broker: "127.0.0.1:9092 (id: 1 rack: null isFenced: false) -> ("
    ids="$(sed -n 's/^[^ ]* (id: \([0-9]*\) .*-> ($/\1/p' <<<"$out" | sort | tr '\n' ' ')"
    [[ "$ids" == "$want" ]] && break
    for k in $want; do
      node_pid "$k" >/dev/null || { print_logs; die "node $k exited during startup"; }
    done
    ((SECONDS < deadline)) || { print_logs; die "cluster not ready after ${READY_TIMEOUT}s (brokers seen: '${ids}', want '${want}')"; }
    sleep 1
  done
  log "ready: brokers ${want% } of $NODES ($(bootstrap_servers))"
}

running_bootstrap() {
  local k out=""
  for k in $(running_nodes); do out+="${out:+,}$HOST:$(client_port "$k")"; done
  echo "$out"
}

# After a restart: wait until no partition is under-replicated (all nodes up).
wait_in_sync() {
  local deadline=$((SECONDS + READY_TIMEOUT)) urp
  [[ "$(running_nodes | wc -l)" -eq "$NODES" ]] || return 0
  while :; do
    urp="$(run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_servers)" \
      --describe --under-replicated-partitions 2>/dev/null)" && [[ -z "$urp" ]] && break
    ((SECONDS < deadline)) || { log "$urp"; die "partitions still under-replicated after ${READY_TIMEOUT}s"; }
    sleep 1
  done
  log "all partitions in sync"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  NODES=1
  while (($#)); do
    case "$1" in
      --nodes) NODES="${2:?--nodes needs 1 or 3}"; shift 2 ;;
      --dir) STATE="${2:?--dir needs a path}"; shift 2 ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  [[ "$NODES" == 1 || "$NODES" == 3 ]] || die "--nodes must be 1 or 3"
  check_java
  cmd_fetch

  # A cluster still running in this state dir is reused if it has the same
  # size; a stopped one is wiped (use start-all to restart with old data).
  if [[ -f "$STATE/cluster.env" ]] && (load_cluster && [[ -n "$(running_nodes)" ]]); then
    local want="$NODES"
    load_cluster
    [[ "$NODES" == "$want" ]] || die "a $NODES-node cluster is running in $STATE; run down first"
    log "cluster already running in $STATE"
    wait_ready
    bootstrap_servers
    return
  fi

  local k cid pids=() started=$SECONDS
  # shellcheck disable=SC2046
  check_ports_free $(all_nodes)
  rm -rf "$STATE"
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)" # absolute, configs must not depend on cwd
  cid="$(new_cluster_id)"
  cat >"$STATE/cluster.env" <<EOF
NODES=$NODES
PORT_BASE=$PORT_BASE
KAFKA_VERSION=$KAFKA_VERSION
CLUSTER_ID=$cid
EOF
  write_broker_log4j
  for k in $(all_nodes); do
    mkdir -p "$(node_dir "$k")"
    write_server_properties "$k"
    run_class kafka.tools.StorageTool format --cluster-id "$cid" \
      --config "$(node_dir "$k")/server.properties" >"$(node_dir "$k")/format.log" 2>&1 &
    pids+=($!)
  done
  for k in $(all_nodes); do
    wait "${pids[k - 1]}" || { cat "$(node_dir "$k")/format.log" >&2; die "formatting node $k failed"; }
  done
  # If startup fails, do not leave half a cluster running; keep the logs.
  trap 'up_failed $?' EXIT
  for k in $(all_nodes); do start_node "$k"; done
  wait_ready
  trap - EXIT
  log "up in $((SECONDS - started))s"
  bootstrap_servers
}

up_failed() {
  ((${1:-1} != 0)) || return 0
  # shellcheck disable=SC2046
  stop_nodes KILL 10 $(all_nodes)
  log "up failed: nodes killed, configs and logs kept in $STATE (remove with: scripts/kafka.sh down)"
}

# Parse the optional --dir of the other commands; leaves the rest in ARGS.
parse_dir() {
  ARGS=()
  while (($#)); do
    case "$1" in
      --dir) STATE="${2:?--dir needs a path}"; shift 2 ;;
      *) ARGS+=("$1"); shift ;;
    esac
  done
}

cmd_down() {
  parse_dir "$@"
  [[ -f "$STATE/cluster.env" ]] || { log "nothing in $STATE"; rm -rf "$STATE"; return 0; }
  load_cluster
  # shellcheck disable=SC2046
  stop_nodes TERM "$STOP_TIMEOUT" $(all_nodes)
  rm -rf "$STATE"
  log "down: all nodes stopped, $STATE removed"
}

cmd_kill() {
  parse_dir "$@"
  load_cluster
  check_node_id "${ARGS[0]:-}"
  node_pid "${ARGS[0]}" >/dev/null || die "node ${ARGS[0]} is not running"
  stop_nodes KILL 10 "${ARGS[0]}"
  log "node ${ARGS[0]} killed"
}

cmd_stop() {
  parse_dir "$@"
  load_cluster
  check_node_id "${ARGS[0]:-}"
  stop_nodes TERM "$STOP_TIMEOUT" "${ARGS[0]}"
  log "node ${ARGS[0]} stopped"
}

cmd_start() {
  parse_dir "$@"
  load_cluster
  check_node_id "${ARGS[0]:-}"
  check_java
  start_node "${ARGS[0]}"
  wait_ready
  wait_in_sync
}

cmd_stop_all() {
  parse_dir "$@"
  load_cluster
  # shellcheck disable=SC2046
  stop_nodes TERM "$STOP_TIMEOUT" $(all_nodes)
  log "all nodes stopped (data kept in $STATE)"
}

cmd_start_all() {
  parse_dir "$@"
  load_cluster
  check_java
  local k
  for k in $(all_nodes); do start_node "$k"; done
  wait_ready
}

cmd_restart() {
  parse_dir "$@"
  load_cluster
  check_java
  # Serialise: Watermill's reconnect test fires restarts from goroutines, and a
  # stop-all landing inside another restart's start-all would kill a starting node.
  exec 9>"$STATE/.restart.lock"
  command -v flock >/dev/null && flock 9
  local k
  # shellcheck disable=SC2046
  stop_nodes TERM "$STOP_TIMEOUT" $(all_nodes)
  for k in $(all_nodes); do start_node "$k"; done
  wait_ready
  exec 9>&-
  log "restarted"
}

cmd_wait() {
  parse_dir "$@"
  load_cluster
  wait_ready
}

cmd_status() {
  parse_dir "$@"
  load_cluster
  local k pid up=0
  echo "Kafka $KAFKA_VERSION, $NODES node(s), state $STATE"
  for k in $(all_nodes); do
    if pid="$(node_pid "$k")"; then
      up=$((up + 1))
      echo "node $k: running  pid $pid  client $HOST:$(client_port "$k")  controller $HOST:$(controller_port "$k")"
    else
      echo "node $k: stopped            client $HOST:$(client_port "$k")  controller $HOST:$(controller_port "$k")"
    fi
  done
  echo "bootstrap: $(bootstrap_servers)"
  ((up == NODES)) || return 3
}

cmd_bootstrap() {
  parse_dir "$@"
  load_cluster
  bootstrap_servers
}

cmd_pids() {
  parse_dir "$@"
  load_cluster
  local k pid out=""
  for k in $(all_nodes); do
    if pid="$(node_pid "$k")"; then out+="${out:+,}$pid"; fi
  done
  [[ -n "$out" ]] || { log "no node is running in $STATE"; return 3; }
  echo "$out"
}

cmd_topics() {
  if [[ "${1:-}" == --dir ]]; then STATE="${2:?--dir needs a path}"; shift 2; fi
  local bs="$HOST:$PORT_BASE"
  if [[ -f "$STATE/cluster.env" ]]; then load_cluster; bs="$(bootstrap_servers)"; fi
  cmd_fetch
  case " $* " in
    *" --bootstrap-server "*) run_class org.apache.kafka.tools.TopicCommand "$@" ;;
    *) run_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" "$@" ;;
  esac
}

cmd_run_class() {
  [[ $# -ge 1 ]] || die "run-class needs a main class"
  cmd_fetch
  run_class "$@"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    kill) cmd_kill "$@" ;;
    stop) cmd_stop "$@" ;;
    start) cmd_start "$@" ;;
    stop-all) cmd_stop_all "$@" ;;
    start-all) cmd_start_all "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    bootstrap) cmd_bootstrap "$@" ;;
    pids) cmd_pids "$@" ;;
    wait) cmd_wait "$@" ;;
    topics) cmd_topics "$@" ;;
    run-class) cmd_run_class "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
}

main "$@"
