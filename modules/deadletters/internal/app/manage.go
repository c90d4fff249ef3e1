package app

import (
	"context"
	"encoding/json"
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

// List returns one page of letters, newest first, and the next cursor or 0.
func (h Manage) List(ctx context.Context, f Filter) ([]Letter, int64, error) {
	if f.Status == "" {
		f.Status = StatusParked
	}
	switch f.Status {
	case StatusParked, StatusReplayed, StatusDiscarded, "all":
	default:
		return nil, 0, apperr.Invalid("status", "must be parked, replayed, discarded or all")
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, 0, apperr.Invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	want := f.Limit
	f.Limit++
	items, err := h.Store.List(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(items) > want {
		items = items[:want]
		next = items[want-1].ID
	}
	return items, next, nil
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

// ReplayMatching replays every parked letter the filter selects that holds an email
// to send, and returns how many.
func (h Manage) ReplayMatching(ctx context.Context, f Filter) (int, error) {
	f.Status = StatusParked
	total := 0
	for {
		f.Limit = MaxPageSize
		items, err := h.Store.List(ctx, f)
		if err != nil || len(items) == 0 {
			return total, err
		}
		rs := make([]Resolution, 0, len(items))
		for _, l := range items {
			if r, err := h.replayOf(l); err == nil {
				rs = append(rs, r)
			}
		}
		done, err := h.Store.Resolve(ctx, rs)
		total += len(done)
		if err != nil {
			return total, err
		}
		f.Cursor = items[len(items)-1].ID
	}
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
