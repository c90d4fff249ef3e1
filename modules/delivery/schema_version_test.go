package delivery_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// A SendEmail from a newer build (an API instance upgraded before its workers) is
// of a schema version this worker does not read: it is not sent as a misread older
// version, but parked in the dead letters under its email, saying which version it
// is and what to do, and an operator's replay once the workers read it sends it.
func TestASendEmailOfANewerSchemaVersionIsParkedNotSentAndSentWhenReplayed(t *testing.T) {
	in, srv := start(t, nil)
	cfg := in.Config
	id := uuid.Must(uuid.NewV7()).String()
	cmd := contract.FirstTry(contract.Email{EmailID: id, From: "app@example.com", To: []string{"newer@example.com"},
		Subject: "From a newer build", Text: "Hello", CreatedAt: time.Now().UTC()})
	msg, err := outbox.NewMessage(cmd.MessageUUID(), id, "", cmd)
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set(broker.SchemaVersionKey, "2")

	// Into the running app's outbox, as the newer API's relay would publish it.
	db, err := sqlite.Open(cfg.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		return outbox.New().Add(ctx, tx, cfg.Topics.Send, msg, time.Time{})
	}); err != nil {
		t.Fatal(err)
	}

	l := letterOf(t, in, id)
	if l.ErrorClass != "poison" || !strings.Contains(l.Reason, "schema_version 2 is newer than this instance reads (up to 1)") {
		t.Errorf("parked letter: class %q, reason %q; want poison, naming version 2 and the version read", l.ErrorClass, l.Reason)
	}
	if n := len(srv.MessagesTo("newer@example.com")); n != 0 {
		t.Fatalf("the newer SendEmail was sent %d times before any replay; want none", n)
	}

	if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+id+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, wait, func() bool { return len(srv.MessagesTo("newer@example.com")) == 1 },
		func() string { return "the replay's one copy at newer@example.com" })
}
