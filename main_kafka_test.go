//go:build kafka

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestKafkaGrowPartitionsCreatesGrowsAndNeverShrinksTopics runs `mailroom kafka
// grow-partitions` on the suite's Kafka (KAFKA_TEST_BROKERS): with
// topics.partitions 3 it creates Mailroom's topics (the retry tiers' too) with 3; with 6 it grows each
// to 6 (as the topics' metadata shows) and run again says "already 6"; with 4 it
// reports each topic's 6 and leaves it, exiting 0.
func TestKafkaGrowPartitionsCreatesGrowsAndNeverShrinksTopics(t *testing.T) {
	brokers := os.Getenv("KAFKA_TEST_BROKERS")
	if brokers == "" {
		t.Fatal("KAFKA_TEST_BROKERS is not set: run the Kafka suite with `make test-kafka`, which starts Kafka")
	}
	t.Setenv("MAILROOM_KAFKA_BROKERS", brokers)
	suffix := fmt.Sprintf("grow.%d", time.Now().UnixNano())
	topics := []string{"email.send." + suffix, "email.send.dlt." + suffix, "email.events." + suffix, "email.lifecycle." + suffix}
	for i, key := range []string{"SEND", "DEAD_LETTER", "EVENTS", "LIFECYCLE"} {
		t.Setenv("MAILROOM_TOPICS_"+key, topics[i])
	}
	// The retry tiers' topics grow with the others (two tiers, to keep it short).
	t.Setenv("MAILROOM_TOPICS_RETRY_TIERS", "5s,1h")
	topics = append(topics, "email.send."+suffix+".retry.5s", "email.send."+suffix+".retry.1h")
	// The suppression list's compacted topic keeps its one partition whatever
	// topics.partitions says (broker.SuppressionsPartitions).
	suppressions := "email.suppressions." + suffix
	t.Setenv("MAILROOM_TOPICS_SUPPRESSIONS", suppressions)
	grow := func(partitions int, line func(topic string) string) {
		t.Helper()
		t.Setenv("MAILROOM_TOPICS_PARTITIONS", fmt.Sprint(partitions))
		code, out, errs := mailroom(t, "kafka", "grow-partitions")
		var want strings.Builder
		for _, topic := range topics {
			want.WriteString(line(topic) + "\n")
		}
		if partitions == 3 {
			want.WriteString(suppressions + ": created with 1\n")
		} else {
			want.WriteString(suppressions + ": already 1\n")
		}
		if code != 0 || errs != "" || out != want.String() {
			t.Fatalf("grow-partitions with topics.partitions %d: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and:\n%s", partitions, code, errs, out, want.String())
		}
	}

	grow(3, func(topic string) string { return topic + ": created with 3" })
	checkPartitions(t, strings.Split(brokers, ","), topics, 3)
	grow(6, func(topic string) string { return topic + ": 3 → 6" })
	checkPartitions(t, strings.Split(brokers, ","), topics, 6)
	grow(6, func(topic string) string { return topic + ": already 6" })
	grow(4, func(topic string) string {
		return topic + ": 6, more than topics.partitions (4); left as it is (Kafka cannot take partitions away)"
	})
	checkPartitions(t, strings.Split(brokers, ","), topics, 6)
	checkPartitions(t, strings.Split(brokers, ","), []string{suppressions}, 1)
}

// checkPartitions fails the test unless each topic's metadata, as a new client
// reads it, lists want partitions.
func checkPartitions(t *testing.T, brokers, topics []string, want int) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	for _, topic := range topics {
		if parts, err := client.Partitions(topic); err != nil || len(parts) != want {
			t.Errorf("%s has partitions %v (%v), want %d", topic, parts, err, want)
		}
	}
}
