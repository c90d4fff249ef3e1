package domain

import (
	"encoding/base64"
	"fmt"
	"mime"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mailroom/mailroom/platform/apperr"
)

// Limits of an attachment; how many an email may have and their total size are
// configuration (AttachmentLimits).
const (
	// MaxFilenameLen is an attachment's filename in bytes (UTF-8), as most file
	// systems allow.
	MaxFilenameLen = 255
	// MaxContentTypeLen bounds content_type in bytes.
	MaxContentTypeLen = 255
	// MaxContentIDLen bounds content_id in bytes.
	MaxContentIDLen = 128
)

// AttachmentLimits are the limits.* keys: how many files one email may carry and
// how many bytes they may hold in all, decoded. The zero value allows none.
type AttachmentLimits struct {
	// MaxAttachments is limits.max_attachments.
	MaxAttachments int
	// MaxBytes is limits.max_attachment_bytes, the decoded bytes of all of an
	// email's attachments together.
	MaxBytes int64
}

// AttachmentDraft is one file as a client sent it, before validation.
type AttachmentDraft struct {
	// Filename is required: one line of UTF-8, at most MaxFilenameLen bytes.
	Filename string
	// Content is the file in standard base64 (RFC 4648, padded); not empty.
	Content string
	// ContentType is the media type, or "" for the one the filename's extension
	// names (application/octet-stream when it names none).
	ContentType string
	// ContentID, when set, makes the file inline in the HTML body.
	ContentID string
}

// Attachment is one file of an email, validated.
type Attachment struct {
	// Filename is the draft's, unchanged.
	Filename string
	// ContentType is a media type mime.ParseMediaType reads, never empty.
	ContentType string
	// Size is the decoded content's length in bytes.
	Size int64
	// ContentID is "" for an ordinary attachment, the inline part's id otherwise.
	ContentID string
	// Content is the decoded file; nil on an email read back from the database,
	// which keeps the metadata only.
	Content []byte
}

// contentIDSyntax is what a content_id may hold: it goes into a header
// (Content-ID: <id>) and into the HTML's cid: URLs unescaped.
var contentIDSyntax = regexp.MustCompile(`^[A-Za-z0-9._@-]+$`)

// ValidateAttachments checks a draft's attachments against lim and returns them
// decoded, or the first problem as an apperr naming the field
// ("attachments[2].filename"). hasHTML says whether the email has an HTML body,
// which an inline attachment (content_id) needs.
func ValidateAttachments(in []AttachmentDraft, lim AttachmentLimits, hasHTML bool) ([]Attachment, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > lim.MaxAttachments {
		return nil, apperr.Invalid("attachments", "%d attachments; at most %d (limits.max_attachments)", len(in), lim.MaxAttachments)
	}
	out := make([]Attachment, 0, len(in))
	var total int64
	ids := map[string]bool{}
	for i, d := range in {
		a, err := validateAttachment(fmt.Sprintf("attachments[%d]", i), d, lim, total, hasHTML)
		if err != nil {
			return nil, err
		}
		if a.ContentID != "" && ids[a.ContentID] {
			return nil, apperr.Invalid(fmt.Sprintf("attachments[%d].content_id", i), "%q names another attachment already", a.ContentID)
		}
		ids[a.ContentID] = true
		total += a.Size
		out = append(out, a)
	}
	return out, nil
}

// validateAttachment checks one attachment, at field, of an email whose earlier
// attachments hold total bytes.
func validateAttachment(field string, d AttachmentDraft, lim AttachmentLimits, total int64, hasHTML bool) (Attachment, error) {
	if err := checkFilename(field+".filename", d.Filename); err != nil {
		return Attachment{}, err
	}
	// Refused before decoding when even line breaks could not explain the length:
	// base64 is 4 characters for 3 bytes.
	if int64(len(d.Content)) > 2*(lim.MaxBytes-total)+4 {
		return Attachment{}, tooLarge(lim)
	}
	content, err := base64.StdEncoding.DecodeString(d.Content)
	if err != nil {
		return Attachment{}, apperr.Invalid(field+".content", "not valid standard base64 (RFC 4648, with padding)")
	}
	if len(content) == 0 {
		return Attachment{}, apperr.Invalid(field+".content", "is empty; an attachment needs content")
	}
	if total+int64(len(content)) > lim.MaxBytes {
		return Attachment{}, tooLarge(lim)
	}
	ctype, err := attachmentType(field+".content_type", d.ContentType, d.Filename)
	if err != nil {
		return Attachment{}, err
	}
	if d.ContentID != "" {
		if len(d.ContentID) > MaxContentIDLen || !contentIDSyntax.MatchString(d.ContentID) {
			return Attachment{}, apperr.Invalid(field+".content_id", "must be 1 to %d letters, digits, '.', '_', '@' or '-'", MaxContentIDLen)
		}
		if !hasHTML {
			return Attachment{}, apperr.Invalid(field+".content_id", "an inline attachment needs an html body to show it")
		}
	}
	return Attachment{Filename: d.Filename, ContentType: ctype, Size: int64(len(content)), ContentID: d.ContentID, Content: content}, nil
}

func tooLarge(lim AttachmentLimits) error {
	return apperr.Invalid("attachments", "more than %d bytes in all once decoded (limits.max_attachment_bytes)", lim.MaxBytes)
}

// checkFilename refuses an empty or over-long filename, and one a header or a
// reader would misread: CR, LF, NUL, a tab or another control character (a header
// injection), bidirectional controls and zero-width characters ("invoice
// \u202egnp.exe" shows as "invoice exe.png"), invalid UTF-8.
func checkFilename(field, name string) error {
	if name == "" {
		return apperr.Invalid(field, "is required")
	}
	if len(name) > MaxFilenameLen {
		return apperr.Invalid(field, "longer than %d bytes", MaxFilenameLen)
	}
	if err := headerSafe(field, name); err != nil {
		return err
	}
	if r, bad := firstLineHazard(name); bad {
		return apperr.Invalid(field, "must not contain %s", describeHazard(r))
	}
	if strings.ContainsRune(name, '\t') { // a subject may hold a tab; a filename has no use for one
		return apperr.Invalid(field, "must not contain %s", describeHazard('\t'))
	}
	return nil
}

// attachmentType returns the content type of an attachment: the client's, checked
// and written canonically (its "name" parameter dropped: the renderer writes the
// filename), or the one the filename's extension names, or
// application/octet-stream. Multipart and message types are refused: the renderer
// sends every attachment base64-encoded, which RFC 2046 forbids for them.
func attachmentType(field, ctype, filename string) (string, error) {
	if ctype == "" {
		if t := mime.TypeByExtension(filepath.Ext(filename)); t != "" {
			return t, nil
		}
		return "application/octet-stream", nil
	}
	if len(ctype) > MaxContentTypeLen {
		return "", apperr.Invalid(field, "longer than %d bytes", MaxContentTypeLen)
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || !strings.Contains(mt, "/") {
		return "", apperr.Invalid(field, "not a media type such as application/pdf")
	}
	if strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		return "", apperr.Invalid(field, "%s cannot be attached as such; send it as application/octet-stream", mt)
	}
	delete(params, "name")
	return mime.FormatMediaType(mt, params), nil
}
