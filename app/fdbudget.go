package app

import (
	"fmt"
	"log/slog"
	"runtime"
	"syscall"

	"github.com/mailroom/mailroom/platform/config"
)

// fdReserve is how many file descriptors the process keeps for everything but HTTP
// connections: three per SQLite connection (the database, its WAL and its shared
// memory; one writer and up to max(4, 2×CPUs) readers), two per send in flight (the
// SMTP connection and a DNS lookup), and 64 for the rest (the lock file, the
// listener, Kafka's connections, the runtime's poller, stdio).
func fdReserve(cfg *config.Config) int {
	return 3*(1+max(4, 2*runtime.NumCPU())) + 2*cfg.Delivery.Concurrency + 64
}

// httpConnectionBudget is http.max_connections, lowered with a warning when the
// process's open-file limit cannot hold that many connections beside fdReserve: a
// client that fills the HTTP side must never leave the database or delivery short
// of a descriptor ("too many open files" dead-lettered every email due in the
// issue that added this). The limit is RLIMIT_NOFILE's soft limit, which the Go
// runtime has already raised to the hard limit at start (Go 1.19 and later). It is
// an error only when the limit cannot even hold the reserve and one connection.
func httpConnectionBudget(cfg *config.Config, log *slog.Logger) (int, error) {
	want := cfg.HTTP.MaxConnections
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return want, nil // no limit the process can see, or none that matters
	}
	room := int(lim.Cur) - fdReserve(cfg)
	if room < 1 {
		return 0, fmt.Errorf("http.max_connections: the process may open only %d files (RLIMIT_NOFILE), and the database and delivery need %d; raise the limit (ulimit -n)", lim.Cur, fdReserve(cfg))
	}
	if want > room {
		log.Warn("http.max_connections lowered to what the open-file limit leaves beside the database and delivery",
			"http.max_connections", want, "lowered_to", room, "rlimit_nofile", lim.Cur, "reserved", fdReserve(cfg))
		return room, nil
	}
	return want, nil
}
