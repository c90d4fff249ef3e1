package app_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/platform/config"
)

// TestTheREADMEShowsTheDefaultRetrySchedule holds the README's table of the default
// retry schedule to the policy the defaults make, so neither drifts from the other.
func TestTheREADMEShowsTheDefaultRetrySchedule(t *testing.T) {
	cfg, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	var before time.Duration
	for _, try := range app.DeliveryConfig(cfg).Retry.Schedule() {
		wait, after := hoursMinutes(try.After-before), hoursMinutes(try.After)
		if try.Attempt == 1 {
			wait, after = "—", "at once"
		}
		want = append(want, fmt.Sprintf("| %d | %s | %s |", try.Attempt, wait, after))
		before = try.After
	}
	if last := app.DeliveryConfig(cfg).Retry.Schedule(); last[len(last)-1].After < 24*time.Hour {
		t.Errorf("the default schedule ends %v after the first try: a deferred recipient must be retried for a day", last[len(last)-1].After)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "<!-- retry-schedule")
	table, _, ok2 := strings.Cut(table, "<!-- /retry-schedule -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no retry-schedule table between its markers")
	}
	var got []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| try") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's retry schedule:\n%s\nthe defaults give:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// hoursMinutes writes d as the README does: "2h", "1h3m", "16m".
func hoursMinutes(d time.Duration) string {
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dh%dm", h, m)
	}
}
