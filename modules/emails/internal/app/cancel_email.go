package app

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// CancelEmail cancels a scheduled email before its send_at, for a client that
// changed its mind. The cancelled email still counts against its key's daily
// quota: the quota counts what a key asked to send, and giving it back would let a
// key schedule and cancel without limit.
type CancelEmail struct {
	Repo Repository
	Now  func() time.Time
}

// Handle cancels the email id on behalf of by and returns it as it stands now,
// cancelled. Another key's email is not_found, as GetEmail answers; an email not
// scheduled, or whose SendEmail is about to leave (see SendingMargin), is a
// conflict saying which.
func (h CancelEmail) Handle(ctx context.Context, id string, by auth.Principal) (domain.Email, error) {
	get := GetEmail{Repo: h.Repo}
	if _, err := get.Handle(ctx, id, by); err != nil {
		return domain.Email{}, err
	}
	ch := Change{EmailID: id, At: h.Now(), Cancelled: true,
		Entries: []Entry{{Type: domain.EventCancelled, Detail: "cancelled before its send_at"}}}
	if err := changeSchedule(ctx, h.Repo, ch, "cancelled"); err != nil {
		return domain.Email{}, err
	}
	return get.Handle(ctx, id, by)
}

// changeSchedule makes the change through Repository.ChangeSchedule and turns a
// refusal into the conflict a client reads; done is what a scheduled email can
// have done to it ("cancelled", "rescheduled").
func changeSchedule(ctx context.Context, repo Repository, ch Change, done string) error {
	found, changed, err := repo.ChangeSchedule(ctx, ch)
	switch {
	case err != nil:
		return err
	case changed:
		return nil
	case found != domain.StatusScheduled:
		return apperr.New(apperr.CodeConflict, "email is %s; only a scheduled email can be %s", found, done)
	default:
		return apperr.New(apperr.CodeConflict, "too late: it is being sent (its send_at is less than %s away)", SendingMargin)
	}
}
