// Package wait is how tests wait: on a condition with a deadline, never a sleep.
package wait

import (
	"testing"
	"time"
)

// Until polls cond every interval until it holds, or fails the test with what()
// after timeout.
func Until(tb testing.TB, timeout, interval time.Duration, cond func() bool, what func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s: %s", timeout, what())
		}
		<-tick.C
	}
}
