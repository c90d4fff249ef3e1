// Package adapters implements the emails module's ports on SQLite and the outbox.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// Repository stores emails in the emails_* tables and queues their SendEmail
// message in the outbox in the same transaction.
type Repository struct {
	db         *sqlite.DB
	box        *outbox.Outbox
	sendTopic  string
	instanceID string
	now        func() time.Time
}

// NewRepository returns a repository on db, queueing SendEmail commands in box,
// each with instanceID as its origin.
func NewRepository(db *sqlite.DB, box *outbox.Outbox, sendTopic, instanceID string) *Repository {
	return &Repository{db: db, box: box, sendTopic: sendTopic, instanceID: instanceID, now: time.Now}
}

// Accept implements app.Repository. Concurrent requests share one commit (the
// database group-commits writes), and each is answered only once it is durable.
func (r *Repository) Accept(ctx context.Context, e app.NewEmail) (app.Accepted, error) {
	row, err := encodeEmail(e.Email, r.instanceID)
	if err != nil {
		return app.Accepted{}, err
	}
	var acc app.Accepted
	// The email is committed or not whatever the client does meanwhile: a
	// disconnect must not interrupt a statement of a shared transaction.
	ctx = context.WithoutCancel(ctx)
	err = r.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		acc, err = r.insert(ctx, tx, e, row)
		return err
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return app.Accepted{}, err
		}
		return app.Accepted{}, apperr.Unavailable("the database cannot store emails right now", err)
	}
	r.box.Notify()
	return acc, nil
}

// encodedEmail is an email's column values and SendEmail message, encoded before
// the transaction: the writer is shared by the whole process, so it should only write.
type encodedEmail struct {
	to, cc, bcc, tags, metadata string
	sendAt                      any
	msg                         *message.Message
}

func encodeEmail(e domain.Email, origin string) (encodedEmail, error) {
	row := encodedEmail{to: jsonList(e.To), cc: jsonList(e.Cc), bcc: jsonList(e.Bcc), tags: jsonList(e.Tags), metadata: jsonMap(e.Metadata)}
	if e.SendAt != nil {
		row.sendAt = e.SendAt.UnixMilli()
	}
	var err error
	row.msg, err = sendMessage(e, origin)
	return row, err
}

// insert writes one email inside the shared write transaction. Its timeline's
// "accepted" entry is not stored: it is the email's created_at.
func (r *Repository) insert(ctx context.Context, tx *sql.Tx, ne app.NewEmail, row encodedEmail) (app.Accepted, error) {
	e := ne.Email
	now := r.now()
	if ne.IdempotencyKey != "" {
		var hash, id, status string
		err := tx.QueryRowContext(ctx,
			`SELECT request_hash, email_id, status FROM emails_idempotency WHERE key = ? AND created_at > ?`,
			ne.IdempotencyKey, now.Add(-IdempotencyWindow).UnixMilli()).Scan(&hash, &id, &status)
		switch {
		case err == nil && hash == ne.RequestHash:
			return app.Accepted{ID: id, Status: domain.Status(status), Replayed: true}, nil
		case err == nil:
			return app.Accepted{}, &apperr.Error{Code: apperr.CodeConflict, Field: "Idempotency-Key",
				Message: "Idempotency-Key was already used with a different request body"}
		case !errors.Is(err, sql.ErrNoRows):
			return app.Accepted{}, fmt.Errorf("read idempotency key: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO emails_idempotency (key, request_hash, email_id, status, created_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, email_id = excluded.email_id,
			   status = excluded.status, created_at = excluded.created_at`,
			ne.IdempotencyKey, ne.RequestHash, e.ID, string(e.Status), now.UnixMilli()); err != nil {
			return app.Accepted{}, fmt.Errorf("store idempotency key: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO emails_emails (id, status, from_addr, to_addrs, cc_addrs, bcc_addrs, reply_to, subject,
		   text_body, html_body, tags, metadata, correlation_id, created_at, updated_at, send_at, api_key_id)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, string(e.Status), e.From, row.to, row.cc, row.bcc, e.ReplyTo, e.Subject,
		e.Text, e.HTML, row.tags, row.metadata, e.CorrelationID, e.CreatedAt.UnixMilli(),
		e.UpdatedAt.UnixMilli(), row.sendAt, nullable(e.APIKeyID))
	if err != nil {
		return app.Accepted{}, fmt.Errorf("insert email %s: %w", e.ID, err)
	}
	for _, tag := range e.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO emails_tags (email_id, tag) VALUES (?, ?)`, e.ID, tag); err != nil {
			return app.Accepted{}, fmt.Errorf("insert tag: %w", err)
		}
	}
	var at time.Time
	if e.SendAt != nil {
		at = *e.SendAt
	}
	if err := r.box.Add(ctx, tx, r.sendTopic, row.msg, at); err != nil {
		return app.Accepted{}, err
	}
	return app.Accepted{ID: e.ID, Status: e.Status}, nil
}

// sendMessage is the SendEmail command for the first try of e, accepted by the
// instance with id origin.
func sendMessage(e domain.Email, origin string) (*message.Message, error) {
	return outbox.NewMessage(e.ID+"/1", e.ID, e.CorrelationID, delivery.SendEmail{
		EmailID: e.ID, CorrelationID: e.CorrelationID,
		From: e.From, To: e.To, Cc: e.Cc, Bcc: e.Bcc, ReplyTo: e.ReplyTo,
		Subject: e.Subject, Text: e.Text, HTML: e.HTML, Tags: e.Tags, Metadata: e.Metadata,
		CreatedAt: e.CreatedAt, Attempt: 1, OwnerKeyID: e.APIKeyID, OriginInstance: origin,
	})
}

// Apply implements app.Repository.
func (r *Repository) Apply(ctx context.Context, ch app.Change) (app.ApplyResult, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	if ch.At.IsZero() {
		ch.At = r.now()
	}
	var res app.ApplyResult
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = applyChange(ctx, tx, ch)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("apply %s to %s: %w", ch.Type, ch.EmailID, err)
	}
	return res, nil
}

// applyChange records ch in tx. An email this database does not hold (another
// instance's, or a bogus id) is app.UnknownEmail, not an error: nothing is written.
func applyChange(ctx context.Context, tx *sql.Tx, ch app.Change) (app.ApplyResult, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM emails_emails WHERE id = ?`, ch.EmailID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return app.UnknownEmail, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO emails_events (email_id, type, at, detail, source_id) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (source_id) DO NOTHING`,
		ch.EmailID, ch.Type, ch.At.UnixMilli(), ch.Detail, nullable(ch.SourceID))
	if err != nil {
		return 0, fmt.Errorf("insert event: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.AppliedBefore, nil
	}
	next, moved := domain.Transition(domain.Status(status), ch.Type)
	sets := []string{"updated_at = ?"}
	args := []any{ch.At.UnixMilli()}
	if moved {
		sets = append(sets, "status = ?")
		args = append(args, string(next))
	}
	if ch.ResetAttempts {
		sets = append(sets, "attempts = 0", "last_error = ''", "next_attempt_at = NULL")
	}
	if ch.Attempts != nil {
		sets = append(sets, "attempts = MAX(attempts, ?)")
		args = append(args, *ch.Attempts)
	}
	if ch.LastError != nil {
		sets = append(sets, "last_error = ?")
		args = append(args, *ch.LastError)
	}
	if ch.NextAttemptAt != nil && next == domain.StatusRetrying {
		sets = append(sets, "next_attempt_at = ?")
		args = append(args, ch.NextAttemptAt.UnixMilli())
	}
	if moved && next != domain.StatusRetrying {
		sets = append(sets, "next_attempt_at = NULL")
	}
	if ch.SentAt != nil && moved {
		sets = append(sets, "sent_at = ?")
		args = append(args, ch.SentAt.UnixMilli())
	}
	args = append(args, ch.EmailID)
	if _, err := tx.ExecContext(ctx, `UPDATE emails_emails SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
		return 0, fmt.Errorf("update email: %w", err)
	}
	return app.Applied, nil
}

// RecordPublished notes on each email's timeline that its SendEmail left the outbox;
// it runs in the relay's transaction (an outbox.PublishedHook). at is when the relay
// began publishing, which keeps "published" before the "sent" the consumer recorded.
func (r *Repository) RecordPublished(ctx context.Context, tx *sql.Tx, topic string, msgs []*message.Message, at time.Time) error {
	if topic != r.sendTopic {
		return nil
	}
	for _, m := range msgs {
		ch := app.Change{EmailID: m.Metadata.Get(broker.PartitionKeyKey), SourceID: "published/" + m.UUID,
			Type: domain.EventPublished, At: at, Detail: "to " + topic}
		// The relay publishes only this database's rows, so the email is here.
		if _, err := applyChange(ctx, tx, ch); err != nil {
			return err
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonMap(v map[string]string) string {
	if v == nil {
		v = map[string]string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}
