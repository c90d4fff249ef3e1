package broker

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/mailroom/mailroom/platform/logging"
)

// Logger returns the logger Watermill's router and pub/subs (and Mailroom's
// broker code beside them) log through, writing to log at levels that keep
// Mailroom's debug level for what a person follows (an email's SMTP conversation,
// its tries) rather than Watermill's internals:
//
//   - Watermill's Error stays at error.
//   - Watermill's Info is debug: the router running and closing, a consumer
//     reconnecting, a message published to a topic nobody subscribes to.
//   - Watermill's Info lines said once per handler or subscription as it starts
//     or stops ("Adding handler", "Starting handler", "Subscriber stopped",
//     "Subscribing to Kafka topic", "Starting consuming", "Consuming done": about
//     three dozen lines at every start and stop, see routineInfo) are logging.LevelTrace.
//   - Watermill's Debug and Trace (a message received, acknowledged, sent to a
//     subscriber; a claim's offsets) are logging.LevelTrace.
//
// So log.level debug shows none of Watermill's chatter, and log.level trace shows
// all of it.
func Logger(log *slog.Logger) watermill.LoggerAdapter {
	return watermillLogger{log: log}
}

// routineInfo lists the messages Watermill (v1.5, watermill-kafka v3) logs at Info
// once per handler or subscription as it starts or stops: a process with 16
// delivery lanes says each of them dozens of times, and none says anything went
// wrong.
var routineInfo = map[string]bool{
	"Adding handler":             true,
	"Starting handler":           true,
	"Subscriber stopped":         true,
	"Subscribing to Kafka topic": true,
	"Starting consuming":         true,
	"Consuming done":             true,
}

// watermillLogger is the watermill.LoggerAdapter Logger returns.
type watermillLogger struct{ log *slog.Logger }

func (w watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.write(slog.LevelError, msg, fields, slog.Any("error", err))
}

func (w watermillLogger) Info(msg string, fields watermill.LogFields) {
	level := slog.LevelDebug
	if routineInfo[msg] {
		level = logging.LevelTrace
	}
	w.write(level, msg, fields)
}

func (w watermillLogger) Debug(msg string, fields watermill.LogFields) {
	w.write(logging.LevelTrace, msg, fields)
}

func (w watermillLogger) Trace(msg string, fields watermill.LogFields) {
	w.write(logging.LevelTrace, msg, fields)
}

func (w watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return watermillLogger{log: w.log.With(fieldArgs(fields)...)}
}

// write logs msg with fields, sorted by key, and extra at level, doing nothing
// when level is not written.
func (w watermillLogger) write(level slog.Level, msg string, fields watermill.LogFields, extra ...slog.Attr) {
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return
	}
	args := fieldArgs(fields)
	for _, a := range extra {
		args = append(args, a)
	}
	w.log.Log(ctx, level, msg, args...)
}

// fieldArgs turns Watermill's fields into slog attributes, sorted by key so a
// line reads the same every time.
func fieldArgs(fields watermill.LogFields) []any {
	args := make([]any, 0, len(fields)+1)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, slog.Any(k, fields[k]))
	}
	return args
}
