package app

import (
	"context"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// MaxPageSize is the largest page the list endpoint returns.
const MaxPageSize = 100

// GetEmail reads one email with its timeline.
type GetEmail struct{ Repo Repository }

// Handle returns the email, or a not_found error when there is none or when by may
// not see it: another key's email is answered as if it did not exist, so a send key
// cannot even learn which ids are taken.
func (h GetEmail) Handle(ctx context.Context, id string, by auth.Principal) (domain.Email, error) {
	e, err := h.Repo.Get(ctx, id)
	if err != nil {
		return domain.Email{}, err
	}
	if !by.CanSee(e.APIKeyID) {
		return domain.Email{}, apperr.NotFound("email", id)
	}
	return e, nil
}

// ListEmails pages through emails, newest first.
type ListEmails struct{ Repo Repository }

// Handle returns one page and the cursor of the next, or "" on the last page. A
// send-scope key sees only the emails it sent.
func (h ListEmails) Handle(ctx context.Context, f ListFilter, by auth.Principal) ([]domain.Email, string, error) {
	f.APIKeyID = ""
	if !by.SeesEverything() {
		if by.KeyID == "" {
			return nil, "", auth.Unauthorized("missing API key")
		}
		f.APIKeyID = by.KeyID
	}
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
