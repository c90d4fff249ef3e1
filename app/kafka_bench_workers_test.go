//go:build kafka

package app_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/cputime"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// The split deployment measured: Mailroom's built binary as an api instance and
// delivery workers (`mailroom serve --modules api|delivery`), or one `--modules all`,
// on the node in KAFKA_TEST_BROKERS (`make bench-kafka`).

const (
	workersPartitions  = 6
	workersConcurrency = 8   // delivery.concurrency of each worker: 8 sends of 50 ms, about 160/s at most
	workersBatch       = 600 // emails per worker in a round: about 4 s at that ceiling
	workersWarmUp      = 24  // emails sent through before each round, over every partition
	splitWorkers       = 2   // delivery workers beside the api instance in BenchmarkKafkaSplitEndToEnd
)

// BenchmarkKafkaDeliveryWorkers measures delivered emails/s through an SMTP server
// answering DATA after 50 ms with 1, 2 and 3 delivery workers, each the built binary
// with delivery.concurrency 8 (so one worker's ceiling is about 160/s), sharing a
// send topic of 6 partitions, fed by one api instance. x_w3_w1 is 3 workers' rate
// over one's (target >= 2.5), x_w2_w1 2 workers'.
//
// What a round measures: the workers are started (or stopped) and the group is
// balanced (every worker holds 6/n partitions) before anything is timed, and
// workersWarmUp emails go through. Then the workers are stopped (SIGSTOP) while the
// api instance accepts workersBatch × n emails and its relay puts every SendEmail on
// Kafka, and let go (SIGCONT): accepting neither paces delivery nor takes the cores
// from it. The rate is the batch over the time from its first delivery to its last
// as the SMTP server saw them. The pause is seconds, under the group's 10 s session
// timeout; a worker that left the group meanwhile fails the benchmark.
//
// Rounds alternate 1, 2, 3 then 3, 2, 1 workers, so a machine that slows down
// over the run weighs on every count alike. Per count it also reports the cores
// (CPU seconds per second of the round) of the workers together, the api instance,
// the broker (when KAFKA_TEST_BROKER_PIDS names it), this process (the SMTP server
// and the clients) and the whole machine; other_cores is the machine's less all of
// those: what other work on the machine took meanwhile. mailroom_cpu_wait_s/s is
// the seconds per second the Mailroom processes' threads were ready to run but
// waited for a CPU: above a few hundredths, the machine, not Mailroom, sets the pace.
func BenchmarkKafkaDeliveryWorkers(b *testing.B) {
	srv := smtptest.Start(b, smtptest.WithReplyDelay(laneReplyDelay))
	d := newDeployment(b, srv, "MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(workersConcurrency))
	d.api = d.start("api", "api")
	rounds := map[int]*roundFigures{}
	for it := 0; b.Loop(); it++ {
		counts := []int{1, 2, 3}
		if it%2 == 1 {
			slices.Reverse(counts)
		}
		for _, n := range counts {
			d.scaleWorkers(n)
			round := d.deliveryRound(n * workersBatch)
			b.Logf("%d worker(s): %.1f emails/s; %s", n, round.rate(), round)
			if rounds[n] == nil {
				rounds[n] = &roundFigures{}
			}
			rounds[n].add(round)
		}
	}
	b.ReportMetric(0, "ns/op")
	for n, r := range rounds {
		r.report(b, fmt.Sprintf("w%d_", n))
		// The share of n workers' ceiling (n × concurrency sends per 50 ms) reached.
		b.ReportMetric(r.rate()*laneReplyDelay.Seconds()/float64(n*workersConcurrency), fmt.Sprintf("w%d_of_ceiling", n))
	}
	b.ReportMetric(rounds[2].rate()/rounds[1].rate(), "x_w2_w1")
	b.ReportMetric(rounds[3].rate()/rounds[1].rate(), "x_w3_w1")
}

// BenchmarkKafkaSplitEndToEnd measures emails/s from the first POST to the last
// `sent` (the accepting instance's created_at and sent_at), as
// BenchmarkKafkaEndToEndCapture does, on the capture transport and 6 partitions,
// for the built binary as one `--modules all` process and as the split deployment:
// an api instance and splitWorkers delivery workers. x_all = split/all. A third
// kind, split2api, adds a second api instance that accepts nothing: every instance
// reads every event (docs/kafka.md: Several instances), so its CPU per email
// (split2api_bystander_cpu_us/email) is what each api instance pays for another
// one's mail. The kinds alternate within the run, each on topics of its own. CPU per
// 1000 emails is every Mailroom process's and the broker's over the round.
func BenchmarkKafkaSplitEndToEnd(b *testing.B) {
	srv := smtptest.Start(b) // unused on the capture transport, but the env names it
	rounds := map[string]*roundFigures{}
	for it := 0; b.Loop(); it++ {
		kinds := []string{"all", "split", "split2api"}
		if it%2 == 1 {
			slices.Reverse(kinds)
		}
		for _, kind := range kinds {
			d := newDeployment(b, srv, "MAILROOM_DELIVERY_TRANSPORT=capture")
			if kind == "all" {
				d.api = d.start("all", "all")
			} else {
				d.api = d.start("api", "api")
				d.scaleWorkers(splitWorkers)
			}
			if kind == "split2api" {
				d.bystander = d.start("api", "bystander")
			}
			round := d.endToEndRound(fmt.Sprintf("split-e2e-%d", it))
			b.Logf("%s: %.1f emails/s; %s", kind, round.rate(), round)
			if rounds[kind] == nil {
				rounds[kind] = &roundFigures{}
			}
			rounds[kind].add(round)
			d.reportStorage(kind + "_")
			d.stop()
		}
	}
	b.ReportMetric(0, "ns/op")
	for kind, r := range rounds {
		r.report(b, kind+"_")
		b.ReportMetric(ms(r.mailroom+r.broker)*1000/float64(r.emails), kind+"_cpu_ms_per_1000_emails")
	}
	b.ReportMetric(rounds["split"].rate()/rounds["all"].rate(), "x_all")
}

// deployment is the built binary run as separate processes on one Kafka node, on
// topics of its own: api (an api instance, or one `--modules all`) and the
// delivery workers running now, in start order.
type deployment struct {
	b       *testing.B
	bin     string
	cfg     *config.Config
	srv     *smtptest.Server
	dir     string
	vars    []string // MAILROOM_* settings beside subprocessEnv's
	admin   sarama.ClusterAdmin
	client  sarama.Client
	api     *e2e.Process
	apiBase string
	// bystander is a second api instance, which is sent nothing, or nil.
	bystander *e2e.Process
	workers   []*e2e.Process
	posted    int // emails accepted so far, warm-ups included
}

// newDeployment prepares a deployment on fresh topics of workersPartitions
// partitions; it starts no process.
func newDeployment(b *testing.B, srv *smtptest.Server, vars ...string) *deployment {
	cfg := kafkaConfig(b)
	cfg.Topics.Partitions = workersPartitions
	d := &deployment{b: b, bin: e2e.Build(b), cfg: cfg, srv: srv, dir: b.TempDir(),
		vars: append(vars, "MAILROOM_TOPICS_PARTITIONS="+strconv.Itoa(workersPartitions))}
	var err error
	if d.client, err = sarama.NewClient(cfg.Kafka.Brokers, sarama.NewConfig()); err != nil {
		b.Fatalf("kafka client: %v", err)
	}
	if d.admin, err = sarama.NewClusterAdminFromClient(d.client); err != nil {
		b.Fatalf("kafka admin: %v", err)
	}
	b.Cleanup(func() { d.admin.Close() })
	return d
}

// start runs `mailroom serve --modules role` on a database named name and waits
// until it is ready. The first api (or `all`) instance's URL is kept as apiBase.
func (d *deployment) start(role, name string) *e2e.Process {
	addr := e2e.FreeAddr(d.b)
	env := append(subprocessEnv(d.cfg, d.srv, filepath.Join(d.dir, name+".db"), addr), d.vars...)
	p := e2e.Start(d.b, d.bin, env, filepath.Join(d.dir, name+".log"), "serve", "--modules", role)
	if err := p.WaitReady(context.Background(), "http://"+addr, time.Minute); err != nil {
		d.b.Fatalf("%s: %v", name, err)
	}
	if role != "delivery" && d.apiBase == "" {
		d.apiBase = "http://" + addr
	}
	return p
}

// scaleWorkers starts or stops (SIGTERM, the last started first) delivery workers
// until n run, then waits until the group is balanced over them.
func (d *deployment) scaleWorkers(n int) {
	for len(d.workers) < n {
		d.workers = append(d.workers, d.start("delivery", fmt.Sprintf("worker-%d", len(d.workers)+1)))
	}
	for len(d.workers) > n {
		last := d.workers[len(d.workers)-1]
		if code, err := last.Terminate(30 * time.Second); err != nil || code != 0 {
			d.b.Fatalf("stop worker %d: exit %d, %v", len(d.workers), code, err)
		}
		d.workers = d.workers[:len(d.workers)-1]
	}
	d.balanced()
}

// balanced waits until every running worker holds workersPartitions/n partitions
// of the send topic, and returns the members.
func (d *deployment) balanced() []string {
	var a map[string][]int32
	n := len(d.workers)
	wait.Until(d.b, 90*time.Second, 50*time.Millisecond, func() bool {
		a = assignment(d.b, d.admin, d.cfg.Kafka.ConsumerGroup, d.cfg.Topics.Send)
		if len(a) != n {
			return false
		}
		for _, parts := range a {
			if len(parts) != workersPartitions/n {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("%d workers each holding %d partitions: %v", n, workersPartitions/n, a)
	})
	return slices.Sorted(maps.Keys(a))
}

// post posts n emails tagged tag to the api instance from benchClients clients.
func (d *deployment) post(n int, tag string) {
	client := e2e.NewHTTPClient(d.b)
	if _, err := runClients(n, min(benchClients, n), postOp(client, d.apiBase, tag)); err != nil {
		d.b.Fatalf("post: %v", err)
	}
	d.posted += n
}

// deliveryRound sends workersWarmUp emails through, then times batch emails put
// on Kafka while the workers were stopped, from their first delivery to their last.
func (d *deployment) deliveryRound(batch int) *roundFigures {
	d.post(workersWarmUp, "warm-up")
	d.srv.WaitForCount(d.b, d.posted, time.Minute)
	members := d.balanced()
	before := d.srv.Count()

	d.signalWorkers(syscall.SIGSTOP)
	var ignored time.Duration
	paused, api0 := time.Now(), d.processCPU(d.api, &ignored)
	d.post(batch, "workers")
	wait.Until(d.b, 20*time.Second, 10*time.Millisecond, func() bool { return d.sendRecords() >= int64(d.posted) },
		func() string {
			return fmt.Sprintf("%d SendEmails on %s, want %d", d.sendRecords(), d.cfg.Topics.Send, d.posted)
		})
	pause := time.Since(paused)
	cpu0 := d.cpu()
	d.signalWorkers(syscall.SIGCONT)
	d.srv.WaitForCount(d.b, before+batch, 5*time.Minute)
	round := d.cpu().since(cpu0)

	if after := d.balanced(); !slices.Equal(after, members) {
		d.b.Fatalf("the group changed during the round (paused %s): %v, then %v", pause.Round(time.Millisecond), members, after)
	}
	msgs := d.srv.Messages()[before:]
	first, last := msgs[0].Received, msgs[0].Received
	for _, m := range msgs {
		if m.Received.Before(first) {
			first = m.Received
		}
		if m.Received.After(last) {
			last = m.Received
		}
	}
	round.emails, round.span = len(msgs), last.Sub(first)
	round.preload, round.preloadAPI = pause, cpu0.api-api0
	return round
}

// endToEndRound sends workersWarmUp emails through, then times endToEndBatch
// emails tagged tag from the first POST to the last `sent` on the api instance.
func (d *deployment) endToEndRound(tag string) *roundFigures {
	d.post(workersWarmUp, "warm-up")
	waitForMetric(d.b, d.apiBase, `mailroom_emails{status="sent"}`, float64(d.posted), time.Minute)
	cpu0 := d.cpu()
	d.post(endToEndBatch, tag)
	waitForMetric(d.b, d.apiBase, `mailroom_emails{status="sent"}`, float64(d.posted), 5*time.Minute)
	round := d.cpu().since(cpu0)
	items, err := e2e.ListAll(context.Background(), e2e.NewHTTPClient(d.b), d.apiBase, "tag="+tag, 100)
	if err != nil || len(items) != endToEndBatch {
		d.b.Fatalf("list %s: %d items, %v", tag, len(items), err)
	}
	first, last, latencies := sentTimes(d.b, items)
	slices.Sort(latencies)
	round.emails, round.span = len(items), last.Sub(first)
	round.p50, round.p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	return round
}

// reportStorage reports, per email accepted so far (warm-ups included), the bytes
// of the record values on the send, events and lifecycle topics (before the
// producer's compression, which the benchmark's repetitive bodies flatter), and
// those of the api (or `all`) instance's database file and of the workers' together
// (without their WALs): the figures docs/scaling.md sizes disks from.
func (d *deployment) reportStorage(prefix string) {
	perEmail := func(n int) float64 { return float64(n) / float64(d.posted) }
	for name, topic := range map[string]string{"send": d.cfg.Topics.Send, "events": d.cfg.Topics.Events, "lifecycle": d.cfg.Topics.Lifecycle} {
		d.b.ReportMetric(perEmail(valueBytes(readTopic(d.b, d.cfg.Kafka.Brokers, topic))), prefix+"kafka_"+name+"_bytes/email")
	}
	dbBytes := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(d.dir, "*.db"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			d.b.Fatalf("database size: %v", err)
		}
		part := "api"
		switch base := filepath.Base(f); {
		case strings.HasPrefix(base, "worker-"):
			part = "workers"
		case strings.HasPrefix(base, "bystander"):
			part = "bystander"
		}
		dbBytes[part] += int(fi.Size())
	}
	for part, n := range dbBytes {
		d.b.ReportMetric(perEmail(n), prefix+part+"_db_bytes/email")
	}
}

// sendRecords is how many records the send topic holds: the sum of its partitions'
// newest offsets.
func (d *deployment) sendRecords() int64 {
	var sum int64
	for p := range int32(workersPartitions) {
		off, err := d.client.GetOffset(d.cfg.Topics.Send, p, sarama.OffsetNewest)
		if err != nil {
			d.b.Fatalf("offset of %s/%d: %v", d.cfg.Topics.Send, p, err)
		}
		sum += off
	}
	return sum
}

// signalWorkers sends sig to every running worker.
func (d *deployment) signalWorkers(sig syscall.Signal) {
	for _, w := range d.workers {
		if err := syscall.Kill(w.Pid(), sig); err != nil {
			d.b.Fatalf("signal %v to worker %d: %v", sig, w.Pid(), err)
		}
	}
}

// stop stops every process (SIGTERM), workers first.
func (d *deployment) stop() {
	for _, p := range append(slices.Clone(d.workers), d.api, d.bystander) {
		if p == nil {
			continue
		}
		if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
			d.b.Fatalf("stop %d: exit %d, %v", p.Pid(), code, err)
		}
	}
	d.workers = nil
}

// roundFigures is what one round (or several, added) measured: emails over a span,
// latencies, and the CPU each part of the machine spent meanwhile, over wall.
type roundFigures struct {
	emails    int
	span      time.Duration // first to last delivery, or first accepted to last sent
	p50, p99  time.Duration
	at        time.Time       // when it was read (a reading, not a round)
	wall      time.Duration   // how long the round took
	workers   []time.Duration // each worker's
	api       time.Duration   // the api (or `all`) instance's
	bystander time.Duration   // the second api instance's, which accepts nothing
	broker    time.Duration   // the broker's, 0 when unknown
	bench     time.Duration   // this process's: the SMTP server, the clients
	machine   time.Duration   // everything on the machine (/proc/stat)
	mailroom  time.Duration   // every Mailroom process's
	// waited is how long the Mailroom processes' threads were ready to run but
	// waited for a CPU: where the machine is saturated, what starves them.
	waited time.Duration
	// preload is how long the api instance took to accept a delivery round's batch
	// and put it on Kafka, and preloadAPI the CPU time it spent on that.
	preload, preloadAPI time.Duration
}

// cpu reads the CPU time used so far by each process of d, the broker, this process
// and the machine.
func (d *deployment) cpu() *roundFigures {
	c := &roundFigures{at: time.Now(), machine: machineBusy(), bench: cputime.Process(d.b)}
	c.api = d.processCPU(d.api, &c.waited)
	c.broker, _ = brokerCPU(d.b)
	for _, w := range d.workers {
		c.workers = append(c.workers, d.processCPU(w, &c.waited))
	}
	if d.bystander != nil {
		c.bystander = d.processCPU(d.bystander, &c.waited)
	}
	return c
}

// processCPU is the CPU time p has used so far; it adds the time p's threads
// waited for a CPU to *waited.
func (d *deployment) processCPU(p *e2e.Process, waited *time.Duration) time.Duration {
	ran, w, err := threadsCPU(strconv.Itoa(p.Pid()))
	if err != nil {
		d.b.Fatalf("CPU time of %d: %v", p.Pid(), err)
	}
	*waited += w
	return ran
}

// since is c less the earlier reading c0.
func (c *roundFigures) since(c0 *roundFigures) *roundFigures {
	r := &roundFigures{wall: c.at.Sub(c0.at), api: c.api - c0.api, broker: c.broker - c0.broker,
		bench: c.bench - c0.bench, machine: c.machine - c0.machine, waited: c.waited - c0.waited}
	r.bystander = c.bystander - c0.bystander
	r.mailroom = r.api + r.bystander
	for i := range c.workers {
		r.workers = append(r.workers, c.workers[i]-c0.workers[i])
		r.mailroom += r.workers[i]
	}
	return r
}

// add adds round r to c.
func (c *roundFigures) add(r *roundFigures) {
	c.emails, c.span, c.wall = c.emails+r.emails, c.span+r.span, c.wall+r.wall
	c.p50, c.p99 = max(c.p50, r.p50), max(c.p99, r.p99)
	c.api, c.broker, c.bench, c.machine, c.mailroom = c.api+r.api, c.broker+r.broker, c.bench+r.bench, c.machine+r.machine, c.mailroom+r.mailroom
	c.preload, c.preloadAPI = c.preload+r.preload, c.preloadAPI+r.preloadAPI
	c.waited += r.waited
	c.bystander += r.bystander
}

func (c *roundFigures) rate() float64 { return float64(c.emails) / c.span.Seconds() }

// cores is d as CPU seconds per second of the rounds.
func (c *roundFigures) cores(d time.Duration) float64 { return d.Seconds() / c.wall.Seconds() }

// String is one round's figures, each process's CPU apart, for the log.
func (c *roundFigures) String() string {
	var workers []string
	for _, w := range c.workers {
		workers = append(workers, fmt.Sprintf("%.2f", c.cores(w)))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	latency := ""
	if c.p99 > 0 {
		latency = fmt.Sprintf("; p50 %s p99 %s", c.p50.Round(time.Millisecond), c.p99.Round(time.Millisecond))
	}
	if c.preload > 0 {
		latency = fmt.Sprintf("; accepted and on Kafka in %s", c.preload.Round(time.Millisecond))
	}
	if c.bystander > 0 {
		latency += fmt.Sprintf("; second api instance %.2f cores", c.cores(c.bystander))
	}
	return fmt.Sprintf("%d emails in %s (round %s); cores: workers [%s], api %.2f, broker %.2f, bench %.2f, machine %.2f (other %.2f); Mailroom waiting for a CPU %.2f%s; loadavg %s",
		c.emails, c.span.Round(time.Millisecond), c.wall.Round(time.Millisecond), strings.Join(workers, " "),
		c.cores(c.api), c.cores(c.broker), c.cores(c.bench), c.cores(c.machine), c.cores(c.other()),
		c.cores(c.waited), latency, strings.TrimSpace(string(load)))
}

// other is the machine's CPU time less that of every process measured.
func (c *roundFigures) other() time.Duration { return c.machine - c.mailroom - c.broker - c.bench }

// report reports c's rate and cores under prefix.
func (c *roundFigures) report(b *testing.B, prefix string) {
	b.ReportMetric(c.rate(), prefix+"emails/s")
	if c.p99 > 0 {
		b.ReportMetric(ms(c.p50), prefix+"p50_ms_worst")
		b.ReportMetric(ms(c.p99), prefix+"p99_ms_worst")
	}
	// CPU per email of each role over the round: what a plan for more mail scales.
	perEmail := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(c.emails) }
	workers := c.mailroom - c.api - c.bystander
	b.ReportMetric(perEmail(workers), prefix+"workers_cpu_us/email")
	b.ReportMetric(perEmail(c.api), prefix+"api_cpu_us/email")
	b.ReportMetric(perEmail(c.broker), prefix+"broker_cpu_us/email")
	if c.bystander > 0 {
		b.ReportMetric(perEmail(c.bystander), prefix+"bystander_cpu_us/email")
	}
	b.ReportMetric(c.cores(workers), prefix+"worker_cores")
	b.ReportMetric(c.cores(c.api), prefix+"api_cores")
	b.ReportMetric(c.cores(c.broker), prefix+"broker_cores")
	b.ReportMetric(c.cores(c.bench), prefix+"bench_cores")
	b.ReportMetric(c.cores(c.machine), prefix+"machine_cores")
	b.ReportMetric(c.cores(c.other()), prefix+"other_cores")
	b.ReportMetric(c.cores(c.waited), prefix+"mailroom_cpu_wait_s/s")
	if c.preload > 0 {
		// The api instance accepting the batch with the workers stopped: emails/s
		// until every SendEmail was on Kafka, and its CPU per email meanwhile.
		b.ReportMetric(float64(c.emails)/c.preload.Seconds(), prefix+"api_accept_emails/s")
		b.ReportMetric(perEmail(c.preloadAPI), prefix+"api_accept_cpu_us/email")
	}
}
