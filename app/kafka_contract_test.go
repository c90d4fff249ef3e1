//go:build kafka

package app_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailroom/mailroom/app/apptest"
	dlt "github.com/mailroom/mailroom/modules/deadletters/contract"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaEveryMessageBetweenTheRolesMatchesItsVersionedSchema: the topics between
// an API instance and its delivery workers are their contract. Mail that is sent,
// bounced, deferred and retried through a tier topic, dead-lettered, replayed and
// discarded puts every kind of message on them; each one read back from Kafka
// carries schema_version 1 and validates against the published JSON Schema of its
// type (modules/delivery/contract/*.v1.schema.json,
// modules/deadletters/contract/events.v1.schema.json,
// modules/suppressions/contract/changed.v1.schema.json: the hard bounce's record).
func TestKafkaEveryMessageBetweenTheRolesMatchesItsVersionedSchema(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("bounced@example.com", 550, -1)
	srv.FailRecipient("greylisted@example.com", 451, 1)
	srv.FailRecipient("down@example.com", 451, -1)
	cfg := kafkaConfig(t)
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval, cfg.Retry.Jitter, cfg.Retry.MaxAttempts = time.Second, time.Second, 0, 2
	cfg.Topics.RetryTiers = []string{"1s"}
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	mixed := apptest.NewEmail("ok@example.com")
	mixed["cc"] = []string{"bounced@example.com", "greylisted@example.com"}
	in.WaitForStatus(t, in.Send(t, mixed), "sent", 30*time.Second)
	replayed := in.Send(t, apptest.NewEmail("bounced@example.com"))
	discarded := in.Send(t, apptest.NewEmail("down@example.com"))
	in.WaitForStatus(t, replayed, "dead", 30*time.Second)
	in.WaitForStatus(t, discarded, "dead", 30*time.Second)
	letterOfEmail(t, in, replayed)
	letterOfEmail(t, in, discarded)
	if r := in.Do(t, http.MethodPost, "/api/dead-letters/"+replayed+"/replay", nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodDelete, "/api/dead-letters/"+discarded, nil); r.Status/100 != 2 {
		t.Fatalf("discard: %d %s", r.Status, r.Body)
	}
	in.WaitForStatus(t, replayed, "dead", 30*time.Second) // bounced again

	schemas := compileContractSchemas(t)
	want := map[string]string{ // topic -> the schema of what it carries, or "" for "by event_type"
		cfg.Topics.Send: "send_email", config.RetryTopic(cfg.Topics.Send, time.Second): "send_email",
		cfg.Topics.DeadLetter: "", cfg.Topics.Events: "", cfg.Topics.Suppressions: "suppressions_changed",
	}
	seen := map[string]int{}
	apptest.Eventually(t, 30*time.Second, func() bool {
		seen = map[string]int{}
		for topic, fixed := range want {
			for _, rec := range readTopic(t, cfg.Kafka.Brokers, topic) {
				seen[kindOf(rec, fixed)]++
			}
		}
		// Each kind at least once, and both of the replayed email's dead letters.
		return seen["send_email"] > 0 && seen[delivery.EventEmailAttempted] > 0 && seen[delivery.EventDeadLetter] >= 3 &&
			seen[dlt.EventEmailDeadLettered] >= 3 && seen[dlt.EventEmailReplayed] == 1 && seen[dlt.EventEmailDiscarded] == 1 &&
			seen["suppressions_changed"] > 0 // bounced@'s hard bounce
	}, func() string { return fmt.Sprintf("messages by kind on the topics: %v", seen) })
	if n := recordsIn(t, cfg.Kafka.Brokers, config.RetryTopic(cfg.Topics.Send, time.Second)); n < 2 {
		t.Errorf("the 1s tier topic holds %d records, want the retries of greylisted@ and down@", n)
	}

	for topic, fixed := range want {
		for _, rec := range readTopic(t, cfg.Kafka.Brokers, topic) {
			kind := kindOf(rec, fixed)
			s, ok := schemas[kind]
			if !ok {
				t.Errorf("%s: a message of kind %q, which has no published schema", topic, kind)
				continue
			}
			if v := headerOf(rec, broker.SchemaVersionKey); v != "1" {
				t.Errorf("%s: a %s with schema_version %q, want 1", topic, kind, v)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.value))
			if err == nil {
				err = s.Validate(inst)
			}
			if err != nil {
				t.Errorf("%s: a %s breaks its schema: %v\n%s", topic, kind, err, rec.value)
			}
		}
	}
	t.Logf("validated messages by kind: %v", seen)
}

// letterOfEmail waits until the email's dead letter is parked.
func letterOfEmail(t *testing.T, in *apptest.Instance, id string) {
	t.Helper()
	apptest.Eventually(t, 30*time.Second, func() bool {
		return in.Do(t, http.MethodGet, "/api/dead-letters/"+id, nil).Status == http.StatusOK
	}, func() string { return "a parked dead letter of " + id })
}

// compileContractSchemas compiles the published schemas of the topics between the
// roles, formats asserted, by message kind: "send_email", then each event_type.
func compileContractSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	urls := map[string]string{}
	for _, set := range []fs.FS{delivery.Schemas, dlt.Schemas, suppressions.Schemas} {
		names, err := fs.Glob(set, "*.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			b, err := fs.ReadFile(set, name)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			url := doc.(map[string]any)["$id"].(string)
			if err := c.AddResource(url, doc); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			urls[name] = url
		}
	}
	compile := func(loc string) *jsonschema.Schema {
		s, err := c.Compile(loc)
		if err != nil {
			t.Fatalf("compile %s: %v", loc, err)
		}
		return s
	}
	return map[string]*jsonschema.Schema{
		"send_email":                 compile(urls["send_email.v1.schema.json"]),
		delivery.EventEmailAttempted: compile(urls["email_attempted.v1.schema.json"]),
		delivery.EventDeadLetter:     compile(urls["dead_letter.v1.schema.json"]),
		dlt.EventEmailDeadLettered:   compile(urls["events.v1.schema.json"] + "#/$defs/" + dlt.EventEmailDeadLettered),
		dlt.EventEmailReplayed:       compile(urls["events.v1.schema.json"] + "#/$defs/" + dlt.EventEmailReplayed),
		dlt.EventEmailDiscarded:      compile(urls["events.v1.schema.json"] + "#/$defs/" + dlt.EventEmailDiscarded),
		"suppressions_changed":       compile(urls["changed.v1.schema.json"]),
	}
}

// kindOf is the kind of message rec is: fixed, or when that is "" its event_type.
func kindOf(rec kafkaRecord, fixed string) string {
	if fixed != "" {
		return fixed
	}
	return headerOf(rec, delivery.EventTypeKey)
}

// headerOf is the value of rec's header key, "" when it has none.
func headerOf(rec kafkaRecord, key string) string {
	for _, h := range rec.headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}
