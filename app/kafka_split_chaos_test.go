//go:build kafka

package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// The split deployment's chaos test runs on a 3-node cluster of its own on these
// ports (no other test or helper uses them).
const splitChaosPortBase = 29792

// The split deployment's delivery settings: every deferred recipient waits
// splitRetryDelay before its next try, in the one retry tier splitRetryTier, and
// is tried splitMaxAttempts times in all; each worker sends splitConcurrency at
// once.
const (
	splitRetryTier   = "4s"
	splitRetryDelay  = 4 * time.Second
	splitMaxAttempts = 3
	splitConcurrency = 8
)

// TestKafkaSplitDeploymentEndsEveryAcceptedEmailAsItsRecipientsDictateThroughAWorkersLossAndABrokerLeadersDeath
// runs issue 17's deployment from the built binary: 2 API instances (`--modules
// api`) and 3 delivery workers (`--modules delivery`), each on its own database, on a
// 3-broker cluster (replication factor 3, min ISR 2), sending to an SMTP server that
// answers each message after 50 ms. Both API instances take a continuous load whose
// recipients have fates of their own (accepted; greylisted twice; refused; deferred
// for ever), so retries always wait in the retry tier. A worker is SIGKILLed while it
// holds some (its mailroom_delivery_retries_waiting says so) and its data directory
// deleted; once the two others share its partitions, the leader of an email.send
// partition is SIGKILLed and stays down. Then every email answered 202 must end, in
// the API of the instance that accepted it, sent or dead as its recipients dictate,
// with every recipient's outcome, and /raw must answer there with its Message-ID.
// SMTP receipts are counted per Message-ID and recipient: copies beyond the first are
// allowed only within the bound docs/kafka.md's "Retries on Kafka" gives for a lost worker.
func TestKafkaSplitDeploymentEndsEveryAcceptedEmailAsItsRecipientsDictateThroughAWorkersLossAndABrokerLeadersDeath(t *testing.T) {
	kc := startCluster(t, splitChaosPortBase)
	srv := smtptest.Start(t, smtptest.WithReplyDelay(50*time.Millisecond))
	cfg := kafkaConfig(t)
	cfg.Kafka.Brokers = kc.brokers
	cfg.Topics.Partitions = 6
	dep := startSplitDeployment(t, cfg, srv, 2, 3)
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	tierGroup := cfg.Kafka.ConsumerGroup + ".retry." + splitRetryTier
	tierTopic := config.RetryTopic(cfg.Topics.Send, splitRetryDelay)
	waitForMembers(t, admin, cfg.Kafka.ConsumerGroup, cfg.Topics.Send, 3)
	waitForMembers(t, admin, tierGroup, tierTopic, 3)

	loads := dep.startLoads(t, srv)
	defer func() {
		for _, l := range loads {
			l.Stop()
		}
	}()

	victim, kill := dep.killAWorkerHoldingRetries(t, loads)
	atKill := sendOffsets(t, cfg)
	waitForMembers(t, admin, cfg.Kafka.ConsumerGroup, cfg.Topics.Send, 2)
	waitForMembers(t, admin, tierGroup, tierTopic, 2)
	t.Logf("the two other workers share %s and %s", cfg.Topics.Send, tierTopic)

	leader := kc.leaderOf(cfg.Topics.Send, 0, kc.brokers)
	kc.script("kill", strconv.Itoa(int(leader)))
	sentBefore := srv.Count()
	acceptedBefore := accepted(loads)
	t.Logf("SIGKILLed broker %d, leader of %s/0, after %d emails accepted", leader, cfg.Topics.Send, acceptedBefore)
	apptest.Eventually(t, 2*time.Minute, func() bool {
		return accepted(loads) >= acceptedBefore+200 && srv.Count() >= sentBefore+200
	}, func() string {
		return fmt.Sprintf("since broker %d died: %d accepted, %d delivered; want 200 of each",
			leader, accepted(loads)-acceptedBefore, srv.Count()-sentBefore)
	})

	ids := map[*splitProcess][]string{}
	for i, api := range dep.apis {
		ids[api] = loads[i].Stop()
		if !loads[i].AllAccepted() {
			t.Errorf("API %s did not answer 202 to every POST: %s", api.name, loads[i].Summary())
		}
	}
	for _, api := range dep.apis {
		waitAllFinal(t, api, ids[api])
	}
	rx := receiptsOf(srv)
	uncommitted := uncommittedEmails(t, cfg, atKill)
	for _, api := range dep.apis {
		checkEmailsAsTheirRecipientsDictate(t, api, ids[api], rx, srv, uncommitted)
	}
	checkRetriesWaitedAcrossTheKill(t, srv, kill)
	checkDuplicatesWithinTheBound(t, rx, victim, kill, atKill, uncommitted)
	dep.stop(t)
}

// splitProcess is one `mailroom serve` of the split deployment.
type splitProcess struct {
	name string // also its EHLO name's first label
	role string // config.ModulesAPI or config.ModulesDelivery
	dir  string // its data directory: its database, nothing else
	base string
	env  []string
	log  string
	proc *e2e.Process
}

// helo is the EHLO name the process gives (smtp.helo_name), by which the SMTP
// server's messages tell which worker sent them.
func (p *splitProcess) helo() string { return p.name + ".mailroom.test" }

// splitDeployment is API instances and delivery workers of one cluster.
type splitDeployment struct {
	apis, workers []*splitProcess
}

// startSplitDeployment starts apis API instances and workers delivery workers from
// the built binary, each with its own database, all at once, and waits until each
// answers /readyz.
func startSplitDeployment(t *testing.T, cfg *config.Config, srv *smtptest.Server, apis, workers int) *splitDeployment {
	t.Helper()
	bin := e2e.Build(t)
	dep := &splitDeployment{}
	add := func(role, name string) *splitProcess {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		addr := e2e.FreeAddr(t)
		p := &splitProcess{name: name, role: role, dir: dir, base: "http://" + addr, log: filepath.Join(t.TempDir(), name+".log")}
		p.env = splitEnv(cfg, srv, p, filepath.Join(dir, "mailroom.db"), addr)
		p.proc = e2e.Start(t, bin, p.env, p.log, "serve")
		return p
	}
	for i := range apis {
		dep.apis = append(dep.apis, add(config.ModulesAPI, fmt.Sprintf("api-%d", i+1)))
	}
	for i := range workers {
		dep.workers = append(dep.workers, add(config.ModulesDelivery, fmt.Sprintf("worker-%d", i+1)))
	}
	for _, p := range dep.all() {
		if err := p.proc.WaitReady(context.Background(), p.base, 90*time.Second); err != nil {
			t.Fatalf("%s (--modules %s): %v", p.name, p.role, err)
		}
	}
	return dep
}

// splitEnv is the environment of one process of the deployment: its role, its
// database and address, the cluster with replication factor 3, the retry settings
// above, and an EHLO name of its own.
func splitEnv(cfg *config.Config, srv *smtptest.Server, p *splitProcess, dbPath, addr string) []string {
	return append(subprocessEnv(cfg, srv, dbPath, addr),
		"MAILROOM_MODULES="+p.role,
		"MAILROOM_SMTP_HELO_NAME="+p.helo(),
		"MAILROOM_TOPICS_PARTITIONS="+strconv.Itoa(cfg.Topics.Partitions),
		"MAILROOM_TOPICS_REPLICATION_FACTOR=3",
		"MAILROOM_TOPICS_MIN_INSYNC_REPLICAS=2",
		"MAILROOM_TOPICS_RETRY_TIERS="+splitRetryTier,
		"MAILROOM_RETRY_MAX_ATTEMPTS="+strconv.Itoa(splitMaxAttempts),
		"MAILROOM_RETRY_INITIAL_INTERVAL="+splitRetryDelay.String(),
		"MAILROOM_RETRY_MAX_INTERVAL="+splitRetryDelay.String(),
		"MAILROOM_RETRY_MULTIPLIER=1",
		"MAILROOM_RETRY_JITTER=0",
		"MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(splitConcurrency),
	)
}

func (d *splitDeployment) all() []*splitProcess { return append(slices.Clone(d.apis), d.workers...) }

// startLoads starts one load per API instance: 2 clients, each posting 10 emails a
// second, to recipients with the fates of splitRecipients.
func (d *splitDeployment) startLoads(t *testing.T, srv *smtptest.Server) []*e2e.Load {
	t.Helper()
	var loads []*e2e.Load
	for _, api := range d.apis {
		loads = append(loads, e2e.StartLoad(t, context.Background(), api.base, e2e.LoadConfig{
			Workers: 2, Every: 100 * time.Millisecond, Subject: "split " + api.name,
			Recipients: splitRecipients(api.name, srv),
		}))
	}
	return loads
}

func accepted(loads []*e2e.Load) int64 {
	var n int64
	for _, l := range loads {
		n += l.Accepted.Load()
	}
	return n
}

// workerKill is when a worker was SIGKILLed, and what it held then.
type workerKill struct {
	at      time.Time
	waiting float64 // retries its forwarder held, read just before the kill
}

// killAWorkerHoldingRetries waits until 150 emails were accepted and a worker's
// forwarder holds retries waiting to be due, SIGKILLs that worker at once and
// deletes its data directory.
func (d *splitDeployment) killAWorkerHoldingRetries(t *testing.T, loads []*e2e.Load) (*splitProcess, workerKill) {
	t.Helper()
	client := e2e.NewHTTPClient(t)
	var victim *splitProcess
	var waiting float64
	apptest.Eventually(t, time.Minute, func() bool {
		if accepted(loads) < 150 {
			return false
		}
		victim, waiting = nil, 0
		for _, w := range d.workers {
			if n := retriesWaiting(client, w); n > waiting {
				victim, waiting = w, n
			}
		}
		return victim != nil
	}, func() string {
		return fmt.Sprintf("%d emails accepted; no worker holds a retry waiting in tier %s", accepted(loads), splitRetryTier)
	})
	victim.proc.Kill()
	kill := workerKill{at: time.Now(), waiting: waiting}
	if err := os.RemoveAll(victim.dir); err != nil {
		t.Fatalf("delete %s's data directory: %v", victim.name, err)
	}
	t.Logf("SIGKILLed %s holding %v retries waiting in tier %s, after %d emails accepted; deleted %s",
		victim.name, waiting, splitRetryTier, accepted(loads), victim.dir)
	return victim, kill
}

// retriesWaiting is mailroom_delivery_retries_waiting of the worker's tier (0 when
// it does not answer).
func retriesWaiting(client *http.Client, w *splitProcess) float64 {
	req, err := http.NewRequest(http.MethodGet, w.base+"/metrics", nil)
	if err != nil {
		return 0
	}
	e2e.Authorize(req)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		return 0
	}
	v, _ := metricValue(body.String(), fmt.Sprintf(`mailroom_delivery_retries_waiting{tier=%q}`, splitRetryTier))
	return v
}

// waitForMembers waits until n members of group hold every partition of topic,
// each some.
func waitForMembers(t *testing.T, admin sarama.ClusterAdmin, group, topic string, n int) {
	t.Helper()
	meta, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(meta) != 1 {
		t.Fatalf("describe %s: %v", topic, err)
	}
	partitions := len(meta[0].Partitions)
	var a map[string][]int32
	apptest.Eventually(t, 90*time.Second, func() bool {
		a = assignment(t, admin, group, topic)
		return len(a) == n && countPartitions(a) == partitions && everyMemberHasPartitions(a)
	}, func() string {
		return fmt.Sprintf("%d members of %s sharing the %d partitions of %s: %v", n, group, partitions, topic, a)
	})
}

// The fates of the test's recipients: the SMTP server is scripted for each address
// by the suffix of its local part, before the email is posted.
const (
	fateAccepted   = "ok"       // 250: delivered at the first try
	fateGreylisted = "grey"     // 451 twice, then 250: delivered at the third
	fateRefused    = "refused"  // 550 5.1.1 for ever: bounced at the first
	fateDeferred   = "deferred" // 451 for ever: failed once splitMaxAttempts tries ran out
)

// splitRecipients chooses the recipients of the load posting to api: of every ten
// emails, five go to an accepted recipient, two to a greylisted one, one to a
// refused one, one to an accepted and a refused one, one to a recipient deferred for
// ever. It scripts srv for each address it returns.
func splitRecipients(api string, srv *smtptest.Server) func(w, seq int) []string {
	return func(w, seq int) []string {
		addr := func(fate string) string {
			a := fmt.Sprintf("%s-%d-%d.%s@example.com", api, w, seq, fate)
			switch fate {
			case fateGreylisted:
				srv.FailRecipient(a, 451, 2)
			case fateRefused:
				srv.FailRecipient(a, 550, -1)
			case fateDeferred:
				srv.FailRecipient(a, 451, -1)
			}
			return a
		}
		switch seq % 10 {
		case 5, 6:
			return []string{addr(fateGreylisted)}
		case 7:
			return []string{addr(fateRefused)}
		case 8:
			return []string{addr(fateAccepted), addr(fateRefused)}
		case 9:
			return []string{addr(fateDeferred)}
		default:
			return []string{addr(fateAccepted)}
		}
	}
}

// fateOf is the fate an address of splitRecipients was given.
func fateOf(address string) string {
	local, _, _ := strings.Cut(address, "@")
	return local[strings.LastIndexByte(local, '.')+1:]
}

// recipientOutcome is the outcome a recipient of fate must end with.
func recipientOutcome(fate string) string {
	switch fate {
	case fateAccepted, fateGreylisted:
		return "delivered"
	case fateRefused:
		return "bounced"
	default:
		return "failed"
	}
}

// dictated is the status and outcome an email must end with, given its recipients'
// addresses: sent when any of them is delivered, else dead; complete, partial or
// none by how many are.
func dictated(addresses []string) (status, outcome string) {
	delivered := 0
	for _, a := range addresses {
		if recipientOutcome(fateOf(a)) == "delivered" {
			delivered++
		}
	}
	switch delivered {
	case 0:
		return "dead", "none"
	case len(addresses):
		return "sent", "complete"
	default:
		return "sent", "partial"
	}
}

// waitAllFinal waits until every email of ids is sent or dead in the API of api,
// the instance that accepted them.
func waitAllFinal(t *testing.T, api *splitProcess, ids []string) {
	t.Helper()
	client := e2e.NewHTTPClient(t)
	next, last := 0, ""
	apptest.Eventually(t, 2*time.Minute, func() bool {
		for ; next < len(ids); next++ {
			var e splitEmail
			st, err := e2e.GetJSON(context.Background(), client, api.base, "/api/emails/"+ids[next], &e)
			if err != nil || st != http.StatusOK || (e.Status != "sent" && e.Status != "dead") {
				last = fmt.Sprintf("%s (HTTP %d, %v)", e.Status, st, err)
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("API %s: %d of its %d emails are sent or dead; %s is %s", api.name, next, len(ids), ids[next], last)
	})
	t.Logf("API %s: all %d emails it accepted are sent or dead", api.name, len(ids))
}

// splitEmail is GET /api/emails/{id}, the fields the test checks.
type splitEmail struct {
	Status     string `json:"status"`
	Outcome    string `json:"outcome"`
	Recipients []struct {
		Address string `json:"address"`
		Status  string `json:"status"`
	} `json:"recipients"`
}

// checkEmailsAsTheirRecipientsDictate checks each email api accepted, there: its
// status and outcome as its recipients dictate, each recipient's outcome, /raw
// answering 200 with its Message-ID, and the SMTP server having received it for
// each delivered recipient and for nobody else. A refused recipient may be
// `suppressed` instead of `bounced` where its email's SendEmail was not committed at
// the kill (uncommitted): the lost worker's try bounced it, which put the address on
// the suppression list, and the redelivered try found it there (docs/kafka.md, "What a
// lost worker can cost").
func checkEmailsAsTheirRecipientsDictate(t *testing.T, api *splitProcess, ids []string, rx receipts, srv *smtptest.Server, uncommitted map[string]bool) {
	t.Helper()
	client := e2e.NewHTTPClient(t)
	var mu sync.Mutex
	var problems []string
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range work {
				if p := checkEmail(client, api, id, rx, srv, uncommitted[id]); p != "" {
					mu.Lock()
					problems = append(problems, p)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Errorf("API %s: %d of its %d emails are not as their recipients dictate, e.g.:\n%s",
			api.name, len(problems), len(ids), strings.Join(problems[:min(10, len(problems))], "\n"))
		return
	}
	t.Logf("API %s: each of its %d emails ends as its recipients dictate, and /raw answers with its Message-ID", api.name, len(ids))
}

// checkEmail checks one email (see checkEmailsAsTheirRecipientsDictate) and
// describes what is wrong with it, or returns "".
func checkEmail(client *http.Client, api *splitProcess, id string, rx receipts, srv *smtptest.Server, uncommitted bool) string {
	ctx := context.Background()
	var e splitEmail
	if st, err := e2e.GetJSON(ctx, client, api.base, "/api/emails/"+id, &e); err != nil || st != http.StatusOK {
		return fmt.Sprintf("%s: GET: %d %v", id, st, err)
	}
	var addresses []string
	var wrong []string
	for _, r := range e.Recipients {
		addresses = append(addresses, r.Address)
		want := recipientOutcome(fateOf(r.Address))
		if want == "bounced" && r.Status == "suppressed" && uncommitted {
			want = r.Status // its own bounce on the lost worker's try put it on the list
		}
		if r.Status != want {
			wrong = append(wrong, fmt.Sprintf("%s %s, want %s", r.Address, r.Status, want))
		}
		delivered := len(rx[receiptKey{messageID(id), strings.ToLower(r.Address)}]) > 0
		if delivered != (recipientOutcome(fateOf(r.Address)) == "delivered") {
			var got []string
			for _, m := range srv.MessagesTo(r.Address) {
				msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
				if err != nil {
					got = append(got, fmt.Sprintf("unreadable (%v) from %s", err, m.Hello))
					continue
				}
				got = append(got, fmt.Sprintf("%s from %s", msg.Header.Get("Message-ID"), m.Hello))
			}
			wrong = append(wrong, fmt.Sprintf("%s received by the SMTP server: %v (RCPT tried %d times; messages to it: %v)",
				r.Address, delivered, srv.Attempts(r.Address), got))
		}
	}
	if len(addresses) == 0 {
		return fmt.Sprintf("%s: no recipients", id)
	}
	if status, outcome := dictated(addresses); e.Status != status || e.Outcome != outcome {
		wrong = append(wrong, fmt.Sprintf("%s/%s, want %s/%s", e.Status, e.Outcome, status, outcome))
	}
	if p := checkRaw(client, api, id); p != "" {
		wrong = append(wrong, p)
	}
	if len(wrong) > 0 {
		return fmt.Sprintf("%s: %s", id, strings.Join(wrong, "; "))
	}
	return ""
}

// checkRaw checks that api answers GET /api/emails/{id}/raw with 200 and a message
// whose Message-ID is the email's.
func checkRaw(client *http.Client, api *splitProcess, id string) string {
	req, err := http.NewRequest(http.MethodGet, api.base+"/api/emails/"+id+"/raw", nil)
	if err != nil {
		return err.Error()
	}
	e2e.Authorize(req)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("/raw: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("/raw: %d, want 200", resp.StatusCode)
	}
	msg, err := mail.ReadMessage(resp.Body)
	if err != nil {
		return fmt.Sprintf("/raw: %v", err)
	}
	if got := msg.Header.Get("Message-ID"); got != messageID(id) {
		return fmt.Sprintf("/raw: Message-ID %q, want %q", got, messageID(id))
	}
	return ""
}

// messageID is the Message-ID of an email of the load (docs/kafka.md: <{email id}@{from
// domain}>).
func messageID(id string) string { return "<" + id + "@example.com>" }

// receiptKey is one recipient of one message.
type receiptKey struct{ messageID, recipient string }

// receipts are the SMTP server's messages by Message-ID and recipient: more than
// one is a duplicate, a second copy to somebody.
type receipts map[receiptKey][]smtptest.Message

func receiptsOf(srv *smtptest.Server) receipts {
	rx := receipts{}
	for _, m := range srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			continue
		}
		for _, to := range m.To {
			k := receiptKey{msg.Header.Get("Message-ID"), strings.ToLower(to)}
			rx[k] = append(rx[k], m)
		}
	}
	return rx
}

// checkRetriesWaitedAcrossTheKill checks, from the SMTP server's record, that some
// recipient had been deferred before the worker's kill and was tried next after it:
// its retry waited across the kill. (The killed worker's gauge said it held some.)
func checkRetriesWaitedAcrossTheKill(t *testing.T, srv *smtptest.Server, kill workerKill) {
	t.Helper()
	across := 0
	seen := map[string]bool{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			if fateOf(to) != fateGreylisted || seen[to] {
				continue
			}
			seen[to] = true
			times := srv.AttemptTimes(to)
			for i := 1; i < len(times); i++ {
				if times[i-1].Before(kill.at) && times[i].After(kill.at) {
					across++
					break
				}
			}
		}
	}
	if across == 0 {
		t.Errorf("no greylisted recipient was deferred before the worker's kill and tried after it: no retry was waiting")
	}
	t.Logf("%d greylisted recipients were waiting for a retry when the worker was killed (it held %v itself)", across, kill.waiting)
}

// partitionOffsets are, per partition of the send topic, the delivery group's
// committed offset and the partition's end offset.
type partitionOffsets map[int32]struct{ committed, end int64 }

// sendOffsets reads the send topic's offsets right after the worker's kill: nobody
// commits its partitions until the group has given them to the others (its session
// times out after 10 s), and a commit it sent before dying that lands after this
// read only makes what counts as uncommitted here larger.
func sendOffsets(t *testing.T, cfg *config.Config) partitionOffsets {
	t.Helper()
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	topic := cfg.Topics.Send
	var parts []int32
	for p := range int32(cfg.Topics.Partitions) {
		parts = append(parts, p)
	}
	committed, err := admin.ListConsumerGroupOffsets(cfg.Kafka.ConsumerGroup, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatalf("offsets of %s: %v", cfg.Kafka.ConsumerGroup, err)
	}
	out := partitionOffsets{}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
		c := int64(sarama.OffsetOldest)
		if b := committed.GetBlock(topic, p); b != nil && b.Offset >= 0 {
			c = b.Offset
		}
		out[p] = struct{ committed, end int64 }{c, end}
	}
	return out
}

// uncommittedEmails reads the send topic between the offsets of at and returns the
// ids of the emails with a SendEmail there: read, or not yet read, by the delivery
// group, and not committed.
func uncommittedEmails(t *testing.T, cfg *config.Config, at partitionOffsets) map[string]bool {
	t.Helper()
	consumer, err := sarama.NewConsumer(cfg.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka consumer: %v", err)
	}
	defer consumer.Close()
	ids := map[string]bool{}
	for p, o := range at {
		if o.committed >= o.end {
			continue
		}
		pc, err := consumer.ConsumePartition(cfg.Topics.Send, p, o.committed)
		if err != nil {
			t.Fatalf("consume %s/%d from %d: %v", cfg.Topics.Send, p, o.committed, err)
		}
		deadline := time.After(30 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				if m.Offset >= o.end {
					break read
				}
				ids[string(m.Key)] = true
				if m.Offset == o.end-1 {
					break read
				}
			case <-deadline:
				t.Fatalf("%s/%d: records up to offset %d not read within 30 s", cfg.Topics.Send, p, o.end)
			}
		}
		pc.AsyncClose()
	}
	return ids
}

// checkDuplicatesWithinTheBound counts the second copies the SMTP server received and
// holds them to docs/kafka.md's bound for a lost worker (Retries on Kafka): a SendEmail the
// worker had read and not committed when it died is read again by the partition's
// next owner, whose database knows nothing of it, and sent again; nothing the worker
// had committed is. So each duplicate with a copy from the killed worker must be of
// an email with a SendEmail that was not committed at the kill. The other kind the
// docs/kafka.md names is a retry the killed worker's forwarder had forwarded but not
// committed, forwarded again by the next owner and sent again by a worker that did
// not send the first (partitions move between the survivors too): its email must
// have been retried.
func checkDuplicatesWithinTheBound(t *testing.T, rx receipts, victim *splitProcess, kill workerKill, atKill partitionOffsets, uncommitted map[string]bool) {
	t.Helper()
	var duplicates, beyond []string
	var earliest time.Duration
	for k, copies := range rx {
		if len(copies) < 2 {
			continue
		}
		var by []string
		fromVictim := false
		for _, c := range copies {
			after := c.Received.Sub(kill.at)
			by = append(by, fmt.Sprintf("%s at %s", strings.TrimSuffix(c.Hello, ".mailroom.test"), after.Round(time.Millisecond)))
			if c.Hello == victim.helo() {
				fromVictim = true
				earliest = min(earliest, after)
			}
		}
		d := fmt.Sprintf("%s to %s: %d copies (%s after the kill)", k.messageID, k.recipient, len(copies), strings.Join(by, ", "))
		duplicates = append(duplicates, d)
		id := strings.TrimSuffix(strings.TrimPrefix(k.messageID, "<"), "@example.com>")
		switch {
		case fromVictim && !uncommitted[id]:
			beyond = append(beyond, d+": its SendEmail was committed before the kill")
		case !fromVictim && fateOf(k.recipient) != fateGreylisted:
			beyond = append(beyond, d+": the killed worker sent neither, and it was never retried")
		}
	}
	slices.Sort(duplicates)
	t.Logf("%d duplicates (copies from %s sent up to %s before its kill); %d emails had a SendEmail not committed at the kill (offsets %v):\n%s",
		len(duplicates), victim.name, -earliest.Round(time.Millisecond), len(uncommitted), atKill, strings.Join(duplicates, "\n"))
	if len(beyond) > 0 {
		t.Errorf("%d duplicates beyond what docs/kafka.md allows a lost worker:\n%s", len(beyond), strings.Join(beyond, "\n"))
	}
}

// stop SIGTERMs every process still running, at once, and checks that each exits 0
// with no data race in its log.
func (d *splitDeployment) stop(t *testing.T) {
	t.Helper()
	type result struct {
		p    *splitProcess
		code int
		err  error
	}
	results := make(chan result, len(d.all()))
	running := 0
	for _, p := range d.all() {
		if p.proc.Exited() {
			continue
		}
		running++
		go func() {
			code, err := p.proc.Terminate(30 * time.Second)
			results <- result{p, code, err}
		}()
	}
	for range running {
		r := <-results
		if r.err != nil || r.code != 0 {
			t.Errorf("%s: exit code %d (%v) after SIGTERM, want 0; log:\n%s", r.p.name, r.code, r.err, e2e.LogTail(r.p.proc.Log(), 4000))
		}
	}
	for _, p := range d.all() {
		if log := p.proc.Log(); e2e.HasDataRace(log) {
			t.Errorf("data race in %s:\n%s", p.name, e2e.LogTail(log, 20000))
		}
	}
}
