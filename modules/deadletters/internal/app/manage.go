package app

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/apperr"
)

// MaxPageSize is the largest page of letters.
const MaxPageSize = 500

// Manage is what an operator does with letters, from the API or the CLI.
type Manage struct {
	Store Store
	Now   func() time.Time
}

// Page is one page of letters, newest first.
type Page struct {
	// Items are the page's letters.
	Items []Letter
	// Next is the cursor of the next page, 0 on the last.
	Next int64
	// Total is how many letters match in all, whatever the cursor; nil unless the
	// filter asked (Filter.IncludeTotal).
	Total *int
}

// List returns one page of letters, newest first, and how many match in all when
// f.IncludeTotal asks.
func (h Manage) List(ctx context.Context, f Filter) (Page, error) {
	if f.Status == "" {
		f.Status = StatusParked
	}
	switch f.Status {
	case StatusParked, StatusReplayed, StatusDiscarded, "all":
	default:
		return Page{}, apperr.Invalid("status", "must be parked, replayed, discarded or all")
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return Page{}, apperr.Invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	items, err := h.Store.List(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{Items: items}
	if len(items) > want {
		p.Items = items[:want]
		p.Next = p.Items[want-1].ID
	}
	if f.IncludeTotal {
		n, err := h.Store.Count(ctx, f)
		if err != nil {
			return Page{}, err
		}
		p.Total = &n
	}
	return p, nil
}

// Get returns the letter ref names (its LetterKey, or an email id: that email's
// latest letter), whatever its status.
func (h Manage) Get(ctx context.Context, ref string) (Letter, error) {
	l, found, err := h.Store.Find(ctx, ref)
	if err != nil {
		return Letter{}, err
	}
	if !found {
		return Letter{}, apperr.NotFound("dead letter", ref)
	}
	return l, nil
}

// Replay sends a parked letter's email again, to the recipients that were not
// delivered, from a fresh attempt count; ref is its email id or its LetterKey. It
// returns the email id. A letter replayed or discarded already is a conflict, and
// so is one whose payload holds no email to send.
func (h Manage) Replay(ctx context.Context, ref string) (string, error) {
	l, err := h.parked(ctx, ref)
	if err != nil {
		return "", err
	}
	r, err := h.replayOf(l)
	if err != nil {
		return "", err
	}
	return l.EmailID, h.resolveOne(ctx, r)
}

// Skipped is a letter a replay of many left alone, and why.
type Skipped struct {
	// Ref is the letter as the caller named it (a LetterKey or an email id).
	Ref string
	// Reason says why, in a sentence for an operator.
	Reason string
}

// Replayed is the outcome of a replay of many letters.
type Replayed struct {
	// Count is how many letters were replayed.
	Count int
	// Skipped are the letters named or matched that were not, in the order named.
	Skipped []Skipped
}

// ReplayMatching replays every parked letter the filter selects that holds an email
// to send, one transaction per page of MaxPageSize letters. A matching letter that
// holds no email (a poison message) is skipped and reported.
func (h Manage) ReplayMatching(ctx context.Context, f Filter) (Replayed, error) {
	f.Status = StatusParked
	var out Replayed
	for {
		f.Limit = MaxPageSize
		items, err := h.Store.List(ctx, f)
		if err != nil || len(items) == 0 {
			return out, err
		}
		refs := make([]string, len(items))
		for i, l := range items {
			refs[i] = LetterKey(l)
		}
		if err := h.replayAll(ctx, refs, items, &out); err != nil {
			return out, err
		}
		f.Cursor = items[len(items)-1].ID
	}
}

// ReplayLetters replays the parked letters refs name (LetterKeys or email ids, 1 to
// MaxPageSize of them, each once) in one transaction. A letter that is not parked
// (replayed or discarded meanwhile, by another operator or by retention), that
// does not exist, or that holds no email to send is skipped and reported rather
// than failing the others: the operator chose those rows from a page that may be
// out of date by the time they act, and the rest should still go.
func (h Manage) ReplayLetters(ctx context.Context, refs []string) (Replayed, error) {
	if err := checkRefs(refs); err != nil {
		return Replayed{}, err
	}
	var out Replayed
	letters := make([]Letter, len(refs))
	for i, ref := range refs {
		l, found, err := h.Store.Find(ctx, ref)
		if err != nil {
			return Replayed{}, err
		}
		if !found {
			l.ID = 0 // replayAll skips it as not found
		}
		letters[i] = l
	}
	return out, h.replayAll(ctx, refs, letters, &out)
}

// checkRefs refuses a list of letters to replay that cannot be meant: none, more
// than a page, an empty one or one named twice.
func checkRefs(refs []string) error {
	if len(refs) == 0 || len(refs) > MaxPageSize {
		return apperr.Invalid("ids", "must name 1 to %d dead letters, not %d", MaxPageSize, len(refs))
	}
	seen := make(map[string]int, len(refs))
	for i, ref := range refs {
		field := "ids[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(ref) == "" {
			return apperr.Invalid(field, "is empty; name a dead letter by its id or its email's id")
		}
		if j, dup := seen[ref]; dup {
			return apperr.Invalid(field, "repeats ids[%d]", j)
		}
		seen[ref] = i
	}
	return nil
}

// replayAll replays letters (found for refs, in the same order; a letter with ID 0
// was not found) in one Store.Resolve, adding the count and what it skipped to out.
func (h Manage) replayAll(ctx context.Context, refs []string, letters []Letter, out *Replayed) error {
	rs := make([]Resolution, 0, len(letters))
	refOf := make(map[int64]string, len(letters)) // letter id: the ref that named it first
	for i, l := range letters {
		r, reason := h.bulkReplayOf(l, refOf)
		if reason != "" {
			out.Skipped = append(out.Skipped, Skipped{Ref: refs[i], Reason: reason})
			continue
		}
		refOf[l.ID] = refs[i]
		rs = append(rs, r)
	}
	done, err := h.Store.Resolve(ctx, rs)
	if err != nil {
		return err
	}
	out.Count += len(done)
	applied := make(map[int64]bool, len(done))
	for _, r := range done {
		applied[r.Letter.ID] = true
	}
	for _, r := range rs {
		if !applied[r.Letter.ID] {
			out.Skipped = append(out.Skipped, Skipped{Ref: refOf[r.Letter.ID], Reason: "no longer parked: resolved meanwhile"})
		}
	}
	return nil
}

// bulkReplayOf is the replay of letter l among others, or why it has none: not
// found (ID 0), taken already under another ref (seen), not parked, or holding no
// email.
func (h Manage) bulkReplayOf(l Letter, seen map[int64]string) (Resolution, string) {
	if l.ID == 0 {
		return Resolution{}, "not found"
	}
	if ref, dup := seen[l.ID]; dup {
		return Resolution{}, "the same dead letter as " + ref
	}
	if l.Status != StatusParked {
		return Resolution{}, messageOf(notParked(LetterKey(l), l))
	}
	r, err := h.replayOf(l)
	if err != nil {
		return Resolution{}, messageOf(err)
	}
	return r, ""
}

// messageOf is err's message for an operator, without its code.
func messageOf(err error) string {
	if e, ok := errors.AsType[*apperr.Error](err); ok {
		return e.Message
	}
	return err.Error()
}

// Discard throws a parked letter away (ref: its email id or its LetterKey); the
// email stays as it is.
func (h Manage) Discard(ctx context.Context, ref string) error {
	l, err := h.parked(ctx, ref)
	if err != nil {
		return err
	}
	r := Resolution{Letter: l, Status: StatusDiscarded, At: h.Now()}
	if l.EmailID != "" {
		r.EventType, r.Event = dlt.EventEmailDiscarded, dlt.EmailDiscarded{EmailID: l.EmailID, At: r.At}
	}
	return h.resolveOne(ctx, r)
}

// parked returns the letter ref names: not found when there is none, a conflict
// when it is not parked any more.
func (h Manage) parked(ctx context.Context, ref string) (Letter, error) {
	l, err := h.Get(ctx, ref)
	if err != nil {
		return l, err
	}
	if l.Status != StatusParked {
		return l, notParked(ref, l)
	}
	return l, nil
}

func notParked(ref string, l Letter) error {
	when := ""
	if l.ResolvedAt != nil {
		when = " at " + l.ResolvedAt.UTC().Format(time.RFC3339)
	}
	return apperr.New(apperr.CodeConflict, "dead letter %s was %s%s; only a parked letter can be replayed or discarded",
		apperr.Clip(ref), l.Status, when)
}

// resolveOne applies r, or reports that the letter stopped being parked meanwhile.
func (h Manage) resolveOne(ctx context.Context, r Resolution) error {
	done, err := h.Store.Resolve(ctx, []Resolution{r})
	if err != nil {
		return err
	}
	if len(done) == 0 {
		l, _, _ := h.Store.Find(ctx, LetterKey(r.Letter))
		return notParked(LetterKey(r.Letter), l)
	}
	return nil
}

// replayOf is the replay of a parked letter: the rule of what a replay sends, and to
// whom. A typed dead letter is sent again to its undelivered recipients, with the
// next replay number and a fresh attempt count; a SendEmail moved here by the
// poison queue (a handler that panicked) or by an older version, to every
// recipient it carried. Anything else cannot be replayed.
func (h Manage) replayOf(l Letter) (Resolution, error) {
	var cmd delivery.SendEmail
	switch l.Kind {
	case KindDeadLetter:
		var dl delivery.DeadLetter
		if err := json.Unmarshal(l.Payload, &dl); err != nil || dl.Send.EmailID == "" {
			return Resolution{}, unreplayable(l)
		}
		to := make([]delivery.Recipient, 0, len(dl.Undelivered))
		for _, r := range dl.Undelivered {
			to = append(to, r.Recipient)
		}
		cmd = dl.Send.Replayed(l.Replay+1, to)
	default:
		var old delivery.SendEmail
		if err := json.Unmarshal(l.Payload, &old); err != nil || old.EmailID == "" {
			return Resolution{}, unreplayable(l)
		}
		to := old.Recipients
		if len(to) == 0 {
			to = delivery.EnvelopeOf(old.Email)
		}
		cmd = old.Replayed(l.Replay+1, to)
	}
	if cmd.CorrelationID == "" {
		cmd.CorrelationID = l.CorrelationID
	}
	addrs := make([]string, len(cmd.Recipients))
	for i, r := range cmd.Recipients {
		addrs[i] = r.Address
	}
	at := h.Now()
	return Resolution{Letter: l, Status: StatusReplayed, At: at, Send: &cmd, EventType: dlt.EventEmailReplayed,
		Event: dlt.EmailReplayed{EmailID: cmd.EmailID, Replay: cmd.Replay, Recipients: addrs, At: at}}, nil
}

func unreplayable(l Letter) error {
	return apperr.New(apperr.CodeConflict, "dead letter %s holds no readable email and cannot be replayed; discard it", LetterKey(l))
}

// letterKeyPrefix starts a letter's own key; an email id (a UUID) never does.
const letterKeyPrefix = "letter-"

// LetterKey names a letter by itself rather than by its email, for the API and the
// CLI: a poison message has no email id, and is discarded by this key.
func LetterKey(l Letter) string { return letterKeyPrefix + strconv.FormatInt(l.ID, 10) }

// ParseLetterKey returns the letter id a LetterKey names; ok is false for anything
// else (an email id).
func ParseLetterKey(ref string) (int64, bool) {
	rest, found := strings.CutPrefix(ref, letterKeyPrefix)
	if !found {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}
