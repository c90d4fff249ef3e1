package delivery_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
)

func TestAdminsManageTheSuppressionListOverHTTP(t *testing.T) {
	in, _ := start(t, nil)
	add := func(body any) apptest.Response { return in.Do(t, http.MethodPost, "/api/suppressions", body) }
	list := func(query string) (int, []suppression, string) {
		r := in.Do(t, http.MethodGet, "/api/suppressions"+query, nil)
		var page struct {
			Items      []suppression
			NextCursor string `json:"next_cursor"`
		}
		if r.Status == http.StatusOK {
			r.JSON(t, &page)
		}
		return r.Status, page.Items, page.NextCursor
	}

	r := add(map[string]string{"address": "Bob@Example.COM", "reason": "complained"})
	var s suppression
	r.JSON(t, &s)
	if r.Status != http.StatusCreated || s.Address != "bob@example.com" || s.Reason != "complained" || s.Source != "operator" {
		t.Fatalf("POST: %d %+v; want 201 with the address lower-cased and the reason", r.Status, s)
	}
	if r := add(map[string]string{"address": "bob@example.com", "reason": "again"}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "complained") {
		t.Errorf("adding it again: %d %s; want 200 with the first entry", r.Status, r.Body)
	}
	for i := range 3 {
		add(map[string]string{"address": fmt.Sprintf("user%d@example.org", i)})
	}
	if st, items, next := list("?limit=2"); st != http.StatusOK || len(items) != 2 || items[0].Address != "user2@example.org" || next == "" {
		t.Errorf("first page: %d %+v next %q; want the 2 newest and a cursor", st, items, next)
	} else if _, rest, next2 := list("?limit=2&cursor=" + next); len(rest) != 2 || next2 != "" {
		t.Errorf("second page %+v next %q; want the 2 oldest and no cursor", rest, next2)
	}
	if _, items, _ := list("?address=EXAMPLE.org"); len(items) != 3 {
		t.Errorf("filter by address: %+v, want the 3 at example.org", items)
	}

	for _, tt := range []struct {
		name, field string
		r           apptest.Response
	}{
		{"an address with a display name", "address", add(map[string]string{"address": "Bob <bob@example.com>"})},
		{"no address", "address", add(map[string]string{"reason": "x"})},
		{"a reason on two lines", "reason", add(map[string]string{"address": "x@example.com", "reason": "a\nb"})},
		{"an unknown query parameter", "email", in.Do(t, http.MethodGet, "/api/suppressions?email=x", nil)},
		{"a cursor that is no cursor", "cursor", in.Do(t, http.MethodGet, "/api/suppressions?cursor=abc", nil)},
	} {
		if !strings.Contains(string(tt.r.Body), `"field":"`+tt.field+`"`) || tt.r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s; want 400 naming %s", tt.name, tt.r.Status, tt.r.Body, tt.field)
		}
	}

	if r := in.Do(t, http.MethodDelete, "/api/suppressions/BOB@example.com", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/bob@example.com", nil); r.Status != http.StatusNotFound {
		t.Errorf("DELETE of an address not suppressed: %d %s, want 404", r.Status, r.Body)
	}

	// The console writes the address with encodeURIComponent: @ as %40, + as %2B.
	add(map[string]string{"address": "carol+news@example.com"})
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/carol%2Bnews%40example.com", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE of a percent-encoded address: %d %s, want 204", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/carol%2Bnews%40example.com", nil); r.Status != http.StatusNotFound {
		t.Errorf("DELETE of a percent-encoded address removed already: %d %s, want 404", r.Status, r.Body)
	}
}

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
