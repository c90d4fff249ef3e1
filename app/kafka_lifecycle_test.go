//go:build kafka

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestAnotherServiceReadsTheKafkaLifecycleTopicWithThePublishedSchema is a service of
// its own: a consumer in a group of its own reads topics.lifecycle while Mailroom
// sends mail, some of it bounced, and validates every message against the
// published JSON Schema (contract.EventSchemaV1) before decoding it. It gets every
// event the feed has, each once, as the same JSON, keyed by its email, with the
// event_type and schema_version headers.
func TestAnotherServiceReadsTheKafkaLifecycleTopicWithThePublishedSchema(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	schema := compileEventSchema(t)
	got := consumeLifecycle(t, cfg.Kafka.Brokers, cfg.Topics.Lifecycle, "another-service."+t.Name(), schema)

	const emails = 10
	for i := range emails {
		email := apptest.NewEmail(fmt.Sprintf("r%d@example.com", i))
		if i%3 == 0 {
			email["cc"] = []string{"gone@example.com"}
		}
		in.WaitForStatus(t, in.Send(t, email), "sent", 30*time.Second)
	}
	var feed []contract.Event
	for after := ""; ; {
		p := events(t, in, "?limit=500"+after)
		if len(p.Items) == 0 {
			break
		}
		feed, after = append(feed, p.Items...), "&after="+p.NextCursor
	}
	if len(feed) < emails*3 {
		t.Fatalf("the feed has %d events for %d emails, want at least 3 each", len(feed), emails)
	}
	apptest.Eventually(t, 30*time.Second, func() bool { return got.count() >= len(feed) },
		func() string { return fmt.Sprintf("the topic gave %d of the feed's %d events", got.count(), len(feed)) })

	for _, want := range feed {
		rec, n := got.record(want.ID)
		if n != 1 {
			t.Errorf("event %s (%s) read %d times from the topic, want once", want.ID, want.Type, n)
			continue
		}
		wantJSON, _ := json.Marshal(want)
		var onTopic contract.Event
		if err := json.Unmarshal(rec.value, &onTopic); err != nil {
			t.Fatalf("decode %s: %v", rec.value, err)
		}
		gotJSON, _ := json.Marshal(onTopic)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("topic has %s, the feed %s", gotJSON, wantJSON)
		}
		if string(rec.key) != want.Data.EmailID || rec.headers[contract.EventTypeKey] != want.Type ||
			rec.headers[contract.SchemaVersionKey] != "1" {
			t.Errorf("event %s: key %q, headers %v; want the email id, its type and schema version 1", want.ID, rec.key, rec.headers)
		}
	}
	if bad := got.invalid(); len(bad) > 0 {
		t.Errorf("%d messages break the published schema, the first: %s", len(bad), bad[0])
	}
}

// compileEventSchema compiles the published schema, formats asserted.
func compileEventSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(contract.EventSchemaV1))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("event.v1.schema.json", doc); err != nil {
		t.Fatalf("schema: %v", err)
	}
	s, err := c.Compile("event.v1.schema.json")
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return s
}

// lifecycleRecord is one message read from topics.lifecycle.
type lifecycleRecord struct {
	key, value []byte
	headers    map[string]string
}

// lifecycleReader keeps what a consumer group read, by event id.
type lifecycleReader struct {
	mu      sync.Mutex
	byID    map[string][]lifecycleRecord
	total   int
	badness []string
}

func (r *lifecycleReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

func (r *lifecycleReader) record(id string) (lifecycleRecord, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := r.byID[id]
	if len(recs) == 0 {
		return lifecycleRecord{}, 0
	}
	return recs[0], len(recs)
}

func (r *lifecycleReader) invalid() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badness
}

// consumeLifecycle reads topic in group from the oldest offset until the test
// ends, validating each message against schema.
func consumeLifecycle(t *testing.T, brokers []string, topic, group string, schema *jsonschema.Schema) *lifecycleReader {
	t.Helper()
	sc := broker.ConsumerConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup(brokers, group, sc)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	r := &lifecycleReader{byID: map[string][]lifecycleRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, lifecycleHandler{r, schema}); err != nil && ctx.Err() == nil {
				t.Logf("consume %s: %v", topic, err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cg.Close()
	})
	return r
}

// lifecycleHandler is the consumer group's handler: it records each message.
type lifecycleHandler struct {
	r      *lifecycleReader
	schema *jsonschema.Schema
}

func (lifecycleHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (lifecycleHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h lifecycleHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		rec := lifecycleRecord{key: m.Key, value: m.Value, headers: map[string]string{}}
		for _, hd := range m.Headers {
			rec.headers[string(hd.Key)] = string(hd.Value)
		}
		var id struct{ ID string }
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Value))
		if err == nil {
			err = h.schema.Validate(inst)
		}
		_ = json.Unmarshal(m.Value, &id)
		h.r.mu.Lock()
		if err != nil {
			h.r.badness = append(h.r.badness, fmt.Sprintf("%s: %v", m.Value, err))
		}
		h.r.byID[id.ID] = append(h.r.byID[id.ID], rec)
		h.r.total++
		h.r.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}
