package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
)

// storedAttachment is one attachment as the emails_emails.attachments column keeps
// it: its metadata, never its content (which travels in the SendEmail only).
type storedAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	ContentID   string `json:"content_id,omitempty"`
}

// attachmentsColumn is the attachments column of e: its metadata as JSON, or NULL
// for an email without.
func attachmentsColumn(e domain.Email) any {
	if len(e.Attachments) == 0 {
		return nil
	}
	list := make([]storedAttachment, len(e.Attachments))
	for i, a := range e.Attachments {
		list[i] = storedAttachment{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, ContentID: a.ContentID}
	}
	b, _ := json.Marshal(list) // strings and numbers: cannot fail
	return string(b)
}

// deliveryAttachments is e's attachments, content included, as the SendEmail
// carries them.
func deliveryAttachments(e domain.Email) []delivery.Attachment {
	if len(e.Attachments) == 0 {
		return nil
	}
	out := make([]delivery.Attachment, len(e.Attachments))
	for i, a := range e.Attachments {
		out[i] = delivery.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content, ContentID: a.ContentID}
	}
	return out
}

// attachmentsOf reads the metadata of an email's attachments; nil for none.
func attachmentsOf(ctx context.Context, db *sql.DB, emailID string) ([]domain.Attachment, error) {
	var column sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT attachments FROM emails_emails WHERE id = ?`, emailID).Scan(&column); err != nil {
		return nil, fmt.Errorf("read attachments: %w", err)
	}
	if !column.Valid {
		return nil, nil
	}
	var list []storedAttachment
	if err := json.Unmarshal([]byte(column.String), &list); err != nil {
		return nil, fmt.Errorf("read attachments of %s: %w", emailID, err)
	}
	out := make([]domain.Attachment, len(list))
	for i, a := range list {
		out[i] = domain.Attachment{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, ContentID: a.ContentID}
	}
	return out, nil
}
