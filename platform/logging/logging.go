// Package logging builds the process's structured logger and names the attributes
// every module logs an email under (email id, correlation id), so every log line
// about an email can be found.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w at level ("debug", "info", "warn", "error") in
// format "text" or "json".
func New(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Discard is a logger that writes nothing, for tests that do not look at logs.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Log attribute keys shared by every module.
const (
	KeyEmailID       = "email_id"
	KeyCorrelationID = "correlation_id"
)
