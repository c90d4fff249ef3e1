package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// plan remembers which rows are planned, in flight or awaiting deletion, which keys
// are planned or in flight, and how far the current sweep through the due rows got.
// Its keys are those of every topic: a key with a row on one topic gets no row on
// another until the first is deleted.
type plan struct {
	ids  map[int64]bool
	keys map[string]bool
	// A sweep reads due rows forward from a cursor, so rows planned earlier (still in
	// the outbox until deleted) are not read again on every read. held keeps the keys
	// of rows the sweep passed without planning: their later rows must wait too, and
	// once such a key is free the sweep starts over to pick its row up.
	sweeping bool
	cursorAt int64
	cursorID int64
	held     map[string]bool
	began    time.Time // when the sweep started over last
	// refused is set once the sweep passed rows because their lane could take no
	// more: the sweep then keeps its cursor at the end of the due rows, rather than
	// reading those rows again on every read, until their lane has room.
	refused bool
}

func newPlan() *plan {
	return &plan{ids: map[int64]bool{}, keys: map[string]bool{}, held: map[string]bool{}}
}

// startOver clears what the last sweep held back; the read it precedes begins at
// the first due row.
func (p *plan) startOver(now time.Time) {
	p.refused = false
	clear(p.held)
	p.began = now
}

// free tells whether key has no row planned or in flight and none held back by the
// sweep: only then may the sweep plan a row of it.
func (p *plan) free(key string) bool { return !p.keys[key] && !p.held[key] }

// reserve plans the row id of key.
func (p *plan) reserve(id int64, key string) { p.ids[id], p.keys[key] = true, true }

// hold keeps key back for the rest of the sweep: the sweep passed one of its rows
// without planning it, so its later rows must wait too.
func (p *plan) hold(key string) { p.held[key] = true }

// release forgets u: its rows were deleted, or they stay in the outbox (the relay
// stops, or a read or a delete failed, and then the sweep starts over, as they are
// behind the cursor).
func (p *plan) release(u unit) {
	for _, rw := range u {
		delete(p.keys, rw.key)
		if p.held[rw.key] {
			p.sweeping = false // the key's next row is behind the cursor
		}
		delete(p.ids, rw.id)
	}
}

// due reads up to limit due rows in (due time, id) order, past the sweep's cursor
// while it sweeps, from the first due row otherwise; it moves the cursor to the last
// row read. take sees each row not yet planned and plans it or not; due returns the
// rows it planned, with their messages (a row it passes costs none), and how many
// rows it read. Starting over, SQLite leaves the planned rows out itself, so a published
// row waiting for its delete costs no read. On an error nothing this read took stays
// planned.
func (r *Relay) due(ctx context.Context, now int64, limit int, p *plan, take func(id int64, key, topic string) bool) ([]row, int, error) {
	const cols = `SELECT id, available_at, uuid, topic, partition_key, payload, metadata FROM outbox `
	var (
		q   *sql.Rows
		err error
	)
	if p.sweeping {
		q, err = r.db.Read.QueryContext(ctx, cols+
			`WHERE available_at <= ? AND (available_at, id) > (?, ?)
			 ORDER BY available_at, id LIMIT ?`, now, p.cursorAt, p.cursorID, limit)
	} else {
		// Never null: NOT IN a set holding NULL matches nothing.
		planned, jerr := json.Marshal(slices.AppendSeq(make([]int64, 0, len(p.ids)), maps.Keys(p.ids)))
		if jerr != nil {
			return nil, 0, fmt.Errorf("outbox: encode planned ids: %w", jerr)
		}
		q, err = r.db.Read.QueryContext(ctx, cols+
			`WHERE available_at <= ? AND id NOT IN (SELECT value FROM json_each(?))
			 ORDER BY available_at, id LIMIT ?`, now, string(planned), limit)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("outbox: select due rows: %w", err)
	}
	defer q.Close()
	var (
		rows []row
		read int
	)
	for q.Next() {
		var (
			rw                      row
			uuid, payload, metadata sql.RawBytes
		)
		if err := q.Scan(&rw.id, &rw.at, &uuid, &rw.topic, &rw.key, &payload, &metadata); err != nil {
			p.release(rows)
			return nil, 0, fmt.Errorf("outbox: scan row: %w", err)
		}
		read++
		p.cursorAt, p.cursorID = rw.at, rw.id
		if p.ids[rw.id] {
			continue // planned in an earlier sweep that got further
		}
		if !take(rw.id, rw.key, rw.topic) {
			continue
		}
		rw.msg = message.NewMessage(string(uuid), bytes.Clone(payload))
		if err := decodeMetadata(metadata, rw.msg.Metadata); err != nil {
			p.release(append(rows, rw)) // none of this read's rows is planned
			return nil, 0, fmt.Errorf("outbox: row %d metadata: %w", rw.id, err)
		}
		rows = append(rows, rw)
	}
	if err := q.Err(); err != nil {
		p.release(rows)
		return nil, 0, fmt.Errorf("outbox: read due rows: %w", err)
	}
	return rows, read, nil
}

// nextDue returns when the first row not yet due falls due, or zero with none.
func (r *Relay) nextDue(ctx context.Context, now int64) (time.Time, error) {
	var next sql.NullInt64
	err := r.db.Read.QueryRowContext(ctx, `SELECT MIN(available_at) FROM outbox WHERE available_at > ?`, now).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: next due row: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(next.Int64), nil
}
