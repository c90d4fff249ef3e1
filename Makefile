# Mailroom: `make test` is the one command that runs every test (CI runs it too).

GO       ?= go
export CGO_ENABLED := 1

.PHONY: test vet unit test-kafka build bench clean

## test: vet, every test with the race detector, then the Kafka suite on a real
## Apache Kafka node that scripts/kafka.sh fetches from Maven Central and starts.
test: vet unit test-kafka

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

test-kafka:
	bash scripts/test-kafka.sh

## build: the one binary.
build:
	$(GO) build -o mailroom .

## bench: the benchmarks of the README's performance section.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./app/

clean:
	rm -rf mailroom data

-include mk/*.mk
