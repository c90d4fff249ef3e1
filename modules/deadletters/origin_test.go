package deadletters_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/deadletters"
	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// deadLetter is a message of the dead-letter topic as delivery leaves it: a typed
// delivery.DeadLetter.
func deadLetter(t *testing.T, emailID, origin string) *message.Message {
	t.Helper()
	send := delivery.FirstTry(delivery.Email{EmailID: emailID, To: []string{"x@example.com"}, Subject: "Hi",
		Text: "hi", OriginInstance: origin})
	b, err := json.Marshal(delivery.DeadLetter{Send: send, Reason: "1 of 1 recipient not delivered: x@example.com bounced: 550 5.1.1 no such user",
		ErrorClass: delivery.ClassPermanent, Undelivered: []delivery.RecipientState{{Recipient: send.Recipients[0],
			Status: delivery.RecipientBounced, Attempts: 1, Detail: "550 5.1.1 no such user"}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(send.DeadLetterUUID(), b)
	msg.Metadata.Set(delivery.EventTypeKey, delivery.EventDeadLetter)
	return msg
}

// legacyDeadLetter is a message of the dead-letter topic as versions before typed
// dead letters left it: the SendEmail payload with dead-letter metadata.
func legacyDeadLetter(t *testing.T, emailID string) *message.Message {
	t.Helper()
	b, err := json.Marshal(map[string]any{"email_id": emailID, "to": []string{"x@example.com"}, "subject": "Hi",
		"text": "hi", "attempt": 1})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(emailID+"/1", b)
	msg.Metadata.Set(dlt.MetaEmailID, emailID)
	msg.Metadata.Set(dlt.MetaErrorClass, "permanent")
	msg.Metadata.Set(dlt.MetaErrorMessage, "550 5.1.1 no such user")
	return msg
}

// Every instance reads the whole dead-letter topic; each parks only the dead letters
// of the emails it accepted, and those nobody can claim (no origin: older versions,
// poison messages), as before origins existed.
func TestOnlyTheInstanceThatAcceptedAnEmailParksItsDeadLetter(t *testing.T) {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	log, logs := apptest.NewLogs()
	m := deadletters.New(app.DeadLettersConfig(cfg, "me"), db, outbox.New(), log)
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)

	poison := message.NewMessage("poison-1", []byte("not a SendEmail"))
	apptest.Publish(t, pub, cfg.Topics.DeadLetter,
		deadLetter(t, "e-other", "someone-else"),
		deadLetter(t, "e-mine", "me"),
		legacyDeadLetter(t, "e-old"),
		poison,
	) // returns once each was acknowledged

	letters, err := m.List(context.Background(), "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var parked []string
	for _, l := range letters {
		parked = append(parked, l.EmailID)
	}
	if want := []string{"", "e-mine", "e-old"}; !slices.Equal(sorted(parked...), want) {
		t.Errorf("parked the dead letters of %q, want %q (this instance's, the one with no origin, the poison message)", sorted(parked...), want)
	}
	lines := logs.With("dead letter of an email another instance accepted; left to it")
	if len(lines) != 1 || lines[0].Level != slog.LevelDebug || lines[0].Attrs["email_id"] != "e-other" ||
		lines[0].Attrs["origin_instance"] != "someone-else" {
		t.Errorf("logged %+v; want one debug line naming e-other and its origin", logs.Lines())
	}
}

// The events a dead letter causes (dead-lettered, replayed, discarded) carry the
// correlation id of the request that sent the email, as every other event about it
// does, so the emails module's logs of them tie back to that request.
func TestEventsAboutADeadLetterCarryTheEmailsCorrelationID(t *testing.T) {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	m := deadletters.New(app.DeadLettersConfig(cfg, "me"), db, outbox.New(), slog.Default())
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)

	for _, id := range []string{"e-replayed", "e-discarded"} {
		msg := deadLetter(t, id, "me")
		msg.Metadata.Set(middleware.CorrelationIDMetadataKey, "corr-"+id)
		apptest.Publish(t, pub, cfg.Topics.DeadLetter, msg) // returns once parked
	}
	ctx := context.Background()
	if err := m.Replay(ctx, "e-replayed"); err != nil {
		t.Fatal(err)
	}
	if err := m.Discard(ctx, "e-discarded"); err != nil {
		t.Fatal(err)
	}

	// Nothing publishes here: every message the module wrote is still in the outbox.
	rows, err := db.Read.QueryContext(ctx, `SELECT topic, metadata FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]string{}
	for rows.Next() {
		var topic, raw string
		if err := rows.Scan(&topic, &raw); err != nil {
			t.Fatal(err)
		}
		var meta map[string]string
		if err := json.Unmarshal([]byte(raw), &meta); err != nil {
			t.Fatal(err)
		}
		name := topic + " " + meta[dlt.EventTypeKey]
		seen[name] = meta[middleware.CorrelationIDMetadataKey]
		if want := "corr-" + meta[broker.PartitionKeyKey]; seen[name] != want {
			t.Errorf("%s about %s carries correlation id %q, want %q", name, meta[broker.PartitionKeyKey], seen[name], want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		cfg.Topics.Events + " " + dlt.EventEmailDeadLettered, cfg.Topics.Events + " " + dlt.EventEmailReplayed,
		cfg.Topics.Events + " " + dlt.EventEmailDiscarded, cfg.Topics.Send + " ",
	} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %q message in the outbox; have %v", want, seen)
		}
	}
}

func TestTheDeadLetterHandlerRefusesToRunWithoutAnInstanceID(t *testing.T) {
	cfg := apptest.Config(t)
	m := deadletters.New(app.DeadLettersConfig(cfg, ""), apptest.Database(t, cfg), outbox.New(), slog.Default())
	if err := m.RegisterHandlers(nil, nil); err == nil {
		t.Fatal("RegisterHandlers without an instance id succeeded: it would park no instance's dead letters")
	}
}

// The whole app on Go channels: an email it accepted and the SMTP server refused
// carries the app's instance id to the dead letters, which park it.
func TestADeadLetterCarriesTheInstanceThatAcceptedItsEmail(t *testing.T) {
	in, srv := start(t)
	id := kill(t, in, srv, "origin@example.com", 550)

	db, err := sqlite.Open(in.Config.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var payload []byte
	if err := db.Read.QueryRow(`SELECT payload FROM deadletters_letters WHERE email_id = ?`, id).Scan(&payload); err != nil {
		t.Fatalf("read the parked payload of %s: %v", id, err)
	}
	var dl delivery.DeadLetter
	if err := json.Unmarshal(payload, &dl); err != nil {
		t.Fatalf("parked payload %s: %v", payload, err)
	}
	if origin := dl.Send.OriginInstance; origin == "" || origin != in.App.InstanceID() {
		t.Errorf("the parked dead letter names origin %q, want the app's instance id %q", origin, in.App.InstanceID())
	}
}

// A poison message has no email id; its letter is named by its own id, by which an
// operator discards it. It cannot be replayed: there is no SendEmail to send again.
func TestAPoisonMessagesLetterIsDiscardedByItsOwnID(t *testing.T) {
	cfg := apptest.Config(t)
	m := deadletters.New(app.DeadLettersConfig(cfg, "me"), apptest.Database(t, cfg), outbox.New(), slog.Default())
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)
	apptest.Publish(t, pub, cfg.Topics.DeadLetter, message.NewMessage("poison-1", []byte("not a SendEmail")),
		deadLetter(t, "e-mine", "me"))
	ctx := context.Background()

	letters, err := m.List(ctx, "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // email id -> letter id
	for _, l := range letters {
		if l.ID == "" || l.ID == l.EmailID {
			t.Fatalf("letter %+v has no id of its own", l)
		}
		ids[l.EmailID] = l.ID
	}
	poisonID, ok := ids[""]
	if !ok || len(ids) != 2 {
		t.Fatalf("parked letters %+v, want the poison message's and e-mine's", letters)
	}
	if err := m.Replay(ctx, poisonID); err == nil || !strings.Contains(err.Error(), "cannot be replayed") {
		t.Errorf("replaying the poison message: %v, want a refusal saying it cannot be replayed", err)
	}
	if err := m.Discard(ctx, poisonID); err != nil {
		t.Fatalf("discard %s: %v", poisonID, err)
	}
	if err := m.Discard(ctx, poisonID); err == nil || !strings.Contains(err.Error(), "was discarded") {
		t.Errorf("discarding %s twice: %v, want a refusal saying it was discarded", poisonID, err)
	}
	// The other letter answers to its own id as well as to its email's.
	if err := m.Discard(ctx, ids["e-mine"]); err != nil {
		t.Fatalf("discard e-mine by %s: %v", ids["e-mine"], err)
	}
	if left, err := m.List(ctx, "", "", "", 100); err != nil || len(left) != 0 {
		t.Errorf("parked letters after both discards: %+v %v", left, err)
	}
}
