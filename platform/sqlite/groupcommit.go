package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// maxGroup is the most transactions one commit carries.
const maxGroup = 256

// ErrClosed is returned by Tx after Close.
var ErrClosed = errors.New("database closed")

// groupCommit runs every write transaction of the process through one goroutine that
// folds all transactions waiting at that moment into one SQLite transaction, each in
// a savepoint of its own, commits once and then answers each caller. SQLite has one
// writer and synchronous=FULL costs an fsync per commit; sharing that fsync among
// everything that queued during the previous one is where the write throughput is.
// A caller's error rolls back only its own work (the group is then run again with a
// savepoint each, see runBatch); a failed commit fails every caller in the group, so
// nobody is told "committed" for work that is not.
type groupCommit struct {
	db      *sql.DB
	jobs    chan *txJob
	stop    chan struct{}
	stopped sync.WaitGroup
	// mu orders submits before close: once closed is set, no job enters jobs, so
	// the final drain sees every job that did.
	mu     sync.RWMutex
	closed bool
	// topUp asks for a checkpoint on the writer connection before the next
	// group (see checkpointer).
	topUp atomic.Bool
	// refusal, once set, is every transaction's error from then on (see refuse).
	refusal atomic.Pointer[error]
	// busy is held while a group is written: refuse takes it to wait for the
	// group in progress.
	busy sync.Mutex
}

type txJob struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

func newGroupCommit(db *sql.DB) *groupCommit {
	g := &groupCommit{db: db, jobs: make(chan *txJob, maxGroup), stop: make(chan struct{})}
	g.stopped.Add(1)
	go g.run()
	return g
}

// checkpointBeforeNext makes the writer checkpoint before its next group.
func (g *groupCommit) checkpointBeforeNext() { g.topUp.Store(true) }

// refuse makes every transaction from now on fail with err without being run, and
// returns once the group being written, if any, is committed or failed: after it,
// nothing more is committed and the writer connection is idle for good, so the
// caller may use it (see DB.rescue). Only the first call's err counts.
func (g *groupCommit) refuse(err error) {
	g.refusal.CompareAndSwap(nil, &err)
	g.busy.Lock()
	defer g.busy.Unlock()
}

// refused is refuse's error, or nil.
func (g *groupCommit) refused() error {
	if err := g.refusal.Load(); err != nil {
		return *err
	}
	return nil
}

func (g *groupCommit) submit(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := g.refused(); err != nil {
		return err
	}
	j := &txJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	select {
	case g.jobs <- j:
		g.mu.RUnlock()
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the job is committed or failed whatever the caller does: wait.
	return <-j.done
}

// close finishes every queued job, then stops.
func (g *groupCommit) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.stopped.Wait()
}

func (g *groupCommit) run() {
	defer g.stopped.Done()
	batch := make([]*txJob, 0, maxGroup)
	for {
		select {
		case j := <-g.jobs:
			batch = append(batch[:0], j)
		case <-g.stop:
			for {
				select {
				case j := <-g.jobs:
					g.write([]*txJob{j})
				default:
					return
				}
			}
		}
		// Yield once before folding the group: goroutines that are ready to run
		// (typically callers the previous commit just answered, about to submit
		// their next transaction) run first and join this group instead of the
		// next, which takes a commit, and its fsync, of its own. A linger without a
		// timer: it waits only for work that is runnable now, so with nothing else
		// to run the group is committed at once.
		runtime.Gosched()
		g.busy.Lock()
		if g.refused() == nil && g.topUp.Swap(false) {
			// Copies the few frames the checkpointer's last pass left behind, so
			// this group's transaction starts the WAL over. Its error is the next
			// checkpoint's to retry; the commit below reports any real trouble.
			_, _, _ = checkpoint(context.Background(), g.db)
		}
	fill:
		for len(batch) < maxGroup {
			select {
			case j := <-g.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		g.writeLocked(batch)
		g.busy.Unlock()
	}
}

// write commits batch, or fails it whole once refused.
func (g *groupCommit) write(batch []*txJob) {
	g.busy.Lock()
	defer g.busy.Unlock()
	g.writeLocked(batch)
}

// writeLocked is write with busy held.
func (g *groupCommit) writeLocked(batch []*txJob) {
	if err := g.refused(); err != nil {
		for _, j := range batch {
			j.done <- err
		}
		return
	}
	g.commit(batch)
}

func (g *groupCommit) commit(batch []*txJob) {
	results := make([]error, len(batch))
	err := g.runBatch(batch, results)
	for i, j := range batch {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		j.done <- results[i]
	}
}

// runBatch runs the jobs in one transaction. It returns an error that fails every
// job (begin or commit failed); a job's own error is in results.
//
// A batch is first run as it usually ends: every job succeeds, so no savepoints are
// needed, and each would cost two statements and the copying of every page a job
// touches into SQLite's sub-journal. If a job fails, its partial writes cannot be
// undone alone: the transaction is rolled back and the batch runs again with a
// savepoint around each job, whose failure then rolls back only that savepoint.
// Functions therefore may run twice (see DB.Tx).
func (g *groupCommit) runBatch(batch []*txJob, results []error) error {
	// The transaction's own context is never cancelled: one caller giving up must
	// not roll back the others' work.
	ctx := context.Background()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	failed := false
	for i, j := range batch {
		if results[i] = runJob(j, tx); results[i] != nil {
			failed = true
			break
		}
	}
	if !failed {
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	_ = tx.Rollback()
	if len(batch) == 1 {
		return nil // nothing else to keep: the job's error is its result
	}
	clear(results)
	return g.runIsolated(ctx, batch, results)
}

// runIsolated runs the jobs in one transaction, each in a savepoint of its own, so
// that a job's failure rolls back only its own writes.
func (g *groupCommit) runIsolated(ctx context.Context, batch []*txJob, results []error) error {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for i, j := range batch {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT g"); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("savepoint: %w", err)
		}
		if results[i] = runJob(j, tx); results[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO g"); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("rollback to savepoint: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE g"); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runJob runs one caller's function, unless the caller already gave up. A panic is
// turned into that caller's error so the committer goroutine survives it.
func runJob(j *txJob, tx *sql.Tx) (err error) {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transaction function panicked: %v", r)
		}
	}()
	return j.fn(tx)
}
