package app

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// RescheduleEmail moves a scheduled email's send_at, earlier or later.
type RescheduleEmail struct {
	Repo Repository
	Now  func() time.Time
}

// Handle moves the email id to sendAt (an RFC 3339 time, in the future and at most
// domain.MaxScheduleAhead ahead: the rule of acceptance; an apperr naming send_at
// otherwise) on behalf of by, and returns it as it stands now. Another key's email
// is not_found; an email not scheduled, or whose SendEmail is about to leave, is a
// conflict, as CancelEmail answers.
func (h RescheduleEmail) Handle(ctx context.Context, id, sendAt string, by auth.Principal) (domain.Email, error) {
	now := h.Now()
	if sendAt == "" {
		return domain.Email{}, apperr.Invalid("send_at", "is required: the new time to send at")
	}
	at, err := domain.ScheduleAt(sendAt, now)
	if err != nil {
		return domain.Email{}, err
	}
	if at == nil {
		return domain.Email{}, apperr.Invalid("send_at", "must be in the future; to send now, cancel and send the email again")
	}
	get := GetEmail{Repo: h.Repo}
	if _, err := get.Handle(ctx, id, by); err != nil {
		return domain.Email{}, err
	}
	ch := Change{EmailID: id, At: now, SendAt: at,
		Entries: []Entry{{Type: domain.EventScheduled, Detail: domain.ScheduledDetail(*at)}}}
	if err := changeSchedule(ctx, h.Repo, ch, "rescheduled"); err != nil {
		return domain.Email{}, err
	}
	return get.Handle(ctx, id, by)
}
