package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// These tests drive keyedHandler.ConsumeClaim with a fake session and claim: the
// ordering, concurrency and commit rules of a partition without a Kafka. The Kafka
// suite runs the same code against real brokers (rebalances included).

// fakeSession records MarkOffset; checkMark, if set, is called with each mark.
type fakeSession struct {
	ctx       context.Context
	mu        sync.Mutex
	marks     []int64
	checkMark func(offset int64)
}

func (s *fakeSession) Claims() map[string][]int32 { return nil }
func (s *fakeSession) MemberID() string           { return "member" }
func (s *fakeSession) GenerationID() int32        { return 1 }
func (s *fakeSession) MarkOffset(_ string, _ int32, offset int64, _ string) {
	if s.checkMark != nil {
		s.checkMark(offset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = append(s.marks, offset)
}
func (s *fakeSession) Commit()                                     {}
func (s *fakeSession) ResetOffset(string, int32, int64, string)    {}
func (s *fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (s *fakeSession) Context() context.Context                    { return s.ctx }

// lastMark is the last offset marked, or -1.
func (s *fakeSession) lastMark() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.marks) == 0 {
		return -1
	}
	return s.marks[len(s.marks)-1]
}

type fakeClaim struct{ records chan *sarama.ConsumerMessage }

func (c fakeClaim) Topic() string                            { return "topic" }
func (c fakeClaim) Partition() int32                         { return 0 }
func (c fakeClaim) InitialOffset() int64                     { return 0 }
func (c fakeClaim) HighWaterMarkOffset() int64               { return 0 }
func (c fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.records }

// record is the Kafka record Mailroom's publisher writes for a message keyed by key,
// as read back at offset.
func record(t *testing.T, offset int64, key string) *sarama.ConsumerMessage {
	t.Helper()
	msg := message.NewMessage(fmt.Sprintf("msg-%d", offset), []byte(key))
	msg.Metadata.Set(PartitionKeyKey, key)
	pm, err := PartitionMarshaler.Marshal("topic", msg)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := pm.Key.Encode()
	v, _ := pm.Value.Encode()
	rec := &sarama.ConsumerMessage{Topic: "topic", Offset: offset, Key: k, Value: v}
	for i := range pm.Headers {
		rec.Headers = append(rec.Headers, &pm.Headers[i])
	}
	return rec
}

// claimRig runs ConsumeClaim on a fake partition with the given slots.
type claimRig struct {
	out     chan *message.Message
	sess    *fakeSession
	revoke  context.CancelFunc
	closing chan struct{}
	records chan *sarama.ConsumerMessage
	done    chan struct{}
}

func startClaim(t *testing.T, slots, window int, drainFor time.Duration) *claimRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sessCtx, revoke := context.WithCancel(ctx)
	r := &claimRig{
		out:     make(chan *message.Message),
		sess:    &fakeSession{ctx: sessCtx},
		revoke:  revoke,
		closing: make(chan struct{}),
		records: make(chan *sarama.ConsumerMessage),
		done:    make(chan struct{}),
	}
	h := &keyedHandler{
		out: r.out, slots: make(chan struct{}, slots), window: window,
		unmarshal: PartitionMarshaler, resendAfter: time.Millisecond, drainFor: drainFor, closeDrainFor: drainFor,
		ctx: ctx, closing: r.closing, log: watermill.NopLogger{},
	}
	go func() {
		defer close(r.done)
		_ = h.ConsumeClaim(r.sess, fakeClaim{records: r.records})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// next is the next message handed out, within 10 s.
func (r *claimRig) next(t *testing.T) *message.Message {
	t.Helper()
	select {
	case m := <-r.out:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message handed out within 10 s")
		return nil
	}
}

// TestAPartitionRunsManyKeysAtOnceEachInOrderAndCommitsOnlyWhatFinished: 400
// records over 12 keys, 5 slots, messages finishing in random order. At every
// moment no key has two messages running, nor do more than 5 run; each key's
// messages start in offset order; every offset marked has everything below it acked;
// and the partition is marked past its last record at the end.
func TestAPartitionRunsManyKeysAtOnceEachInOrderAndCommitsOnlyWhatFinished(t *testing.T) {
	t.Parallel()
	const records, keys, slots = 400, 12, 5
	r := startClaim(t, slots, 64, time.Second)
	var mu sync.Mutex
	acked := make([]bool, records)
	r.sess.checkMark = func(offset int64) {
		mu.Lock()
		defer mu.Unlock()
		for o := range offset {
			if !acked[o] {
				t.Errorf("offset %d marked while %d is not acked", offset, o)
				return
			}
		}
	}
	recs := make([]*sarama.ConsumerMessage, records)
	for o := range recs {
		recs[o] = record(t, int64(o), fmt.Sprintf("key-%d", o%keys))
	}
	go func() {
		for _, rec := range recs {
			r.records <- rec
		}
	}()

	// The test is the router and its handlers: it takes whatever is handed out and,
	// whenever nothing is, acks one running message picked at random.
	var running []*message.Message
	runningKeys := map[string]bool{}
	lastStarted := map[string]int64{}
	take := func(m *message.Message) {
		o, _ := OriginOf(m.Context())
		key := m.Metadata.Get(PartitionKeyKey)
		if runningKeys[key] {
			t.Fatalf("offset %d handed out while key %s has a message running", o.Offset, key)
		}
		if last, ok := lastStarted[key]; ok && o.Offset <= last {
			t.Fatalf("key %s: offset %d started after %d", key, o.Offset, last)
		}
		runningKeys[key], lastStarted[key] = true, o.Offset
		running = append(running, m)
		if len(running) > slots {
			t.Fatalf("%d messages running, slots %d", len(running), slots)
		}
	}
	for done := 0; done < records; {
		select {
		case m := <-r.out:
			take(m)
			continue
		default:
		}
		if len(running) == 0 {
			take(r.next(t))
			continue
		}
		i := rand.IntN(len(running))
		m := running[i]
		running = append(running[:i], running[i+1:]...)
		delete(runningKeys, m.Metadata.Get(PartitionKeyKey))
		o, _ := OriginOf(m.Context())
		mu.Lock()
		acked[o.Offset] = true
		mu.Unlock()
		m.Ack()
		done++
	}
	wait.Until(t, 10*time.Second, time.Millisecond, func() bool { return r.sess.lastMark() == records },
		func() string { return fmt.Sprintf("last mark %d, want %d", r.sess.lastMark(), records) })
}

// TestAPartitionHandsOutAsManyMessagesAsItHasSlots: five keys, five slots, no ack:
// all five are running at once.
func TestAPartitionHandsOutAsManyMessagesAsItHasSlots(t *testing.T) {
	t.Parallel()
	r := startClaim(t, 5, 64, time.Second)
	recs := []*sarama.ConsumerMessage{record(t, 0, "k0"), record(t, 1, "k1"), record(t, 2, "k2"), record(t, 3, "k3"), record(t, 4, "k4")}
	go func() {
		for _, rec := range recs {
			r.records <- rec
		}
	}()
	for range 5 {
		r.next(t) // none acked: all five are out at once
	}
}

// TestANackedMessageRunsAgainBeforeTheNextOfItsKey: a0 nacked is handed out again,
// and a1 only after a0 is acked; the commit then covers both.
func TestANackedMessageRunsAgainBeforeTheNextOfItsKey(t *testing.T) {
	t.Parallel()
	r := startClaim(t, 4, 64, time.Second)
	recs := []*sarama.ConsumerMessage{record(t, 0, "a"), record(t, 1, "a")}
	go func() {
		for _, rec := range recs {
			r.records <- rec
		}
	}()
	first := r.next(t)
	first.Nack()
	again := r.next(t)
	if again.UUID != first.UUID {
		t.Fatalf("after a nack of %s, %s was handed out", first.UUID, again.UUID)
	}
	again.Ack()
	second := r.next(t)
	if second.UUID != "msg-1" {
		t.Fatalf("after the ack, %s was handed out, want msg-1", second.UUID)
	}
	second.Ack()
	wait.Until(t, 10*time.Second, time.Millisecond, func() bool { return r.sess.lastMark() == 2 },
		func() string { return fmt.Sprintf("last mark %d, want 2", r.sess.lastMark()) })
}

// TestARevokedOrClosingPartitionCommitsWhatFinishesWhileItDrainsAndGivesUpTheRest:
// on a rebalance, or when the subscriber closes, a message acked during the drain
// is still marked; one that does not finish within drainFor is given up (its
// context cancelled) and the mark stays before it, so the partition's next owner
// reads it again.
func TestARevokedOrClosingPartitionCommitsWhatFinishesWhileItDrainsAndGivesUpTheRest(t *testing.T) {
	t.Parallel()
	for name, end := range map[string]func(r *claimRig){
		"revoked": func(r *claimRig) { r.revoke() },
		"closing": func(r *claimRig) { close(r.closing) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startClaim(t, 4, 64, 200*time.Millisecond)
			recs := []*sarama.ConsumerMessage{record(t, 0, "a"), record(t, 1, "b")}
			go func() {
				for _, rec := range recs {
					r.records <- rec
				}
			}()
			a, b := r.next(t), r.next(t)
			if a.UUID != "msg-0" {
				a, b = b, a
			}
			end(r)
			a.Ack()
			select {
			case <-r.done:
			case <-time.After(10 * time.Second):
				t.Fatal("ConsumeClaim did not return after the drain")
			}
			if got := r.sess.lastMark(); got != 1 {
				t.Errorf("last mark %d, want 1 (msg-0 acked during the drain, msg-1 given up)", got)
			}
			select {
			case <-b.Context().Done():
			default:
				t.Error("the message given up still has a live context")
			}
		})
	}
}

// TestAPartitionReadsAtMostItsWindowAheadOfItsCommit: one key stuck on its first
// message; the partition reads window records and then no more until it finishes.
func TestAPartitionReadsAtMostItsWindowAheadOfItsCommit(t *testing.T) {
	t.Parallel()
	const window = 3
	r := startClaim(t, 4, window, time.Second)
	for o := range int64(window) {
		r.records <- record(t, o, "a")
	}
	stuck := r.next(t)
	select {
	case r.records <- record(t, window, "a"):
		t.Fatal("a record beyond the window was read while the first had not finished")
	case <-time.After(100 * time.Millisecond):
	}
	stuck.Ack()
	select {
	case r.records <- record(t, window, "a"):
	case <-time.After(10 * time.Second):
		t.Fatal("the partition read nothing more after its first message finished")
	}
}

// TestAPartitionWhoseConsumerStopsByItselfEndsTheSession: Sarama closes a claim's
// records when it stops the partition's consumer on an error it does not retry (an
// offset out of range, after Kafka came back empty). The session must then end, so
// that the group rejoins and the partition is read again, rather than stay claimed
// by nobody reading it.
func TestAPartitionWhoseConsumerStopsByItselfEndsTheSession(t *testing.T) {
	t.Parallel()
	sessCtx, endSession := context.WithCancel(context.Background())
	defer endSession()
	records := make(chan *sarama.ConsumerMessage)
	h := &keyedHandler{
		out: make(chan *message.Message), slots: make(chan struct{}, 1), window: 8,
		unmarshal: PartitionMarshaler, resendAfter: time.Millisecond, drainFor: time.Second, closeDrainFor: time.Second,
		ctx: context.Background(), closing: make(chan struct{}), log: watermill.NopLogger{}, endSession: endSession,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.ConsumeClaim(&fakeSession{ctx: sessCtx}, fakeClaim{records: records})
	}()
	close(records)
	select {
	case <-sessCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session was not ended after its partition's records closed")
	}
	<-done
}
