// Package cputime reads the CPU time a process has used, for benchmarks that report
// CPU per operation beside their rates: on a machine shared with other work it moves
// less than a rate does.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is the user and system CPU time this process has used so far.
func Process(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
