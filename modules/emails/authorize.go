package emails

import (
	"context"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/auth"
)

// AuthorizeRead returns nil when the request's caller (the auth.Principal in ctx)
// may read the email, and the error to answer otherwise: unauthorized without a
// principal, not_found for an unknown email or another key's. It exists because
// other modules serve parts of an email (delivery serves its raw message) but only
// this module knows which key sent it; app hands this method to them, so the rule
// of who reads what is written once, here.
func (m *Module) AuthorizeRead(ctx context.Context, emailID string) error {
	by, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	return app.GetEmail{Repo: m.repo}.Authorize(ctx, emailID, by)
}
