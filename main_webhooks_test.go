package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

type listedWebhook struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	Description    string   `json:"description"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabled_reason"`
	Secret         string   `json:"secret"`
}

func TestWebhooksCreateListDisableEnableRotateAndDelete(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	if code, _, errs := mailroom(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}
	code, out, errs := mailroom(t, "webhooks", "create", "--db", db, "--url", "https://hooks.example.com/mailroom",
		"--events", "email.delivered,email.bounced", "--description", "crm")
	var created listedWebhook
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("webhooks create: exit %d, stdout %q, stderr %q; want the endpoint with its secret", code, out, errs)
	}
	if !strings.Contains(errs, "shown only this once") {
		t.Errorf("webhooks create stderr %q: want advice to keep the secret", errs)
	}

	list := func() []listedWebhook {
		t.Helper()
		code, out, errs := mailroom(t, "webhooks", "list", "--db", db)
		var ls []listedWebhook
		if code != 0 || json.Unmarshal([]byte(out), &ls) != nil {
			t.Fatalf("webhooks list: exit %d, %q %q", code, out, errs)
		}
		if strings.Contains(out, "whsec_") {
			t.Errorf("webhooks list shows a secret:\n%s", out)
		}
		return ls
	}
	if ls := list(); len(ls) != 1 || ls[0].ID != created.ID || len(ls[0].Events) != 2 || ls[0].Description != "crm" || !ls[0].Enabled {
		t.Fatalf("webhooks list = %+v", ls)
	}
	if code, out, _ := mailroom(t, "webhooks", "disable", "--db", db, created.ID); code != 0 || !strings.Contains(out, "disabled") {
		t.Errorf("disable: exit %d %q", code, out)
	}
	if ls := list(); ls[0].Enabled || ls[0].DisabledReason == "" {
		t.Errorf("after disable: %+v", ls[0])
	}
	if code, _, _ := mailroom(t, "webhooks", "enable", "--db", db, created.ID); code != 0 {
		t.Errorf("enable: exit %d", code)
	}
	if ls := list(); !ls[0].Enabled || ls[0].DisabledReason != "" {
		t.Errorf("after enable: %+v", ls[0])
	}
	code, out, _ = mailroom(t, "webhooks", "rotate-secret", "--db", db, created.ID)
	if secret := strings.TrimSpace(out); code != 0 || !strings.HasPrefix(secret, "whsec_") || secret == created.Secret {
		t.Errorf("rotate-secret: exit %d %q; want a new secret alone on stdout", code, out)
	}
	if code, _, _ := mailroom(t, "webhooks", "delete", "--db", db, created.ID); code != 0 {
		t.Errorf("delete: exit %d", code)
	}
	if ls := list(); len(ls) != 0 {
		t.Errorf("after delete: %+v", ls)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown event type", []string{"webhooks", "create", "--db", db, "--url", "https://x.example.com/", "--events", "email.delivered,nope"}, "events[1]"},
		{"no events", []string{"webhooks", "create", "--db", db, "--url", "https://x.example.com/"}, "events"},
		{"a loopback url", []string{"webhooks", "create", "--db", db, "--url", "http://127.0.0.1/", "--events", "email.sent"}, "url"},
		{"delete of an unknown id", []string{"webhooks", "delete", "--db", db, "nope"}, "not found"},
		{"enable without an id", []string{"webhooks", "enable", "--db", db}, "usage"},
		{"an unknown subcommand", []string{"webhooks", "rotate", "--db", db}, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := mailroom(t, tc.args...)
			if code == 0 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure naming %q", code, errs, tc.want)
			}
		})
	}
}
