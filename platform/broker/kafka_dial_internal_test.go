package broker

import (
	"errors"
	"net"
	"testing"
	"time"
)

// fakeDial answers each address from a script of results and counts the dials.
type fakeDial struct {
	results map[string][]error
	dials   map[string]int
}

func (f *fakeDial) dial(_, addr string) (net.Conn, error) {
	f.dials[addr]++
	rs := f.results[addr]
	if len(rs) == 0 {
		return nil, errors.New("no result scripted")
	}
	f.results[addr] = rs[1:]
	if rs[0] != nil {
		return nil, rs[0]
	}
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

func TestARefusedBrokerIsDialedAgainOnlyAfterTheBackoff(t *testing.T) {
	refused := errors.New("connection refused")
	f := &fakeDial{dials: map[string]int{}, results: map[string][]error{
		"a:9092": {refused, refused, nil, nil},
		"b:9092": {nil},
	}}
	clock := time.Unix(1000, 0)
	var waits []time.Duration
	d := &redialDialer{dial: f.dial, backoff: time.Second, now: func() time.Time { return clock },
		sleep: func(w time.Duration) { waits = append(waits, w); clock = clock.Add(w) }, failed: map[string]time.Time{}}

	dial := func(addr string) error {
		t.Helper()
		c, err := d.Dial("tcp", addr)
		if c != nil {
			c.Close()
		}
		return err
	}
	// The first dial to an address never waits.
	if err := dial("a:9092"); !errors.Is(err, refused) {
		t.Fatalf("first dial: %v, want the refusal", err)
	}
	if len(waits) != 0 {
		t.Fatalf("first dial waited %v", waits)
	}
	// Another address is not held back by a's failure.
	if err := dial("b:9092"); err != nil || len(waits) != 0 {
		t.Fatalf("dial to b: %v, waits %v", err, waits)
	}
	// Straight after the failure, the next dial to a waits out the backoff...
	clock = clock.Add(300 * time.Millisecond)
	if err := dial("a:9092"); !errors.Is(err, refused) {
		t.Fatalf("second dial: %v, want the refusal", err)
	}
	if len(waits) != 1 || waits[0] != 700*time.Millisecond {
		t.Fatalf("second dial waited %v, want [700ms]", waits)
	}
	// ...and so does the one after it, counted from the second failure.
	if err := dial("a:9092"); err != nil {
		t.Fatalf("third dial: %v", err)
	}
	if len(waits) != 2 || waits[1] != time.Second {
		t.Fatalf("third dial waited %v, want a second more", waits)
	}
	// A success forgets the failures: the next dial goes at once.
	if err := dial("a:9092"); err != nil || len(waits) != 2 {
		t.Fatalf("dial after a success: %v, waits %v", err, waits)
	}
	// A dial long after a failure does not wait either.
	f.results["a:9092"] = []error{refused, nil}
	_ = dial("a:9092")
	clock = clock.Add(5 * time.Second)
	if err := dial("a:9092"); err != nil || len(waits) != 2 {
		t.Fatalf("dial 5 s after a failure: %v, waits %v", err, waits)
	}
	if f.dials["a:9092"] != 6 || f.dials["b:9092"] != 1 {
		t.Fatalf("dials %v, want a:6 b:1 (every Dial dials once)", f.dials)
	}
}

func TestTheConsumersDialThroughTheRedialBackoff(t *testing.T) {
	c := ConsumerConfig()
	if !c.Net.Proxy.Enable {
		t.Fatal("the consumer config does not use its own dialer")
	}
	d, ok := c.Net.Proxy.Dialer.(*redialDialer)
	if !ok || d.backoff != redialBackoff {
		t.Fatalf("consumer dialer %T, want a redialDialer with a %v backoff", c.Net.Proxy.Dialer, redialBackoff)
	}
	// It dials for real: a port nobody listens on refuses, and the failure is
	// remembered for the next dial.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial a listening port: %v", err)
	}
	conn.Close()
	l.Close()
	if _, err := d.Dial("tcp", addr); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	d.mu.Lock()
	_, remembered := d.failed[addr]
	d.mu.Unlock()
	if !remembered {
		t.Fatal("the refused dial was not remembered")
	}
}
