// Package logging builds the process's structured logger and names the attributes
// every module logs an email under (email id, correlation id), so every log line
// about an email can be found. docs/logs.md lists the levels and the lines a person
// should know.
package logging

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// LevelTrace is below slog.LevelDebug: what only a developer of Mailroom's
// plumbing wants, such as Watermill's internals (see broker.Logger). log.level trace
// writes it; debug and above do not.
const LevelTrace = slog.LevelDebug - 4

// New returns a logger writing to w at level ("trace", "debug", "info", "warn",
// "error"; anything else is info) in format "text" or "json". A record at
// LevelTrace shows its level as TRACE.
func New(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(level), ReplaceAttr: nameTrace}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseLevel returns the slog level log.level names: "trace" is LevelTrace, and
// "debug", "info", "warn" and "error" are slog's (in any case); anything else is
// slog.LevelInfo (config validation has refused it already).
func ParseLevel(level string) slog.Level {
	if strings.EqualFold(level, "trace") {
		return LevelTrace
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// nameTrace writes LevelTrace as "TRACE" rather than slog's "DEBUG-4".
func nameTrace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if lv, ok := a.Value.Any().(slog.Level); ok && lv == LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}

// Discard is a logger that writes nothing, for tests that do not look at logs.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Log attribute keys shared by every module.
const (
	KeyEmailID       = "email_id"
	KeyCorrelationID = "correlation_id"
)

// attrsKey is the context key of the attributes ContextWith adds.
type attrsKey struct{}

// ContextWith returns a copy of ctx carrying args (key-value pairs or slog.Attr
// values, as slog.Logger.With takes them) after those ctx carries already. It lets
// a caller name what a call is about (the email a send is for) to code that logs
// through a logger of its own: that code adds them with FromContext. Never put a
// secret or a message body in args.
func ContextWith(ctx context.Context, args ...any) context.Context {
	carried, _ := ctx.Value(attrsKey{}).([]any)
	return context.WithValue(ctx, attrsKey{}, append(slices.Clip(carried), args...))
}

// FromContext returns log with the attributes ctx carries (see ContextWith), or
// log itself when it carries none.
func FromContext(ctx context.Context, log *slog.Logger) *slog.Logger {
	carried, _ := ctx.Value(attrsKey{}).([]any)
	if len(carried) == 0 {
		return log
	}
	return log.With(carried...)
}
