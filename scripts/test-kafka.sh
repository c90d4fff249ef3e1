#!/usr/bin/env bash
# Runs the Kafka suite (tests built with -tags kafka) against a real single-node
# Apache Kafka that it starts with scripts/kafka.sh and always stops again.
set -euo pipefail
cd "$(dirname "$0")/.."
port_base=${KAFKA_TEST_PORT_BASE:-19092}
state=${KAFKA_TEST_STATE:-/tmp/mailroom-kafka-test}
kafka() { MAILROOM_KAFKA_PORT_BASE=$port_base MAILROOM_KAFKA_STATE=$state bash scripts/kafka.sh "$@"; }
trap 'kafka down >/dev/null 2>&1 || true' EXIT
kafka down >/dev/null 2>&1 || true
brokers=$(kafka up --nodes 1)
echo "kafka suite: brokers $brokers"
KAFKA_TEST_BROKERS=$brokers go test -race -count=1 -timeout 15m -tags kafka -run 'Kafka' "${@:-./...}"
