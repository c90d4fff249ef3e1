package emails_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
)

// searchPage is a page of the list with its total, and whether "total" was there.
type searchPage struct {
	ids        []string
	nextCursor string
	total      *int
}

func search(t *testing.T, in *apptest.Instance, q url.Values, headers ...string) searchPage {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/emails?"+q.Encode(), nil, headers...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/emails?%s: %d %s", q.Encode(), r.Status, r.Body)
	}
	var p struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
		Total      *int   `json:"total"`
	}
	r.JSON(t, &p)
	out := searchPage{nextCursor: p.NextCursor, total: p.Total}
	for _, it := range p.Items {
		out.ids = append(out.ids, it.ID)
	}
	return out
}

// TestTheListSearchesByRecipientSubjectTagStatusAndTime is the table of the list's
// filters, each alone and combined, over emails that differ in one way each.
func TestTheListSearchesByRecipientSubjectTagStatusAndTime(t *testing.T) {
	in := start(t)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	emails := []map[string]any{
		0: body(map[string]any{"to": []string{"Ann <ann@Example.COM>"}, "subject": "Invoice 100% paid", "tags": []string{"billing"}}),
		1: body(map[string]any{"to": []string{"b@example.com"}, "cc": []string{"Carl@EXAMPLE.org"}, "subject": "invoice_2024", "tags": []string{"billing"}}),
		2: body(map[string]any{"to": []string{"d@example.com"}, "bcc": []string{"carl@example.org"}, "subject": "Welcome", "tags": []string{"welcome"}}),
		3: body(map[string]any{"to": []string{"e@example.com"}, "subject": "Invoice 1000 paid", "send_at": later}),
		4: body(map[string]any{"to": []string{"Carl@example.org"}, "subject": "Weekly"}),
	}
	ids := make([]string, len(emails))
	created := make([]time.Time, len(emails))
	for i, e := range emails {
		ids[i] = in.Send(t, e)
		var got struct {
			CreatedAt time.Time `json:"created_at"`
		}
		in.Do(t, http.MethodGet, "/api/emails/"+ids[i], nil).JSON(t, &got)
		created[i] = got.CreatedAt
	}
	// pick lists the emails at idx newest first, as the list does.
	pick := func(idx ...int) []string {
		var out []string
		for i := len(ids) - 1; i >= 0; i-- {
			if slices.Contains(idx, i) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	// createdIn lists the emails created in [from, to), zero for open.
	createdIn := func(from, to time.Time) []string {
		var idx []int
		for i, c := range created {
			if !c.Before(from) && (to.IsZero() || c.Before(to)) {
				idx = append(idx, i)
			}
		}
		return pick(idx...)
	}
	stamp := func(t time.Time) string { return t.Format(time.RFC3339Nano) }

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"a recipient in to, its domain in another case", url.Values{"recipient": {"ann@example.com"}}, pick(0)},
		{"a recipient in cc and in to, written with the domain upper-cased", url.Values{"recipient": {"Carl@EXAMPLE.ORG"}}, pick(1, 4)},
		{"a recipient in bcc; the local part is compared as written", url.Values{"recipient": {"carl@Example.org"}}, pick(2)},
		{"a recipient with a display name", url.Values{"recipient": {"Carl <Carl@example.org>"}}, pick(1, 4)},
		{"a recipient nobody has", url.Values{"recipient": {"nobody@example.com"}}, nil},
		{"a subject in another case", url.Values{"subject": {"INVOICE"}}, pick(0, 1, 3)},
		{"a subject with % matches a % only", url.Values{"subject": {"100%"}}, pick(0)},
		{"a subject with _ matches an _ only", url.Values{"subject": {"invoice_"}}, pick(1)},
		{"a subject with a backslash matches a backslash only", url.Values{"subject": {`\`}}, nil},
		{"a tag", url.Values{"tag": {"billing"}}, pick(0, 1)},
		{"a status", url.Values{"status": {"scheduled"}}, pick(3)},
		{"tag and subject", url.Values{"tag": {"billing"}, "subject": {"paid"}}, pick(0)},
		{"status and subject", url.Values{"status": {"scheduled"}, "subject": {"invoice"}}, pick(3)},
		{"recipient and tag", url.Values{"recipient": {"Carl@example.org"}, "tag": {"billing"}}, pick(1)},
		{"created_after includes its own instant", url.Values{"created_after": {stamp(created[3])}}, createdIn(created[3], time.Time{})},
		{"created_before excludes its own instant", url.Values{"created_before": {stamp(created[1])}}, createdIn(time.Time{}, created[1])},
		{"a range", url.Values{"created_after": {stamp(created[1])}, "created_before": {stamp(created[3])}}, createdIn(created[1], created[3])},
		{"an empty range", url.Values{"created_after": {stamp(created[2])}, "created_before": {stamp(created[2])}}, nil},
		{"a range, a subject and a recipient", url.Values{"created_after": {stamp(created[1])}, "subject": {"w"},
			"recipient": {"Carl@example.org"}}, pick(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.query.Set("include_total", "true")
			p := search(t, in, tt.query)
			if !slices.Equal(p.ids, tt.want) || p.nextCursor != "" {
				t.Fatalf("?%s listed %v (next %q), want %v", tt.query.Encode(), p.ids, p.nextCursor, tt.want)
			}
			if p.total == nil || *p.total != len(tt.want) {
				t.Errorf("?%s: total %v, want %d", tt.query.Encode(), p.total, len(tt.want))
			}
		})
	}

	t.Run("the total counts every match on every page, and only when asked", func(t *testing.T) {
		q := url.Values{"subject": {"invoice"}, "limit": {"2"}, "include_total": {"true"}}
		first := search(t, in, q)
		q.Set("cursor", first.nextCursor)
		second := search(t, in, q)
		if got := append(first.ids, second.ids...); !slices.Equal(got, pick(0, 1, 3)) || second.nextCursor != "" {
			t.Fatalf("pages %v then %v (next %q), want %v", first.ids, second.ids, second.nextCursor, pick(0, 1, 3))
		}
		for _, p := range []searchPage{first, second} {
			if p.total == nil || *p.total != 3 {
				t.Errorf("a page's total %v, want 3", p.total)
			}
		}
		for _, v := range []string{"", "false"} {
			r := in.Do(t, http.MethodGet, "/api/emails?subject=invoice&include_total="+v, nil)
			var raw map[string]json.RawMessage
			r.JSON(t, &raw)
			if _, ok := raw["total"]; ok {
				t.Errorf("include_total=%q answered a total: %s", v, r.Body)
			}
		}
	})
}

func TestTheListRefusesAFilterThatCannotMatchNamingIt(t *testing.T) {
	in := start(t)
	for _, tt := range []struct{ name, query, field, says string }{
		{"an unknown status", "status=lost", "status", "must be one of scheduled, queued, retrying, sent, dead, cancelled"},
		{"a recipient that is not an address", "recipient=not-an-address", "recipient", "not an email address"},
		{"a subject over 200 characters", "subject=" + strings.Repeat("a", 201), "subject", "longer than 200 characters"},
		{"a created_after that is not a time", "created_after=yesterday", "created_after", "RFC 3339"},
		{"a created_before without its zone", "created_before=2026-12-01T09:00:00", "created_before", "RFC 3339"},
		{"a range that ends before it begins", "created_after=2026-12-02T00:00:00Z&created_before=2026-12-01T00:00:00Z",
			"created_after", "after created_before"},
		{"an include_total that is not a boolean", "include_total=yes", "include_total", "true or false"},
		{"an unknown parameter", "from=a@example.com", "from", "unknown query parameter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodGet, "/api/emails?"+tt.query, nil)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("GET /api/emails?%s: %d %s, want 400", tt.query, r.Status, r.Body)
			}
			b := decodeError(t, r)
			if field(b) != tt.field || !strings.Contains(b.Error.Message, tt.says) {
				t.Errorf("error %s, want one naming %s and saying %q", r.Body, tt.field, tt.says)
			}
		})
	}
	if p := search(t, in, url.Values{"subject": {strings.Repeat("é", 200)}}); len(p.ids) != 0 {
		t.Errorf("a 200-character subject search found %v", p.ids)
	}
}

func TestASendKeySearchesOnlyItsOwnEmails(t *testing.T) {
	in := start(t)
	alice := sendKey(t, in, "alice")
	hers := in.Send(t, body(map[string]any{"to": []string{"x@example.com"}, "subject": "Invoice"}), apptest.Bearer(alice)...)
	admins := in.Send(t, body(map[string]any{"to": []string{"x@example.com"}, "subject": "Invoice"}))

	q := url.Values{"recipient": {"x@example.com"}, "subject": {"invoice"}, "include_total": {"true"}}
	if p := search(t, in, q, apptest.Bearer(alice)...); !slices.Equal(p.ids, []string{hers}) || p.total == nil || *p.total != 1 {
		t.Errorf("alice's search listed %v with total %v, want only %s and a total of 1", p.ids, p.total, hers)
	}
	if p := search(t, in, q); !slices.Equal(p.ids, []string{admins, hers}) || p.total == nil || *p.total != 2 {
		t.Errorf("the admin's search listed %v with total %v, want both and a total of 2", p.ids, p.total)
	}
}
