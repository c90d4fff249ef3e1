package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// AcceptEmail validates a draft and stores it for sending.
type AcceptEmail struct {
	Repo        Repository
	DefaultFrom string
	Now         func() time.Time
	// Quota is every key's daily quota; the zero Quota is none.
	Quota domain.Quota
	// Limits bound an email's attachments (limits.*); the zero value allows none.
	Limits domain.AttachmentLimits
}

// Handle validates d, checks that the key of by may send as its From (a 403
// naming "from" otherwise), and stores it as sent by that key; the answer comes once
// the email and its outbox row are committed. key is the Idempotency-Key header, or
// "": each API key has its own Idempotency-Keys, so two clients choosing the same
// one neither collide nor learn of each other's emails.
func (h AcceptEmail) Handle(ctx context.Context, d domain.Draft, key, correlationID string, by auth.Principal) (Accepted, error) {
	ne, err := h.newEmail(d, correlationID, by, h.Now())
	if err != nil {
		return Accepted{}, err
	}
	if key != "" {
		ne.IdempotencyKey, ne.RequestHash = scopedKey(key, by), hashDraft(d)
	}
	return h.Repo.Accept(ctx, ne)
}

// newEmail is the one place a draft becomes an email: it validates d (fields,
// attachments, headers), checks the sender against by's restriction, and gives the
// email its id, its status (queued, or scheduled for a future send_at), its times
// and, for a key's email, the key's quota. AcceptEmail and AcceptBatch both build
// each email here.
func (h AcceptEmail) newEmail(d domain.Draft, correlationID string, by auth.Principal, now time.Time) (NewEmail, error) {
	v, err := domain.Validate(d, h.DefaultFrom, now)
	if err != nil {
		return NewEmail{}, err
	}
	attachments, err := domain.ValidateAttachments(d.Attachments, h.Limits, v.HTML != "")
	if err != nil {
		return NewEmail{}, err
	}
	headers, err := domain.ValidateHeaders(d.Headers)
	if err != nil {
		return NewEmail{}, err
	}
	// The From as sent, or smtp.from when none was: a key restricted to some
	// senders may not use the default one unless it is among them.
	if err := by.CheckSender("from", v.FromAddress); err != nil {
		return NewEmail{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return NewEmail{}, apperr.Unavailable("cannot make an id", err)
	}
	status := domain.StatusQueued
	if v.SendAt != nil {
		status = domain.StatusScheduled
	}
	e := domain.Email{
		ID: id.String(), Status: status,
		From: v.From, To: v.To, Cc: v.Cc, Bcc: v.Bcc, ReplyTo: v.ReplyTo,
		Subject: v.Subject, Text: v.Text, HTML: v.HTML, Tags: v.Tags, Metadata: v.Metadata,
		Attachments: attachments, Headers: headers,
		CorrelationID: correlationID, CreatedAt: now, UpdatedAt: now, SendAt: v.SendAt,
		APIKeyID: by.KeyID,
	}
	ne := NewEmail{Email: e}
	if by.KeyID != "" {
		ne.Quota = h.Quota
	}
	return ne, nil
}

// scopedKey is the Idempotency-Key as stored: prefixed with the API key's id, so
// that each key has Idempotency-Keys of its own.
func scopedKey(key string, by auth.Principal) string {
	if by.KeyID != "" {
		return by.KeyID + "/" + key
	}
	return key
}

// hashDraft fingerprints a request body by its meaning, not its bytes, so the same
// email sent again with other spacing or key order still matches its first answer.
// It hashes the draft normalized (normalizeDraft), so that bodies that mean the same
// email also match: an empty list or object and an absent one, and one send_at
// instant written in two zones.
func hashDraft(d domain.Draft) string {
	b, _ := json.Marshal(normalizeDraft(d)) // a struct of strings, slices and a map: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// normalizeDraft returns d with empty lists and maps absent (nil) and a send_at in
// another zone, or with a lowercase t or z, as its UTC instant. A draft it leaves
// unchanged (no empty list or map, send_at absent, unparsable or already written in
// UTC with "T" and "Z") hashes as before normalization existed, so Idempotency-Keys
// stored earlier still match their requests.
func normalizeDraft(d domain.Draft) domain.Draft {
	d.To, d.Cc, d.Bcc, d.Tags = nilIfEmpty(d.To), nilIfEmpty(d.Cc), nilIfEmpty(d.Bcc), nilIfEmpty(d.Tags)
	if len(d.Metadata) == 0 {
		d.Metadata = nil
	}
	if len(d.Attachments) == 0 {
		d.Attachments = nil
	}
	if len(d.Headers) == 0 {
		d.Headers = nil
	}
	if d.SendAt != "" && !writtenInUTC(d.SendAt) {
		if t, err := domain.ParseSendAt(d.SendAt); err == nil {
			d.SendAt = t.UTC().Format(time.RFC3339Nano)
		}
	}
	return d
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// writtenInUTC reports whether a send_at reads YYYY-MM-DDT...Z, as an instant in UTC
// is usually written: such a send_at is hashed as written.
func writtenInUTC(s string) bool {
	return len(s) > 10 && s[10] == 'T' && s[len(s)-1] == 'Z'
}
