package emails_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// eventFeed publishes delivery's and the dead letters' events about emails to the
// emails module alone, over Go channels, in whatever order a test chooses.
type eventFeed struct {
	t     *testing.T
	db    *sqlite.DB
	pub   message.Publisher
	topic string
	start time.Time
}

func newEventFeed(t *testing.T) *eventFeed {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	m := emails.New(app.EmailsConfig(cfg, "test"), db, outbox.New(), logging.Discard(), nil)
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)
	return &eventFeed{t: t, db: db, pub: pub, topic: cfg.Topics.Events, start: time.Now().Add(-time.Hour).Truncate(time.Millisecond)}
}

// accept stores an email queued to addrs, none of them tried yet.
func (f *eventFeed) accept(id string, addrs ...string) {
	f.t.Helper()
	at := f.start.UnixMilli()
	to, _ := json.Marshal(addrs)
	exec(f.t, f.db, `INSERT INTO emails_emails (id, status, outcome, from_addr, to_addrs, cc_addrs, bcc_addrs, reply_to, subject,
		text_body, html_body, tags, metadata, correlation_id, created_at, updated_at)
		VALUES (?, 'queued', 'pending', 'a@example.com', ?, '[]', '[]', '', 's', 't', '', '[]', '{}', 'c', ?, ?)`, id, string(to), at, at)
	for i, addr := range addrs {
		exec(f.t, f.db, `INSERT INTO emails_recipients (email_id, position, address, type, status, updated_at)
			VALUES (?, ?, ?, 'to', 'pending', ?)`, id, i, addr, at)
	}
}

// publish sends one event and returns once the module acknowledged it.
func (f *eventFeed) publish(uuid, eventType string, payload any) {
	f.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		f.t.Fatal(err)
	}
	msg := message.NewMessage(uuid, b)
	msg.Metadata.Set(delivery.EventTypeKey, eventType)
	apptest.Publish(f.t, f.pub, f.topic, msg)
}

// attempted is the EmailAttempted of try (replay, attempt) of email id, its
// recipients given as address, status pairs; it ends attempt minutes after the
// feed's start (a minute later per replay) and names its email status from them.
func (f *eventFeed) attempted(id string, replay, attempt int, states ...string) delivery.EmailAttempted {
	at := f.start.Add(time.Duration(replay*60+attempt) * time.Minute)
	ev := delivery.EmailAttempted{EmailID: id, Replay: replay, Attempt: attempt, Status: delivery.StatusSent, At: at}
	for i := 0; i+1 < len(states); i += 2 {
		st := delivery.RecipientState{Recipient: delivery.Recipient{Address: states[i], Type: delivery.TypeTo},
			Status: states[i+1], Attempts: attempt, Detail: "250 OK"}
		switch st.Status {
		case delivery.RecipientDeferred:
			st.Detail = fmt.Sprintf("451 try %d later", attempt)
			next := at.Add(time.Minute)
			ev.Status, ev.NextAttemptAt = delivery.StatusRetrying, &next
		case delivery.RecipientBounced:
			st.Detail = "550 no such user"
		}
		ev.Recipients = append(ev.Recipients, st)
	}
	if ev.Status == delivery.StatusSent && !anyDelivered(ev.Recipients) {
		ev.Status = delivery.StatusDead
	}
	return ev
}

func (f *eventFeed) publishAttempted(ev delivery.EmailAttempted) {
	f.t.Helper()
	f.publish(fmt.Sprintf("%s/r%d/a%d/attempted", ev.EmailID, ev.Replay, ev.Attempt), delivery.EventEmailAttempted, ev)
}

// stored is what the module keeps of an email and its recipients.
type stored struct {
	status, lastError string
	attempts, replay  int
	nextAttemptAt     sql.NullInt64
	deadLettered      bool
	recipients        map[string]string
}

func (f *eventFeed) stored(id string) stored {
	f.t.Helper()
	var s stored
	if err := f.db.Read.QueryRow(`SELECT status, last_error, attempts, replay, next_attempt_at, dead_lettered FROM emails_emails WHERE id = ?`, id).
		Scan(&s.status, &s.lastError, &s.attempts, &s.replay, &s.nextAttemptAt, &s.deadLettered); err != nil {
		f.t.Fatal(err)
	}
	s.recipients = map[string]string{}
	rows, err := f.db.Read.Query(`SELECT address, status FROM emails_recipients WHERE email_id = ?`, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var addr, st string
		if err := rows.Scan(&addr, &st); err != nil {
			f.t.Fatal(err)
		}
		s.recipients[addr] = st
	}
	return s
}

// A try's report that Kafka hands over after a later try's (a partition grow, a
// rebalance, a replay racing a retry) adds its entries to the timeline but moves
// nothing back: each recipient keeps its latest try's verdict, and the email its
// status, attempts, last error and next try.
func TestEventsOfOneEmailArrivingOutOfOrderLeaveItWhereItsLatestTryLeftIt(t *testing.T) {
	f := newEventFeed(t)
	f.accept("e1", "a@example.com", "b@example.com")
	t1 := f.attempted("e1", 0, 1, "a@example.com", delivery.RecipientDeferred, "b@example.com", delivery.RecipientDeferred)
	t2 := f.attempted("e1", 0, 2, "a@example.com", delivery.RecipientDelivered, "b@example.com", delivery.RecipientDeferred)
	t3 := f.attempted("e1", 0, 3, "b@example.com", delivery.RecipientDelivered)

	f.publishAttempted(t2)
	if s := f.stored("e1"); s.status != "retrying" || s.attempts != 2 || s.lastError != "b@example.com: 451 try 2 later" {
		t.Fatalf("after try 2: %+v, want retrying after 2 attempts, b's 451 the last error", s)
	}
	f.publishAttempted(t3)
	f.publishAttempted(t1) // the first try's report, last
	s := f.stored("e1")
	if s.status != "sent" || s.attempts != 3 || s.lastError != "" || s.nextAttemptAt.Valid {
		t.Fatalf("after tries 2, 3, then 1: %+v, want sent after 3 attempts, no last error, no next try", s)
	}
	if s.recipients["a@example.com"] != "delivered" || s.recipients["b@example.com"] != "delivered" {
		t.Fatalf("recipients after tries 2, 3, then 1: %v, want both delivered", s.recipients)
	}
	if n := countEvents(t, f.db, "e1", "deferred"); n != 3 {
		t.Errorf("%d deferred entries on the timeline, want 3 (try 1's two and try 2's one: a late report is still history)", n)
	}
}

// After an operator's replay, the replayed recipients belong to the new replay:
// the earlier replay's reports (a retry of it forwarded twice, its letter parked
// again) change nothing, while the replay's own tries move the email on, even
// when one of them is heard of before the replay itself.
func TestAReplayMovesAnEmailOnAndNoReportOfTheReplayBeforeItMovesItBack(t *testing.T) {
	f := newEventFeed(t)
	f.accept("e2", "a@example.com", "b@example.com")
	first := f.attempted("e2", 0, 1, "a@example.com", delivery.RecipientBounced, "b@example.com", delivery.RecipientBounced)
	f.publishAttempted(first)
	parked := dlt.EmailDeadLettered{EmailID: "e2", Reason: "nobody got it", Attempts: 1, Replay: 0, At: f.start.Add(2 * time.Minute)}
	f.publish("e2/r0/dead-lettered", dlt.EventEmailDeadLettered, parked)
	if s := f.stored("e2"); s.status != "dead" || !s.deadLettered {
		t.Fatalf("after the first try and its letter: %+v, want dead with its letter parked", s)
	}

	f.publish("e2/replayed/1", dlt.EventEmailReplayed, dlt.EmailReplayed{EmailID: "e2", Replay: 1,
		Recipients: []string{"a@example.com", "b@example.com"}, At: f.start.Add(30 * time.Minute)})
	if s := f.stored("e2"); s.status != "queued" || s.deadLettered || s.replay != 1 || s.attempts != 0 || s.lastError != "" ||
		s.recipients["a@example.com"] != "pending" || s.recipients["b@example.com"] != "pending" {
		t.Fatalf("after the replay: %+v, want queued in replay 1, no attempts, no letter, no error, both pending", s)
	}

	// Replay 1's second try is heard of first (a delivered), then replay 0's
	// reports come again under other ids (a second forwarding of the same try,
	// its letter parked again), then replay 1's first try (b delivered, a deferred).
	f.publishAttempted(f.attempted("e2", 1, 2, "a@example.com", delivery.RecipientDelivered))
	late := f.attempted("e2", 0, 1, "a@example.com", delivery.RecipientBounced, "b@example.com", delivery.RecipientBounced)
	f.publish("e2/r0/a1/attempted/again", delivery.EventEmailAttempted, late)
	f.publish("e2/r0/dead-lettered/again", dlt.EventEmailDeadLettered, parked)
	f.publishAttempted(f.attempted("e2", 1, 1, "a@example.com", delivery.RecipientDeferred, "b@example.com", delivery.RecipientDelivered))

	s := f.stored("e2")
	if s.status != "sent" || s.deadLettered || s.replay != 1 || s.attempts != 2 || s.lastError != "" {
		t.Fatalf("after replay 1's tries and replay 0's late reports: %+v, want sent in replay 1 after 2 attempts, no letter, no error", s)
	}
	if s.recipients["a@example.com"] != "delivered" || s.recipients["b@example.com"] != "delivered" {
		t.Fatalf("recipients: %v, want both delivered", s.recipients)
	}
}

// An EmailAttempted without an attempt number (the field left out, as no version
// of delivery ever did) names no try: it is applied as it comes, as before the
// order rule.
func TestAnAttemptedEventWithoutAnAttemptIsAppliedAsItComes(t *testing.T) {
	f := newEventFeed(t)
	f.accept("e3", "a@example.com")
	f.publishAttempted(f.attempted("e3", 0, 2, "a@example.com", delivery.RecipientDelivered))
	unnumbered := f.attempted("e3", 0, 1, "a@example.com", delivery.RecipientDeferred)
	unnumbered.Attempt = 0
	f.publish("e3/unnumbered", delivery.EventEmailAttempted, unnumbered)
	if s := f.stored("e3"); s.status != "retrying" || s.recipients["a@example.com"] != "deferred" || s.attempts != 2 {
		t.Fatalf("after an event without an attempt: %+v, want it applied (retrying, a deferred), attempts still 2", s)
	}
}

func anyDelivered(rs []delivery.RecipientState) bool {
	for _, r := range rs {
		if r.Status == delivery.RecipientDelivered {
			return true
		}
	}
	return false
}

func countEvents(t *testing.T, db *sqlite.DB, emailID, typ string) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM emails_events WHERE email_id = ? AND type = ?`, emailID, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
