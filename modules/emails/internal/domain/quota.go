package domain

import (
	"fmt"
	"time"

	"github.com/mailroom/mailroom/platform/apperr"
)

// Quota is how much one API key may send in one UTC day: emails, and bytes of
// stored email (Email.Size). It bounds what a leaked or runaway key can add to the
// database, which the rate limit (requests, not bytes) does not. 0 means no limit.
type Quota struct {
	// EmailsPerDay is auth.quota_emails_per_day.
	EmailsPerDay int64
	// BytesPerDay is auth.quota_bytes_per_day.
	BytesPerDay int64
}

// Usage is what one key sent on one UTC day.
type Usage struct {
	Emails int64
	Bytes  int64
}

// Day is the UTC day now falls in, as a quota counts it ("2006-01-02").
func Day(now time.Time) string { return now.UTC().Format(time.DateOnly) }

// QuotaResetAt is when the day of now ends and every key's quota starts afresh:
// the next midnight UTC.
func QuotaResetAt(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// Admit decides whether one more email of size bytes fits in the quota, given what
// the key used today. It returns nil, or an apperr quota_exceeded (429) saying
// which quota, and when it resets, with RetryAfter until then. An email larger than
// the whole byte quota is refused with a message saying so: waiting would not help.
func (q Quota) Admit(used Usage, size int64, now time.Time) error {
	reset := QuotaResetAt(now)
	exceeded := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return &apperr.Error{Code: apperr.CodeQuotaExceeded, RetryAfter: reset.Sub(now),
			Message: fmt.Sprintf("%s; the quota resets at %s", msg, reset.Format(time.RFC3339))}
	}
	if q.EmailsPerDay > 0 && used.Emails+1 > q.EmailsPerDay {
		return exceeded("this API key has sent its %d emails for today (UTC)", q.EmailsPerDay)
	}
	if q.BytesPerDay > 0 && size > q.BytesPerDay {
		return &apperr.Error{Code: apperr.CodeQuotaExceeded, Message: fmt.Sprintf(
			"this email is %d bytes, more than this API key's whole daily quota of %d bytes", size, q.BytesPerDay)}
	}
	if q.BytesPerDay > 0 && used.Bytes+size > q.BytesPerDay {
		return exceeded("this email of %d bytes would take this API key over its %d bytes for today (UTC); %d are used",
			size, q.BytesPerDay, used.Bytes)
	}
	return nil
}

// Size is what the email weighs against a byte quota: the bytes of what the client
// chose (addresses, subject, bodies, tags, metadata, custom headers, and each
// attachment's name, type and decoded content), about what it adds to the database
// and the outbox.
func (e Email) Size() int64 {
	n := len(e.From) + len(e.ReplyTo) + len(e.Subject) + len(e.Text) + len(e.HTML)
	for _, a := range e.Attachments {
		n += len(a.Filename) + len(a.ContentType) + len(a.ContentID) + int(a.Size)
	}
	for k, v := range e.Headers {
		n += len(k) + len(v)
	}
	for _, list := range [][]string{e.To, e.Cc, e.Bcc, e.Tags} {
		for _, s := range list {
			n += len(s)
		}
	}
	for k, v := range e.Metadata {
		n += len(k) + len(v)
	}
	return int64(n)
}
