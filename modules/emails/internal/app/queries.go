package app

import (
	"context"
	"strings"
	"unicode/utf8"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
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

// MaxSubjectFilter is the longest subject text the list searches for, in
// characters: a subject is one line, and a longer search is a mistake.
const MaxSubjectFilter = 200

// ListEmails pages through emails, newest first.
type ListEmails struct{ Repo Repository }

// Handle returns one page, with the cursor of the next and, when f asks, the
// number of all the matches. A send-scope key sees only the emails it sent, in the
// items and in the total. A filter that cannot match as given is an apperr naming
// it: an unknown status, a recipient that is not an address, a subject too long,
// a time range that ends before it begins.
func (h ListEmails) Handle(ctx context.Context, f ListFilter, by auth.Principal) (Page, error) {
	f.APIKeyID = ""
	if !by.SeesEverything() {
		if by.KeyID == "" {
			return Page{}, auth.Unauthorized("missing API key")
		}
		f.APIKeyID = by.KeyID
	}
	if err := checkFilter(&f); err != nil {
		return Page{}, err
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	items, err := h.Repo.List(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{Items: items}
	if len(items) > want {
		p.Items = items[:want]
		p.NextCursor = p.Items[want-1].ID
	}
	if f.IncludeTotal {
		n, err := h.Repo.Count(ctx, f)
		if err != nil {
			return Page{}, err
		}
		p.Total = &n
	}
	return p, nil
}

// checkFilter refuses a filter that cannot be meant, naming the parameter, sets the
// default limit and puts the recipient in the form it is stored in.
func checkFilter(f *ListFilter) error {
	if f.Status != "" && !validStatus(f.Status) {
		names := make([]string, len(domain.Statuses))
		for i, s := range domain.Statuses {
			names[i] = string(s)
		}
		return apperr.Invalid("status", "must be one of %s", strings.Join(names, ", "))
	}
	if f.Recipient != "" {
		addr, err := domain.ParseAddress("recipient", f.Recipient, false)
		if err != nil {
			return err
		}
		f.Recipient = delivery.BareAddress(addr)
	}
	if utf8.RuneCountInString(f.Subject) > MaxSubjectFilter {
		return apperr.Invalid("subject", "longer than %d characters", MaxSubjectFilter)
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && f.CreatedAfter.After(f.CreatedBefore) {
		return apperr.Invalid("created_after", "is after created_before: the range is empty")
	}
	if f.Limit == 0 {
		f.Limit = 20
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return apperr.Invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	return nil
}

func validStatus(s domain.Status) bool {
	for _, st := range domain.Statuses {
		if s == st {
			return true
		}
	}
	return false
}
