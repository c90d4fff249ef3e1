//go:build kafka

package app_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// kafkaBrokers is the real Kafka the suite runs against: `make test` starts one node
// with scripts/kafka.sh and passes its address in KAFKA_TEST_BROKERS.
func kafkaBrokers(tb testing.TB) []string {
	tb.Helper()
	v := os.Getenv("KAFKA_TEST_BROKERS")
	if v == "" {
		tb.Fatal("KAFKA_TEST_BROKERS is not set: run the Kafka suite with `make test-kafka`, which starts Kafka")
	}
	return strings.Split(v, ",")
}

// kafkaConfig is a test config on Kafka with topics and groups of its own, so tests
// sharing one cluster never see each other's messages.
func kafkaConfig(tb testing.TB) *config.Config {
	tb.Helper()
	cfg := apptest.Config(tb)
	suffix := fmt.Sprintf("%s.%d", strings.ReplaceAll(tb.Name(), "/", "."), time.Now().UnixNano())
	cfg.Broker.Kind = config.BrokerKafka
	cfg.Kafka.Brokers = kafkaBrokers(tb)
	cfg.Kafka.ConsumerGroup = "email-send-group." + suffix
	cfg.Topics.Send = "email.send." + suffix
	cfg.Topics.DeadLetter = "email.send.dlt." + suffix
	cfg.Topics.Events = "email.events." + suffix
	cfg.Topics.Lifecycle = "email.lifecycle." + suffix
	cfg.Topics.Suppressions = "email.suppressions." + suffix
	return cfg
}

func TestKafkaDeliversThousandEmailsOverThreePartitions(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e := apptest.NewEmail(fmt.Sprintf("user%d@example.com", i))
				if i == 0 {
					e["subject"] = "안녕하세요"
				}
				ids[i] = in.Send(t, e)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()

	srv.WaitForCount(t, n, 3*time.Minute)
	for _, id := range []string{ids[0], ids[n/2], ids[n-1]} {
		in.WaitForStatus(t, id, "sent", time.Minute)
	}
	apptest.Eventually(t, time.Minute, func() bool {
		r := in.Do(t, "GET", "/api/emails?status=sent&limit=100", nil)
		var page struct{ Items []apptest.Email }
		r.JSON(t, &page)
		return len(page.Items) == 100
	}, func() string { return "sent emails listed" })

	// Every partition of the send topic carried mail.
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(cfg.Topics.Send)
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	if len(parts) != 3 {
		t.Fatalf("send topic has %d partitions, want 3", len(parts))
	}
	total := int64(0)
	for _, p := range parts {
		off, err := client.GetOffset(cfg.Topics.Send, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of partition %d: %v", p, err)
		}
		if off < n/10 {
			t.Errorf("partition %d holds %d messages; keys should spread %d emails over 3 partitions", p, off, n)
		}
		total += off
	}
	if total < n {
		t.Errorf("send topic holds %d messages, want at least %d", total, n)
	}
}

func TestKafkaDeadLettersAndReplay(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	apptest.UseSMTP(cfg, srv)
	in := apptest.Start(t, cfg)

	// 554 (policy): refused for good, but not a mailbox that does not exist, so
	// the address is not suppressed and the replay can reach it.
	srv.FailRecipient("bounce@example.com", 554, -1)
	id := in.Send(t, apptest.NewEmail("bounce@example.com"))
	in.WaitForStatus(t, id, "dead", time.Minute)
	if got := srv.Attempts("bounce@example.com"); got != 1 {
		t.Fatalf("a 554 recipient was tried %d times, want 1", got)
	}
	var list struct {
		Items []struct {
			EmailID           string `json:"email_id"`
			OriginalTopic     string `json:"original_topic"`
			OriginalPartition *int64 `json:"original_partition"`
			ConsumerGroup     string `json:"consumer_group"`
		} `json:"items"`
	}
	in.Do(t, "GET", "/api/dead-letters", nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].EmailID != id || list.Items[0].OriginalPartition == nil ||
		list.Items[0].OriginalTopic != cfg.Topics.Send || list.Items[0].ConsumerGroup != cfg.Kafka.ConsumerGroup {
		t.Fatalf("dead letters: %+v", list.Items)
	}

	srv.ClearFaults()
	if r := in.Do(t, "POST", "/api/dead-letters/"+id+"/replay", nil); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	in.WaitForStatus(t, id, "sent", time.Minute)
}
