# Mailroom: `make test` is the one command that runs every test (CI runs it too).

GO       ?= go
export CGO_ENABLED := 1

.PHONY: test vet unit build bench clean

## test: vet, then every test with the race detector.
test: vet unit

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

## build: the one binary.
build:
	$(GO) build -o mailroom .

## bench: the benchmarks of the README's performance section.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./app/

clean:
	rm -rf mailroom data

-include mk/*.mk
