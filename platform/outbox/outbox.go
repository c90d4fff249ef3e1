// Package outbox is Mailroom's transactional outbox. A module writes the messages it
// wants published in the same SQLite transaction as its own change (Outbox.Add), and
// Relay publishes them afterwards, deleting each row only once the broker has
// accepted it. So a change is never committed without its messages, nor a message
// published for a change that rolled back, across any crash.
package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/mailroom/mailroom/platform/broker"
)

// Outbox writes outbox rows and wakes the relay after a commit.
type Outbox struct {
	mu      sync.Mutex
	wakeups []chan struct{}
	now     func() time.Time
	// awaited holds, per message uuid, the channels of AwaitPublished callers.
	awaited map[string][]chan struct{}
}

// New returns an empty Outbox.
func New() *Outbox { return &Outbox{now: time.Now} }

// NewMessage builds a message for Add the way every module's commands and events are
// built: payload encoded as JSON, keyed by key (a key's messages keep their order,
// on one Kafka partition or Go-channel lane) and carrying correlationID, when there
// is one, so the consumer's logs tie back to the request that caused it. A payload
// whose contract versions its schema (broker.Versioned) has its version in
// broker.SchemaVersionKey.
func NewMessage(uuid, key, correlationID string, payload any) (*message.Message, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", payload, err)
	}
	msg := message.NewMessage(uuid, b)
	msg.Metadata.Set(broker.PartitionKeyKey, key)
	if v, ok := payload.(broker.Versioned); ok {
		msg.Metadata.Set(broker.SchemaVersionKey, strconv.Itoa(v.SchemaVersion()))
	}
	if correlationID != "" {
		msg.Metadata.Set(middleware.CorrelationIDMetadataKey, correlationID)
	}
	return msg, nil
}

// Add stores msg for publishing to topic, as part of tx. Rows are published in due
// order, and in order per partition key (metadata broker.PartitionKeyKey). A zero at
// means as soon as possible; a later one holds the row back until then, which is how
// scheduled sends and retries wait durably.
func (o *Outbox) Add(ctx context.Context, tx *sql.Tx, topic string, msg *message.Message, at time.Time) error {
	meta, err := json.Marshal(msg.Metadata)
	if err != nil {
		return fmt.Errorf("outbox: encode metadata: %w", err)
	}
	key := msg.Metadata.Get(broker.PartitionKeyKey)
	if key == "" {
		key = msg.UUID
	}
	now := o.now().UnixMilli()
	due := now
	if !at.IsZero() && at.UnixMilli() > now {
		due = at.UnixMilli()
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO outbox (uuid, topic, partition_key, payload, metadata, created_at, available_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		msg.UUID, topic, key, []byte(msg.Payload), string(meta), now, due)
	if err != nil {
		return fmt.Errorf("outbox: insert %s message %s: %w", topic, msg.UUID, err)
	}
	return nil
}

// Notify wakes the relay; call it after committing a transaction that added rows, so
// they are published at once rather than at the next poll.
func (o *Outbox) Notify() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.wakeups {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// AwaitPublished returns a channel that is closed once this process's relay has
// published the row of the message uuid (and deleted it), so that a caller can hold
// its own acknowledgement until its message is in the broker. Call it before the
// transaction that adds the row commits, or the relay may publish the row first;
// call stop when done waiting (also when the transaction failed), which releases
// the channel. The channel never closes for a row another process publishes.
func (o *Outbox) AwaitPublished(uuid string) (published <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.awaited == nil {
		o.awaited = map[string][]chan struct{}{}
	}
	o.awaited[uuid] = append(o.awaited[uuid], ch)
	return ch, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		list := o.awaited[uuid]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(o.awaited, uuid)
		} else {
			o.awaited[uuid] = list
		}
	}
}

// published closes the channels of the AwaitPublished callers of uuids.
func (o *Outbox) published(uuids []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.awaited) == 0 {
		return
	}
	for _, u := range uuids {
		for _, ch := range o.awaited[u] {
			close(ch)
		}
		delete(o.awaited, u)
	}
}

func (o *Outbox) subscribe() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := make(chan struct{}, 1)
	o.wakeups = append(o.wakeups, w)
	return w
}
