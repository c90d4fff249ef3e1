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
}

var _ app.Store = Store{}

// Park implements app.Store.
func (s Store) Park(ctx context.Context, l app.Letter, event any) (bool, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	meta, _ := json.Marshal(l.Metadata)
	recipients, _ := json.Marshal(nonNil(l.Recipients))
	inserted := false
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		inserted = false // fn may run twice (sqlite.DB.Tx)
		res, err := tx.ExecContext(ctx,
			`INSERT INTO deadletters_letters (dedupe_key, kind, email_id, replay, status, reason, error_class, attempts,
			   smtp_reply, subject, recipients, original_topic, original_partition, original_offset, consumer_group, handler,
			   first_failed_at, last_failed_at, payload, metadata, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (dedupe_key) DO NOTHING`,
			l.DedupeKey, l.Kind, l.EmailID, l.Replay, app.StatusParked, l.Reason, l.ErrorClass, l.Attempts, l.SMTPReply,
			l.Subject, string(recipients), l.OriginalTopic, l.OriginalPartition, l.OriginalOffset, l.ConsumerGroup, l.Handler,
			sqlite.MillisOrNull(l.FirstFailedAt), sqlite.MillisOrNull(l.LastFailedAt), l.Payload, string(meta), l.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert dead letter: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		inserted = true
		if event == nil {
			return nil
		}
		return s.event(ctx, tx, l, l.Replay, dlt.EventEmailDeadLettered, event)
	})
	if err == nil && inserted {
		s.Outbox.Notify()
	}
	return inserted, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// event adds an event about letter l's email to the outbox, keyed by the email id
// and carrying the correlation id of the request that sent the email. Its id is
// "{email_id}/r{replay}/{type}": one per email, replay and kind of event.
func (s Store) event(ctx context.Context, tx *sql.Tx, l app.Letter, replay int, typ string, payload any) error {
	msg, err := outbox.NewMessage(fmt.Sprintf("%s/r%d/%s", l.EmailID, replay, typ), l.EmailID, l.CorrelationID, payload)
	if err != nil {
		return err
	}
	msg.Metadata.Set(dlt.EventTypeKey, typ)
	return s.Outbox.Add(ctx, tx, s.EventsTopic, msg, time.Time{})
}

const letterColumns = `id, dedupe_key, kind, email_id, replay, status, reason, error_class, attempts, smtp_reply,
	subject, recipients, original_topic, original_partition, original_offset, consumer_group, handler, first_failed_at,
	last_failed_at, payload, metadata, created_at, resolved_at`

// List implements app.Store.
func (s Store) List(ctx context.Context, f app.Filter) ([]app.Letter, error) {
	conds, args := filterConditions(f)
	if f.Cursor > 0 {
		conds = append(conds, "id < ?")
		args = append(args, f.Cursor)
	}
	q := `SELECT ` + letterColumns + ` FROM deadletters_letters` + where(conds) + " ORDER BY id DESC LIMIT ?"
	out, err := sqlite.Query(ctx, s.DB, scanLetter, q, append(args, f.Limit)...)
	if err != nil {
		return nil, apperr.Unavailable("cannot list dead letters", err)
	}
	return out, nil
}

// Count implements app.Store.
func (s Store) Count(ctx context.Context, f app.Filter) (int, error) {
	conds, args := filterConditions(f)
	var n int
	err := s.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM deadletters_letters`+where(conds), args...).Scan(&n)
	if err != nil {
		return 0, apperr.Unavailable("cannot count dead letters", err)
	}
	return n, nil
}

// filterConditions turns a filter into SQL conditions on deadletters_letters, with
// their arguments in order; the cursor and the limit are the page's business, so
// the page and the count share these.
func filterConditions(f app.Filter) (conds []string, args []any) {
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.Status != "all" {
		add("status = ?", f.Status)
	}
	if f.ReasonContains != "" {
		add("instr(lower(reason), lower(?)) > 0", f.ReasonContains)
	}
	if f.Since != nil {
		add("created_at >= ?", f.Since.UnixMilli())
	}
	if f.Until != nil {
		add("created_at < ?", f.Until.UnixMilli())
	}
	return conds, args
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// Find implements app.Store.
func (s Store) Find(ctx context.Context, ref string) (app.Letter, bool, error) {
	q, arg := `SELECT `+letterColumns+` FROM deadletters_letters WHERE email_id = ? ORDER BY id DESC LIMIT 1`, any(ref)
	if id, ok := app.ParseLetterKey(ref); ok {
		q, arg = `SELECT `+letterColumns+` FROM deadletters_letters WHERE id = ?`, id
	}
	l, err := scanLetter(s.DB.Read.QueryRowContext(ctx, q, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	if err != nil {
		return l, false, apperr.Unavailable("cannot read the dead letter", err)
	}
	return l, true, nil
}

// Resolve implements app.Store.
func (s Store) Resolve(ctx context.Context, rs []app.Resolution) ([]app.Resolution, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	if len(rs) == 0 {
		return nil, nil
	}
	var done []app.Resolution
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		done = nil // fn may run twice (sqlite.DB.Tx)
		for _, r := range rs {
			ok, err := s.resolve(ctx, tx, r)
			if err != nil {
				return err
			}
			if ok {
				done = append(done, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, apperr.Unavailable("cannot resolve dead letters", err)
	}
	if len(done) > 0 {
		s.Outbox.Notify()
	}
	return done, nil
}

// resolve marks r's letter resolved if it is still parked, with its messages; it
// reports whether it was.
func (s Store) resolve(ctx context.Context, tx *sql.Tx, r app.Resolution) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE deadletters_letters SET status = ?, resolved_at = ? WHERE id = ? AND status = ?`,
		r.Status, r.At.UnixMilli(), r.Letter.ID, app.StatusParked)
	if err != nil {
		return false, fmt.Errorf("mark dead letter %d %s: %w", r.Letter.ID, r.Status, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if r.Send != nil {
		msg, err := outbox.NewMessage(r.Send.MessageUUID(), r.Send.EmailID, r.Send.CorrelationID, r.Send)
		if err != nil {
			return false, err
		}
		if err := s.Outbox.Add(ctx, tx, s.SendTopic, msg, time.Time{}); err != nil {
			return false, err
		}
	}
	if r.EventType == "" {
		return true, nil
	}
	replay := r.Letter.Replay
	if r.Send != nil {
		replay = r.Send.Replay
	}
	return true, s.event(ctx, tx, r.Letter, replay, r.EventType, r.Event)
}

func scanLetter(s sqlite.Scanner) (app.Letter, error) {
	var (
		l                     app.Letter
		partition, offset     sql.NullInt64
		first, last, resolved sql.NullInt64
		created               int64
		meta, recipients      string
	)
	err := s.Scan(&l.ID, &l.DedupeKey, &l.Kind, &l.EmailID, &l.Replay, &l.Status, &l.Reason, &l.ErrorClass, &l.Attempts,
		&l.SMTPReply, &l.Subject, &recipients, &l.OriginalTopic, &partition, &offset, &l.ConsumerGroup, &l.Handler,
		&first, &last, &l.Payload, &meta, &created, &resolved)
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
	_ = json.Unmarshal([]byte(recipients), &l.Recipients)
	l.CorrelationID = l.Metadata[middleware.CorrelationIDMetadataKey]
	return l, nil
}
