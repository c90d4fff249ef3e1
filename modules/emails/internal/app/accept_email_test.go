package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
)

// TestHashDraftMatchesWhereNormalizationChangesNothing: Idempotency-Keys stored
// before the hash normalized drafts must still match their requests, so a draft
// without empty lists or maps and without a zoned send_at hashes as it did then
// (the plain JSON of the draft).
func TestHashDraftMatchesWhereNormalizationChangesNothing(t *testing.T) {
	before := func(d domain.Draft) string {
		b, _ := json.Marshal(d)
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	for _, d := range []domain.Draft{
		{To: []string{"a@example.com"}, Subject: "s", Text: "t"},
		{From: "Team <team@example.com>", To: []string{"a@example.com"}, Cc: []string{"b@example.com"},
			Bcc: []string{"c@example.com"}, ReplyTo: "help@example.com", Subject: "안녕", Text: "t", HTML: "<p>h</p>",
			Tags: []string{"welcome"}, Metadata: map[string]string{"user_id": "42"}, SendAt: "2026-12-01T09:00:00Z"},
		{To: []string{"a@example.com"}, Subject: "s", Text: "t", SendAt: "2026-12-01T09:00:00.500Z"},
		{To: []string{"a@example.com"}, Subject: "s", Text: "t", SendAt: "tomorrow"},
	} {
		if got, want := hashDraft(d), before(d); got != want {
			t.Errorf("%+v hashes %s, before normalization %s", d, got, want)
		}
	}
}

func TestHashDraftIsTheSameForTheSameEmailWrittenDifferently(t *testing.T) {
	base := domain.Draft{To: []string{"a@example.com"}, Subject: "s", Text: "t", SendAt: "2026-12-01T09:00:00Z"}
	same := []func(d *domain.Draft){
		func(d *domain.Draft) { d.Cc = []string{} },
		func(d *domain.Draft) { d.Bcc = []string{} },
		func(d *domain.Draft) { d.Tags = []string{} },
		func(d *domain.Draft) { d.Metadata = map[string]string{} },
		func(d *domain.Draft) { d.SendAt = "2026-12-01T18:00:00+09:00" },
		func(d *domain.Draft) { d.SendAt = "2026-12-01T09:00:00+00:00" },
		func(d *domain.Draft) { d.SendAt = "2026-12-01t09:00:00z" },
		func(d *domain.Draft) { d.SendAt = "2026-12-01T04:00:00.000-05:00" },
	}
	want := hashDraft(base)
	for i, change := range same {
		d := base
		change(&d)
		if got := hashDraft(d); got != want {
			t.Errorf("variant %d %+v hashes %s, want %s as %+v", i, d, got, want, base)
		}
	}
	for i, change := range []func(d *domain.Draft){
		func(d *domain.Draft) { d.Cc = []string{"b@example.com"} },
		func(d *domain.Draft) { d.SendAt = "2026-12-01T09:00:00+09:00" },
		func(d *domain.Draft) { d.SendAt = "" },
	} {
		d := base
		change(&d)
		if hashDraft(d) == want {
			t.Errorf("different email %d %+v hashes as %+v", i, d, base)
		}
	}
}
