package broker

import (
	"net"
	"sync"
	"time"
)

// redialBackoff is how long after a failed dial to a broker address the consumers'
// next dial to that address waits: the pace of watermill-kafka's own reconnects
// after a failed connect (ReconnectRetrySleep).
const redialBackoff = time.Second

// redialDialer dials Kafka brokers as Sarama's own dialer does, except that after a
// dial to an address failed, the next dial to that address first waits until
// redialBackoff has passed since the failure.
//
// watermill-kafka starts a consumer group again, with a new Sarama client, as soon
// as the group's Consume returns an error, and only pauses when the new client
// cannot be made. While Kafka fails over from a killed broker, its metadata still
// names that broker as group coordinator for a few seconds, its port refuses at
// once, and the subscribers spun: TestKafkaHALosesNothingWhenPartitionLeadersDie
// logged 6,300 "Group consume error"s (new clients, each asking the live brokers
// for metadata) in the 7 s of one failover. A refused dial now costs each loop a
// second, as a refused client already did.
type redialDialer struct {
	dial    func(network, addr string) (net.Conn, error)
	backoff time.Duration
	now     func() time.Time
	sleep   func(time.Duration)

	mu     sync.Mutex
	failed map[string]time.Time // address → when the last dial to it failed
}

// newRedialDialer wraps d, Sarama's plain dialer for the same timeouts.
func newRedialDialer(d *net.Dialer, backoff time.Duration) *redialDialer {
	return &redialDialer{dial: d.Dial, backoff: backoff, now: time.Now, sleep: time.Sleep, failed: map[string]time.Time{}}
}

// Dial implements golang.org/x/net/proxy.Dialer, the one dialer hook Sarama has
// (Net.Proxy.Dialer). Sarama dials from a goroutine of the broker connection
// being opened, so the wait holds up that connection only.
func (d *redialDialer) Dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	last, ok := d.failed[addr]
	d.mu.Unlock()
	if ok {
		if wait := last.Add(d.backoff).Sub(d.now()); wait > 0 {
			d.sleep(wait)
		}
	}
	conn, err := d.dial(network, addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.failed[addr] = d.now()
	} else {
		delete(d.failed, addr)
	}
	return conn, err
}
