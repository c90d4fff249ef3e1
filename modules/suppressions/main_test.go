package suppressions_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// wait bounds every wait on the app in these tests.
const wait = 20 * time.Second

// start runs the whole app (role all, Go channels) sending to an in-process SMTP
// server, with change applied to its config.
func start(t *testing.T, change func(*config.Config)) (*apptest.Instance, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	if change != nil {
		change(cfg)
	}
	return apptest.Start(t, cfg), srv
}

// suppression is one item of GET /api/suppressions.
type suppression struct {
	Address   string    `json:"address"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	EmailID   string    `json:"email_id"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// listed is every suppression GET /api/suppressions lists whose address contains
// text, newest first.
func listed(t *testing.T, in *apptest.Instance, text string) []suppression {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/suppressions?limit=500&address="+text, nil)
	var page struct{ Items []suppression }
	r.JSON(t, &page)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/suppressions: %d %s", r.Status, r.Body)
	}
	return page.Items
}

// recipientStatus is the status of the email's one recipient once the email is
// final (sent or dead).
func recipientStatus(t *testing.T, in *apptest.Instance, id string) string {
	t.Helper()
	var status string
	apptest.Eventually(t, wait, func() bool {
		r := in.Do(t, http.MethodGet, "/api/emails/"+id, nil)
		var e struct {
			Status     string
			Recipients []struct{ Status string }
		}
		r.JSON(t, &e)
		if (e.Status == "sent" || e.Status == "dead") && len(e.Recipients) == 1 {
			status = e.Recipients[0].Status
			return true
		}
		return false
	}, func() string { return "email " + id + " never became final" })
	return status
}
