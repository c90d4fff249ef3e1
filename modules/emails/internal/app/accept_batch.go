package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// MaxBatch is the most emails one batch may hold.
const MaxBatch = 100

// AcceptBatch validates a batch of drafts and stores them all, or none: one
// invalid item, or one the key's quota cannot take, refuses the whole batch.
type AcceptBatch struct {
	// Email validates and builds each item as AcceptEmail does a single email;
	// its Repo is not used.
	Email AcceptEmail
	// Repo stores the batch.
	Repo BatchRepository
}

// BatchRepository stores a batch of emails. Declared here, where it is used; the
// SQLite adapter implements it.
type BatchRepository interface {
	// AcceptBatch stores every email of b with its outbox message in one
	// transaction and returns once it is committed, answering in b's order. When
	// the quota refuses one, none is stored and the error is domain.Quota.Admit's.
	AcceptBatch(ctx context.Context, b NewBatch) (BatchAccepted, error)
}

// NewBatch is a batch of emails ready to be stored in one transaction.
type NewBatch struct {
	// Emails are the validated emails, in the request's order; each has its own id
	// and quota, and no IdempotencyKey of its own.
	Emails []NewEmail
	// IdempotencyKey is the request's Idempotency-Key, scoped to the API key as
	// NewEmail's is; "" when the request had none. It names the batch as a whole.
	IdempotencyKey string
	// RequestHash fingerprints the whole batch (hashBatch).
	RequestHash string
}

// BatchAccepted is the answer to an accepted batch.
type BatchAccepted struct {
	// Items are each email's id and status, in the request's order.
	Items []Accepted
	// Replayed is true when an Idempotency-Key matched an earlier batch: Items are
	// that batch's, and nothing was stored again.
	Replayed bool
}

// Handle validates every draft of ds (1 to MaxBatch), as AcceptEmail.Handle does
// one, and stores them in one transaction. The first invalid item refuses the
// batch with its error named under the item's index ("[3].to[0]"); a batch of no
// email or more than MaxBatch is refused naming neither. key is the
// Idempotency-Key header, or "".
func (h AcceptBatch) Handle(ctx context.Context, ds []domain.Draft, key, correlationID string, by auth.Principal) (BatchAccepted, error) {
	if len(ds) == 0 || len(ds) > MaxBatch {
		return BatchAccepted{}, apperr.New(apperr.CodeInvalidField,
			"the request body is an array of %d emails; a batch holds 1 to %d", len(ds), MaxBatch)
	}
	now := h.Email.Now()
	b := NewBatch{Emails: make([]NewEmail, 0, len(ds))}
	for i, d := range ds {
		ne, err := h.Email.newEmail(d, correlationID, by, now)
		if err != nil {
			return BatchAccepted{}, apperr.Under(err, "["+strconv.Itoa(i)+"]")
		}
		b.Emails = append(b.Emails, ne)
	}
	if key != "" {
		b.IdempotencyKey, b.RequestHash = scopedKey(key, by), hashBatch(ds)
	}
	return h.Repo.AcceptBatch(ctx, b)
}

// hashBatch fingerprints a batch by its meaning, item by item as hashDraft does
// one email. It hashes under a "batch" label, so a batch never matches a single
// email sent with the same key.
func hashBatch(ds []domain.Draft) string {
	normal := make([]domain.Draft, len(ds))
	for i, d := range ds {
		normal[i] = normalizeDraft(d)
	}
	b, _ := json.Marshal(struct{ Batch []domain.Draft }{normal}) // strings, slices and maps: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
