package emails_test

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/outbox"
)

// On Kafka every instance reads every event, so most events are about emails that
// other instances accepted, into databases of their own. This instance acknowledges
// them (a nack would redeliver forever, a failure would dead-letter an event) and
// says so at debug only: it is the normal case, not a problem.
func TestAnEventAboutAnEmailThisInstanceDidNotAcceptIsAcknowledgedAndLoggedAtDebug(t *testing.T) {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	log, logs := apptest.NewLogs()
	m := emails.New(app.EmailsConfig(cfg, "test"), db, outbox.New(), log, nil)
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)

	payload, err := json.Marshal(delivery.EmailAttempted{EmailID: "0198-not-here", Attempt: 1, Status: delivery.StatusSent,
		Recipients: []delivery.RecipientState{{Recipient: delivery.Recipient{Address: "a@example.com", Type: delivery.TypeTo},
			Status: delivery.RecipientDelivered, Attempts: 1, Detail: "250 OK"}}, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("0198-not-here/r0/a1/attempted", payload)
	msg.Metadata.Set(delivery.EventTypeKey, delivery.EventEmailAttempted)
	apptest.Publish(t, pub, cfg.Topics.Events, msg) // returns once acknowledged

	lines := logs.With("event about an email this instance did not accept; ignored")
	if len(lines) != 1 {
		t.Fatalf("logged %+v; want one line about the unknown email", logs.Lines())
	}
	if l := lines[0]; l.Level != slog.LevelDebug || l.Attrs["email_id"] != "0198-not-here" || l.Attrs["event_type"] != delivery.EventEmailAttempted {
		t.Errorf("logged %+v; want it at debug with the email id and the event type", l)
	}
	for _, l := range logs.Lines() {
		if l.Level > slog.LevelDebug {
			t.Errorf("logged above debug: %+v", l)
		}
	}
}
