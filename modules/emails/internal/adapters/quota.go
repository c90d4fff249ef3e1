package adapters

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// quotaBook holds what each API key has used today, for the daily quotas, in
// memory: one serve owns its database (it holds the database's lock), so nobody
// else adds emails to it, and counting in memory costs the accepting transaction no
// statement (a count table updated with each email cost about a tenth of accept's
// rate, the writer being its bottleneck). A key's day is loaded from the emails
// themselves the first time it is needed, so a restart forgets nothing.
type quotaBook struct {
	db   *sqlite.DB
	mu   sync.Mutex
	used map[quotaDay]domain.Usage
}

// quotaDay is one API key's UTC day.
type quotaDay struct {
	keyID string
	day   string
}

func newQuotaBook(db *sqlite.DB) *quotaBook {
	return &quotaBook{db: db, used: map[quotaDay]domain.Usage{}}
}

// preload reads e's key's usage of the day from the stored emails, if it is not
// held yet, so that reserve, which runs on the database's one writer inside its
// transaction, finds it in memory instead of querying there. It holds no lock while
// it reads; a count that reserve loaded meanwhile is kept.
func (b *quotaBook) preload(ctx context.Context, q domain.Quota, e domain.Email) error {
	if e.APIKeyID == "" || q == (domain.Quota{}) {
		return nil
	}
	k := quotaDay{keyID: e.APIKeyID, day: domain.Day(e.CreatedAt)}
	b.mu.Lock()
	_, ok := b.used[k]
	b.mu.Unlock()
	if ok {
		return nil
	}
	used, err := b.load(ctx, e.APIKeyID, e.CreatedAt)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.used[k]; !ok {
		b.used[k] = used
		b.forgetBefore(k.day)
	}
	return nil
}

// reserve admits e under q (domain.Quota.Admit decides) and counts it, or returns
// Admit's error. The caller gives the reservation back with the returned function
// unless e was stored: two requests at once cannot both take the last unit, and an
// email that was not stored counts nothing.
func (b *quotaBook) reserve(ctx context.Context, q domain.Quota, e domain.Email) (release func(), err error) {
	if e.APIKeyID == "" || q == (domain.Quota{}) {
		return func() {}, nil
	}
	k, size := quotaDay{keyID: e.APIKeyID, day: domain.Day(e.CreatedAt)}, e.Size()
	b.mu.Lock()
	defer b.mu.Unlock()
	used, ok := b.used[k]
	if !ok { // not preloaded: the day turned since, or the count was forgotten
		if used, err = b.load(ctx, e.APIKeyID, e.CreatedAt); err != nil {
			return nil, err
		}
		b.forgetBefore(k.day)
	}
	if err := q.Admit(used, size, e.CreatedAt); err != nil {
		b.used[k] = used
		return nil, err
	}
	b.used[k] = domain.Usage{Emails: used.Emails + 1, Bytes: used.Bytes + size}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			u := b.used[k]
			b.used[k] = domain.Usage{Emails: u.Emails - 1, Bytes: u.Bytes - size}
		})
	}, nil
}

// load counts the emails keyID stored on the UTC day of at.
func (b *quotaBook) load(ctx context.Context, keyID string, at time.Time) (domain.Usage, error) {
	end := domain.QuotaResetAt(at)
	var u domain.Usage
	err := b.db.Read.QueryRowContext(ctx,
		`SELECT count(*), COALESCE(SUM(size), 0) FROM emails_emails WHERE api_key_id = ? AND created_at >= ? AND created_at < ?`,
		keyID, end.Add(-24*time.Hour).UnixMilli(), end.UnixMilli()).Scan(&u.Emails, &u.Bytes)
	if err != nil {
		return u, fmt.Errorf("read quota usage: %w", err)
	}
	return u, nil
}

// forgetBefore drops the counts of days before day (a new day has begun).
func (b *quotaBook) forgetBefore(day string) {
	for k := range b.used {
		if k.day < day {
			delete(b.used, k)
		}
	}
}
