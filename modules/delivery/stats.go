package delivery

import (
	"context"
	"time"
)

// The states of the mail server GET /api/stats reports ("smtp": mailServer.State).
const (
	// serverUp means sends go through: the server answered as configured, or has
	// not failed yet (the capture transport is always up).
	serverUp = "up"
	// serverPaused means every send waits: the server could not be reached
	// (cause "outage") or refuses Mailroom's settings (cause "configuration"), and
	// is probed until it answers.
	serverPaused = "paused"
)

// Stats implements the app's statsReporter, for GET /api/stats: its part "smtp" is
// the mail server's state as delivery sees it (whether sends go through, and if
// not why and since when). It never fails: the state is in memory.
func (m *Module) Stats(_ context.Context, report func(part string, value any, err error)) {
	report("smtp", m.mailServer(), nil)
}

// mailServer is the "smtp" part of GET /api/stats (web/openapi.yaml, StatsSMTP).
type mailServer struct {
	// Transport is delivery.transport: "smtp", or "capture" (nothing is sent).
	Transport string `json:"transport"`
	// State is serverUp or serverPaused.
	State string `json:"state"`
	// Cause is "outage" or "configuration" while paused, else "".
	Cause string `json:"cause"`
	// Key is the configuration key to fix when Cause is "configuration", else "".
	Key string `json:"key"`
	// Reason is the failure that paused delivery (the latest probe's), else "".
	Reason string `json:"reason"`
	// Since is when delivery paused; nil while up.
	Since *time.Time `json:"since"`
}

func (m *Module) mailServer() mailServer {
	st := m.app.Gate.State()
	s := mailServer{Transport: m.cfg.Transport, State: serverUp}
	if st.Open {
		return s
	}
	since := st.Since.UTC()
	s.State, s.Cause, s.Key, s.Reason, s.Since = serverPaused, st.Kind, st.Key, st.Reason, &since
	return s
}
