package logging_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/platform/logging"
)

func TestLogLevelTraceWritesTraceLinesAndDebugDoesNot(t *testing.T) {
	for _, tc := range []struct {
		level string
		trace bool
	}{{"trace", true}, {"TRACE", true}, {"debug", false}, {"info", false}} {
		var buf bytes.Buffer
		log := logging.New(&buf, tc.level, "text")
		log.Log(context.Background(), logging.LevelTrace, "internals")
		log.Debug("a step")
		got := buf.String()
		if wrote := strings.Contains(got, "msg=internals"); wrote != tc.trace {
			t.Errorf("log.level %s: a trace line written: %v, want %v:\n%s", tc.level, wrote, tc.trace, got)
		}
		if tc.trace && !strings.Contains(got, "level=TRACE msg=internals") {
			t.Errorf("log.level %s: the trace line does not say TRACE:\n%s", tc.level, got)
		}
		if wrote := strings.Contains(got, `msg="a step"`); wrote != (tc.level != "info") {
			t.Errorf("log.level %s: a debug line written: %v:\n%s", tc.level, wrote, got)
		}
	}
}

func TestAnUnknownLevelIsInfo(t *testing.T) {
	if got := logging.ParseLevel("loud"); got != slog.LevelInfo {
		t.Errorf("ParseLevel(loud) = %v, want info", got)
	}
	if got := logging.ParseLevel("Warn"); got != slog.LevelWarn {
		t.Errorf("ParseLevel(Warn) = %v, want warn", got)
	}
}

func TestAttributesPutInAContextReachTheLoggerOfTheCodeItIsPassedTo(t *testing.T) {
	var buf bytes.Buffer
	base := logging.New(&buf, "debug", "text").With("component", "smtp")
	if got := logging.FromContext(context.Background(), base); got != base {
		t.Errorf("a context carrying nothing changed the logger")
	}
	ctx := logging.ContextWith(context.Background(), logging.KeyEmailID, "e-1")
	ctx = logging.ContextWith(ctx, "attempt", 2)
	sibling := logging.ContextWith(ctx, "attempt", 3) // must not change ctx's attributes
	logging.FromContext(ctx, base).Debug("smtp connected")
	logging.FromContext(sibling, base).Debug("smtp connected")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "component=smtp email_id=e-1 attempt=2") ||
		!strings.HasSuffix(lines[1], "component=smtp email_id=e-1 attempt=2 attempt=3") {
		t.Errorf("wrote:\n%s", buf.String())
	}
}
