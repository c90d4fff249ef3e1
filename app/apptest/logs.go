package apptest

import (
	"context"
	"log/slog"
	"sync"
)

// Logs records what a logger wrote, at every level, so that a test can assert that
// something was logged, and how loudly. It is safe for concurrent use.
type Logs struct {
	mu    sync.Mutex
	lines []LogLine
}

// LogLine is one log record: level, message and attributes (values as text).
type LogLine struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// NewLogs returns a logger that records every record, debug included, into the
// returned Logs.
func NewLogs() (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(logsHandler{logs: l}), l
}

// Lines returns what was logged so far, oldest first.
func (l *Logs) Lines() []LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogLine(nil), l.lines...)
}

// With returns the lines whose message is msg.
func (l *Logs) With(msg string) []LogLine {
	var out []LogLine
	for _, line := range l.Lines() {
		if line.Message == msg {
			out = append(out, line)
		}
	}
	return out
}

type logsHandler struct {
	logs  *Logs
	attrs []slog.Attr
}

func (h logsHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h logsHandler) Handle(_ context.Context, r slog.Record) error {
	line := LogLine{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		line.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		line.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	h.logs.lines = append(h.logs.lines, line)
	return nil
}

func (h logsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logsHandler{logs: h.logs, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup is not needed by Mailroom's loggers: attributes keep their plain keys.
func (h logsHandler) WithGroup(string) slog.Handler { return h }
