package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"
)

// deleter deletes published rows and runs the PublishedHooks, in a goroutine of its
// own so that publishing goes on while a delete waits for the one writer. It takes
// one batch at a time: everything published since it took the last, many units in
// one transaction.
type deleter struct {
	relay   *Relay
	batches chan []published  // from the dispatcher
	results chan deleteResult // to the dispatcher, one per batch
}

// deleteResult is what the deleter reports for each batch.
type deleteResult struct {
	batch []published
	err   error
}

func newDeleter(r *Relay) *deleter {
	return &deleter{relay: r, batches: make(chan []published), results: make(chan deleteResult, 1)}
}

// run deletes batches until the batches channel is closed. It deletes with a context
// of its own: on shutdown the rows already published are still deleted.
func (dl *deleter) run() {
	for batch := range dl.batches {
		err := dl.relay.markPublished(context.Background(), batch)
		if err == nil {
			dl.relay.box.published(uuidsOf(batch))
		}
		dl.results <- deleteResult{batch: batch, err: err}
	}
}

// uuidsOf lists the message uuids of batch.
func uuidsOf(batch []published) []string {
	var out []string
	for _, p := range batch {
		for _, rw := range p.unit {
			out = append(out, rw.msg.UUID)
		}
	}
	return out
}

// markPublished deletes the rows of batch and runs the hooks for each unit, in one
// transaction.
func (r *Relay) markPublished(ctx context.Context, batch []published) error {
	r.hookMu.RLock()
	hooks := r.hooks
	r.hookMu.RUnlock()
	var ids []int64
	for _, p := range batch {
		for _, rw := range p.unit {
			ids = append(ids, rw.id)
		}
	}
	slices.Sort(ids)
	runs := consecutiveRuns(ids)
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, run := range runs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id BETWEEN ? AND ?`, run[0], run[1]); err != nil {
				return fmt.Errorf("delete published rows: %w", err)
			}
		}
		for _, p := range batch {
			msgs := make([]*message.Message, len(p.unit))
			for i, rw := range p.unit {
				msgs[i] = rw.msg
			}
			for _, hook := range hooks {
				if err := hook(ctx, tx, p.unit[0].topic, msgs, p.at); err != nil {
					return fmt.Errorf("published hook: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: mark %d rows published: %w", len(ids), err)
	}
	return nil
}

// consecutiveRuns splits sorted, distinct ids into runs of consecutive integers,
// each as its first and last id: a relay batch is mostly one or a few such runs, and
// one ranged DELETE walks a run's rows in one statement, where a list of ids seeks
// each. A run holds exactly the batch's ids, never a row between them.
func consecutiveRuns(ids []int64) [][2]int64 {
	var runs [][2]int64
	for _, id := range ids {
		if n := len(runs); n > 0 && runs[n-1][1] == id-1 {
			runs[n-1][1] = id
			continue
		}
		runs = append(runs, [2]int64{id, id})
	}
	return runs
}
