// Package adapters implements the webhooks module's store on SQLite and its HTTP
// client.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Store implements app.Store on the webhooks_* tables.
type Store struct{ DB *sqlite.DB }

var _ app.Store = Store{}

const endpointColumns = `id, url, events, description, secret, enabled, disabled_reason, consecutive_failures,
	failing_since, created_at, updated_at`

const deliveryColumns = `d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.next_attempt_at,
	d.last_status_code, d.last_duration_ms, d.last_response, d.last_error, d.created_at, d.updated_at`

// CreateEndpoint implements app.Store.
func (s Store) CreateEndpoint(ctx context.Context, e domain.Endpoint) error {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	events, _ := json.Marshal(e.Events)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks_endpoints (`+endpointColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)`,
			e.ID, e.URL, string(events), e.Description, e.Secret, e.Enabled, e.DisabledReason,
			e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return apperr.Unavailable("cannot store the webhook", fmt.Errorf("insert webhook %s: %w", e.ID, err))
	}
	return nil
}

// ListEndpoints implements app.Store.
func (s Store) ListEndpoints(ctx context.Context) ([]domain.Endpoint, error) {
	eps, err := sqlite.Query(ctx, s.DB, scanEndpoint, `SELECT `+endpointColumns+` FROM webhooks_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, apperr.Unavailable("cannot list webhooks", err)
	}
	return eps, nil
}

// GetEndpoint implements app.Store.
func (s Store) GetEndpoint(ctx context.Context, id string) (domain.Endpoint, bool, error) {
	e, err := scanEndpoint(s.DB.Read.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhooks_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, apperr.Unavailable("cannot read the webhook", err)
	}
	return e, true, nil
}

// UpdateEndpoint implements app.Store.
func (s Store) UpdateEndpoint(ctx context.Context, id string, change func(*domain.Endpoint) error) (domain.Endpoint, bool, error) {
	ctx = context.WithoutCancel(ctx)
	var (
		out   domain.Endpoint
		found bool
	)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		found = false // fn may run twice (sqlite.DB.Tx)
		e, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhooks_endpoints WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := change(&e); err != nil {
			return err
		}
		events, _ := json.Marshal(e.Events)
		_, err = tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET url = ?, events = ?, description = ?, secret = ?,
			enabled = ?, disabled_reason = ?, consecutive_failures = ?, failing_since = ?, updated_at = ? WHERE id = ?`,
			e.URL, string(events), e.Description, e.Secret, e.Enabled, e.DisabledReason, e.ConsecutiveFailures,
			sqlite.MillisOrNull(e.FailingSince), e.UpdatedAt.UnixMilli(), e.ID)
		out, found = e, err == nil
		return err
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return out, false, err
		}
		return out, false, apperr.Unavailable("cannot change the webhook", err)
	}
	return out, found, nil
}

// DeleteEndpoint implements app.Store. Its deliveries go with it (ON DELETE
// CASCADE); events no delivery needs any more are left to the retention sweep.
func (s Store) DeleteEndpoint(ctx context.Context, id string) (bool, error) {
	ctx = context.WithoutCancel(ctx)
	var n int64
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks_endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, apperr.Unavailable("cannot delete the webhook", err)
	}
	return n > 0, nil
}

// ListDeliveries implements app.Store.
func (s Store) ListDeliveries(ctx context.Context, endpointID string, cursor int64, limit int) ([]domain.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM webhooks_deliveries d WHERE d.endpoint_id = ?`
	args := []any{endpointID}
	if cursor > 0 {
		q += ` AND d.id < ?`
		args = append(args, cursor)
	}
	q += ` ORDER BY d.id DESC LIMIT ?`
	args = append(args, limit)
	ds, err := sqlite.Query(ctx, s.DB, scanDelivery, q, args...)
	if err != nil {
		return nil, apperr.Unavailable("cannot list deliveries", err)
	}
	return ds, nil
}

// ReplayDelivery implements app.Store.
func (s Store) ReplayDelivery(ctx context.Context, endpointID string, id int64, now time.Time) (domain.Delivery, bool, error) {
	ctx = context.WithoutCancel(ctx)
	var (
		d     domain.Delivery
		found bool
	)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		found = false
		res, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET status = ?, next_attempt_at = ?, updated_at = ?
			WHERE id = ? AND endpoint_id = ?`, domain.StatusPending, now.UnixMilli(), now.UnixMilli(), id, endpointID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhooks_deliveries d WHERE d.id = ?`, id))
		found = err == nil
		return err
	})
	if err != nil {
		return d, false, apperr.Unavailable("cannot replay the delivery", err)
	}
	return d, found, nil
}

// Subscribed implements app.Store, on the read pool: most events have no
// subscriber, and finding that out keeps the database's one writer for work (an
// endpoint created meanwhile misses the event, as it would had the event come a
// moment earlier).
func (s Store) Subscribed(ctx context.Context, eventType string) (bool, error) {
	ids, err := subscribers(ctx, s.DB.Read, eventType)
	return len(ids) > 0, err
}

// FanOut implements app.Store.
func (s Store) FanOut(ctx context.Context, ev app.Event, now time.Time) (int, error) {
	ctx = context.WithoutCancel(ctx)
	added := 0
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		added = 0 // fn may run twice (sqlite.DB.Tx)
		ids, err := subscribers(ctx, tx, ev.Type)
		if err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_events (id, type, payload, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, ev.Payload, now.UnixMilli()); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhooks_deliveries (endpoint_id, event_id, event_type, status,
				attempts, next_attempt_at, last_response, last_error, created_at, updated_at)
				VALUES (?, ?, ?, ?, 0, ?, '', '', ?, ?) ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
				id, ev.ID, ev.Type, domain.StatusPending, now.UnixMilli(), now.UnixMilli(), now.UnixMilli())
			if err != nil {
				return fmt.Errorf("insert delivery: %w", err)
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	return added, err
}

// querier is what subscribers reads with: the read pool, or a write transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// subscribers returns the ids of the enabled endpoints subscribed to typ.
func subscribers(ctx context.Context, q querier, typ string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM webhooks_endpoints e WHERE enabled = 1
		AND EXISTS (SELECT 1 FROM json_each(e.events) WHERE value = ?)`, typ)
	if err != nil {
		return nil, fmt.Errorf("find subscribers: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Due implements app.Store. It asks endpoint by endpoint, each a seek on the
// (endpoint_id, status, next_attempt_at) index: a query over all pending
// deliveries that left out the busy endpoints' would walk every delivery waiting
// for an endpoint that hangs, on every wake of the sender.
func (s Store) Due(ctx context.Context, now time.Time, skipEndpoints []string, skipDeliveries []int64, perEndpoint, limit int) ([]app.Due, error) {
	endpoints, err := sqlite.Query(ctx, s.DB, func(sc sqlite.Scanner) (id string, err error) {
		err = sc.Scan(&id)
		return id, err
	}, `SELECT id FROM webhooks_endpoints WHERE enabled = 1 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []app.Due
	for _, ep := range endpoints {
		if len(out) >= limit {
			break
		}
		if slices.Contains(skipEndpoints, ep) {
			continue
		}
		due, err := s.dueOf(ctx, ep, now, skipDeliveries, min(perEndpoint, limit-len(out)))
		if err != nil {
			return nil, err
		}
		out = append(out, due...)
	}
	slices.SortStableFunc(out, func(a, b app.Due) int { return a.Delivery.NextAttemptAt.Compare(b.Delivery.NextAttemptAt) })
	return out, nil
}

// dueOf returns at most limit pending deliveries of one endpoint due at now,
// soonest first, leaving out those in skip.
func (s Store) dueOf(ctx context.Context, endpointID string, now time.Time, skip []int64, limit int) ([]app.Due, error) {
	q := `SELECT ` + deliveryColumns + `, e.url, e.secret, ev.payload FROM webhooks_deliveries d
		JOIN webhooks_endpoints e ON e.id = d.endpoint_id
		JOIN webhooks_events ev ON ev.id = d.event_id
		WHERE d.endpoint_id = ? AND d.status = ? AND d.next_attempt_at <= ?`
	args := []any{endpointID, domain.StatusPending, now.UnixMilli()}
	if len(skip) > 0 {
		q += ` AND d.id NOT IN (` + placeholders(len(skip)) + `)`
		for _, id := range skip {
			args = append(args, id)
		}
	}
	q += ` ORDER BY d.next_attempt_at, d.id LIMIT ?`
	args = append(args, limit)
	return sqlite.Query(ctx, s.DB, func(sc sqlite.Scanner) (app.Due, error) {
		var due app.Due
		d, err := scanDeliveryWith(sc, &due.URL, &due.Secret, &due.Payload)
		due.Delivery = d
		return due, err
	}, q, args...)
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// NextDue implements app.Store.
func (s Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.DB.Read.QueryRowContext(ctx, `SELECT MIN((SELECT MIN(d.next_attempt_at) FROM webhooks_deliveries d
		WHERE d.endpoint_id = e.id AND d.status = ?)) FROM webhooks_endpoints e WHERE e.enabled = 1`, domain.StatusPending).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(next.Int64), true, nil
}

// RecordTry implements app.Store.
func (s Store) RecordTry(ctx context.Context, r app.TryResult, disable app.DisableRule) error {
	ctx = context.WithoutCancel(ctx)
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// A replay during the try (updated_at after the try began) keeps the
		// delivery pending and due as the replay set it.
		at := r.At.UnixMilli()
		res, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET
			status = CASE WHEN updated_at > ? THEN status ELSE ? END, attempts = attempts + 1,
			next_attempt_at = CASE WHEN updated_at > ? THEN next_attempt_at ELSE ? END,
			last_status_code = ?, last_duration_ms = ?, last_response = ?, last_error = ?,
			updated_at = MAX(updated_at, ?) WHERE id = ? AND status = ?`,
			at, r.Status, at, r.NextAttemptAt.UnixMilli(), r.StatusCode, r.DurationMs, r.Response, r.Error, at,
			r.DeliveryID, domain.StatusPending)
		if err != nil {
			return fmt.Errorf("record try of delivery %d: %w", r.DeliveryID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // deleted with its endpoint meanwhile
		}
		switch r.Outcome {
		case app.OutcomeSucceeded:
			_, err = tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET consecutive_failures = 0, failing_since = NULL
				WHERE id = ?`, r.EndpointID)
		case app.OutcomeGone:
			err = disableEndpoint(ctx, tx, r.EndpointID, r.Error, r.At)
		default:
			err = recordFailure(ctx, tx, r, disable)
		}
		return err
	})
}

// recordFailure extends the endpoint's failing streak by r's try and disables it
// when disable says so.
func recordFailure(ctx context.Context, tx *sql.Tx, r app.TryResult, disable app.DisableRule) error {
	var (
		failures int
		since    int64
		enabled  bool
	)
	err := tx.QueryRowContext(ctx, `UPDATE webhooks_endpoints SET consecutive_failures = consecutive_failures + 1,
		failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING consecutive_failures, failing_since, enabled`,
		r.At.UnixMilli(), r.EndpointID).Scan(&failures, &since, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("count failure of webhook %s: %w", r.EndpointID, err)
	}
	if !enabled {
		return nil
	}
	if off, reason := disable(failures, time.UnixMilli(since).UTC()); off {
		return disableEndpoint(ctx, tx, r.EndpointID, reason, r.At)
	}
	return nil
}

func disableEndpoint(ctx context.Context, tx *sql.Tx, id, reason string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ?
		WHERE id = ? AND enabled = 1`, reason, at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("disable webhook %s: %w", id, err)
	}
	return nil
}

// DeleteOld deletes at most limit rows last changed longer than period before now:
// deliveries first (whatever their status: a delivery waiting that long for a
// disabled endpoint goes too), then events no delivery refers to. period 0 keeps
// them for ever. It returns how many rows it deleted.
func (s Store) DeleteOld(ctx context.Context, period time.Duration, now time.Time, limit int) (int, error) {
	if period <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-period).UnixMilli()
	ctx = context.WithoutCancel(ctx)
	var n int
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks_deliveries WHERE id IN
			(SELECT id FROM webhooks_deliveries WHERE updated_at < ? LIMIT ?)`, cutoff, limit)
		if err != nil {
			return fmt.Errorf("delete old deliveries: %w", err)
		}
		d, _ := res.RowsAffected()
		n = int(d)
		if n >= limit {
			return nil
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM webhooks_events WHERE id IN (SELECT id FROM webhooks_events e
			WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM webhooks_deliveries d WHERE d.event_id = e.id) LIMIT ?)`,
			cutoff, limit-n)
		if err != nil {
			return fmt.Errorf("delete old events: %w", err)
		}
		e, _ := res.RowsAffected()
		n += int(e)
		return nil
	})
	return n, err
}

func scanEndpoint(sc sqlite.Scanner) (domain.Endpoint, error) {
	var (
		e               domain.Endpoint
		events          string
		failing         sql.NullInt64
		created, update int64
	)
	err := sc.Scan(&e.ID, &e.URL, &events, &e.Description, &e.Secret, &e.Enabled, &e.DisabledReason,
		&e.ConsecutiveFailures, &failing, &created, &update)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return e, fmt.Errorf("webhook %s: events: %w", e.ID, err)
	}
	e.FailingSince = sqlite.TimeOrNil(failing)
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(update).UTC()
	return e, nil
}

func scanDelivery(sc sqlite.Scanner) (domain.Delivery, error) { return scanDeliveryWith(sc) }

// scanDeliveryWith scans deliveryColumns and then extra columns into extra.
func scanDeliveryWith(sc sqlite.Scanner, extra ...any) (domain.Delivery, error) {
	var (
		d                      domain.Delivery
		next, created, updated int64
		code, duration         sql.NullInt64
	)
	dest := append([]any{&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &next,
		&code, &duration, &d.LastResponse, &d.LastError, &created, &updated}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return d, err
	}
	if code.Valid {
		c := int(code.Int64)
		d.LastStatusCode = &c
	}
	if duration.Valid {
		d.LastDurationMs = &duration.Int64
	}
	d.NextAttemptAt = time.UnixMilli(next).UTC()
	d.CreatedAt, d.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return d, nil
}
