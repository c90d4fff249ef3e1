// Package adapters implements the deadletters module's store on SQLite and the outbox.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store implements app.Store.
type Store struct {
	DB          *sqlite.DB
	Outbox      *outbox.Outbox
	SendTopic   string
	EventsTopic string
	Now         func() time.Time
}

// Park implements app.Store.
func (s Store) Park(ctx context.Context, l app.Letter) (bool, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	meta, _ := json.Marshal(l.Metadata)
	inserted := false
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		inserted = false // fn may run twice (sqlite.DB.Tx)
		res, err := tx.ExecContext(ctx,
			`INSERT INTO deadletters_letters (dedupe_key, email_id, replay, status, reason, error_class, attempts,
			   smtp_reply, original_topic, original_partition, original_offset, consumer_group, handler,
			   first_failed_at, last_failed_at, payload, metadata, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (dedupe_key) DO NOTHING`,
			l.DedupeKey, l.EmailID, l.Replay, app.StatusParked, l.Reason, l.ErrorClass, l.Attempts, l.SMTPReply,
			l.OriginalTopic, l.OriginalPartition, l.OriginalOffset, l.ConsumerGroup, l.Handler,
			sqlite.MillisOrNull(l.FirstFailedAt), sqlite.MillisOrNull(l.LastFailedAt), l.Payload, string(meta), l.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert dead letter: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 || l.EmailID == "" {
			return nil
		}
		inserted = true
		return s.event(ctx, tx, l, l.Replay, dlt.EventEmailDeadLettered, dlt.EmailDeadLettered{
			EmailID: l.EmailID, Reason: l.Reason, Attempts: l.Attempts, Replay: l.Replay, At: l.CreatedAt})
	})
	if err == nil && inserted {
		s.Outbox.Notify()
	}
	return inserted, err
}

// event adds an event about letter l's email to the outbox, keyed by the email id
// and carrying the correlation id of the request that sent the email.
func (s Store) event(ctx context.Context, tx *sql.Tx, l app.Letter, replay int, typ string, payload any) error {
	msg, err := outbox.NewMessage(fmt.Sprintf("%s/r%d/%s", l.EmailID, replay, typ), l.EmailID,
		l.Metadata[middleware.CorrelationIDMetadataKey], payload)
	if err != nil {
		return err
	}
	msg.Metadata.Set(dlt.EventTypeKey, typ)
	return s.Outbox.Add(ctx, tx, s.EventsTopic, msg, time.Time{})
}

const letterColumns = `id, dedupe_key, email_id, replay, status, reason, error_class, attempts, smtp_reply,
	original_topic, original_partition, original_offset, consumer_group, handler, first_failed_at,
	last_failed_at, payload, metadata, created_at, resolved_at`

// List implements app.Store.
func (s Store) List(ctx context.Context, f app.Filter) ([]app.Letter, error) {
	var where []string
	var args []any
	if f.Status != "all" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.ReasonContains != "" {
		where = append(where, "instr(lower(reason), lower(?)) > 0")
		args = append(args, f.ReasonContains)
	}
	if f.Since != nil {
		where = append(where, "created_at >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if f.Until != nil {
		where = append(where, "created_at < ?")
		args = append(args, f.Until.UnixMilli())
	}
	if f.Cursor > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Cursor)
	}
	q := `SELECT ` + letterColumns + ` FROM deadletters_letters`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	out, err := sqlite.Query(ctx, s.DB, scanLetter, q, args...)
	if err != nil {
		return nil, apperr.Unavailable("cannot list dead letters", err)
	}
	return out, nil
}

// Replay implements app.Store.
func (s Store) Replay(ctx context.Context, refs []string) ([]string, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	if len(refs) == 0 {
		return nil, nil
	}
	now := s.Now()
	var replayed []string
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		replayed = nil // fn may run twice (sqlite.DB.Tx)
		for _, ref := range refs {
			l, err := parked(ctx, tx, ref)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			var cmd delivery.SendEmail
			if err := json.Unmarshal(l.Payload, &cmd); err != nil || cmd.EmailID == "" {
				return &apperr.Error{Code: apperr.CodeConflict, Message: fmt.Sprintf("dead letter %s holds no readable SendEmail and cannot be replayed; discard it", ref)}
			}
			cmd.Replay = l.Replay + 1
			cmd.Attempt = 1
			if cmd.CorrelationID == "" {
				cmd.CorrelationID = l.Metadata[middleware.CorrelationIDMetadataKey]
			}
			msg, err := outbox.NewMessage(fmt.Sprintf("%s/r%d/a1", cmd.EmailID, cmd.Replay), cmd.EmailID, cmd.CorrelationID, cmd)
			if err != nil {
				return err
			}
			if err := s.Outbox.Add(ctx, tx, s.SendTopic, msg, time.Time{}); err != nil {
				return err
			}
			if err := s.event(ctx, tx, l, cmd.Replay, dlt.EventEmailReplayed,
				dlt.EmailReplayed{EmailID: cmd.EmailID, Replay: cmd.Replay, At: now}); err != nil {
				return err
			}
			if err := resolve(ctx, tx, l.ID, app.StatusReplayed, now); err != nil {
				return err
			}
			replayed = append(replayed, cmd.EmailID)
		}
		return nil
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return nil, err
		}
		return nil, apperr.Unavailable("cannot replay dead letters", err)
	}
	s.Outbox.Notify()
	return replayed, nil
}

// Discard implements app.Store.
func (s Store) Discard(ctx context.Context, ref string) error {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	now := s.Now()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		l, err := parked(ctx, tx, ref)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFound("parked dead letter", ref)
		}
		if err != nil {
			return err
		}
		if err := resolve(ctx, tx, l.ID, app.StatusDiscarded, now); err != nil {
			return err
		}
		if l.EmailID == "" {
			return nil // a poison message: no email to tell
		}
		return s.event(ctx, tx, l, l.Replay, dlt.EventEmailDiscarded, dlt.EmailDiscarded{EmailID: l.EmailID, At: now})
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return err
		}
		return apperr.Unavailable("cannot discard the dead letter", err)
	}
	s.Outbox.Notify()
	return nil
}

// parked reads the parked letter ref names: an email id, or a letter's own key
// (app.LetterKey), which is how a letter with no email id (a poison message) is
// named.
func parked(ctx context.Context, tx *sql.Tx, ref string) (app.Letter, error) {
	var row *sql.Row
	if id, ok := app.ParseLetterKey(ref); ok {
		row = tx.QueryRowContext(ctx, `SELECT `+letterColumns+` FROM deadletters_letters
			WHERE id = ? AND status = ?`, id, app.StatusParked)
	} else {
		row = tx.QueryRowContext(ctx, `SELECT `+letterColumns+` FROM deadletters_letters
			WHERE email_id = ? AND status = ? ORDER BY id DESC LIMIT 1`, ref, app.StatusParked)
	}
	l, err := scanLetter(row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("read dead letter %s: %w", ref, err)
	}
	return l, err
}

func resolve(ctx context.Context, tx *sql.Tx, id int64, status string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE deadletters_letters SET status = ?, resolved_at = ? WHERE id = ?`,
		status, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("mark dead letter %d %s: %w", id, status, err)
	}
	return nil
}

func scanLetter(s sqlite.Scanner) (app.Letter, error) {
	var (
		l                     app.Letter
		partition, offset     sql.NullInt64
		first, last, resolved sql.NullInt64
		created               int64
		meta                  string
	)
	err := s.Scan(&l.ID, &l.DedupeKey, &l.EmailID, &l.Replay, &l.Status, &l.Reason, &l.ErrorClass, &l.Attempts,
		&l.SMTPReply, &l.OriginalTopic, &partition, &offset, &l.ConsumerGroup, &l.Handler, &first, &last,
		&l.Payload, &meta, &created, &resolved)
	if err != nil {
		return l, err
	}
	if partition.Valid {
		l.OriginalPartition = &partition.Int64
	}
	if offset.Valid {
		l.OriginalOffset = &offset.Int64
	}
	l.FirstFailedAt, l.LastFailedAt, l.ResolvedAt = sqlite.TimeOrNil(first), sqlite.TimeOrNil(last), sqlite.TimeOrNil(resolved)
	l.CreatedAt = time.UnixMilli(created).UTC()
	_ = json.Unmarshal([]byte(meta), &l.Metadata)
	return l, nil
}
