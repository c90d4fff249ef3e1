package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
)

// countingStore holds parked letters in memory and counts the transactions
// Resolve stands for: the store on SQLite applies one call in one transaction.
type countingStore struct {
	app.Store // List, Park: not used here
	letters   map[string]app.Letter
	resolves  []int // the number of resolutions of each call
}

func (s *countingStore) Find(_ context.Context, ref string) (app.Letter, bool, error) {
	l, ok := s.letters[ref]
	return l, ok, nil
}

func (s *countingStore) Resolve(_ context.Context, rs []app.Resolution) ([]app.Resolution, error) {
	s.resolves = append(s.resolves, len(rs))
	return rs, nil
}

func parkedLetter(t *testing.T, id int64) app.Letter {
	t.Helper()
	emailID := fmt.Sprintf("0190d6c2-0000-7000-8000-%012d", id)
	payload, err := json.Marshal(delivery.DeadLetter{
		Send:        delivery.SendEmail{Email: delivery.Email{EmailID: emailID}},
		Undelivered: []delivery.RecipientState{{Recipient: delivery.Recipient{Address: "a@example.com"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return app.Letter{ID: id, Kind: app.KindDeadLetter, EmailID: emailID, Status: app.StatusParked, Payload: payload}
}

// The brief of a replay of many: 500 letters chosen in the console are one
// transaction, not 500.
func TestAReplayOfAPageOfChosenLettersIsOneTransaction(t *testing.T) {
	store := &countingStore{letters: map[string]app.Letter{}}
	refs := make([]string, app.MaxPageSize)
	for i := range refs {
		l := parkedLetter(t, int64(i+1))
		refs[i] = app.LetterKey(l)
		store.letters[refs[i]] = l
	}
	m := app.Manage{Store: store, Now: time.Now}
	out, err := m.ReplayLetters(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != app.MaxPageSize || len(out.Skipped) != 0 {
		t.Errorf("replayed %d, skipped %+v; want all %d", out.Count, out.Skipped, app.MaxPageSize)
	}
	if len(store.resolves) != 1 || store.resolves[0] != app.MaxPageSize {
		t.Errorf("Resolve called with %v letters; want one call with all %d", store.resolves, app.MaxPageSize)
	}
}
