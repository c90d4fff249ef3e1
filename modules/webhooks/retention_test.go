package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/webhooks"
	"github.com/mailroom/mailroom/platform/logging"
)

func TestDeliveriesAndTheirEventsAreSweptAfterTheEmailsRetention(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	in := apptest.Start(t, apptest.Config(t))
	ep := create(t, in, rc, contract.EventDelivered)
	src := newEvents(t, in)
	ev := event(contract.EventDelivered, "e1")
	src.publish(t, ev)
	apptest.Eventually(t, wait, func() bool {
		ds := deliveries(t, in, ep.ID)
		return len(ds) == 1 && ds[0].Status == "succeeded"
	}, func() string { return "the delivery succeeded" })

	m := webhooks.New(app.WebhooksConfig(in.Config, in.App.InstanceID()), src.db, logging.Discard(), nil)
	sweep := func(after time.Duration) map[string]int {
		t.Helper()
		deleted, err := m.Sweeper(func() time.Time { return time.Now().Add(after) }).Sweep(context.Background())
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		return deleted
	}
	if deleted := sweep(in.Config.Retention.Emails - time.Hour); deleted["webhook deliveries"] != 0 {
		t.Errorf("an hour before retention.emails, the sweep deleted %v", deleted)
	}
	if len(deliveries(t, in, ep.ID)) != 1 {
		t.Fatal("the delivery went before its time")
	}
	if deleted := sweep(in.Config.Retention.Emails + time.Hour); deleted["webhook deliveries"] != 2 {
		t.Errorf("after retention.emails the sweep deleted %v; want the delivery and its event", deleted)
	}
	if ds := deliveries(t, in, ep.ID); len(ds) != 0 {
		t.Errorf("deliveries after the sweep: %+v", ds)
	}
	var events int
	if err := src.db.Read.QueryRow(`SELECT COUNT(*) FROM webhooks_events`).Scan(&events); err != nil || events != 0 {
		t.Errorf("%d stored events after the sweep (%v); want none", events, err)
	}
}
