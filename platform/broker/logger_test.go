package broker_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/logging"
)

func TestWatermillsInternalsAreTraceItsInfoDebugAndItsErrorsError(t *testing.T) {
	var buf bytes.Buffer
	wlog := broker.Logger(logging.New(&buf, "trace", "text")).With(watermill.LogFields{"router": "r1"})
	wlog.Error("Handler returned error", errors.New("boom"), watermill.LogFields{"handler_name": "h"})
	wlog.Info("Running router handlers", watermill.LogFields{"count": 3})
	wlog.Info("Adding handler", watermill.LogFields{"handler_name": "h", "topic": "t"})
	wlog.Info("Starting handler", nil)
	wlog.Debug("Waiting for subscribers ack", nil)
	wlog.Trace("Message acked", watermill.LogFields{"message_uuid": "u", "b": 1, "a": 2})

	want := []string{
		`level=ERROR msg="Handler returned error" router=r1 handler_name=h error=boom`,
		`level=DEBUG msg="Running router handlers" router=r1 count=3`,
		`level=TRACE msg="Adding handler" router=r1 handler_name=h topic=t`,
		`level=TRACE msg="Starting handler" router=r1`,
		`level=TRACE msg="Waiting for subscribers ack" router=r1`,
		`level=TRACE msg="Message acked" router=r1 a=2 b=1 message_uuid=u`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("wrote %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if _, rest, _ := strings.Cut(lines[i], " "); rest != w { // drop time=...
			t.Errorf("line %d:\n  %s\nwant\n  %s", i, rest, w)
		}
	}

	buf.Reset()
	wlog = broker.Logger(logging.New(&buf, "debug", "text"))
	wlog.Info("Adding handler", nil)
	wlog.Debug("Subscribing to topic", nil)
	wlog.Trace("Received message", nil)
	if buf.Len() != 0 {
		t.Errorf("at debug level Watermill's internals wrote:\n%s", buf.String())
	}
}
