package broker

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Origin is where a message consumed from Kafka was read. Handlers that report
// where a message came from (the dead letters' metadata) read it with OriginOf.
type Origin struct {
	Partition int32
	Offset    int64
}

type originKey struct{}

// OriginOf returns the Kafka origin of a consumed message's context (msg.Context());
// ok is false for a message that did not come from Kafka.
func OriginOf(ctx context.Context) (o Origin, ok bool) {
	o, ok = ctx.Value(originKey{}).(Origin)
	return o, ok
}

// keyedHandler is the consumer-group handler of one subscription. It hands
// messages out to the router several at a time, also within one partition, but
// never two with the same record key (the email id) at once, and each key's in
// offset order; it commits a partition only up to its lowest message not yet
// finished. A partition is then no longer one lane: what runs at once is bounded by
// slots, shared by every partition the subscription holds (Confluent's Parallel
// Consumer, key ordering, does this for Java clients).
type keyedHandler struct {
	out       chan<- *message.Message
	slots     chan struct{} // one token per message handed out and not finished
	window    int           // most messages read and not finished, per partition
	unmarshal kafka.Unmarshaler
	// resendAfter is the wait before a nacked message is handed out again.
	resendAfter time.Duration
	// drainFor bounds how long a revoked partition waits for its running messages
	// before it gives them up (their contexts are cancelled, and the partition's
	// next owner gets them again); closeDrainFor does the same when the subscriber
	// closes.
	drainFor, closeDrainFor time.Duration
	// ctx is the subscription's: when it is done, running messages are given up at
	// once. closing is closed when the subscriber closes.
	ctx     context.Context
	closing <-chan struct{}
	log     watermill.LoggerAdapter
	// endSession ends the current session, so the group is joined again; it is set
	// before each session (see partitionRun.consumerEnded).
	endSession func()
}

// Setup implements sarama.ConsumerGroupHandler.
func (h *keyedHandler) Setup(sarama.ConsumerGroupSession) error { return nil }

// Cleanup implements sarama.ConsumerGroupHandler.
func (h *keyedHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim runs one partition's messages until the claim ends; see keyedHandler.
func (h *keyedHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := &partitionRun{
		h:       h,
		sess:    sess,
		topic:   claim.Topic(),
		part:    claim.Partition(),
		offsets: newPendingOffsets(),
		keys:    map[string][]*handout{},
		results: make(chan handoutResult, h.window),
		stop:    make(chan struct{}),
	}
	p.consume(claim.Messages())
	p.drain()
	return nil
}

// partitionRun is the state of one claimed partition; only ConsumeClaim's
// goroutine touches it, the watchers of its handouts report through results.
type partitionRun struct {
	h       *keyedHandler
	sess    sarama.ConsumerGroupSession
	topic   string
	part    int32
	offsets pendingOffsets
	// keys holds, per record key, the messages read and not finished, in offset
	// order; the first is running or ready, the others wait for it.
	keys map[string][]*handout
	// ready are the messages whose key is free, waiting for a slot, lowest offset
	// first so that the commit point moves as soon as it can.
	ready   []*handout
	running map[*handout]struct{}
	results chan handoutResult
	// stop is closed when the partition stops taking messages: a nacked message is
	// then given up instead of handed out again.
	stop chan struct{}
}

// handout is one Kafka record on its way through the router.
type handout struct {
	record *sarama.ConsumerMessage
	key    string
	cancel context.CancelFunc
}

// handoutResult says how a handout ended: acked, or given up unfinished.
type handoutResult struct {
	h     *handout
	acked bool
}

// consume reads the partition and hands messages out until the claim ends.
func (p *partitionRun) consume(records <-chan *sarama.ConsumerMessage) {
	p.running = map[*handout]struct{}{}
	for {
		var read <-chan *sarama.ConsumerMessage
		if p.offsets.len() < p.h.window {
			read = records
		}
		var slot chan<- struct{}
		if len(p.ready) > 0 {
			slot = p.h.slots
		}
		select {
		case rec, ok := <-read:
			if !ok {
				p.consumerEnded()
				return
			}
			p.accept(rec)
		case slot <- struct{}{}:
			next := p.ready[0]
			p.ready = p.ready[1:]
			p.start(next)
		case res := <-p.results:
			p.finish(res, true)
		case <-p.sess.Context().Done():
			return
		case <-p.h.closing:
			return
		case <-p.h.ctx.Done():
			return
		}
	}
}

// consumerEnded handles the end of a partition's records while its session goes
// on: Sarama stops a partition's consumer by itself on an error it will not retry
// (an offset out of range, as when Kafka came back empty), and the partition then
// stays claimed with nobody reading it until the next rebalance. Ending the
// session makes the group rejoin at once, and the partition is claimed afresh
// (from the committed offset, or the oldest when that is out of range).
func (p *partitionRun) consumerEnded() {
	if p.sess.Context().Err() != nil {
		return // the session ended: its claims close with it
	}
	select {
	case <-p.h.closing:
		return
	default:
	}
	p.h.log.Info("Kafka stopped consuming a partition by itself; joining the group again", watermill.LogFields{
		"topic": p.topic, "kafka_partition": p.part})
	if p.h.endSession != nil {
		p.h.endSession()
	}
}

// accept records rec as read and queues it behind its key.
func (p *partitionRun) accept(rec *sarama.ConsumerMessage) {
	h := &handout{record: rec, key: recordKey(rec)}
	p.offsets.add(rec.Offset)
	queue := p.keys[h.key]
	p.keys[h.key] = append(queue, h)
	if len(queue) == 0 {
		p.makeReady(h)
	}
}

// recordKey is the key whose messages run one at a time: the record key, or, for a
// record without one, its own offset (nothing to keep in order with).
func recordKey(rec *sarama.ConsumerMessage) string {
	if len(rec.Key) > 0 {
		return string(rec.Key)
	}
	return "\x00offset " + strconv.FormatInt(rec.Offset, 10)
}

// makeReady queues h for a slot, in offset order.
func (p *partitionRun) makeReady(h *handout) {
	i, _ := slices.BinarySearchFunc(p.ready, h.record.Offset, func(e *handout, o int64) int {
		return int(min(max(e.record.Offset-o, -1), 1))
	})
	p.ready = slices.Insert(p.ready, i, h)
}

// start hands h out to the router (its slot is taken) and watches it.
func (p *partitionRun) start(h *handout) {
	msg := p.message(h.record)
	ctx, cancel := context.WithCancel(context.WithValue(p.h.ctx, originKey{},
		Origin{Partition: h.record.Partition, Offset: h.record.Offset}))
	h.cancel = cancel
	msg.SetContext(ctx)
	p.running[h] = struct{}{}
	go p.watch(ctx, h, msg)
}

// message is the Watermill message of rec. A record Mailroom's marshaler cannot
// read is handed out all the same, its value as the payload and the error in its
// metadata, so that its handler fails on it and the router's poison queue keeps it.
func (p *partitionRun) message(rec *sarama.ConsumerMessage) *message.Message {
	msg, err := p.h.unmarshal.Unmarshal(rec)
	if err == nil {
		return msg
	}
	p.h.log.Error("Kafka record cannot be read as a message; handing it out raw", err, watermill.LogFields{
		"topic": p.topic, "kafka_partition": p.part, "kafka_offset": rec.Offset})
	msg = message.NewMessage(p.topic+"/"+strconv.Itoa(int(p.part))+"/"+strconv.FormatInt(rec.Offset, 10), rec.Value)
	msg.Metadata.Set("kafka_unmarshal_error", err.Error())
	return msg
}

// watch sends msg to the router and waits for its ack, handing it out again after a
// nack, and reports how it ended. It gives up when ctx is done, or on a nack once
// the partition stopped.
func (p *partitionRun) watch(ctx context.Context, h *handout, msg *message.Message) {
	for {
		select {
		case p.h.out <- msg:
		case <-ctx.Done():
			p.results <- handoutResult{h: h}
			return
		}
		select {
		case <-msg.Acked():
			p.results <- handoutResult{h: h, acked: true}
			return
		case <-msg.Nacked():
		case <-ctx.Done():
			p.results <- handoutResult{h: h}
			return
		}
		timer := time.NewTimer(p.h.resendAfter)
		select {
		case <-timer.C:
		case <-p.stop:
			timer.Stop()
			p.results <- handoutResult{h: h}
			return
		case <-ctx.Done():
			timer.Stop()
			p.results <- handoutResult{h: h}
			return
		}
		msg = msg.Copy()
		msg.SetContext(ctx)
	}
}

// finish frees res's slot, moves the commit point past it if it was acked, and, if
// next is set, readies the next message of its key.
func (p *partitionRun) finish(res handoutResult, next bool) {
	<-p.h.slots
	delete(p.running, res.h)
	res.h.cancel()
	if !res.acked {
		// Given up unfinished: the commit point stays before it, so the
		// partition's next owner reads it again.
		return
	}
	if commit, moved := p.offsets.finish(res.h.record.Offset); moved {
		// Also during a drain: Sarama commits marks made before ConsumeClaim
		// returns, which is what lets a revoked partition's next owner start
		// past what finished here.
		p.sess.MarkOffset(p.topic, p.part, commit, "")
	}
	queue := p.keys[res.h.key][1:]
	if len(queue) == 0 {
		delete(p.keys, res.h.key)
		return
	}
	p.keys[res.h.key] = queue
	if next {
		p.makeReady(queue[0])
	}
}

// drain ends the partition's run: nothing more is handed out, and running messages
// may finish (and be committed) for drainFor when a rebalance revoked the
// partition, or for closeDrainFor when the subscriber is closing (the router,
// closing, waits for its running handlers too; Watermill's contract is that Close
// cancels the context of a message not acked, so this wait is short). They are given
// up after that, or at once when the subscription's context is done (their own
// contexts are then done as well).
func (p *partitionRun) drain() {
	close(p.stop)
	p.ready = nil
	if len(p.running) == 0 {
		return
	}
	grace := p.h.drainFor
	select {
	case <-p.h.closing:
		grace = p.h.closeDrainFor
	default:
	}
	wait := time.NewTimer(grace)
	defer wait.Stop()
	giveUp := wait.C
	if p.h.ctx.Err() != nil {
		p.giveUpRunning()
		giveUp = nil
	}
	for len(p.running) > 0 {
		select {
		case res := <-p.results:
			p.finish(res, false)
		case <-giveUp:
			p.h.log.Info("Kafka partition given up with messages still running; its next owner reads them again", watermill.LogFields{
				"topic": p.topic, "kafka_partition": p.part, "running": len(p.running), "waited": grace.String()})
			p.giveUpRunning()
			giveUp = nil
		}
	}
}

// giveUpRunning cancels the context of every running message; their watchers then
// report them given up.
func (p *partitionRun) giveUpRunning() {
	for h := range p.running {
		h.cancel()
	}
}
