package ports

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/logging"
)

// Every API instance reads every event. One whose origin_instance header names
// another instance is acknowledged without being decoded (this payload would not
// decode); one that names this instance, or none, is decoded and applied.
func TestAnEventAboutAnotherInstancesEmailIsAcknowledgedWithoutBeingDecoded(t *testing.T) {
	h := Events{Apply: app.ApplyEvent{Log: logging.Discard()}, InstanceID: "me"}
	event := func(origin string) *message.Message {
		msg := message.NewMessage("e1/r0/a1/attempted", []byte("not JSON {"))
		msg.Metadata.Set(delivery.EventTypeKey, delivery.EventEmailAttempted)
		if origin != "" {
			msg.Metadata.Set(delivery.OriginInstanceKey, origin)
		}
		return msg
	}
	if err := h.Handle(event("another")); err != nil {
		t.Errorf("an event of another instance's email: %v, want it acknowledged undecoded", err)
	}
	for _, origin := range []string{"me", ""} {
		if err := h.Handle(event(origin)); err == nil {
			t.Errorf("an event with origin %q was not decoded (its payload is not JSON, yet no error)", origin)
		}
	}
}
