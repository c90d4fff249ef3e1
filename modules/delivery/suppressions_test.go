package delivery_test

import (
	"net/http"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
)

func TestARemovedSuppressionIsSentToAgain(t *testing.T) {
	in, srv := start(t, nil)
	const to = "back@example.com"
	in.Do(t, http.MethodPost, "/api/suppressions", map[string]string{"address": to})
	first := in.Send(t, apptest.NewEmail(to))
	in.WaitForStatus(t, first, "dead", wait)
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/"+to, nil); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	second := in.Send(t, apptest.NewEmail(to))
	in.WaitForStatus(t, second, "sent", wait)
	if n := len(srv.MessagesTo(to)); n != 1 {
		t.Errorf("%d copies, want 1: the second email only", n)
	}
}
