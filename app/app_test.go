package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.RemoveBuilds()
	os.Exit(code)
}

// outgoing is an email the test posted and what it expects on the wire.
type outgoing struct {
	id            string
	fromName      string
	to, cc, bcc   []string // bare addresses
	toName        string   // display name of to[0], if any
	subject, text string
	tags          []string
	body          map[string]any
}

func (o outgoing) recipients() []string {
	all := slices.Concat(o.to, o.cc, o.bcc)
	slices.Sort(all)
	return all
}

// e2eEmails returns n emails: the first in Korean (subject, display names, body),
// the others with a mix of cc and bcc, tagged "e2e" plus "even" or "odd".
func e2eEmails(n int) []outgoing {
	out := make([]outgoing, n)
	for i := range out {
		o := outgoing{
			fromName: "Team",
			to:       []string{fmt.Sprintf("user%03d@example.com", i)},
			subject:  fmt.Sprintf("Hello number %d", i),
			text:     fmt.Sprintf("Hello there, recipient %d.\nSecond line.", i),
			tags:     []string{"e2e", map[bool]string{true: "even", false: "odd"}[i%2 == 0]},
		}
		if i%3 == 0 {
			o.cc = []string{fmt.Sprintf("cc%03d@example.com", i)}
		}
		if i%4 == 0 {
			o.bcc = []string{fmt.Sprintf("hidden%03d@example.com", i), fmt.Sprintf("hidden%03d-2@example.org", i)}
		}
		to := o.to[0]
		if i == 0 {
			o.fromName, o.toName = "김철수", "홍길동"
			o.subject = "안녕하세요"
			o.text = "안녕하세요, 세계!\n메일룸에서 보냅니다."
			to = o.toName + " <" + o.to[0] + ">"
		}
		o.body = map[string]any{
			"from":     o.fromName + " <team@example.com>",
			"to":       []string{to},
			"subject":  o.subject,
			"text":     o.text,
			"tags":     o.tags,
			"metadata": map[string]string{"n": strconv.Itoa(i)},
		}
		if o.cc != nil {
			o.body["cc"] = o.cc
		}
		if o.bcc != nil {
			o.body["bcc"] = o.bcc
		}
		out[i] = o
	}
	return out
}

// TestEndToEndSMTP sends 100 emails through the whole app to a real SMTP server and
// checks what arrived, the API's view of them, the operations endpoints, and a
// graceful shutdown.
func TestEndToEndSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)
	ctx := context.Background()
	client := e2e.NewHTTPClient(t)

	const n = 100
	const sequentialTail = 5 // sent one by one at the end, to check newest-first order
	emails := e2eEmails(n)
	post := func(i int) {
		raw, _ := json.Marshal(emails[i].body)
		acc, status, err := e2e.PostEmail(ctx, client, in.URL, raw)
		if err != nil || status != http.StatusAccepted {
			t.Errorf("POST email %d: status %d, %v", i, status, err)
			return
		}
		if acc.Status != "queued" {
			t.Errorf("POST email %d: status %q, want queued", i, acc.Status)
		}
		emails[i].id = acc.ID
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				post(i)
			}
		})
	}
	for i := range n - sequentialTail {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := n - sequentialTail; i < n; i++ {
		post(i)
	}
	if t.Failed() {
		t.FailNow()
	}

	srv.WaitForCount(t, n, 60*time.Second)
	byID := make(map[string]*outgoing, n)
	for i := range emails {
		byID[emails[i].id] = &emails[i]
		in.WaitForStatus(t, emails[i].id, "sent", 30*time.Second)
	}
	if got := srv.Count(); got != n {
		t.Fatalf("SMTP server got %d messages, want exactly %d", got, n)
	}

	seen := map[string]bool{}
	for _, m := range srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("received message does not parse: %v\n%s", err, m.Data)
		}
		id := msg.Header.Get("X-Mailroom-Email-ID")
		o := byID[id]
		if o == nil {
			t.Errorf("message with unknown X-Mailroom-Email-ID %q", id)
			continue
		}
		if seen[id] {
			t.Errorf("email %s received twice", id)
		}
		seen[id] = true
		checkReceived(t, *o, m, msg)

		r := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
		if r.Status != http.StatusOK {
			t.Errorf("GET raw %s: %d %s", id, r.Status, r.Body)
		} else {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "message/rfc822") {
				t.Errorf("GET raw %s: Content-Type %q, want message/rfc822", id, ct)
			}
			if !bytes.Equal(r.Body, m.Data) {
				t.Errorf("GET raw %s differs from what the SMTP server received:\nraw:\n%s\nreceived:\n%s", id, r.Body, m.Data)
			}
		}

		e := in.Get(t, id)
		var types []string
		for i, ev := range e.Events {
			types = append(types, ev.Type)
			if i > 0 && ev.At.Before(e.Events[i-1].At) {
				t.Errorf("email %s: timeline not oldest first: %s at %s after %s at %s",
					id, ev.Type, ev.At.Format(time.RFC3339Nano), e.Events[i-1].Type, e.Events[i-1].At.Format(time.RFC3339Nano))
			}
		}
		// One "delivered" per envelope recipient, all in the one transaction.
		want := []string{"accepted", "published"}
		for range m.To {
			want = append(want, "delivered")
		}
		if want = append(want, "sent"); !slices.Equal(types, want) {
			t.Errorf("email %s: timeline %v, want %v", id, types, want)
		}
		if e.Attempts != 1 || e.Subject != o.subject {
			t.Errorf("email %s: attempts %d subject %q, want 1 and %q", id, e.Attempts, e.Subject, o.subject)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	checkList(t, in, client, emails, sequentialTail)
	checkOperations(t, in, n)

	in.Stop(t) // fails the test unless Run returned nil
}

// checkReceived compares one received message with what was posted.
func checkReceived(t *testing.T, o outgoing, m smtptest.Message, msg *mail.Message) {
	t.Helper()
	id := o.id
	got := make([]string, len(m.To))
	for i, a := range m.To {
		got[i] = strings.ToLower(a)
	}
	slices.Sort(got)
	if want := o.recipients(); !slices.Equal(got, want) {
		t.Errorf("email %s: envelope recipients %v, want %v", id, got, want)
	}
	if m.From != "team@example.com" {
		t.Errorf("email %s: MAIL FROM %q, want team@example.com", id, m.From)
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	if msg.Header.Get("Bcc") != "" {
		t.Errorf("email %s: Bcc header present: %q", id, msg.Header.Get("Bcc"))
	}
	for _, b := range o.bcc {
		if bytes.Contains(bytes.ToLower(m.Data), []byte(b)) {
			t.Errorf("email %s: bcc address %s appears in the message:\n%s", id, b, head)
		}
	}
	if mid, want := msg.Header.Get("Message-ID"), "<"+id+"@example.com>"; mid != want {
		t.Errorf("email %s: Message-ID %q, want %q", id, mid, want)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != o.subject {
		t.Errorf("email %s: subject decodes to %q (%v), want %q; raw %q", id, subject, err, o.subject, msg.Header.Get("Subject"))
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "team@example.com" || from[0].Name != o.fromName {
		t.Errorf("email %s: From %v (%v), want %q <team@example.com>; raw %q", id, from, err, o.fromName, msg.Header.Get("From"))
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != o.to[0] || to[0].Name != o.toName {
		t.Errorf("email %s: To %v (%v), want %q <%s>; raw %q", id, to, err, o.toName, o.to[0], msg.Header.Get("To"))
	}
	if len(o.cc) > 0 {
		cc, err := msg.Header.AddressList("Cc")
		if err != nil || len(cc) != 1 || cc[0].Address != o.cc[0] {
			t.Errorf("email %s: Cc %v (%v), want %v", id, cc, err, o.cc)
		}
	} else if msg.Header.Get("Cc") != "" {
		t.Errorf("email %s: unexpected Cc %q", id, msg.Header.Get("Cc"))
	}
	body, err := decodeBody(msg)
	if err != nil {
		t.Errorf("email %s: body: %v", id, err)
	} else if got := strings.ReplaceAll(body, "\r\n", "\n"); got != o.text {
		t.Errorf("email %s: body decodes to %q, want %q", id, got, o.text)
	}
}

// decodeBody decodes a single-part text message's body by its transfer encoding.
func decodeBody(msg *mail.Message) (string, error) {
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", fmt.Errorf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		return "", fmt.Errorf("Content-Type %q, want text/plain; charset=UTF-8", msg.Header.Get("Content-Type"))
	}
	var r io.Reader = msg.Body
	switch cte := strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, bufio.NewReader(&crlfStripper{r: msg.Body}))
	case "", "7bit", "8bit":
	default:
		return "", fmt.Errorf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// crlfStripper drops CR and LF, which base64 bodies are wrapped with.
type crlfStripper struct{ r io.Reader }

func (c *crlfStripper) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	j := 0
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' {
			p[j] = b
			j++
		}
	}
	return j, err
}

// checkList pages through GET /api/emails and its filters.
func checkList(t *testing.T, in *apptest.Instance, client *http.Client, emails []outgoing, sequentialTail int) {
	t.Helper()
	ctx := context.Background()
	all, err := e2e.ListAll(ctx, client, in.URL, "tag=e2e", 7)
	if err != nil {
		t.Fatalf("list tag=e2e: %v", err)
	}
	// Newest first. Emails accepted at the same moment by concurrent requests may
	// come in either order: the id (a UUIDv7, the sort key) and created_at are taken
	// a little apart, so allow a small inversion between neighbours.
	const slack = time.Second
	ids := make([]string, len(all))
	inversions := 0
	for i, e := range all {
		ids[i] = e.ID
		if i > 0 && e.CreatedAt.After(all[i-1].CreatedAt) {
			inversions++
			if e.CreatedAt.Sub(all[i-1].CreatedAt) > slack {
				t.Errorf("list not newest first: %s created %s after %s created %s", e.ID, e.CreatedAt, all[i-1].ID, all[i-1].CreatedAt)
			}
		}
	}
	if inversions > 0 {
		t.Logf("list: %d neighbours of concurrently accepted emails have created_at out of id order (within %s)", inversions, slack)
	}
	want := make([]string, len(emails))
	for i, o := range emails {
		want[i] = o.id
	}
	if got := slices.Sorted(slices.Values(ids)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("list tag=e2e in pages of 7: %d items %v, want the %d posted", len(ids), ids, len(want))
	}
	// The emails posted one after another come first, newest first.
	var tail []string
	for i := len(emails) - 1; i >= len(emails)-sequentialTail; i-- {
		tail = append(tail, emails[i].id)
	}
	if len(ids) < sequentialTail || !slices.Equal(ids[:sequentialTail], tail) {
		t.Errorf("list does not start with the last %d emails newest first: got %v, want %v", sequentialTail, ids[:min(len(ids), sequentialTail)], tail)
	}

	var page e2e.ListPage
	if st, err := e2e.GetJSON(ctx, client, in.URL, "/api/emails?tag=e2e&limit=7", &page); err != nil || st != http.StatusOK {
		t.Fatalf("first page: %d %v", st, err)
	}
	if len(page.Items) != 7 || page.NextCursor == "" {
		t.Errorf("first page of 7: %d items, next_cursor %q", len(page.Items), page.NextCursor)
	}

	even, err := e2e.ListAll(ctx, client, in.URL, "tag=even", 100)
	if err != nil {
		t.Fatalf("list tag=even: %v", err)
	}
	var wantEven []string
	for i, o := range emails {
		if i%2 == 0 {
			wantEven = append(wantEven, o.id)
		}
	}
	if got := idsOf(even); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(wantEven))) {
		t.Errorf("list tag=even: %d items, want %d", len(got), len(wantEven))
	}
	for _, e := range even {
		if !slices.Contains(e.Tags, "even") {
			t.Errorf("list tag=even returned %s with tags %v", e.ID, e.Tags)
		}
	}

	sent, err := e2e.ListAll(ctx, client, in.URL, "status=sent&tag=e2e", 50)
	if err != nil {
		t.Fatalf("list status=sent: %v", err)
	}
	if len(sent) != len(emails) {
		t.Errorf("list status=sent&tag=e2e: %d items, want %d", len(sent), len(emails))
	}
	for _, e := range sent {
		if e.Status != "sent" || e.SentAt == nil {
			t.Errorf("list status=sent returned %s with status %s sent_at %v", e.ID, e.Status, e.SentAt)
		}
	}
	for _, st := range []string{"queued", "scheduled", "retrying", "dead"} {
		items, err := e2e.ListAll(ctx, client, in.URL, "status="+st+"&tag=e2e", 100)
		if err != nil || len(items) != 0 {
			t.Errorf("list status=%s&tag=e2e: %d items (%v), want none", st, len(items), err)
		}
	}
	for _, q := range []string{"status=bogus", "limit=-1", "limit=101", "limit=x"} {
		if r := in.Do(t, http.MethodGet, "/api/emails?"+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("GET /api/emails?%s: %d, want 400: %s", q, r.Status, r.Body)
		}
	}
}

func idsOf(items []e2e.Email) []string {
	out := make([]string, len(items))
	for i, e := range items {
		out[i] = e.ID
	}
	return out
}

// checkOperations checks /healthz, /readyz and /metrics.
func checkOperations(t *testing.T, in *apptest.Instance, sent int) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := in.Do(t, http.MethodGet, path, nil); r.Status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	r := in.Do(t, http.MethodGet, "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.Status)
	}
	metrics := string(r.Body)
	if v, ok := metricValue(metrics, `mailroom_emails{status="sent"}`); !ok || v != float64(sent) {
		t.Errorf(`metric mailroom_emails{status="sent"} = %v (found %v), want %d`, v, ok, sent)
	}
	for _, name := range []string{
		"mailroom_http_requests_total{",
		"mailroom_handler_execution_time_seconds", // Watermill router metrics
		"mailroom_subscriber_messages_received_total",
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(metrics, `route="/api/emails"`) {
		t.Errorf(`/metrics lacks mailroom_http_requests_total for route="/api/emails"`)
	}
}

// metricValue finds the sample `series value` in a Prometheus text exposition.
func metricValue(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// TestScheduledSend checks that an email with send_at in the future is scheduled,
// not handed to the SMTP server before send_at, and delivered after it.
func TestScheduledSend(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	sendAt := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	body := apptest.NewEmail("later@example.com")
	body["send_at"] = sendAt.Format(time.RFC3339Nano)
	r := in.Do(t, http.MethodPost, "/api/emails", body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST scheduled: %d %s", r.Status, r.Body)
	}
	var acc e2e.Accepted
	r.JSON(t, &acc)
	if acc.Status != "scheduled" {
		t.Fatalf("POST scheduled: status %q, want scheduled", acc.Status)
	}
	if got := in.Get(t, acc.ID).Status; got != "scheduled" {
		t.Fatalf("GET scheduled email: status %q, want scheduled", got)
	}

	// An email due now goes through meanwhile: the pipeline runs, yet holds the
	// scheduled one back.
	now := in.Send(t, apptest.NewEmail("now@example.com"))
	in.WaitForStatus(t, now, "sent", 30*time.Second)
	if time.Now().Before(sendAt) {
		if got := in.Get(t, acc.ID).Status; got != "scheduled" {
			t.Errorf("before send_at: status %q, want scheduled", got)
		}
		if msgs := srv.MessagesTo("later@example.com"); len(msgs) != 0 {
			t.Errorf("scheduled email delivered at %s, before send_at %s", msgs[0].Received, sendAt)
		}
	} else {
		t.Logf("the immediate email took until after send_at; skipped the before-send_at check")
	}

	e := in.WaitForStatus(t, acc.ID, "sent", 30*time.Second)
	msgs := srv.MessagesTo("later@example.com")
	if len(msgs) != 1 {
		t.Fatalf("scheduled email received %d times, want once", len(msgs))
	}
	if msgs[0].Received.Before(sendAt) {
		t.Errorf("scheduled email received at %s, before send_at %s", msgs[0].Received.UTC().Format(time.RFC3339Nano), sendAt.Format(time.RFC3339Nano))
	}
	var types []string
	for _, ev := range e.Events {
		types = append(types, ev.Type)
	}
	if want := []string{"accepted", "scheduled", "published", "delivered", "sent"}; !slices.Equal(types, want) {
		t.Errorf("scheduled email timeline %v, want %v", types, want)
	}
	var full e2e.Email
	in.Do(t, http.MethodGet, "/api/emails/"+acc.ID, nil).JSON(t, &full)
	if full.SendAt == nil || !full.SendAt.Equal(sendAt) {
		t.Errorf("send_at %v, want %s", full.SendAt, sendAt)
	}
	if full.SentAt == nil || full.SentAt.Before(sendAt) {
		t.Errorf("sent_at %v, want at or after send_at %s", full.SentAt, sendAt)
	}
	in.Stop(t)
}
