# mk/kafka.mk - real Apache Kafka (KRaft, from Maven Central) for tests and
# local runs; ports, settings and knobs are documented in scripts/kafka.sh.
# Include from the root Makefile:  include mk/kafka.mk
#
#   make kafka-fetch        download the Kafka jars into the cache (once)
#   make kafka-up           1 node:  bootstrap 127.0.0.1:9092
#   make kafka-up-cluster   3 nodes: bootstrap 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096
#   make kafka-status       which nodes run, bootstrap servers
#   make kafka-down         stop all nodes, remove the state dir
#   make bench-kafka        the Kafka benchmarks on a node of their own (started and
#                           stopped around them; port base BENCH_KAFKA_PORT_BASE)
#
# KAFKA_LOCAL_* settings pass through from the environment or the make
# command line, e.g.  make kafka-up KAFKA_LOCAL_PORT_BASE=19092

KAFKA_SH := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/../scripts/kafka.sh

BENCH_KAFKA_PORT_BASE ?= 19192
BENCH_KAFKA_STATE     ?= /tmp/mailroom-kafka-bench
# Five interleaved rounds: one round's relay/raw ratio moves by about 0.15 with the
# machine's speed, which five rounds average out.
BENCH_KAFKA_TIME      ?= 5x
# Which benchmarks (go test -bench), e.g. BENCH_KAFKA_BENCH='KafkaDeliveryWorkers|KafkaSplit'.
BENCH_KAFKA_BENCH     ?= Kafka

.PHONY: kafka-fetch kafka-up kafka-up-cluster kafka-down kafka-status bench-kafka

kafka-fetch:
	bash $(KAFKA_SH) fetch

kafka-up:
	bash $(KAFKA_SH) up --nodes 1

kafka-up-cluster:
	bash $(KAFKA_SH) up --nodes 3

kafka-down:
	bash $(KAFKA_SH) down

kafka-status:
	bash $(KAFKA_SH) status

# bench-kafka: relay throughput to Kafka beside raw Sarama, end-to-end emails/s and
# the broker's CPU per email on Kafka beside Go channels and a raw Sarama pair, and
# delivery lanes on Kafka (app/kafka_bench_test.go); 1, 2 and 3 delivery workers and
# the split deployment beside --modules all (app/kafka_bench_workers_test.go).
# KAFKA_TEST_BROKER_PIDS names the node's process, whose CPU time the benchmarks
# read. The node is always stopped.
bench-kafka:
	@export KAFKA_LOCAL_PORT_BASE=$(BENCH_KAFKA_PORT_BASE) KAFKA_LOCAL_STATE=$(BENCH_KAFKA_STATE); \
	bash $(KAFKA_SH) down >/dev/null 2>&1 || true; \
	brokers=$$(bash $(KAFKA_SH) up --nodes 1) || exit 1; \
	pids=$$(bash $(KAFKA_SH) pids) || { bash $(KAFKA_SH) down; exit 1; }; \
	status=0; \
	KAFKA_TEST_BROKERS=$$brokers KAFKA_TEST_BROKER_PIDS=$$pids $(or $(GO),go) test -count=1 -tags kafka -run '^$$' -bench '$(BENCH_KAFKA_BENCH)' -benchtime $(BENCH_KAFKA_TIME) ./app/ || status=$$?; \
	bash $(KAFKA_SH) down; \
	exit $$status
