// Package adapters implements the suppressions module's store on SQLite and the
// outbox.
package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store keeps suppressions_list, the module's copy of the suppression list, and
// writes each change the module makes to the outbox, for Topic, in the same
// transaction.
type Store struct {
	DB     *sqlite.DB
	Outbox *outbox.Outbox
	// Topic is topics.suppressions.
	Topic string
	// PublishWait bounds how long Add and Remove wait, after their commit, for the
	// outbox relay to publish the change: on Go channels that is once delivery's
	// copy in this process applied it, on Kafka once the topic holds it. Past it
	// (Kafka unreachable) they return anyway: the change is safe in the outbox. 0
	// (the CLI, which runs no relay): no wait.
	PublishWait time.Duration
}

var _ app.Store = Store{}

const columns = `id, address, reason, detail, email_id, source, created_at`

// List implements app.Store.
func (s Store) List(ctx context.Context, f app.Filter) ([]app.Suppression, error) {
	var where []string
	var args []any
	if f.AddressContains != "" {
		where = append(where, "instr(address, ?) > 0")
		args = append(args, strings.ToLower(f.AddressContains))
	}
	if f.Cursor > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Cursor)
	}
	q := `SELECT ` + columns + ` FROM suppressions_list`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	out, err := sqlite.Query(ctx, s.DB, scan, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", err)
	}
	return out, nil
}

// Add implements app.Store.
func (s Store) Add(ctx context.Context, sp app.Suppression) (app.Suppression, bool, error) {
	msg, err := s.message(sp.Changed())
	if err != nil {
		return app.Suppression{}, false, err
	}
	published, stop := s.awaitPublished(msg)
	defer stop()
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	var created bool
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO suppressions_list (address, reason, detail, email_id, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (address) DO NOTHING`,
			sp.Address, sp.Reason, sp.Detail, sp.EmailID, sp.Source, sp.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("add suppression: %w", err)
		}
		n, _ := res.RowsAffected()
		created = n > 0
		if !created {
			return nil
		}
		return s.Outbox.Add(ctx, tx, s.Topic, msg, time.Time{})
	})
	if err != nil {
		return app.Suppression{}, false, err
	}
	if created {
		s.Outbox.Notify()
		s.waitPublished(published)
	}
	stored, err := sqlite.Query(ctx, s.DB, scan, `SELECT `+columns+` FROM suppressions_list WHERE address = ?`, sp.Address)
	if err != nil || len(stored) == 0 {
		return app.Suppression{}, false, fmt.Errorf("read the stored suppression: %w", errors.Join(err, sql.ErrNoRows))
	}
	return stored[0], created, nil
}

// Remove implements app.Store.
func (s Store) Remove(ctx context.Context, address string, at time.Time) (bool, error) {
	msg, err := s.message(contract.Removed(address, at))
	if err != nil {
		return false, err
	}
	published, stop := s.awaitPublished(msg)
	defer stop()
	ctx = context.WithoutCancel(ctx)
	var removed bool
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppressions_list WHERE address = ?`, address)
		if err != nil {
			return fmt.Errorf("remove suppression: %w", err)
		}
		n, _ := res.RowsAffected()
		removed = n > 0
		if !removed {
			return nil
		}
		return s.Outbox.Add(ctx, tx, s.Topic, msg, time.Time{})
	})
	if err == nil && removed {
		s.Outbox.Notify()
		s.waitPublished(published)
	}
	return removed, err
}

// awaitPublished starts waiting for the publish of msg, when Add and Remove wait
// for it (PublishWait); published is nil otherwise.
func (s Store) awaitPublished(msg *message.Message) (published <-chan struct{}, stop func()) {
	if s.PublishWait <= 0 {
		return nil, func() {}
	}
	return s.Outbox.AwaitPublished(msg.UUID)
}

// waitPublished waits until published is closed, for at most PublishWait (nil
// published: at once). Either way the change is durable.
func (s Store) waitPublished(published <-chan struct{}) {
	if published == nil {
		return
	}
	timer := time.NewTimer(s.PublishWait)
	defer timer.Stop()
	select {
	case <-published:
	case <-timer.C:
	}
}

// Apply implements app.Store. A suppressed address keeps its row (and its place
// in the list) and takes the record's reason, source and time; a removed one
// loses its row.
func (s Store) Apply(ctx context.Context, c contract.Changed) error {
	ctx = context.WithoutCancel(ctx)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if c.State == contract.StateRemoved {
			_, err = tx.ExecContext(ctx, `DELETE FROM suppressions_list WHERE address = ?`, c.Address)
		} else {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO suppressions_list (address, reason, detail, email_id, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
				 ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
				   email_id = excluded.email_id, source = excluded.source, created_at = excluded.created_at`,
				c.Address, c.Reason, c.Detail, c.EmailID, c.Source, c.At.UnixMilli())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("apply the %s record of %s: %w", c.State, c.Address, err)
	}
	return nil
}

// announceBatch is how many adopted suppressions Announce writes per transaction.
const announceBatch = 500

// Announce implements app.Store: it moves the addresses of
// suppressions_unannounced (filled by the migration that adopted the delivery
// module's list) to the outbox, a batch per transaction.
func (s Store) Announce(ctx context.Context) (int, error) {
	ctx = context.WithoutCancel(ctx)
	total := 0
	for {
		batch, err := sqlite.Query(ctx, s.DB, scan,
			`SELECT `+columns+` FROM suppressions_list WHERE address IN (SELECT address FROM suppressions_unannounced) ORDER BY id LIMIT ?`, announceBatch)
		if err != nil {
			return total, fmt.Errorf("read the adopted suppressions: %w", err)
		}
		msgs := make([]*message.Message, len(batch))
		for i, sp := range batch {
			if msgs[i], err = s.message(sp.Changed()); err != nil {
				return total, err
			}
		}
		err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
			for i, sp := range batch {
				if err := s.Outbox.Add(ctx, tx, s.Topic, msgs[i], time.Time{}); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM suppressions_unannounced WHERE address = ?`, sp.Address); err != nil {
					return fmt.Errorf("mark %s announced: %w", sp.Address, err)
				}
			}
			// Adopted addresses no longer on the list (removed since) need no record.
			_, err := tx.ExecContext(ctx,
				`DELETE FROM suppressions_unannounced WHERE address NOT IN (SELECT address FROM suppressions_list)`)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("announce the adopted suppressions: %w", err)
		}
		total += len(batch)
		if len(batch) < announceBatch {
			if total > 0 {
				s.Outbox.Notify()
			}
			return total, nil
		}
	}
}

// message is the outbox message of c: keyed by its address, so that an address's
// records keep their order, with an id of its own (a UUIDv7: every change is a new
// record).
func (s Store) message(c contract.Changed) (*message.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("make a message id: %w", err)
	}
	return outbox.NewMessage("suppression-"+id.String(), contract.Key(c.Address), "", c)
}

func scan(sc sqlite.Scanner) (app.Suppression, error) {
	var sp app.Suppression
	var created int64
	err := sc.Scan(&sp.ID, &sp.Address, &sp.Reason, &sp.Detail, &sp.EmailID, &sp.Source, &created)
	sp.CreatedAt = time.UnixMilli(created).UTC()
	return sp, err
}
