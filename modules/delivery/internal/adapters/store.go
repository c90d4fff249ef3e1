// Package adapters implements the delivery module's ports on SQLite and the outbox.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store keeps delivery_state and delivery_suppressions (delivery's copy of the
// suppression list), and writes what a try causes (its event, which carries the
// rendered message, the next try, the dead letter, the record of each address its
// hard bounces suppress) to the outbox in the same transaction.
type Store struct {
	DB              *sqlite.DB
	Outbox          *outbox.Outbox
	SendTopic       string
	EventsTopic     string
	DeadLetterTopic string
	// SuppressionsTopic is topics.suppressions, where a hard bounce's suppression
	// goes.
	SuppressionsTopic string
	// RetryTiers, when set (on Kafka), route a deferred recipient's next try to the
	// retry topic of its delay, due at once in the outbox, with its due time in
	// contract.RetryDueAtKey: once the relay has published it, it waits in Kafka,
	// replicated, not in this database. Unset, the next try is an outbox row on
	// SendTopic due at its time.
	RetryTiers app.RetryTiers
	// Now is the clock retry delays are measured on (nil: time.Now).
	Now func() time.Time
	// PublishWait bounds how long Record (and AwaitOutcome) waits, after its
	// commit, for the relay to publish every message the outcome added (its
	// event, a retry routed to a tier, a dead letter), so that the SendEmail that
	// caused them is acknowledged (and its offset committed) only once they are
	// in Kafka. Past it (Kafka unreachable, a topic refusing writes) it returns
	// app.ErrOutcomeNotPublished: the try is recorded, the SendEmail is not
	// acknowledged, and its redelivery waits again. 0 (Go channels): no wait.
	PublishWait time.Duration
}

var _ app.Store = Store{}

// Load implements app.Store.
func (s Store) Load(ctx context.Context, emailID string) (app.State, bool, error) {
	st := app.State{EmailID: emailID}
	err := s.DB.Read.QueryRowContext(ctx,
		`SELECT replay, attempts, status FROM delivery_state WHERE email_id = ?`, emailID).
		Scan(&st.Replay, &st.Attempts, &st.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load delivery state: %w", err)
	}
	return st, true, nil
}

// Record implements app.Store.
func (s Store) Record(ctx context.Context, o app.Outcome, correlationID string) error {
	msgs, err := s.messagesOf(o, correlationID)
	if err != nil {
		return err
	}
	suppress := make([]*message.Message, len(o.Suppress))
	uuids := make([]string, len(o.Suppress))
	for i, sp := range o.Suppress {
		uuids[i] = o.Try.SuppressedUUID(sp.Address)
		if suppress[i], err = suppressionMessage(uuids[i], sp.Changed()); err != nil {
			return err
		}
	}
	published, stop := s.awaitPublished(msgs)
	defer stop()
	var suppressed []<-chan struct{}
	if s.PublishWait > 0 {
		var stopSuppressed func()
		suppressed, stopSuppressed = s.awaitUUIDs(uuids)
		defer stopSuppressed()
	}
	added := make([]bool, len(o.Suppress))
	now := time.Now().UnixMilli()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := saveState(ctx, tx, o.State, now); err != nil {
			return err
		}
		for i, sp := range o.Suppress {
			var err error
			if added[i], err = s.insertSuppression(ctx, tx, sp, suppress[i]); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			if err := s.Outbox.Add(ctx, tx, m.topic, m.msg, m.at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record outcome of %s: %w", o.State.EmailID, err)
	}
	for i, ch := range suppressed {
		if added[i] { // an address on the list already got no record
			published = append(published, ch)
		}
	}
	s.Outbox.Notify()
	return s.waitPublished(ctx, published)
}

// AwaitOutcome implements app.Store. The messages of cmd's try are named after it
// (its event, its next try, its dead letter, the suppression record of each
// recipient it found a hard bounce); AwaitPublished is asked before the
// outbox is read, so a publish between the two is not missed. The read scans the
// outbox (its uuid has no index), which is small, and only a redelivered
// SendEmail comes here.
func (s Store) AwaitOutcome(ctx context.Context, cmd contract.SendEmail) error {
	if s.PublishWait <= 0 {
		return nil
	}
	uuids := []string{cmd.AttemptedUUID(), cmd.NextTry(nil, nil, time.Time{}).MessageUUID(), cmd.DeadLetterUUID()}
	for _, r := range cmd.Recipients {
		uuids = append(uuids, cmd.SuppressedUUID(r.Address))
	}
	published, stop := s.awaitUUIDs(uuids)
	defer stop()
	list, err := json.Marshal(uuids)
	if err != nil {
		return fmt.Errorf("encode uuids: %w", err)
	}
	waiting, err := sqlite.Query(ctx, s.DB, func(r sqlite.Scanner) (string, error) {
		var uuid string
		return uuid, r.Scan(&uuid)
	}, `SELECT uuid FROM outbox WHERE uuid IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return fmt.Errorf("look for the messages of try %s in the outbox: %w", cmd.MessageUUID(), err)
	}
	if len(waiting) == 0 {
		return nil
	}
	var still []<-chan struct{}
	for i, uuid := range uuids {
		if slices.Contains(waiting, uuid) {
			still = append(still, published[i])
		}
	}
	s.Outbox.Notify()
	return s.waitPublished(ctx, still)
}

// awaitPublished starts waiting for the publish of each of msgs, when Record
// should wait for them (PublishWait set); published is empty otherwise.
func (s Store) awaitPublished(msgs []queued) (published []<-chan struct{}, stop func()) {
	if s.PublishWait <= 0 {
		return nil, func() {}
	}
	uuids := make([]string, len(msgs))
	for i, m := range msgs {
		uuids[i] = m.msg.UUID
	}
	return s.awaitUUIDs(uuids)
}

// awaitUUIDs starts waiting for the publish of the messages uuids, a channel each
// in their order; stop releases the waits.
func (s Store) awaitUUIDs(uuids []string) (published []<-chan struct{}, stop func()) {
	stops := make([]func(), 0, len(uuids))
	for _, uuid := range uuids {
		ch, stop := s.Outbox.AwaitPublished(uuid)
		published, stops = append(published, ch), append(stops, stop)
	}
	return published, func() {
		for _, stop := range stops {
			stop()
		}
	}
}

// waitPublished waits until every channel of published is closed (none: nothing
// to wait for), and returns an error wrapping app.ErrOutcomeNotPublished when
// PublishWait passes or ctx ends first. Either way the messages are durable in the
// outbox; they are only not in the broker yet.
func (s Store) waitPublished(ctx context.Context, published []<-chan struct{}) error {
	if len(published) == 0 {
		return nil
	}
	timer := time.NewTimer(s.PublishWait)
	defer timer.Stop()
	for _, ch := range published {
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("%w after %s", app.ErrOutcomeNotPublished, s.PublishWait)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", app.ErrOutcomeNotPublished, ctx.Err())
		}
	}
	return nil
}

func saveState(ctx context.Context, tx *sql.Tx, st app.State, now int64) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO delivery_state (email_id, replay, attempts, status, updated_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (email_id) DO UPDATE SET replay = excluded.replay, attempts = excluded.attempts,
		   status = excluded.status, updated_at = excluded.updated_at`,
		st.EmailID, st.Replay, st.Attempts, st.Status, now)
	if err != nil {
		return fmt.Errorf("upsert delivery state: %w", err)
	}
	return nil
}

// queued is one message an outcome adds to the outbox.
type queued struct {
	topic string
	msg   *message.Message
	at    time.Time
}

// messagesOf builds the messages o causes, before the transaction (the writer is
// shared by the whole process, so it should only write): the try's event, the next
// try, the dead letter. Each is keyed by the email id, so they keep their order.
func (s Store) messagesOf(o app.Outcome, correlationID string) ([]queued, error) {
	try, id := o.Try, o.State.EmailID
	var out []queued
	ev, err := outbox.NewMessage(try.AttemptedUUID(), id, correlationID, o.Attempted)
	if err != nil {
		return nil, err
	}
	ev.Metadata.Set(contract.EventTypeKey, contract.EventEmailAttempted)
	setOrigin(ev, try)
	out = append(out, queued{topic: s.EventsTopic, msg: ev})
	if o.Retry != nil {
		next, err := s.retryOf(o, correlationID)
		if err != nil {
			return nil, err
		}
		out = append(out, next)
	}
	if o.DeadLetter != nil {
		dl, err := outbox.NewMessage(try.DeadLetterUUID(), id, correlationID, o.DeadLetter)
		if err != nil {
			return nil, err
		}
		dl.Metadata.Set(contract.EventTypeKey, contract.EventDeadLetter)
		setOrigin(dl, try)
		out = append(out, queued{topic: s.DeadLetterTopic, msg: dl})
	}
	return out, nil
}

// setOrigin names on msg the instance that accepted the email try carries, when it
// names one (contract.OriginInstanceKey).
func setOrigin(msg *message.Message, try contract.SendEmail) {
	if try.OriginInstance != "" {
		msg.Metadata.Set(contract.OriginInstanceKey, try.OriginInstance)
	}
}

// retryOf is the message of o's next try: on SendTopic due at o.RetryAt, or, with
// RetryTiers, on the topic of its delay's tier due now, its due time in its metadata.
func (s Store) retryOf(o app.Outcome, correlationID string) (queued, error) {
	next, err := outbox.NewMessage(o.Retry.MessageUUID(), o.State.EmailID, correlationID, o.Retry)
	if err != nil {
		return queued{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	tier, ok := s.RetryTiers.For(o.RetryAt.Sub(now()))
	if !ok {
		return queued{topic: s.SendTopic, msg: next, at: o.RetryAt}, nil
	}
	next.Metadata.Set(contract.RetryDueAtKey, o.RetryAt.UTC().Format(time.RFC3339Nano))
	return queued{topic: tier.Topic, msg: next}, nil
}

// Requeue implements app.Store.
func (s Store) Requeue(ctx context.Context, cmd contract.SendEmail) error {
	msg, err := outbox.NewMessage(cmd.MessageUUID(), cmd.EmailID, cmd.CorrelationID, cmd)
	if err != nil {
		return err
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error { return s.Outbox.Add(ctx, tx, s.SendTopic, msg, time.Time{}) })
	if err != nil {
		return fmt.Errorf("requeue %s: %w", cmd.MessageUUID(), err)
	}
	return nil
}

const suppressionColumns = `address, reason, detail, email_id, source, created_at`

// Suppressed implements app.SuppressionStore.
func (s Store) Suppressed(ctx context.Context, addrs []string) (map[string]app.Suppression, error) {
	keys := make([]string, len(addrs))
	for i, a := range addrs {
		keys[i] = app.SuppressionKey(a)
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("encode addresses: %w", err)
	}
	found, err := sqlite.Query(ctx, s.DB, scanSuppression,
		`SELECT `+suppressionColumns+` FROM delivery_suppressions WHERE address IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	out := make(map[string]app.Suppression, len(found))
	for _, sp := range found {
		out[sp.Address] = sp
	}
	return out, nil
}

// insertSuppression adds sp unless its address is on the list, and then its record
// to the outbox for SuppressionsTopic (msg); it reports whether it did.
func (s Store) insertSuppression(ctx context.Context, tx *sql.Tx, sp app.Suppression, msg *message.Message) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO delivery_suppressions (address, reason, detail, email_id, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (address) DO NOTHING`,
		sp.Address, sp.Reason, sp.Detail, sp.EmailID, sp.Source, sp.CreatedAt.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("add suppression: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	return true, s.Outbox.Add(ctx, tx, s.SuppressionsTopic, msg, time.Time{})
}

// suppressionMessage is the outbox message of c, with id: keyed by its address, so
// that an address's records keep their order.
func suppressionMessage(id string, c suppressions.Changed) (*message.Message, error) {
	return outbox.NewMessage(id, suppressions.Key(c.Address), "", c)
}

// ApplySuppression implements app.SuppressionStore. A suppressed address keeps its
// row and takes the record's reason, source and time; a removed one loses its row.
func (s Store) ApplySuppression(ctx context.Context, c suppressions.Changed) error {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if c.State == suppressions.StateRemoved {
			_, err = tx.ExecContext(ctx, `DELETE FROM delivery_suppressions WHERE address = ?`, c.Address)
		} else {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO delivery_suppressions (address, reason, detail, email_id, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
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

// announceBatch is how many suppressions AnnounceSuppressions writes per
// transaction.
const announceBatch = 500

// AnnounceSuppressions implements app.SuppressionStore: it moves the addresses of
// delivery_suppressions_unannounced (filled by migration 00005 with the list as
// it was before the upgrade) to the outbox, a batch per transaction.
func (s Store) AnnounceSuppressions(ctx context.Context) (int, error) {
	ctx = context.WithoutCancel(ctx)
	total := 0
	for {
		batch, err := sqlite.Query(ctx, s.DB, scanSuppression, `SELECT `+suppressionColumns+` FROM delivery_suppressions
			WHERE address IN (SELECT address FROM delivery_suppressions_unannounced) ORDER BY id LIMIT ?`, announceBatch)
		if err != nil {
			return total, fmt.Errorf("read the suppressions to publish: %w", err)
		}
		msgs := make([]*message.Message, len(batch))
		for i, sp := range batch {
			id, err := uuid.NewV7()
			if err != nil {
				return total, fmt.Errorf("make a message id: %w", err)
			}
			if msgs[i], err = suppressionMessage("suppression-"+id.String(), sp.Changed()); err != nil {
				return total, err
			}
		}
		err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
			for i, sp := range batch {
				if err := s.Outbox.Add(ctx, tx, s.SuppressionsTopic, msgs[i], time.Time{}); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_suppressions_unannounced WHERE address = ?`, sp.Address); err != nil {
					return fmt.Errorf("mark %s published: %w", sp.Address, err)
				}
			}
			// Addresses no longer on the list (removed since) need no record.
			_, err := tx.ExecContext(ctx,
				`DELETE FROM delivery_suppressions_unannounced WHERE address NOT IN (SELECT address FROM delivery_suppressions)`)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("publish the suppressions of before the upgrade: %w", err)
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

func scanSuppression(sc sqlite.Scanner) (app.Suppression, error) {
	var sp app.Suppression
	var created int64
	err := sc.Scan(&sp.Address, &sp.Reason, &sp.Detail, &sp.EmailID, &sp.Source, &created)
	sp.CreatedAt = time.UnixMilli(created).UTC()
	return sp, err
}
