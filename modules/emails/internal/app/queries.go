package app

import (
	"context"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

// MaxPageSize is the largest page the list endpoint returns.
const MaxPageSize = 100

// GetEmail reads one email with its timeline.
type GetEmail struct{ Repo Repository }

// Handle returns the email or a not_found error.
func (h GetEmail) Handle(ctx context.Context, id string) (domain.Email, error) {
	return h.Repo.Get(ctx, id)
}

// ListEmails pages through emails, newest first.
type ListEmails struct{ Repo Repository }

// Handle returns one page and the cursor of the next, or "" on the last page.
func (h ListEmails) Handle(ctx context.Context, f ListFilter) ([]domain.Email, string, error) {
	if f.Status != "" && !validStatus(f.Status) {
		return nil, "", apperr.Invalid("status", "must be one of scheduled, queued, retrying, sent, dead")
	}
	if f.Limit == 0 {
		f.Limit = 20
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, "", apperr.Invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	items, err := h.Repo.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > want {
		items = items[:want]
		next = items[want-1].ID
	}
	return items, next, nil
}

func validStatus(s domain.Status) bool {
	for _, st := range domain.Statuses {
		if s == st {
			return true
		}
	}
	return false
}
