# Mailroom: `make test` is the one command that runs every test (CI runs it too).

GO       ?= go
export CGO_ENABLED := 1

.PHONY: test vet check-vendor vendor-web unit test-kafka test-browser fuzz build release-snapshot bench clean

## test: vet, the console's vendored files against their pinned npm packages,
## every test with the race detector, then the Kafka suite on a real
## Apache Kafka node that scripts/kafka.sh fetches from Maven Central and starts,
## then the operator console in headless Chromium, then each fuzz target for a
## bounded time.
test: vet check-vendor unit test-kafka test-browser fuzz

## vendor-web: fetch the console's pinned third-party files (uPlot, DOMPurify)
## from npm into web/static/vendor; check-vendor fails if the committed ones differ.
vendor-web:
	bash scripts/vendor-web.sh

check-vendor:
	bash scripts/vendor-web.sh --check

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

test-kafka:
	bash scripts/test-kafka.sh

## test-browser: the operator console (web/) in headless Chromium, which
## scripts/browser.sh installs from Debian's packages when it is missing (as root).
test-browser:
	bash scripts/browser.sh >/dev/null
	$(GO) test -race -count=1 -timeout 5m -tags browser ./web/...

## fuzz: each fuzz target for FUZZEXECS inputs (about 30 s each on a 2-core
## machine); the seed corpora in testdata/fuzz/ and the f.Add seeds run with every
## plain `go test` too.
# The budget is a count, not a duration: with -fuzztime 30s, Go 1.26's fuzz
# coordinator can report its own stop at the deadline as a failure ("context
# deadline exceeded", no crasher written; golang/go#75804, fixed in Go 1.27).
# A count never arms that deadline. Minimizing a new interesting input is capped:
# on the large seeds it took the whole fuzz time otherwise (0 execs/s while
# minimizing), leaving none for fuzzing.
FUZZEXECS ?= 500000x
FUZZMIN   ?= 2s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZEXECS) -fuzzminimizetime $(FUZZMIN) ./modules/emails/internal/ports/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZEXECS) -fuzzminimizetime $(FUZZMIN) ./modules/delivery/internal/render/
	$(GO) test -run '^$$' -fuzz '^FuzzFastDecodeMatchesStrictDecode$$' -fuzztime $(FUZZEXECS) -fuzzminimizetime $(FUZZMIN) ./platform/httpserver/

## build: the one binary, bin/mailroom (BIN), stamped for `mailroom version` with
## its version (git describe --tags, else the first line of a VERSION file, else
## dev), its commit, and that commit's time in UTC (outside git: the build's time).
## Each can be set on the command line: make build BUILD_VERSION=v1.2.0.
BIN           ?= bin/mailroom
BUILD_VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || head -n 1 VERSION 2>/dev/null || echo dev)
BUILD_COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE    ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
build:
	$(GO) build -ldflags '-X main.version=$(BUILD_VERSION) -X main.commit=$(BUILD_COMMIT) -X main.date=$(BUILD_DATE)' -o $(BIN) .

## release-snapshot: the release archives (linux amd64 and arm64: the binary,
## LICENSE, README, config.yaml, the systemd unit) into dist/, built by GoReleaser
## (.goreleaser.yaml; pinned, run with go run) as for a tag, without publishing.
## cgo needs each target's C compiler: scripts/cross-cc.sh installs a missing one
## from Debian's packages (as root).
## GoReleaser reads the commit only from a repository with a remote (any clone has
## origin); without one it stamps "none", so a stand-in origin is given to its git,
## in its environment only.
GORELEASER ?= github.com/goreleaser/goreleaser/v2@v2.17.0
release-snapshot:
	bash scripts/cross-cc.sh
	@if [ -z "$$(git remote 2>/dev/null)" ]; then \
		echo "release-snapshot: no git remote; GoReleaser sees origin = https://github.com/mailroom/mailroom.git"; \
		export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/mailroom/mailroom.git; \
	fi; \
	echo $(GO) run $(GORELEASER) release --snapshot --clean; \
	$(GO) run $(GORELEASER) release --snapshot --clean

## bench: the benchmarks of docs/benchmarks.md (Performance on Go channels).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./app/

clean:
	rm -rf bin dist mailroom data

-include mk/*.mk
