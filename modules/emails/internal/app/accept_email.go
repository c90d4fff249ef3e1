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
}

// Handle validates d and stores it as sent by the key of by; the answer comes once
// the email and its outbox row are committed. key is the Idempotency-Key header, or
// "": each API key has its own Idempotency-Keys, so two clients choosing the same
// one neither collide nor learn of each other's emails.
func (h AcceptEmail) Handle(ctx context.Context, d domain.Draft, key, correlationID string, by auth.Principal) (Accepted, error) {
	now := h.Now()
	v, err := domain.Validate(d, h.DefaultFrom, now)
	if err != nil {
		return Accepted{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Accepted{}, apperr.Unavailable("cannot make an id", err)
	}
	status := domain.StatusQueued
	if v.SendAt != nil {
		status = domain.StatusScheduled
	}
	e := domain.Email{
		ID: id.String(), Status: status,
		From: v.From, To: v.To, Cc: v.Cc, Bcc: v.Bcc, ReplyTo: v.ReplyTo,
		Subject: v.Subject, Text: v.Text, HTML: v.HTML, Tags: v.Tags, Metadata: v.Metadata,
		CorrelationID: correlationID, CreatedAt: now, UpdatedAt: now, SendAt: v.SendAt,
		APIKeyID: by.KeyID,
	}
	ne := NewEmail{Email: e, IdempotencyKey: key}
	if key != "" && by.KeyID != "" {
		ne.IdempotencyKey = by.KeyID + "/" + key
	}
	if key != "" {
		ne.RequestHash = hashDraft(d)
	}
	return h.Repo.Accept(ctx, ne)
}

// hashDraft fingerprints a request body by its meaning, not its bytes, so the same
// email sent again with other spacing or key order still matches its first answer.
func hashDraft(d domain.Draft) string {
	b, _ := json.Marshal(d) // a struct of strings, slices and a map: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
