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

// TestTheREADMEConfigTableListsEveryKey holds the README's configuration table to
// the keys config.Defaults knows: each key has a row (keys that pair up share one,
// "smtp.host / smtp.port"), with its environment variable, and the table names no
// key that does not exist.
func TestTheREADMEConfigTableListsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| key | env | default |\n|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no configuration table (| key | env | default |)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	rows := map[string]string{} // key -> its row's env cell
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			t.Fatalf("configuration table row %q has no key, env and default", line)
		}
		for _, key := range strings.Split(strings.TrimPrefix(cells[0], "| "), " / ") {
			rows[key] = cells[1]
		}
	}
	for key := range config.Defaults() {
		env, ok := rows[key]
		if !ok {
			t.Errorf("the README's configuration table has no row for %s", key)
			continue
		}
		if want := "MAILROOM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")); !strings.Contains(env, want) {
			t.Errorf("the README's row of %s names %q, not %s", key, env, want)
		}
	}
	for key := range rows {
		if _, ok := config.Defaults()[key]; !ok {
			t.Errorf("the README's configuration table has a row for %s, which is no key", key)
		}
	}
}
