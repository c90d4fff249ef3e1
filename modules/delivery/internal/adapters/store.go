// Package adapters implements the delivery module's ports on SQLite and the outbox.
package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store keeps delivery_state and delivery_messages, and writes outcome events and
// retries to the outbox in the same transaction.
type Store struct {
	DB          *sqlite.DB
	Outbox      *outbox.Outbox
	SendTopic   string
	EventsTopic string
}

// Load implements app.Store.
func (s Store) Load(ctx context.Context, emailID string) (app.State, bool, error) {
	var (
		st            app.State
		first, lastAt sql.NullInt64
	)
	err := s.DB.Read.QueryRowContext(ctx,
		`SELECT email_id, replay, attempts, status, last_error, last_reply, error_class, first_failed_at, last_failed_at
		 FROM delivery_state WHERE email_id = ?`, emailID).
		Scan(&st.EmailID, &st.Replay, &st.Attempts, &st.Status, &st.LastError, &st.LastReply, &st.ErrorClass, &first, &lastAt)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load delivery state: %w", err)
	}
	st.FirstFailedAt, st.LastFailedAt = sqlite.TimeOrNil(first), sqlite.TimeOrNil(lastAt)
	return st, true, nil
}

// Record implements app.Store.
func (s Store) Record(ctx context.Context, o app.Outcome, correlationID string) error {
	st := o.State
	now := time.Now()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO delivery_state (email_id, replay, attempts, status, last_error, last_reply, error_class,
			   first_failed_at, last_failed_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (email_id) DO UPDATE SET replay = excluded.replay, attempts = excluded.attempts,
			   status = excluded.status, last_error = excluded.last_error, last_reply = excluded.last_reply,
			   error_class = excluded.error_class, first_failed_at = excluded.first_failed_at,
			   last_failed_at = excluded.last_failed_at, updated_at = excluded.updated_at`,
			st.EmailID, st.Replay, st.Attempts, st.Status, st.LastError, st.LastReply, st.ErrorClass,
			sqlite.MillisOrNull(st.FirstFailedAt), sqlite.MillisOrNull(st.LastFailedAt), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("upsert delivery state: %w", err)
		}
		if len(o.Message.Raw) > 0 {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO delivery_messages (email_id, message_id, raw, rendered_at, owner_key_id) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (email_id) DO UPDATE SET message_id = excluded.message_id, raw = excluded.raw,
				   rendered_at = excluded.rendered_at, owner_key_id = excluded.owner_key_id`,
				st.EmailID, o.Message.MessageID, o.Message.Raw, now.UnixMilli(), o.OwnerKeyID)
			if err != nil {
				return fmt.Errorf("store rendered message: %w", err)
			}
		}
		for _, ev := range o.Events {
			msg, err := outbox.NewMessage(fmt.Sprintf("%s/r%d/a%d/%s", st.EmailID, st.Replay, st.Attempts, ev.Type), st.EmailID, correlationID, ev.Payload)
			if err != nil {
				return err
			}
			msg.Metadata.Set(contract.EventTypeKey, ev.Type)
			if err := s.Outbox.Add(ctx, tx, s.EventsTopic, msg, time.Time{}); err != nil {
				return err
			}
		}
		if o.Retry != nil {
			r := o.Retry
			msg, err := outbox.NewMessage(fmt.Sprintf("%s/r%d/a%d", r.EmailID, r.Replay, r.Attempt), r.EmailID, correlationID, r)
			if err != nil {
				return err
			}
			msg.Metadata.Set("attempt", strconv.Itoa(r.Attempt))
			if err := s.Outbox.Add(ctx, tx, s.SendTopic, msg, o.RetryAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record outcome of %s: %w", st.EmailID, err)
	}
	s.Outbox.Notify()
	return nil
}

// Raw implements app.Store.
func (s Store) Raw(ctx context.Context, emailID string) ([]byte, string, error) {
	var (
		raw   []byte
		owner string
	)
	err := s.DB.Read.QueryRowContext(ctx, `SELECT raw, owner_key_id FROM delivery_messages WHERE email_id = ?`, emailID).Scan(&raw, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", apperr.NotFound("rendered message of email", emailID)
	}
	if err != nil {
		return nil, "", apperr.Unavailable("cannot read the rendered message", err)
	}
	return raw, owner, nil
}
