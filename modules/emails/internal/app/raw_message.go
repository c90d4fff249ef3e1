package app

import (
	"context"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// RawMessage shows an email's message exactly as delivery handed it to the mail
// server. The message comes back in the try's event from whichever instance sent
// the email, so the instance that accepted it answers.
type RawMessage struct{ Repo Repository }

// Handle returns the message to the key that sent the email and to admins. To any
// other key it answers exactly as for an id with no rendered message (unknown, or
// not rendered yet), so that a send key cannot even learn which ids are taken.
func (h RawMessage) Handle(ctx context.Context, emailID string, by auth.Principal) ([]byte, error) {
	raw, owner, err := h.Repo.RawMessage(ctx, emailID)
	if e, ok := apperr.As(err); ok && e.Code == apperr.CodeNotFound {
		return nil, notRendered(emailID)
	}
	if err != nil {
		return nil, err
	}
	if !by.CanSee(owner) {
		return nil, notRendered(emailID)
	}
	return raw, nil
}

// notRendered is the one answer Handle gives for a message it does not show.
func notRendered(id string) error {
	return apperr.NotFound("rendered message of email", id)
}
