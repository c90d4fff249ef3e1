# mk/kafka.mk - real Apache Kafka (KRaft, from Maven Central) for tests and
# local runs; ports, settings and knobs are documented in scripts/kafka.sh.
# Include from the root Makefile:  include mk/kafka.mk
#
#   make kafka-fetch        download the Kafka jars into the cache (once)
#   make kafka-up           1 node:  bootstrap 127.0.0.1:9092
#   make kafka-up-cluster   3 nodes: bootstrap 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096
#   make kafka-status       which nodes run, bootstrap servers
#   make kafka-down         stop all nodes, remove the state dir
#
# MAILROOM_KAFKA_* settings pass through from the environment or the make
# command line, e.g.  make kafka-up MAILROOM_KAFKA_PORT_BASE=19092

KAFKA_SH := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/../scripts/kafka.sh

.PHONY: kafka-fetch kafka-up kafka-up-cluster kafka-down kafka-status

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
