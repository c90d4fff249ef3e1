package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

// AcceptBatch implements app.BatchRepository: every email of b, its recipients, tags
// and outbox message are written in one transaction (shared, like Accept's, with
// the process's other writes), each by insertEmail as a single email is, and the
// batch's Idempotency-Key with the whole list of items.
func (r *Repository) AcceptBatch(ctx context.Context, b app.NewBatch) (app.BatchAccepted, error) {
	if len(b.Emails) == 0 {
		return app.BatchAccepted{}, errors.New("accept batch: no email in it")
	}
	rows := make([]encodedEmail, len(b.Emails))
	for i, ne := range b.Emails {
		var err error
		if rows[i], err = encodeEmail(ne.Email, r.instanceID); err != nil {
			return app.BatchAccepted{}, err
		}
	}
	// One key and one day: the first email loads them for all.
	if err := r.quota.preload(ctx, b.Emails[0].Quota, b.Emails[0].Email); err != nil {
		return app.BatchAccepted{}, apperr.Unavailable("the database cannot store emails right now", err)
	}
	ctx = context.WithoutCancel(ctx) // as in Accept
	var out app.BatchAccepted
	var releases []func()
	releaseAll := func() {
		for _, release := range releases {
			release()
		}
		releases = nil
	}
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		releaseAll() // this function may run twice (sqlite.DB.Tx): count each email once
		var err error
		out, err = r.insertBatch(ctx, tx, b, rows, &releases)
		return err
	})
	if err != nil {
		releaseAll()
		if _, ok := apperr.As(err); ok {
			return app.BatchAccepted{}, err
		}
		return app.BatchAccepted{}, apperr.Unavailable("the database cannot store emails right now", err)
	}
	if !out.Replayed {
		r.perSecond.Add(countAccepted, len(out.Items))
		r.box.Notify()
	}
	return out, nil
}

// batchItem is one item of a batch's stored answer (emails_idempotency.items).
type batchItem struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// insertBatch is AcceptBatch's transaction: the batch's Idempotency-Key first (a
// replay stores nothing), then each email; releases collects each email's quota
// reservation, for the caller to give back if the batch is not stored.
func (r *Repository) insertBatch(ctx context.Context, tx *sql.Tx, b app.NewBatch, rows []encodedEmail, releases *[]func()) (app.BatchAccepted, error) {
	now := r.now()
	if b.IdempotencyKey != "" {
		replay, ok, err := storedBatch(ctx, tx, b, now.Add(-IdempotencyWindow).UnixMilli())
		if err != nil || ok {
			return replay, err
		}
	}
	out := app.BatchAccepted{Items: make([]app.Accepted, 0, len(b.Emails))}
	stored := make([]batchItem, 0, len(b.Emails))
	for i, ne := range b.Emails {
		release := func() {}
		acc, err := r.insertEmail(ctx, tx, ne, rows[i], &release)
		*releases = append(*releases, release)
		if err != nil {
			return app.BatchAccepted{}, err
		}
		out.Items = append(out.Items, acc)
		stored = append(stored, batchItem{ID: acc.ID, Status: string(acc.Status)})
	}
	if b.IdempotencyKey != "" {
		items, _ := json.Marshal(stored) // strings: cannot fail
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO emails_idempotency (key, request_hash, email_id, status, created_at, items) VALUES (?, ?, ?, '', ?, ?)
			 ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, email_id = excluded.email_id,
			   status = excluded.status, created_at = excluded.created_at, items = excluded.items`,
			b.IdempotencyKey, b.RequestHash, stored[0].ID, now.UnixMilli(), string(items)); err != nil {
			return app.BatchAccepted{}, fmt.Errorf("store idempotency key: %w", err)
		}
	}
	return out, nil
}

// storedBatch looks b's Idempotency-Key up among those newer than since: the
// stored answer when the key was used with the same batch (ok), a 409 when with
// another body, single email or batch, and ok false when the key is new.
func storedBatch(ctx context.Context, tx *sql.Tx, b app.NewBatch, since int64) (app.BatchAccepted, bool, error) {
	var hash string
	var items sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT request_hash, items FROM emails_idempotency WHERE key = ? AND created_at > ?`,
		b.IdempotencyKey, since).Scan(&hash, &items)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return app.BatchAccepted{}, false, nil
	case err != nil:
		return app.BatchAccepted{}, false, fmt.Errorf("read idempotency key: %w", err)
	case hash != b.RequestHash || !items.Valid:
		return app.BatchAccepted{}, false, &apperr.Error{Code: apperr.CodeConflict, Field: "Idempotency-Key",
			Message: "Idempotency-Key was already used with a different request body"}
	}
	var stored []batchItem
	if err := json.Unmarshal([]byte(items.String), &stored); err != nil {
		return app.BatchAccepted{}, false, fmt.Errorf("read idempotency key's items: %w", err)
	}
	out := app.BatchAccepted{Items: make([]app.Accepted, len(stored)), Replayed: true}
	for i, it := range stored {
		out.Items[i] = app.Accepted{ID: it.ID, Status: domain.Status(it.Status), Replayed: true}
	}
	return out, true, nil
}
