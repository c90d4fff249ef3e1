package emails_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// batchItems is the answer to POST /api/emails/batch.
type batchItems struct {
	Items []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"items"`
}

// batchOf returns n valid emails, the i-th to ri@example.com with subject "Batch i".
func batchOf(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = body(map[string]any{"to": []string{fmt.Sprintf("r%d@example.com", i)}, "subject": fmt.Sprintf("Batch %d", i)})
	}
	return out
}

// storedEmails is how many emails the list shows (up to 100).
func storedEmails(t *testing.T, in *apptest.Instance) int {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/emails?limit=100", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/emails: %d %s", r.Status, r.Body)
	}
	var list struct{ Items []struct{ ID string } }
	r.JSON(t, &list)
	return len(list.Items)
}

func startWithBody(t *testing.T, maxBody int64, srv *smtptest.Server) *apptest.Instance {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.HTTP.MaxBodyBytes = maxBody
	if srv != nil {
		apptest.UseSMTP(cfg, srv)
	}
	return apptest.Start(t, cfg)
}

func TestABatchOfAHundredIsAcceptedInOrderAndEveryEmailDelivered(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	in := startWithBody(t, 1<<20, srv)
	r := in.Do(t, http.MethodPost, "/api/emails/batch", batchOf(100))
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST /api/emails/batch: %d %s", r.Status, r.Body)
	}
	var got batchItems
	r.JSON(t, &got)
	if len(got.Items) != 100 {
		t.Fatalf("%d items answered, want 100", len(got.Items))
	}
	srv.WaitForCount(t, 100, wait)
	ids := map[string]bool{}
	for i, it := range got.Items {
		if it.Status != "queued" || ids[it.ID] {
			t.Errorf("item %d: %+v (a repeated id, or not queued)", i, it)
		}
		ids[it.ID] = true
		e := in.WaitForStatus(t, it.ID, "sent", wait)
		if want := fmt.Sprintf("Batch %d", i); e.Subject != want {
			t.Errorf("item %d is the email %q, want %q: the answer is not in the request's order", i, e.Subject, want)
		}
		if n := len(srv.MessagesTo(fmt.Sprintf("r%d@example.com", i))); n != 1 {
			t.Errorf("r%d@example.com got %d messages, want 1", i, n)
		}
	}
}

func TestABatchThatIsEmptyOrOverAHundredIsRefusedWhole(t *testing.T) {
	t.Parallel()
	in := startWithBody(t, 1<<20, nil)
	for _, tc := range []struct {
		name string
		body any
	}{
		{"101 emails", batchOf(101)},
		{"an empty array", []map[string]any{}},
	} {
		r := in.Do(t, http.MethodPost, "/api/emails/batch", tc.body)
		b := decodeError(t, r)
		if r.Status != http.StatusBadRequest || b.Error.Code != "invalid_field" || field(b) != "" {
			t.Errorf("%s: %d %s, want 400 invalid_field naming no one field", tc.name, r.Status, r.Body)
		}
	}
	r := in.Do(t, http.MethodPost, "/api/emails/batch", body(nil))
	if b := decodeError(t, r); r.Status != http.StatusBadRequest || b.Error.Code != "invalid_json" {
		t.Errorf("one object instead of an array: %d %s, want 400 invalid_json", r.Status, r.Body)
	}
	if n := storedEmails(t, in); n != 0 {
		t.Errorf("%d emails stored by refused batches", n)
	}
}

func TestOneBadItemRefusesTheWholeBatchNamingItsField(t *testing.T) {
	t.Parallel()
	in := startWithBody(t, 1<<20, nil)
	for _, tc := range []struct {
		name  string
		bad   map[string]any
		field string
		code  string
	}{
		{"a bad address", body(map[string]any{"to": []string{"not-an-address"}}), "[3].to[0]", "invalid_field"},
		{"a missing subject", body(map[string]any{"subject": nil}), "[3].subject", "invalid_field"},
		{"a number for a subject", body(map[string]any{"subject": 7}), "[3].subject", "invalid_field"},
		{"an unknown field", body(map[string]any{"sender": "x@example.com"}), "[3].sender", "invalid_field"},
		{"a reserved header", body(map[string]any{"headers": map[string]string{"Bcc": "x@example.com"}}), "[3].headers.Bcc", "invalid_field"},
	} {
		batch := batchOf(5)
		batch[3] = tc.bad
		r := in.Do(t, http.MethodPost, "/api/emails/batch", batch)
		b := decodeError(t, r)
		if r.Status != http.StatusBadRequest || b.Error.Code != tc.code || field(b) != tc.field {
			t.Errorf("%s: %d %s, want 400 %s naming %s", tc.name, r.Status, r.Body, tc.code, tc.field)
		}
	}
	if n := storedEmails(t, in); n != 0 {
		t.Errorf("%d emails stored though every batch had a bad item", n)
	}
}

func TestAnIdempotencyKeyOnABatchReplaysItsItemsAndRefusesAnotherBody(t *testing.T) {
	t.Parallel()
	in := startWithBody(t, 1<<20, nil)
	key := []string{"Idempotency-Key", "batch-1"}
	first := in.Do(t, http.MethodPost, "/api/emails/batch", batchOf(3), key...)
	if first.Status != http.StatusAccepted || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first batch: %d %s (replayed %q)", first.Status, first.Body, first.Header.Get("Idempotent-Replayed"))
	}
	again := in.Do(t, http.MethodPost, "/api/emails/batch", batchOf(3), key...)
	if again.Status != http.StatusAccepted || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the same batch again: %d %s (Idempotent-Replayed %q)", again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
	}
	var a, b batchItems
	first.JSON(t, &a)
	again.JSON(t, &b)
	if !slices.Equal(itemIDs(a), itemIDs(b)) || len(a.Items) != 3 {
		t.Errorf("replayed items %v, first answer %v", itemIDs(b), itemIDs(a))
	}
	if n := storedEmails(t, in); n != 3 {
		t.Errorf("%d emails stored, want the first batch's 3 only", n)
	}
	other := batchOf(3)
	other[2]["subject"] = "Another"
	for _, tc := range []struct {
		name string
		path string
		body any
	}{
		{"another batch", "/api/emails/batch", other},
		{"one email", "/api/emails", batchOf(1)[0]},
	} {
		r := in.Do(t, http.MethodPost, tc.path, tc.body, key...)
		if e := decodeError(t, r); r.Status != http.StatusConflict || field(e) != "Idempotency-Key" {
			t.Errorf("%s with the batch's key: %d %s, want 409 naming Idempotency-Key", tc.name, r.Status, r.Body)
		}
	}
	if n := storedEmails(t, in); n != 3 {
		t.Errorf("%d emails stored after the conflicts, want 3", n)
	}
}

func TestABatchOverTheKeysQuotaIsRefusedWhole(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.Auth.QuotaEmailsPerDay = 4
	in := apptest.Start(t, cfg)
	r := in.Do(t, http.MethodPost, "/api/keys", map[string]string{"name": "batch", "scope": "send"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/keys: %d %s", r.Status, r.Body)
	}
	var key struct{ Key string }
	r.JSON(t, &key)
	auth := apptest.Bearer(key.Key)
	if r := in.Do(t, http.MethodPost, "/api/emails/batch", batchOf(5), auth...); r.Status != http.StatusTooManyRequests || decodeError(t, r).Error.Code != "quota_exceeded" {
		t.Fatalf("5 emails against a quota of 4: %d %s, want 429 quota_exceeded", r.Status, r.Body)
	}
	if n := storedEmails(t, in); n != 0 {
		t.Fatalf("%d emails of the refused batch stored", n)
	}
	if r := in.Do(t, http.MethodPost, "/api/emails/batch", batchOf(4), auth...); r.Status != http.StatusAccepted {
		t.Errorf("4 emails, the whole quota, after the refused batch: %d %s; the refused one counted", r.Status, r.Body)
	}
}

func itemIDs(b batchItems) []string {
	out := make([]string, len(b.Items))
	for i, it := range b.Items {
		out[i] = it.ID
	}
	return out
}
