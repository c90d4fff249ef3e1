package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// emailColumns are what scanEmail reads, in its order; listColumns are the same
// with the bodies read as empty: the list does not show them, and an email's
// text and HTML may be hundreds of kilobytes each.
const (
	emailColumns = columnsBeforeBodies + `e.text_body, e.html_body, ` + columnsAfterBodies
	listColumns  = columnsBeforeBodies + `'', '', ` + columnsAfterBodies

	columnsBeforeBodies = `e.id, e.status, e.outcome, e.from_addr, e.to_addrs, e.cc_addrs, e.bcc_addrs, e.reply_to, e.subject, `
	columnsAfterBodies  = `e.tags, e.metadata, e.attempts, e.last_error, e.next_attempt_at, e.correlation_id,
	e.created_at, e.updated_at, e.sent_at, e.send_at, e.api_key_id`
)

// Get implements app.Repository.
func (r *Repository) Get(ctx context.Context, id string) (domain.Email, error) {
	row := r.db.Read.QueryRowContext(ctx, `SELECT `+emailColumns+` FROM emails_emails e WHERE e.id = ?`, id)
	e, err := scanEmail(row)
	if errors.Is(err, sql.ErrNoRows) {
		return e, apperr.NotFound("email", id)
	}
	if err != nil {
		return e, apperr.Unavailable("cannot read the email", err)
	}
	// Oldest first by time, not by insertion: events come by different paths (the
	// relay records "published" at once, a replay's "replayed" arrives later over
	// the events topic), so rows are not always inserted in the order they happened.
	events, err := sqlite.Query(ctx, r.db, scanEvent, `SELECT type, at, detail, recipient FROM emails_events WHERE email_id = ? ORDER BY at, id`, id)
	if err != nil {
		return e, apperr.Unavailable("cannot read the email's events", err)
	}
	if len(events) == 0 || events[0].Type != domain.EventAccepted {
		// Emails accepted before "accepted" was stored: it is their created_at.
		events = append([]domain.Event{{Type: domain.EventAccepted, At: e.CreatedAt, Detail: acceptedDetail(e)}}, events...)
	}
	e.Events = events
	if e.Recipients, err = recipientsOf(ctx, r.db.Read, id); err != nil {
		return e, apperr.Unavailable("cannot read the email's recipients", err)
	}
	if e.Attachments, err = attachmentsOf(ctx, r.db.Read, id); err != nil {
		return e, apperr.Unavailable("cannot read the email's attachments", err)
	}
	return e, nil
}

// querier is what reads recipients: the read pool, or a write transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// recipientsOf reads an email's recipients in to, cc, bcc order.
func recipientsOf(ctx context.Context, q querier, emailID string) ([]domain.Recipient, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT address, type, status, attempts, detail, updated_at, try_replay, try_attempt
		 FROM emails_recipients WHERE email_id = ? ORDER BY position`, emailID)
	if err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	defer rows.Close()
	var out []domain.Recipient
	for rows.Next() {
		var rc domain.Recipient
		var updated int64
		if err := rows.Scan(&rc.Address, &rc.Type, &rc.Status, &rc.Attempts, &rc.Detail, &updated, &rc.Try.Replay, &rc.Try.Attempt); err != nil {
			return nil, fmt.Errorf("read recipients: %w", err)
		}
		rc.UpdatedAt = time.UnixMilli(updated).UTC()
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	return out, nil
}

// scanEvent reads a timeline entry; a per-recipient one shows its address first
// ("b@example.com: 451 4.7.1 try later"), as entries did before the address had a
// column of its own.
func scanEvent(s sqlite.Scanner) (domain.Event, error) {
	var ev domain.Event
	var at int64
	var recipient string
	err := s.Scan(&ev.Type, &at, &ev.Detail, &recipient)
	ev.At = time.UnixMilli(at).UTC()
	if recipient != "" {
		ev.Detail = recipient + ": " + ev.Detail
	}
	return ev, err
}

// List implements app.Repository.
func (r *Repository) List(ctx context.Context, f app.ListFilter) ([]domain.Email, error) {
	conds, args := listConditions(f)
	if f.Cursor != "" {
		conds = append(conds, "e.id < ?")
		args = append(args, f.Cursor)
	}
	out, err := sqlite.Query(ctx, r.db, scanEmail,
		`SELECT `+listColumns+` FROM emails_emails e`+where(conds)+` ORDER BY e.id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, apperr.Unavailable("cannot list emails", err)
	}
	return out, nil
}

// Count implements app.Repository.
func (r *Repository) Count(ctx context.Context, f app.ListFilter) (int, error) {
	conds, args := listConditions(f)
	var n int
	if err := r.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM emails_emails e`+where(conds), args...).Scan(&n); err != nil {
		return 0, apperr.Unavailable("cannot count emails", err)
	}
	return n, nil
}

// listConditions turns the list's filters into SQL conditions on emails_emails e,
// one each, with their arguments in order; the cursor and the limit are the page's
// business, not the filter's, so the page and the count share these.
func listConditions(f app.ListFilter) (conds []string, args []any) {
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.APIKeyID != "" {
		add("e.api_key_id = ?", f.APIKeyID)
	}
	if f.Status != "" {
		add("e.status = ?", string(f.Status))
	}
	if f.Tag != "" {
		add("e.id IN (SELECT email_id FROM emails_tags WHERE tag = ?)", f.Tag)
	}
	if f.Recipient != "" {
		add("e.id IN (SELECT email_id FROM emails_recipients WHERE address = ?)", f.Recipient)
	}
	if f.Subject != "" {
		add(`e.subject LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(f.Subject)+"%")
	}
	if !f.CreatedAfter.IsZero() {
		add("e.created_at >= ?", f.CreatedAfter.UnixMilli())
	}
	if !f.CreatedBefore.IsZero() {
		add("e.created_at < ?", f.CreatedBefore.UnixMilli())
	}
	return conds, args
}

// likeEscaper escapes LIKE's wildcards (and its escape character), so that a
// subject searched for matches as written.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// where is the WHERE clause of conds, all of which must hold; "" for none.
func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// CountByStatus counts emails per status, for metrics.
func (r *Repository) CountByStatus(ctx context.Context) (map[domain.Status]int, error) {
	type count struct {
		status string
		n      int
	}
	counts, err := sqlite.Query(ctx, r.db, func(s sqlite.Scanner) (c count, err error) {
		err = s.Scan(&c.status, &c.n)
		return c, err
	}, `SELECT status, COUNT(*) FROM emails_emails GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count emails by status: %w", err)
	}
	out := make(map[domain.Status]int, len(counts))
	for _, c := range counts {
		out[domain.Status(c.status)] = c.n
	}
	return out, nil
}

func scanEmail(s sqlite.Scanner) (domain.Email, error) {
	var (
		e                                        domain.Email
		status, outcome, to, cc, bcc, tags, meta string
		next, sent, sendAt                       sql.NullInt64
		apiKeyID                                 sql.NullString
		created, updated                         int64
	)
	err := s.Scan(&e.ID, &status, &outcome, &e.From, &to, &cc, &bcc, &e.ReplyTo, &e.Subject, &e.Text, &e.HTML, &tags, &meta,
		&e.Attempts, &e.LastError, &next, &e.CorrelationID, &created, &updated, &sent, &sendAt, &apiKeyID)
	if err != nil {
		return e, err
	}
	e.Status, e.Outcome = domain.Status(status), domain.Outcome(outcome)
	e.APIKeyID = apiKeyID.String
	for _, f := range []struct {
		raw string
		dst any
	}{{to, &e.To}, {cc, &e.Cc}, {bcc, &e.Bcc}, {tags, &e.Tags}, {meta, &e.Metadata}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return e, fmt.Errorf("decode email %s: %w", e.ID, err)
		}
	}
	e.CreatedAt = time.UnixMilli(created).UTC()
	e.UpdatedAt = time.UnixMilli(updated).UTC()
	e.NextAttemptAt = sqlite.TimeOrNil(next)
	e.SentAt = sqlite.TimeOrNil(sent)
	e.SendAt = sqlite.TimeOrNil(sendAt)
	return e, nil
}
