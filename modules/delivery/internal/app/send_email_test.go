package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// flakyStore is a Store whose Record fails while failing is set, as on a full disk.
type flakyStore struct {
	mu      sync.Mutex
	failing bool
	states  map[string]State
	records int
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
	s.records++
	return nil
}

func (s *flakyStore) Raw(context.Context, string) ([]byte, string, error) { return nil, "", nil }

func (s *flakyStore) setFailing(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

// countingTransport accepts every message and counts them.
type countingTransport struct {
	mu   sync.Mutex
	sent int
}

func (c *countingTransport) Send(context.Context, render.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent++
	return "250 OK", nil
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

func newHandler(store Store, tr Transport, u *Unrecorded) SendEmail {
	return SendEmail{
		Store: store, Transport: tr, Render: render.Options{DefaultFrom: "Mailroom <mailroom@localhost>"},
		Retry:       RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Multiplier: 2, Max: time.Second},
		IsPermanent: func(error) bool { return false }, SendTopic: "email.send", ConsumerGroup: "g",
		Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Unrecorded: u,
	}
}

func sendMessage(t *testing.T, id string) *message.Message {
	t.Helper()
	payload, err := json.Marshal(contract.SendEmail{EmailID: id, From: "a@example.com", To: []string{"b@example.com"},
		Subject: "s", Text: "t", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	return message.NewMessage(id+"/1", payload)
}

func TestASendWhoseRecordFailedIsRecordedOnRedeliveryNotSentAgain(t *testing.T) {
	store := &flakyStore{states: map[string]State{}, failing: true}
	tr := &countingTransport{}
	h := newHandler(store, tr, NewUnrecorded())
	const id = "01JQ8Z6V4K1M2N3P4Q5R6S7T8V"

	// The database refuses every record: each redelivery is nacked, none sends again.
	for i := range 5 {
		if err := h.Handle(sendMessage(t, id)); err == nil {
			t.Fatalf("delivery %d: acknowledged although nothing could be recorded", i+1)
		}
	}
	if n := tr.count(); n != 1 {
		t.Fatalf("the transport got %d copies over 5 deliveries with a failing store, want 1", n)
	}

	// The database is back: the next redelivery records the first send.
	store.setFailing(false)
	if err := h.Handle(sendMessage(t, id)); err != nil {
		t.Fatalf("delivery after the store came back: %v", err)
	}
	if st := store.states[id]; st.Status != StatusSent || st.Attempts != 1 || st.LastReply != "250 OK" {
		t.Fatalf("state %+v, want sent on attempt 1 with the server's reply", st)
	}
	if err := h.Handle(sendMessage(t, id)); err != nil {
		t.Fatalf("a later redelivery: %v", err)
	}
	if n, r := tr.count(), store.records; n != 1 || r != 1 {
		t.Fatalf("%d copies sent and %d records, want 1 and 1", n, r)
	}
}

func TestWithoutMemoryOfUnrecordedSendsARedeliverySendsAgain(t *testing.T) {
	store := &flakyStore{states: map[string]State{}, failing: true}
	tr := &countingTransport{}
	h := newHandler(store, tr, nil)
	for range 3 {
		_ = h.Handle(sendMessage(t, "01JQ8Z6V4K1M2N3P4Q5R6S7T8W"))
	}
	if n := tr.count(); n != 3 {
		t.Fatalf("%d copies, want 3: the behaviour Unrecorded exists to prevent", n)
	}
}
