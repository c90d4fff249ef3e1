package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

func TestAQuotaAdmitsUpToItsLimitsAndSaysWhenItResets(t *testing.T) {
	now := time.Date(2026, 3, 4, 23, 59, 30, 0, time.UTC)
	q := domain.Quota{EmailsPerDay: 10, BytesPerDay: 1000}
	for _, tc := range []struct {
		name       string
		quota      domain.Quota
		used       domain.Usage
		size       int64
		refused    bool
		retryAfter time.Duration
	}{
		{name: "the first email of the day", quota: q, size: 100},
		{name: "the last email the count allows", quota: q, used: domain.Usage{Emails: 9, Bytes: 100}, size: 100},
		{name: "one email over the count", quota: q, used: domain.Usage{Emails: 10, Bytes: 100}, size: 1, refused: true, retryAfter: 30 * time.Second},
		{name: "an email filling the bytes exactly", quota: q, used: domain.Usage{Emails: 1, Bytes: 900}, size: 100},
		{name: "an email one byte over the bytes", quota: q, used: domain.Usage{Emails: 1, Bytes: 901}, size: 100, refused: true, retryAfter: 30 * time.Second},
		{name: "an email larger than the whole byte quota", quota: q, size: 1001, refused: true},
		{name: "no limits (zero) admit anything", quota: domain.Quota{}, used: domain.Usage{Emails: 1 << 40, Bytes: 1 << 50}, size: 1 << 30},
		{name: "a zero email quota leaves the byte quota", quota: domain.Quota{BytesPerDay: 10}, used: domain.Usage{Emails: 1 << 40}, size: 11, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.quota.Admit(tc.used, tc.size, now)
			if !tc.refused {
				if err != nil {
					t.Fatalf("Admit = %v, want nil", err)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.CodeQuotaExceeded {
				t.Fatalf("Admit = %v, want quota_exceeded", err)
			}
			if e.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tc.retryAfter)
			}
			if tc.retryAfter > 0 && !strings.Contains(e.Message, "resets at 2026-03-05T00:00:00Z") {
				t.Errorf("message %q does not say the quota resets at midnight UTC", e.Message)
			}
		})
	}
}

func TestAQuotaDayIsTheUTCDay(t *testing.T) {
	seoul := time.FixedZone("KST", 9*3600)
	at := time.Date(2026, 3, 5, 8, 0, 0, 0, seoul) // 2026-03-04 23:00 UTC
	if got := domain.Day(at); got != "2026-03-04" {
		t.Errorf("Day = %s, want 2026-03-04", got)
	}
	if got := domain.QuotaResetAt(at); !got.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("QuotaResetAt = %v, want 2026-03-05 00:00 UTC", got)
	}
}

func TestAnEmailsSizeCountsWhatTheClientChose(t *testing.T) {
	e := domain.Email{From: "a@b.c", To: []string{"d@e.f"}, Cc: []string{"g@h.i"}, Bcc: []string{"j@k.l"}, ReplyTo: "m@n.o",
		Subject: "subj", Text: "text", HTML: "<p>", Tags: []string{"tag"}, Metadata: map[string]string{"k": "vv"}}
	if got, want := e.Size(), int64(5*5+4+4+3+3+3); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
}

func TestAnEmailsSizeCountsItsAttachmentsDecodedAndItsHeaders(t *testing.T) {
	e := domain.Email{From: "a@b.c", To: []string{"d@e.f"}, Subject: "s", Text: "t",
		Attachments: []domain.Attachment{{Filename: "f.pdf", ContentType: "application/pdf", Size: 1000, ContentID: "id"}},
		Headers:     map[string]string{"X-A": "bb"}}
	if got, want := e.Size(), int64(5+5+1+1+(5+15+2+1000)+(3+2)); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
}
