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
	"github.com/google/uuid"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/persecond"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// Repository stores emails in the emails_* tables and queues their SendEmail
// message in the outbox in the same transaction.
type Repository struct {
	db             *sqlite.DB
	box            *outbox.Outbox
	sendTopic      string
	lifecycleTopic string
	instanceID     string
	now            func() time.Time
	quota          *quotaBook
	// perSecond counts the committed timeline entries the overview charts (see
	// PerSecond).
	perSecond *persecond.Counts
}

// NewRepository returns a repository on db, queueing SendEmail commands on
// sendTopic in box, each with instanceID as its origin, and each lifecycle event on
// lifecycleTopic.
func NewRepository(db *sqlite.DB, box *outbox.Outbox, sendTopic, lifecycleTopic, instanceID string) *Repository {
	return &Repository{db: db, box: box, sendTopic: sendTopic, lifecycleTopic: lifecycleTopic, instanceID: instanceID,
		now: time.Now, quota: newQuotaBook(db), perSecond: newPerSecond(time.Now)}
}

// Accept implements app.Repository. Concurrent requests share one commit (the
// database group-commits writes), and each is answered only once it is durable.
func (r *Repository) Accept(ctx context.Context, e app.NewEmail) (app.Accepted, error) {
	row, err := encodeEmail(e.Email, r.instanceID)
	if err != nil {
		return app.Accepted{}, err
	}
	if err := r.quota.preload(ctx, e.Quota, e.Email); err != nil {
		return app.Accepted{}, apperr.Unavailable("the database cannot store emails right now", err)
	}
	var acc app.Accepted
	// The email is committed or not whatever the client does meanwhile: a
	// disconnect must not interrupt a statement of a shared transaction.
	ctx = context.WithoutCancel(ctx)
	release := func() {}
	err = r.db.Tx(ctx, func(tx *sql.Tx) error {
		release() // this function may run twice (sqlite.DB.Tx): count the email once
		release = func() {}
		var err error
		acc, release, err = r.insert(ctx, tx, e, row)
		return err
	})
	if err != nil {
		release()
		if _, ok := apperr.As(err); ok {
			return app.Accepted{}, err
		}
		return app.Accepted{}, apperr.Unavailable("the database cannot store emails right now", err)
	}
	if !acc.Replayed {
		r.perSecond.Add(countAccepted, 1)
	}
	r.box.Notify()
	return acc, nil
}

// encodedEmail is an email's column values, recipients and SendEmail message,
// encoded before the transaction: the writer is shared by the whole process, so it
// should only write.
type encodedEmail struct {
	to, cc, bcc, tags, metadata string
	sendAt                      any
	recipients                  []delivery.Recipient
	msg                         *message.Message
}

func encodeEmail(e domain.Email, origin string) (encodedEmail, error) {
	row := encodedEmail{to: jsonList(e.To), cc: jsonList(e.Cc), bcc: jsonList(e.Bcc), tags: jsonList(e.Tags), metadata: jsonMap(e.Metadata)}
	if e.SendAt != nil {
		row.sendAt = e.SendAt.UnixMilli()
	}
	first := delivery.FirstTry(delivery.Email{
		EmailID: e.ID, CorrelationID: e.CorrelationID,
		From: e.From, To: e.To, Cc: e.Cc, Bcc: e.Bcc, ReplyTo: e.ReplyTo,
		Subject: e.Subject, Text: e.Text, HTML: e.HTML, Tags: e.Tags, Metadata: e.Metadata,
		Attachments: deliveryAttachments(e), Headers: e.Headers,
		CreatedAt: e.CreatedAt, OwnerKeyID: e.APIKeyID, OriginInstance: origin,
	})
	row.recipients = first.Recipients
	var err error
	row.msg, err = outbox.NewMessage(first.MessageUUID(), e.ID, e.CorrelationID, first)
	return row, err
}

// insert writes one email inside the shared write transaction. Its timeline's
// "accepted" entry is not stored: it is the email's created_at.
func (r *Repository) insert(ctx context.Context, tx *sql.Tx, ne app.NewEmail, row encodedEmail) (_ app.Accepted, release func(), err error) {
	release = func() {}
	acc, err := r.insertEmail(ctx, tx, ne, row, &release)
	return acc, release, err
}

// insertEmail is insert's body; release is set once the email is counted against
// its key's quota, so that the caller can give the count back if the email is not
// stored after all.
func (r *Repository) insertEmail(ctx context.Context, tx *sql.Tx, ne app.NewEmail, row encodedEmail, release *func()) (app.Accepted, error) {
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
	}
	rel, err := r.quota.reserve(ctx, ne.Quota, e)
	if err != nil {
		return app.Accepted{}, err
	}
	*release = rel
	if ne.IdempotencyKey != "" {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO emails_idempotency (key, request_hash, email_id, status, created_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, email_id = excluded.email_id,
			   status = excluded.status, created_at = excluded.created_at`,
			ne.IdempotencyKey, ne.RequestHash, e.ID, string(e.Status), now.UnixMilli()); err != nil {
			return app.Accepted{}, fmt.Errorf("store idempotency key: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO emails_emails (id, status, outcome, from_addr, to_addrs, cc_addrs, bcc_addrs, reply_to, subject,
		   text_body, html_body, tags, metadata, correlation_id, created_at, updated_at, send_at, api_key_id, size, attachments)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, string(e.Status), string(domain.OutcomePending), e.From, row.to, row.cc, row.bcc, e.ReplyTo, e.Subject,
		e.Text, e.HTML, row.tags, row.metadata, e.CorrelationID, e.CreatedAt.UnixMilli(),
		e.UpdatedAt.UnixMilli(), row.sendAt, nullable(e.APIKeyID), e.Size(), attachmentsColumn(e))
	if err != nil {
		return app.Accepted{}, fmt.Errorf("insert email %s: %w", e.ID, err)
	}
	for _, tag := range e.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO emails_tags (email_id, tag) VALUES (?, ?)`, e.ID, tag); err != nil {
			return app.Accepted{}, fmt.Errorf("insert tag: %w", err)
		}
	}
	for i, rc := range row.recipients {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO emails_recipients (email_id, position, address, type, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			e.ID, i, rc.Address, rc.Type, domain.RecipientPending, e.CreatedAt.UnixMilli()); err != nil {
			return app.Accepted{}, fmt.Errorf("insert recipient: %w", err)
		}
	}
	var at time.Time
	if e.SendAt != nil {
		at = *e.SendAt
	}
	if err := r.box.Add(ctx, tx, r.sendTopic, row.msg, at); err != nil {
		return app.Accepted{}, err
	}
	// After the SendEmail row: the relay publishes a key's rows in order, and the
	// email should not wait for its own events.
	if _, err := r.addEntries(ctx, tx, acceptedChange(e), emailFacts{tags: e.Tags, metadata: e.Metadata, correlationID: e.CorrelationID}); err != nil {
		return app.Accepted{}, err
	}
	return app.Accepted{ID: e.ID, Status: e.Status}, nil
}

// acceptedChange is the timeline of a new email: accepted, and scheduled when it
// waits for its send_at.
func acceptedChange(e domain.Email) app.Change {
	ch := app.Change{EmailID: e.ID, At: e.CreatedAt, Entries: []app.Entry{{Type: domain.EventAccepted, Detail: acceptedDetail(e)}}}
	if e.SendAt != nil {
		ch.Entries = append(ch.Entries, app.Entry{Type: domain.EventScheduled, Detail: domain.ScheduledDetail(*e.SendAt)})
	}
	return ch
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
		res, err = r.applyChange(ctx, tx, ch)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("apply %s to %s: %w", ch.SourceID, ch.EmailID, err)
	}
	if res == app.Applied { // then each of its entries is new (addEntries)
		r.countCommitted(ch.Entries)
	}
	return res, nil
}

// applyChange records ch in tx. An email this database does not hold (another
// instance's, or a bogus id) is app.UnknownEmail, not an error: nothing is written.
// What ch reports of the email's delivery goes through the order rule
// (domain.Apply), so that a report of an earlier try never replaces a later state.
func (r *Repository) applyChange(ctx context.Context, tx *sql.Tx, ch app.Change) (app.ApplyResult, error) {
	var (
		status     string
		standing   domain.Standing
		tags, meta string
		facts      emailFacts
	)
	err := tx.QueryRowContext(ctx,
		`SELECT status, dead_lettered, replay, attempts, tags, metadata, correlation_id FROM emails_emails WHERE id = ?`,
		ch.EmailID).Scan(&status, &standing.DeadLettered, &standing.Try.Replay, &standing.Try.Attempt, &tags, &meta, &facts.correlationID)
	if errors.Is(err, sql.ErrNoRows) {
		return app.UnknownEmail, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	if tellsOfLifecycle(ch) { // not for the relay's "published", on every email's path
		if err := facts.decode(tags, meta); err != nil {
			return 0, fmt.Errorf("email %s: %w", ch.EmailID, err)
		}
	}
	if fresh, err := r.addEntries(ctx, tx, ch, facts); err != nil || !fresh {
		return app.AppliedBefore, err
	}
	recipients, err := recipientsOf(ctx, tx, ch.EmailID)
	if err != nil {
		return 0, err
	}
	applied := domain.Apply(standing, recipients, ch.Report)
	if err := updateRecipients(ctx, tx, ch, applied.Changed); err != nil {
		return 0, err
	}
	if err := storeMessage(ctx, tx, ch); err != nil {
		return 0, err
	}
	current := domain.Status(status)
	if ch.Published && current == domain.StatusScheduled {
		current = domain.StatusQueued
	}
	if ch.Cancelled {
		current = domain.StatusCancelled
	}
	next := domain.StatusOf(current, applied.Recipients, applied.Standing.DeadLettered)
	if current == domain.StatusCancelled {
		next = current // final: nothing brings a cancelled email back
	}
	if err := updateEmail(ctx, tx, ch, applied, next, domain.OutcomeOf(applied.Recipients)); err != nil {
		return 0, err
	}
	return app.Applied, nil
}

// addEntries adds ch's timeline entries, each with a source id of its own made from
// ch.SourceID; it reports false when the first was there already: ch was applied.
// An entry that is a lifecycle event gets its event id and goes to topics.lifecycle
// in the same transaction (publishLifecycle), so no change is committed without its
// event, nor an event published for a change that rolled back.
func (r *Repository) addEntries(ctx context.Context, tx *sql.Tx, ch app.Change, facts emailFacts) (bool, error) {
	for i, en := range ch.Entries {
		source := ch.SourceID
		if i > 0 && source != "" {
			source = fmt.Sprintf("%s#%d", ch.SourceID, i)
		}
		var eventID string
		if _, ok := domain.LifecycleType(en.Type); ok {
			id, err := uuid.NewV7()
			if err != nil {
				return false, fmt.Errorf("event id: %w", err)
			}
			eventID = id.String()
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO emails_events (email_id, type, at, detail, source_id, event_id, recipient) VALUES (?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (source_id) DO NOTHING`,
			ch.EmailID, en.Type, ch.At.UnixMilli(), en.Detail, nullable(source), nullable(eventID), en.Recipient)
		if err != nil {
			return false, fmt.Errorf("insert event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if i == 0 {
				return false, nil
			}
			continue
		}
		if eventID != "" {
			ev := lifecycleEvent(eventID, ch.EmailID, en, ch.At, facts)
			if err := r.publishLifecycle(ctx, tx, ev, facts.correlationID); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// updateRecipients writes the recipients whose state ch changed (domain.Applied's
// Changed), adding those the email did not list yet after the others.
func updateRecipients(ctx context.Context, tx *sql.Tx, ch app.Change, changed []domain.Recipient) error {
	for _, r := range changed {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO emails_recipients (email_id, position, address, type, status, attempts, detail, updated_at, try_replay, try_attempt)
			 VALUES (?, (SELECT COUNT(*) FROM emails_recipients WHERE email_id = ?), ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (email_id, address) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
			   detail = excluded.detail, updated_at = excluded.updated_at,
			   try_replay = excluded.try_replay, try_attempt = excluded.try_attempt`,
			ch.EmailID, ch.EmailID, r.Address, r.Type, r.Status, r.Attempts, r.Detail, ch.At.UnixMilli(),
			r.Try.Replay, r.Try.Attempt); err != nil {
			return fmt.Errorf("update recipient: %w", err)
		}
	}
	return nil
}

// updateEmail moves the email to status and sets what ch says of it: its standing
// (replay, attempts, parked letter) as the order rule left it, and its last error
// and next try only when ch speaks for the email as a whole (applied.Current).
// updated_at never moves back: it is the time of the latest event applied.
func updateEmail(ctx context.Context, tx *sql.Tx, ch app.Change, applied domain.Applied, status domain.Status, outcome domain.Outcome) error {
	st := applied.Standing
	sets := []string{"updated_at = MAX(updated_at, ?)", "status = ?", "outcome = ?", "replay = ?", "attempts = ?", "dead_lettered = ?"}
	args := []any{ch.At.UnixMilli(), string(status), string(outcome), st.Try.Replay, st.Try.Attempt, st.DeadLettered}
	if applied.StartsReplay {
		sets = append(sets, "last_error = ''")
	}
	if applied.Current && ch.LastError != nil {
		sets = append(sets, "last_error = ?")
		args = append(args, *ch.LastError)
	}
	if applied.Current && ch.NextAttemptAt != nil && status == domain.StatusRetrying {
		sets = append(sets, "next_attempt_at = ?")
		args = append(args, ch.NextAttemptAt.UnixMilli())
	} else if status != domain.StatusRetrying {
		sets = append(sets, "next_attempt_at = NULL")
	}
	if ch.SendAt != nil {
		sets = append(sets, "send_at = ?")
		args = append(args, ch.SendAt.UnixMilli())
	}
	if status == domain.StatusSent {
		sets = append(sets, "sent_at = COALESCE(sent_at, ?)")
		args = append(args, ch.At.UnixMilli())
	}
	args = append(args, ch.EmailID)
	if _, err := tx.ExecContext(ctx, `UPDATE emails_emails SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
		return fmt.Errorf("update email: %w", err)
	}
	return nil
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
			At: at, Entries: []app.Entry{{Type: domain.EventPublished, Detail: "to " + topic}}, Published: true}
		// The relay publishes only this database's rows, so the email is here.
		if _, err := r.applyChange(ctx, tx, ch); err != nil {
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
