package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusedBeforeOpening runs args with a database path in a fresh directory and
// fails the test unless mailroom exits non-zero with one line on stderr holding each
// of want, nothing on stdout, and no database made: the refusal came before
// anything was opened.
func refusedBeforeOpening(t *testing.T, env []string, args []string, want ...string) {
	t.Helper()
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "mailroom.db")
	code, out, errs := mailroom(t, append(args, "--db", db)...)
	if code == 0 || out != "" {
		t.Errorf("%v: exit %d, stdout %q; want a non-zero exit and nothing on stdout", args, code, out)
	}
	if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
		t.Errorf("%v: stderr %q, want one line", args, errs)
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			t.Errorf("%v: stderr %q does not say %q", args, errs, w)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("%v: refused, but made %v in its directory (%v): it must refuse before opening anything", args, entries, err)
	}
}

// TestARoleThatIsNoneOfAllAPIOrDeliveryIsRefusedNamingIt: a mistyped --modules (or
// MAILROOM_MODULES) is refused in one line that names the value and the roles.
func TestARoleThatIsNoneOfAllAPIOrDeliveryIsRefusedNamingIt(t *testing.T) {
	t.Run("flag", func(t *testing.T) {
		refusedBeforeOpening(t, nil, []string{"serve", "--modules", "foo"},
			`--modules: "foo" is not all, api or delivery`)
	})
	t.Run("flag of migrate", func(t *testing.T) {
		refusedBeforeOpening(t, nil, []string{"migrate", "--modules", "apis"},
			`--modules: "apis" is not all, api or delivery`)
	})
	t.Run("environment", func(t *testing.T) {
		refusedBeforeOpening(t, []string{"MAILROOM_MODULES=worker"}, []string{"serve"},
			`modules: "worker" is not all, api or delivery`, "MAILROOM_MODULES")
	})
}

// TestASplitRoleOnGoChannelsRefusesToStartNamingModulesAndBrokerKind: Go channels
// reach no other process, so only --modules all may run on them; api or delivery on
// gochannel is a configuration error in one line naming --modules and broker.kind.
func TestASplitRoleOnGoChannelsRefusesToStartNamingModulesAndBrokerKind(t *testing.T) {
	for _, role := range []string{"api", "delivery"} {
		t.Run(role, func(t *testing.T) {
			refusedBeforeOpening(t, nil, []string{"serve", "--modules", role, "--broker", "gochannel"},
				"--modules "+role, "broker.kind", "kafka")
		})
	}
	t.Run("by default on gochannel", func(t *testing.T) {
		refusedBeforeOpening(t, []string{"MAILROOM_MODULES=delivery"}, []string{"serve"},
			"--modules delivery", "broker.kind", "MAILROOM_MODULES")
	})
}
