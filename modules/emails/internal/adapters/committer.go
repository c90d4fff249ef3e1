package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// maxGroup is the most emails one transaction commits.
const maxGroup = 256

// committer is group commit for accepted emails: concurrent requests queue here, one
// goroutine writes all waiting emails in one transaction (each in a savepoint, so one
// bad email does not fail the others), commits once, and only then answers each
// request. One fsync serves many emails, which is where SQLite's speed is.
type committer struct {
	db      *sqlite.DB
	write   func(ctx context.Context, tx *sql.Tx, e app.NewEmail) (app.Accepted, error)
	after   func() // after each commit: wake the outbox relay
	log     *slog.Logger
	jobs    chan *job
	stop    chan struct{}
	stopped sync.WaitGroup
}

type job struct {
	ctx   context.Context
	email app.NewEmail
	done  chan result
}

type result struct {
	acc app.Accepted
	err error
}

var errStopped = apperr.Unavailable("shutting down", errors.New("committer stopped"))

func newCommitter(db *sqlite.DB, write func(context.Context, *sql.Tx, app.NewEmail) (app.Accepted, error), after func(), log *slog.Logger) *committer {
	c := &committer{db: db, write: write, after: after, log: log, jobs: make(chan *job, maxGroup), stop: make(chan struct{})}
	c.stopped.Add(1)
	go c.run()
	return c
}

// submit queues e and waits for its commit.
func (c *committer) submit(ctx context.Context, e app.NewEmail) (app.Accepted, error) {
	j := &job{ctx: ctx, email: e, done: make(chan result, 1)}
	select {
	case c.jobs <- j:
	case <-c.stop:
		return app.Accepted{}, errStopped
	case <-ctx.Done():
		return app.Accepted{}, ctx.Err()
	}
	// Once queued, the job is committed or failed whatever the caller does: wait.
	r := <-j.done
	return r.acc, r.err
}

// close finishes every queued job, then stops.
func (c *committer) close() {
	close(c.stop)
	c.stopped.Wait()
}

func (c *committer) run() {
	defer c.stopped.Done()
	batch := make([]*job, 0, maxGroup)
	for {
		select {
		case j := <-c.jobs:
			batch = append(batch[:0], j)
		case <-c.stop:
			// Drain what was queued before stop.
			for {
				select {
				case j := <-c.jobs:
					c.commit([]*job{j})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxGroup {
			select {
			case j := <-c.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []*job) {
	results := make([]result, len(batch))
	ctx := context.Background()
	err := c.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, j := range batch {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT accept"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			acc, err := c.write(ctx, tx, j.email)
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO accept"); rerr != nil {
					return fmt.Errorf("rollback to savepoint: %w", rerr)
				}
			}
			if _, rerr := tx.ExecContext(ctx, "RELEASE accept"); rerr != nil {
				return fmt.Errorf("release savepoint: %w", rerr)
			}
			results[i] = result{acc: acc, err: err}
		}
		return nil
	})
	if err != nil {
		c.log.Error("accept: commit failed", "emails", len(batch), "error", err)
		for i := range results {
			results[i] = result{err: apperr.Unavailable("the database cannot store emails right now", err)}
		}
	} else {
		c.after()
	}
	for i, j := range batch {
		j.done <- results[i]
	}
}
