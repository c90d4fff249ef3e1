// Package ports exposes the emails module's use cases over HTTP and to the broker.
package ports

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// HTTP serves /api/emails.
type HTTP struct {
	Accept      app.AcceptEmail
	AcceptBatch app.AcceptBatch
	Get         app.GetEmail
	List        app.ListEmails
	Events      app.ListEvents
	// Cancel and Reschedule change a scheduled email's mind.
	Cancel     app.CancelEmail
	Reschedule app.RescheduleEmail
	// Raw shows the message as delivery rendered and sent it.
	Raw app.RawMessage
}

// Register adds the routes to g (the /api group).
func (h HTTP) Register(g *echo.Group) {
	g.POST("/emails", h.postEmail)
	g.POST("/emails/batch", h.postBatch)
	g.GET("/emails", h.listEmails)
	g.GET("/emails/:id", h.getEmail)
	g.GET("/emails/:id/raw", h.rawMessage)
	g.GET("/events", h.listEvents)
	g.PATCH("/emails/:id", h.patchEmail)
	g.POST("/emails/:id/cancel", h.cancelEmail)
}

// sendRequest is the body of POST /api/emails.
type sendRequest struct {
	From     string            `json:"from"`
	To       []string          `json:"to"`
	Cc       []string          `json:"cc"`
	Bcc      []string          `json:"bcc"`
	ReplyTo  string            `json:"reply_to"`
	Subject  string            `json:"subject"`
	Text     string            `json:"text"`
	HTML     string            `json:"html"`
	Tags     []string          `json:"tags"`
	Metadata map[string]string `json:"metadata"`
	SendAt   string            `json:"send_at"`
	// Attachments and Headers leave the fast JSON path when present (they are not
	// strings), so the usual email without them decodes as fast as before.
	Attachments []attachmentRequest `json:"attachments"`
	Headers     map[string]string   `json:"headers"`
}

// attachmentRequest is one file of a sendRequest.
type attachmentRequest struct {
	Filename    string `json:"filename"`
	Content     string `json:"content"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id"`
}

func (r sendRequest) draft() domain.Draft {
	d := domain.Draft{From: r.From, To: r.To, Cc: r.Cc, Bcc: r.Bcc, ReplyTo: r.ReplyTo, Subject: r.Subject,
		Text: r.Text, HTML: r.HTML, Tags: r.Tags, Metadata: r.Metadata, SendAt: r.SendAt, Headers: r.Headers}
	for _, a := range r.Attachments {
		d.Attachments = append(d.Attachments, domain.AttachmentDraft{Filename: a.Filename, Content: a.Content,
			ContentType: a.ContentType, ContentID: a.ContentID})
	}
	return d
}

type acceptedResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (h HTTP) postEmail(c echo.Context) error {
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req sendRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	correlationID := c.Response().Header().Get(echo.HeaderXRequestID)
	acc, err := h.Accept.Handle(c.Request().Context(), req.draft(), key, correlationID, by)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/emails/"+acc.ID)
	if acc.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSON(http.StatusAccepted, acceptedResponse{ID: acc.ID, Status: string(acc.Status)})
}

// idempotencyKey returns the request's Idempotency-Key, "" when it has none, or a
// 400 when it has several or a malformed one.
func idempotencyKey(c echo.Context) (string, error) {
	key := c.Request().Header.Get("Idempotency-Key")
	keys, present := c.Request().Header["Idempotency-Key"]
	if len(keys) > 1 {
		// Which one counts would be a guess, and a proxy may have picked the other.
		return "", apperr.Invalid("Idempotency-Key", "given more than once; send one")
	}
	if present && !validIdempotencyKey(key) {
		return "", apperr.Invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
	}
	return key, nil
}

// batchResponse is the answer to POST /api/emails/batch.
type batchResponse struct {
	Items []acceptedResponse `json:"items"`
}

// postBatch accepts a JSON array of 1 to app.MaxBatch emails, each the body of one
// POST /api/emails, all in one transaction or none (202 with each one's id and
// status, in order).
func (h HTTP) postBatch(c echo.Context) error {
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var reqs []sendRequest
	if err := httpserver.DecodeJSON(c, &reqs); err != nil {
		return err
	}
	drafts := make([]domain.Draft, len(reqs))
	for i, r := range reqs {
		drafts[i] = r.draft()
	}
	correlationID := c.Response().Header().Get(echo.HeaderXRequestID)
	acc, err := h.AcceptBatch.Handle(c.Request().Context(), drafts, key, correlationID, by)
	if err != nil {
		return err
	}
	if acc.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	out := batchResponse{Items: make([]acceptedResponse, len(acc.Items))}
	for i, it := range acc.Items {
		out.Items[i] = acceptedResponse{ID: it.ID, Status: string(it.Status)}
	}
	return c.JSON(http.StatusAccepted, out)
}

func validIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// emailResponse is an email as GET /api/emails/{id} shows it (and, without
// recipients and events, as the list does).
type emailResponse struct {
	ID            string              `json:"id"`
	Status        string              `json:"status"`
	Outcome       string              `json:"outcome,omitempty"`
	From          string              `json:"from"`
	To            []string            `json:"to"`
	Cc            []string            `json:"cc"`
	Subject       string              `json:"subject"`
	Tags          []string            `json:"tags"`
	Metadata      map[string]string   `json:"metadata"`
	Attempts      int                 `json:"attempts"`
	LastError     string              `json:"last_error"`
	NextAttemptAt *time.Time          `json:"next_attempt_at"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
	SentAt        *time.Time          `json:"sent_at"`
	SendAt        *time.Time          `json:"send_at"`
	Recipients    []recipientResponse `json:"recipients,omitempty"`
	Events        []eventResponse     `json:"events,omitempty"`
}

// recipientResponse is one recipient of an email, bcc ones included: only the key
// that sent the email and admins read it.
type recipientResponse struct {
	Address   string    `json:"address"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	Detail    string    `json:"detail"`
	UpdatedAt time.Time `json:"updated_at"`
}

type eventResponse struct {
	Type   string    `json:"type"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
}

func toResponse(e domain.Email) emailResponse {
	r := emailResponse{ID: e.ID, Status: string(e.Status), Outcome: string(e.Outcome), From: e.From, To: e.To, Cc: e.Cc,
		Subject: e.Subject, Tags: e.Tags, Metadata: e.Metadata, Attempts: e.Attempts, LastError: e.LastError,
		NextAttemptAt: e.NextAttemptAt, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, SentAt: e.SentAt, SendAt: e.SendAt}
	for _, rc := range e.Recipients {
		r.Recipients = append(r.Recipients, recipientResponse{Address: rc.Address, Type: rc.Type, Status: rc.Status,
			Attempts: rc.Attempts, Detail: rc.Detail, UpdatedAt: rc.UpdatedAt})
	}
	for _, ev := range e.Events {
		r.Events = append(r.Events, eventResponse{Type: ev.Type, At: ev.At, Detail: ev.Detail})
	}
	return r
}

// detailResponse is an email as GET /api/emails/{id} shows it: recipients are
// always there, [] for an email accepted before they had outcomes of their own;
// attachments too, [] for none, without their content. The bodies and the
// Reply-To are here and not in the list: an operator reading one email sees what
// was sent (the console renders the HTML in a sandboxed frame), while a page of
// the list stays small.
type detailResponse struct {
	emailResponse
	ReplyTo     string               `json:"reply_to"`
	Text        string               `json:"text"`
	HTML        string               `json:"html"`
	Recipients  []recipientResponse  `json:"recipients"`
	Attachments []attachmentResponse `json:"attachments"`
}

// attachmentResponse is one attachment of an email as GET /api/emails/{id} shows
// it: its metadata; the content is not kept.
type attachmentResponse struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	ContentID   string `json:"content_id,omitempty"`
}

func (h HTTP) getEmail(c echo.Context) error {
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	e, err := h.Get.Handle(c.Request().Context(), c.Param("id"), by)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDetail(e))
}

// rawMessage answers the email's message as it was sent, message/rfc822, or 404
// until a try rendered it (and to a key that did not send it).
func (h HTTP) rawMessage(c echo.Context) error {
	ctx := c.Request().Context()
	by, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	raw, err := h.Raw.Handle(ctx, c.Param("id"), by)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}

// toDetail is e as GET /api/emails/{id} shows it, and as cancel and reschedule
// answer with it.
func toDetail(e domain.Email) detailResponse {
	r := detailResponse{emailResponse: toResponse(e), ReplyTo: e.ReplyTo, Text: e.Text, HTML: e.HTML}
	r.Recipients = r.emailResponse.Recipients
	if r.Recipients == nil {
		r.Recipients = []recipientResponse{}
	}
	r.Attachments = make([]attachmentResponse, len(e.Attachments))
	for i, a := range e.Attachments {
		r.Attachments[i] = attachmentResponse{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, ContentID: a.ContentID}
	}
	return r
}

func (h HTTP) cancelEmail(c echo.Context) error {
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	e, err := h.Cancel.Handle(c.Request().Context(), c.Param("id"), by)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDetail(e))
}

// patchRequest is the body of PATCH /api/emails/{id}: what of a scheduled email
// can change, its send_at.
type patchRequest struct {
	SendAt string `json:"send_at"`
}

func (h HTTP) patchEmail(c echo.Context) error {
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	var req patchRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	e, err := h.Reschedule.Handle(c.Request().Context(), c.Param("id"), req.SendAt, by)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDetail(e))
}

type listResponse struct {
	Items      []emailResponse `json:"items"`
	NextCursor string          `json:"next_cursor"`
	Total      *int            `json:"total,omitempty"`
}

// listParams are the query parameters GET /api/emails takes.
var listParams = []string{"status", "tag", "recipient", "subject", "created_after", "created_before",
	"limit", "cursor", "include_total"}

func (h HTTP) listEmails(c echo.Context) error {
	if err := httpserver.KnownQuery(c, listParams...); err != nil {
		return err
	}
	f, err := listFilter(c)
	if err != nil {
		return err
	}
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	page, err := h.List.Handle(c.Request().Context(), f, by)
	if err != nil {
		return err
	}
	out := listResponse{Items: make([]emailResponse, 0, len(page.Items)), NextCursor: page.NextCursor, Total: page.Total}
	for _, e := range page.Items {
		out.Items = append(out.Items, toResponse(e))
	}
	return c.JSON(http.StatusOK, out)
}

// listFilter reads the list's query parameters; the use case checks what they
// mean.
func listFilter(c echo.Context) (app.ListFilter, error) {
	f := app.ListFilter{Status: domain.Status(c.QueryParam("status")), Tag: c.QueryParam("tag"),
		Recipient: c.QueryParam("recipient"), Subject: c.QueryParam("subject"), Cursor: c.QueryParam("cursor")}
	if f.Cursor != "" && !validCursor(f.Cursor) {
		return f, apperr.Invalid("cursor", "not a cursor from next_cursor (an email id)")
	}
	var err error
	if f.Limit, err = httpserver.QueryLimit(c, app.MaxPageSize); err != nil {
		return f, err
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"created_after", &f.CreatedAfter}, {"created_before", &f.CreatedBefore}} {
		if v := c.QueryParam(p.name); v != "" {
			if *p.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return f, apperr.Invalid(p.name, "not an RFC 3339 time such as 2026-12-01T09:00:00Z")
			}
		}
	}
	f.IncludeTotal, err = httpserver.QueryIncludeTotal(c)
	return f, err
}

// validCursor reports whether s can be a next_cursor of the list: an email id, which
// is a UUIDv7 in its lowercase canonical form. Anything else would page from a
// meaningless place ("garbage" sorts after every id, "00000000" before them all).
func validCursor(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.Version() == 7 && u.Variant() == uuid.RFC4122 && u.String() == s
}
