#!/usr/bin/env bash
# Runs the Kafka suite (tests built with -tags kafka) against a real single-node
# Apache Kafka that it starts with scripts/kafka.sh and always stops again. Tests that
# need a Kafka of their own (HA cluster, outage, cold start, Watermill's suite) start
# it themselves on other ports.
# Every test whose name contains "Kafka" runs, with the race detector.
#
#   scripts/test-kafka.sh              over ./...
#   scripts/test-kafka.sh ARGS...      with ARGS instead (e.g. -v -run X ./app/)
set -euo pipefail
cd "$(dirname "$0")/.."
port_base=${KAFKA_TEST_PORT_BASE:-19092}
state=${KAFKA_TEST_STATE:-/tmp/mailroom-kafka-test}
kafka() { KAFKA_LOCAL_PORT_BASE=$port_base KAFKA_LOCAL_STATE=$state bash scripts/kafka.sh "$@"; }
trap 'kafka down >/dev/null 2>&1 || true' EXIT
kafka down >/dev/null 2>&1 || true
brokers=$(kafka up --nodes 1)
echo "kafka suite: brokers $brokers"
KAFKA_TEST_BROKERS=$brokers go test -race -count=1 -timeout 15m -tags kafka -run 'Kafka' "${@:-./...}"
