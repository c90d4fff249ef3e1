package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
)

// flakyStore is a Store whose Record fails while failing is set, as on a full disk.
type flakyStore struct {
	mu       sync.Mutex
	failing  bool
	states   map[string]State
	outcomes []Outcome
}

func (s *flakyStore) Load(_ context.Context, id string) (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[id]
	return st, ok, nil
}

func (s *flakyStore) Record(_ context.Context, o Outcome, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("commit: database or disk is full")
	}
	s.states[o.State.EmailID] = o.State
	s.outcomes = append(s.outcomes, o)
	return nil
}

func (s *flakyStore) Requeue(context.Context, contract.SendEmail) error { return nil }

func (s *flakyStore) AwaitOutcome(context.Context, contract.SendEmail) error { return nil }
func (s *flakyStore) Suppressed(context.Context, []string) (map[string]Suppression, error) {
	return nil, nil
}
func (s *flakyStore) ApplySuppression(context.Context, suppressions.Changed) error { return nil }
func (s *flakyStore) AnnounceSuppressions(context.Context) (int, error)            { return 0, nil }

func (s *flakyStore) setFailing(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

// countingTransport accepts every recipient and counts the transactions.
type countingTransport struct {
	mu   sync.Mutex
	sent int
}

func (c *countingTransport) Send(_ context.Context, msg render.Message) (transport.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent++
	var res transport.Result
	for _, a := range msg.Recipients {
		res.Recipients = append(res.Recipients, transport.RecipientResult{Address: a, Verdict: transport.Delivered,
			Stage: transport.StageData, Code: 250, Detail: "250 OK"})
	}
	return res, nil
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

func newHandler(store Store, tr Transport, u *Unrecorded) SendEmail {
	open := func(context.Context) error { return nil }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return SendEmail{
		Store: store, Transport: tr, Gate: NewServerGate(open, 0, 0, log),
		Render: render.Options{DefaultFrom: "Mailroom <mailroom@localhost>"},
		Retry:  RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Multiplier: 2, Max: time.Second},
		Now:    time.Now, Log: log, Unrecorded: u,
	}
}

func firstTry(id string) contract.SendEmail {
	return contract.FirstTry(contract.Email{EmailID: id, From: "a@example.com", To: []string{"b@example.com", "c@example.com"},
		Subject: "s", Text: "t"})
}

func TestASendWhoseRecordFailedIsRecordedOnRedeliveryNotSentAgain(t *testing.T) {
	store := &flakyStore{states: map[string]State{}, failing: true}
	tr := &countingTransport{}
	h := newHandler(store, tr, NewUnrecorded())
	const id = "01JQ8Z6V4K1M2N3P4Q5R6S7T8V"
	ctx := context.Background()

	// The database refuses every record: each redelivery is nacked, none sends again.
	for i := range 5 {
		if err := h.Handle(ctx, firstTry(id), Source{}); err == nil {
			t.Fatalf("delivery %d: acknowledged although nothing could be recorded", i+1)
		}
	}
	if n := tr.count(); n != 1 {
		t.Fatalf("the transport ran %d transactions over 5 deliveries with a failing store, want 1", n)
	}

	// The database is back: the next redelivery records the first send.
	store.setFailing(false)
	if err := h.Handle(ctx, firstTry(id), Source{}); err != nil {
		t.Fatalf("delivery after the store came back: %v", err)
	}
	if st := store.states[id]; st.Status != contract.StatusSent || st.Attempts != 1 {
		t.Fatalf("state %+v, want sent on attempt 1", st)
	}
	if got := store.outcomes[0].Attempted.Recipients; len(got) != 2 || got[0].Status != contract.RecipientDelivered || got[1].Status != contract.RecipientDelivered {
		t.Fatalf("recorded recipients %+v, want both delivered", got)
	}
	if err := h.Handle(ctx, firstTry(id), Source{}); err != nil {
		t.Fatalf("a later redelivery: %v", err)
	}
	if n, r := tr.count(), len(store.outcomes); n != 1 || r != 1 {
		t.Fatalf("%d transactions and %d records, want 1 and 1", n, r)
	}
}

func TestWithoutMemoryOfUnrecordedSendsARedeliverySendsAgain(t *testing.T) {
	store := &flakyStore{states: map[string]State{}, failing: true}
	tr := &countingTransport{}
	h := newHandler(store, tr, nil)
	for range 3 {
		_ = h.Handle(context.Background(), firstTry("01JQ8Z6V4K1M2N3P4Q5R6S7T8W"), Source{})
	}
	if n := tr.count(); n != 3 {
		t.Fatalf("%d transactions, want 3: the behaviour Unrecorded exists to prevent", n)
	}
}

// keepingTransport accepts every recipient and keeps the last message it sent.
type keepingTransport struct {
	countingTransport
	last render.Message
}

func (k *keepingTransport) Send(ctx context.Context, msg render.Message) (transport.Result, error) {
	k.last = msg
	return k.countingTransport.Send(ctx, msg)
}

// The try's event carries the message exactly as the transport got it, so that the
// instance that accepted the email can show it; a try that rendered nothing (the
// email cannot be rendered) carries none.
func TestTheAttemptedEventCarriesTheMessageTheTransportSent(t *testing.T) {
	store := &flakyStore{states: map[string]State{}}
	tr := &keepingTransport{}
	h := newHandler(store, tr, NewUnrecorded())
	if err := h.Handle(context.Background(), firstTry("01JQ8Z6V4K1M2N3P4Q5R6S7T8X"), Source{}); err != nil {
		t.Fatal(err)
	}
	got := store.outcomes[0].Attempted.Message
	if got == nil || string(got.Raw) != string(tr.last.Raw) || got.MessageID != tr.last.MessageID || len(got.Raw) == 0 {
		t.Fatalf("event carries %+v, want the sent message (Message-ID %s, %d bytes)", got, tr.last.MessageID, len(tr.last.Raw))
	}

	bad := contract.FirstTry(contract.Email{EmailID: "01JQ8Z6V4K1M2N3P4Q5R6S7T8Y", From: "a@example.com",
		To: []string{"b@example.com"}, Subject: "s", Text: "t", Headers: map[string]string{"From": "forged@example.com"}})
	if err := h.Handle(context.Background(), bad, Source{}); err != nil {
		t.Fatal(err)
	}
	if ev := store.outcomes[1].Attempted; ev.Error == "" || ev.Message != nil {
		t.Errorf("an email that cannot be rendered: error %q, message %+v; want an error and no message", ev.Error, ev.Message)
	}
}

// unpublishedStore records like flakyStore, but the retry of each try stays in
// the outbox until published is set: Record reports ErrOutcomeNotPublished after
// recording, and AwaitOutcome fails until then.
type unpublishedStore struct {
	flakyStore
	published bool
	awaited   int
}

func (s *unpublishedStore) Record(ctx context.Context, o Outcome, correlationID string) error {
	if err := s.flakyStore.Record(ctx, o, correlationID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.published {
		return fmt.Errorf("%w after 10s", ErrOutcomeNotPublished)
	}
	return nil
}

func (s *unpublishedStore) AwaitOutcome(context.Context, contract.SendEmail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awaited++
	if !s.published {
		return fmt.Errorf("%w after 10s", ErrOutcomeNotPublished)
	}
	return nil
}

// A try recorded while its retry is not in the broker yet is not acknowledged, and
// its redeliveries neither send again nor record again: each waits for the retry,
// and the first after it is published is acknowledged.
func TestATryWhoseRetryIsNotInTheBrokerYetIsAcknowledgedOnlyOnceItIsAndNeverSentAgain(t *testing.T) {
	store := &unpublishedStore{flakyStore: flakyStore{states: map[string]State{}}}
	tr := &countingTransport{}
	h := newHandler(store, tr, NewUnrecorded())
	const id = "01JQ8Z6V4K1M2N3P4Q5R6S7T8Z"
	ctx := context.Background()

	if err := h.Handle(ctx, firstTry(id), Source{}); !errors.Is(err, ErrOutcomeNotPublished) {
		t.Fatalf("first delivery: %v, want ErrOutcomeNotPublished (not acknowledged)", err)
	}
	for i := range 3 {
		if err := h.Handle(ctx, firstTry(id), Source{}); !errors.Is(err, ErrOutcomeNotPublished) {
			t.Fatalf("redelivery %d before the retry is published: %v, want ErrOutcomeNotPublished", i+1, err)
		}
	}
	if n, r, w := tr.count(), len(store.outcomes), store.awaited; n != 1 || r != 1 || w != 3 {
		t.Fatalf("%d transactions, %d records, %d waits for the retry; want 1, 1 and 3", n, r, w)
	}

	store.mu.Lock()
	store.published = true
	store.mu.Unlock()
	if err := h.Handle(ctx, firstTry(id), Source{}); err != nil {
		t.Fatalf("redelivery once the retry is published: %v, want it acknowledged", err)
	}
	if n, r := tr.count(), len(store.outcomes); n != 1 || r != 1 {
		t.Fatalf("%d transactions and %d records, want 1 and 1", n, r)
	}
}
