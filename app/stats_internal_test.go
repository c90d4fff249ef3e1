package app

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// reporterFunc is a statsReporter made of a function.
type reporterFunc func(ctx context.Context, report func(part string, value any, err error))

func (f reporterFunc) Stats(ctx context.Context, report func(part string, value any, err error)) {
	f(ctx, report)
}

// One part the database cannot read must not cost the operator the others: the
// overview keeps showing the mail server, the broker and the counts it has.
func TestAStatsPartThatFailsIsNullWithItsErrorAndTheOthersAreAnswered(t *testing.T) {
	at := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	got := collectStats(context.Background(), func() time.Time { return at }, []statsReporter{
		reporterFunc(func(_ context.Context, report func(string, any, error)) {
			report("series", map[string]int{"accepted": 3}, nil)
			report("emails", nil, errors.New("count emails by status: database is locked"))
		}),
		reporterFunc(func(_ context.Context, report func(string, any, error)) {
			report("smtp", map[string]string{"state": "up"}, nil)
		}),
	})
	b, err := json.Marshal(got.answer)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"at":"2026-12-06T07:00:00Z","emails":null,"errors":{"emails":"count emails by status: database is locked"},` +
		`"series":{"accepted":3},"smtp":{"state":"up"}}`
	if string(b) != want {
		t.Errorf("answer\n%s\nwant\n%s", b, want)
	}
	if len(got.errs) != 1 {
		t.Errorf("errors %v, want the one of emails", got.errs)
	}
}

func TestStatsWithNothingFailingAnswerAnEmptyErrorsObject(t *testing.T) {
	got := collectStats(context.Background(), func() time.Time { return time.Unix(0, 0) }, []statsReporter{
		reporterFunc(func(_ context.Context, report func(string, any, error)) { report("broker", "up", nil) }),
	})
	b, err := json.Marshal(got.answer)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"at":"1970-01-01T00:00:00Z","broker":"up","errors":{}}`; string(b) != want {
		t.Errorf("answer %s, want %s", b, want)
	}
}
