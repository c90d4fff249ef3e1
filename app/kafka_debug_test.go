//go:build kafka

package app_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

func TestKafkaDebugHA(t *testing.T) {
	kc := startCluster(t, 29092)
	srv := smtptest.Start(t)
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = kc.brokers
	cfg.Topics.ReplicationFactor = 3
	cfg.Topics.MinInsyncReplicas = 2
	apptest.UseSMTP(cfg, srv)
	f, _ := os.Create("/tmp/ha-debug.log")
	defer f.Close()
	a, err := app.New(cfg, app.WithLogger(logging.New(f, "info", "text")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	defer func() { cancel(); <-done }()
	base := "http://" + a.Addr()
	ld := startSteadyLoad(context.Background(), base, 4, 0+5*time.Millisecond)
	stopMon := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stopMon:
				return
			case <-tk.C:
				fmt.Fprintf(f, "PROGRESS accepted=%d delivered=%d\n", ld.accepted.Load(), srv.Count())
				t.Logf("PROGRESS accepted=%d delivered=%d", ld.accepted.Load(), srv.Count())
			}
		}
	})
	for round, partition := range []int32{0, 1} {
		target := int64(200 * (round + 1))
		apptest.Eventually(t, time.Minute, func() bool { return ld.accepted.Load() >= target }, func() string { return "" })
		leader := kc.leaderOf(cfg.Topics.Send, partition, kc.brokers)
		fmt.Fprintf(f, "KILL node %d\n", leader)
		t.Logf("KILL node %d", leader)
		kc.script("kill", strconv.Itoa(int(leader)))
		before := srv.Count()
		apptest.Eventually(t, 2*time.Minute, func() bool { return srv.Count() > before+100 }, func() string { return "" })
		fmt.Fprintf(f, "START node %d\n", leader)
		kc.script("start", strconv.Itoa(int(leader)))
		kc.script("wait")
		fmt.Fprintf(f, "STARTED node %d\n", leader)
	}
	ids := ld.stop()
	rx := newReceivedIndex()
	apptest.Eventually(t, 3*time.Minute, func() bool { rx.update(srv); return rx.missing(ids) == 0 }, func() string {
		return fmt.Sprintf("%d missing; %s", rx.missing(ids), deliveryDiagnosis(cfg, ids))
	})
	close(stopMon)
	wg.Wait()
}
