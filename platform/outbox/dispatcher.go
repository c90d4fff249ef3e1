package outbox

import (
	"context"
	"sync"
	"time"
)

// dispatcher is the goroutine that runs Run. It reads due rows and plans them (see
// plan), queues the units on the lanes of their topics and hands them to the lanes'
// publishers, takes the publishers' reports, and hands published rows to the
// deleter. It alone touches its fields, the plan and the lanes, so none needs a
// lock: the publishers and the deleter talk to it over channels.
type dispatcher struct {
	ctx   context.Context
	relay *Relay
	cfg   RelayConfig
	plan  *plan

	lanes    map[string]*lane   // by topic, at most maxLanes
	all      []*lane            // every lane, the overflow lane included
	overflow *lane              // the lane of the topics past maxLanes, once needed
	results  chan publishResult // from every lane's publishers
	// laneLimit is the most rows a lane queues: BatchSize + Workers*RunSize, so a
	// lane that has room when a read begins (fewer than Workers units) never refuses
	// a row within it.
	laneLimit int

	deleter  *deleter
	toDelete []published // published, not yet handed to the deleter
	deleting bool        // the deleter has a batch

	wake    <-chan struct{} // Outbox.Notify: rows were committed
	fetch   bool            // something happened that may let more rows be planned
	stalled bool            // some lane is paused or blocked (see mayPlan)
	readOn  bool            // the last read was full while a lane stalled: read again at once
	pollAt  time.Time       // when to read again if nothing prompts it sooner
	timer   *time.Timer     // fires at the earliest of pollAt and the lanes' pauses
	timerAt time.Time       // when timer is set to fire

	goroutines sync.WaitGroup // the publishers and the deleter
	// abandoned is set when shutdown found the database detached (its file deleted
	// or replaced): the publishes in flight are not waited for.
	abandoned bool
}

// newDispatcher prepares r's parts for one Run and starts the deleter; publishers
// start as their lanes get work.
func newDispatcher(ctx context.Context, r *Relay) *dispatcher {
	now := time.Now()
	d := &dispatcher{
		ctx:       ctx,
		relay:     r,
		cfg:       r.cfg,
		plan:      newPlan(),
		lanes:     map[string]*lane{},
		laneLimit: r.cfg.BatchSize + r.cfg.Workers*r.cfg.RunSize,
		results:   make(chan publishResult, r.cfg.Workers),
		deleter:   newDeleter(r),
		wake:      r.box.subscribe(),
		fetch:     true,
		pollAt:    now.Add(r.cfg.PollInterval),
		timer:     time.NewTimer(r.cfg.PollInterval),
	}
	d.timerAt = d.pollAt
	d.goroutines.Go(d.deleter.run)
	return d
}

// run is the dispatcher's loop: plan when something may have made rows plannable
// and the publishers could use them, hand units out, wait for the next event. Once
// ctx is done it shuts down (see shutdown) and returns.
func (d *dispatcher) run() {
	for d.ctx.Err() == nil {
		if d.fetch && d.mayPlan() {
			d.fetch = false
			d.planDue()
		}
		d.handOut()
		d.armTimer()
		var deletes chan<- []published // nil, so never ready, unless a batch waits
		if len(d.toDelete) > 0 && !d.deleting {
			deletes = d.deleter.batches
		}
		select {
		case <-d.ctx.Done():
		case deletes <- d.toDelete:
			d.toDelete, d.deleting = nil, true
		case res := <-d.deleter.results:
			d.deleted(res)
		case res := <-d.results:
			d.published(res)
		case <-d.wake:
			d.fetch = true
		case <-d.timer.C:
			d.timerFired()
		}
	}
	d.shutdown()
}

// mayPlan tells whether reading due rows now can give publishers work soon, and
// notes whether some lane is stalled. It is the rule of one pool of Workers
// publishers, over the lanes that move: read while they have fewer than Workers
// units queued between them. A stalled lane does not count, paused after a failed
// publish or blocked (units are out and no publish returned for a PollInterval), so
// the other topics' rows are read, past the stalled lane's, for as long as it stays
// so.
func (d *dispatcher) mayPlan() bool {
	if d.relay.db.Err() != nil {
		// The database file is gone (see sqlite.DB.WatchFile): nothing published
		// now could be recorded as such, and every row is in the rescued copy.
		return false
	}
	var (
		queued int
		now    time.Time
	)
	d.stalled = false
	for _, l := range d.all {
		if l.handed > 0 && now.IsZero() {
			now = time.Now()
		}
		if l.paused() || l.blocked(now, d.cfg.PollInterval) {
			d.stalled = true
			continue
		}
		queued += len(l.queued)
	}
	if d.stalled && len(d.plan.held) >= maxHeldKeys(d.cfg) {
		// Reading past a long stall holds back one key per row it passes: stop
		// there, so memory stays bounded however long the stall lasts.
		return false
	}
	return queued < d.cfg.Workers
}

// maxHeldKeys bounds the keys a sweep holds back while reading past a stalled lane:
// 64 reads' worth, a few megabytes. Past it the rows behind wait for the stall to
// end, as they would with one pool of publishers.
func maxHeldKeys(cfg RelayConfig) int { return 64 * cfg.BatchSize }

// planDue reads one batch of due rows (see planBatch) and sets when to read next if
// nothing prompts it sooner: at once while the sweep reads on past rows it could not
// plan, at the next row's due time when nothing is due, else after a PollInterval.
func (d *dispatcher) planDue() {
	next, err := d.planBatch(time.Now())
	now := time.Now()
	d.pollAt = now.Add(d.cfg.PollInterval)
	switch {
	case err != nil && d.ctx.Err() == nil:
		d.relay.log.Warn("outbox relay: cannot read due rows", "error", err)
	case d.readOn:
		d.pollAt = now
	case !next.IsZero() && next.Before(d.pollAt):
		d.pollAt = next
		if earliest := now.Add(time.Millisecond); next.Before(earliest) {
			d.pollAt = earliest
		}
	}
}

// planBatch reads up to BatchSize due rows and queues those it plans on the lanes of
// their topics, in units of up to RunSize rows. A row waits, its key held back for
// the rest of the sweep, when its key is taken or when its lane refuses it: a lane
// takes laneLimit rows at most, so that a stalled topic does not pull its whole
// backlog into memory. It returns when the next row falls due, when no row is due or
// planned.
//
// Reads continue the current sweep from its cursor. The sweep starts over from the
// first due row when it reached the end of the due rows, when a held key was
// released or a delete failed, when a lane that refused rows has room again, and at
// least every PollInterval, which also picks up a row that became visible behind
// the cursor (committed late, or due late).
//
// While a lane is stalled, the rows behind it wait for nothing but itself: after a
// full read the sweep reads on at once, to reach the other topics' rows past the
// stalled backlog, and it neither starts over at the end of the due rows nor on the
// clock, which would only read that backlog again. A row visible late behind the
// cursor then waits until the stall ends.
func (d *dispatcher) planBatch(now time.Time) (time.Time, error) {
	p := d.plan
	d.readOn = false
	if p.sweeping && !d.stalled && now.Sub(p.began) >= d.cfg.PollInterval {
		p.sweeping = false
	}
	if !p.sweeping {
		p.startOver(now)
		for _, l := range d.all {
			l.refused = false
		}
	}
	rows, read, err := d.relay.due(d.ctx, now.UnixMilli(), d.cfg.BatchSize, p, d.take)
	for _, l := range d.all {
		l.readRows = 0
	}
	if err != nil {
		p.sweeping = false
		return time.Time{}, err
	}
	for _, rw := range rows {
		d.laneFor(rw.topic).queue(rw, d.cfg.RunSize)
	}
	full := read == d.cfg.BatchSize
	d.readOn = full && d.stalled
	// A short read reached the end: the next read starts over, unless that would
	// only read again rows that wait for a stalled lane.
	p.sweeping = full || p.refused || d.stalled
	if len(rows) > 0 || len(p.ids) > 0 {
		return time.Time{}, nil
	}
	return d.relay.nextDue(d.ctx, now.UnixMilli())
}

// take decides whether the sweep plans the row it reached (see planBatch), and
// reserves it if so.
func (d *dispatcher) take(id int64, key, topic string) bool {
	p := d.plan
	if !p.free(key) {
		p.hold(key)
		return false
	}
	l := d.laneFor(topic)
	if !l.takes(d.laneLimit) {
		l.refused, p.refused = true, true
		p.hold(key)
		return false
	}
	p.reserve(id, key)
	l.readRows++
	return true
}

// laneFor returns topic's lane, starting it at the topic's first row; past maxLanes
// topics, the overflow lane.
func (d *dispatcher) laneFor(topic string) *lane {
	if l, ok := d.lanes[topic]; ok {
		return l
	}
	if len(d.lanes) < maxLanes {
		l := newLane(d.cfg.Workers)
		d.lanes[topic] = l
		d.all = append(d.all, l)
		return l
	}
	if d.overflow == nil {
		d.overflow = newLane(d.cfg.Workers)
		d.all = append(d.all, d.overflow)
	}
	return d.overflow
}

// handOut gives each lane's publishers the units they can take, keeping up to
// Workers waiting in the lane's channel, and starts a publisher when there are more
// units out than publishers, up to Workers a lane. A paused lane hands out nothing.
// A lane that refused rows and has room again makes the sweep start over, to plan
// them.
func (d *dispatcher) handOut() {
	for _, l := range d.all {
		for len(l.queued) > 0 && !l.paused() && len(l.units) < cap(l.units) {
			if l.handed == 0 {
				l.lastReturn = time.Now() // quiet only from now on
			}
			l.units <- l.next()
			l.handed++
			if l.handed > l.publishers && l.publishers < d.cfg.Workers {
				l.publishers++
				units := l.units
				d.goroutines.Go(func() { d.relay.publishUnits(d.ctx, l, units, d.results) })
			}
		}
		if l.refused && l.hungry(d.cfg.Workers) {
			l.refused = false
			d.plan.sweeping = false
			d.fetch = true
		}
	}
}

// published takes a publisher's report. A unit the broker accepted waits for the
// deleter, its rows still planned. One it refused goes back to its lane (see
// failed). One not started, or cut short, because the relay is stopping is
// forgotten: its rows stay in the outbox.
func (d *dispatcher) published(res publishResult) {
	l := res.lane
	l.handed--
	l.lastReturn = time.Now()
	switch {
	case res.err == nil:
		d.toDelete = append(d.toDelete, res.published)
		l.backoff = 0
		d.fetch = true
	case d.ctx.Err() != nil:
		d.plan.release(res.unit)
	default:
		d.failed(l, res)
	}
}

// failed puts a unit the broker refused back at the front of its lane's queue, its
// rows still planned, and pauses that lane for a backoff that doubles with each
// failure in a row, from 100ms to 5s. The other lanes go on: one topic refused says
// nothing of the others, and a broker that is down fails their next publishes too,
// which pauses them in turn.
func (d *dispatcher) failed(l *lane, res publishResult) {
	l.putBack(res.unit)
	l.backoff = min(max(2*l.backoff, 100*time.Millisecond), 5*time.Second)
	l.pausedUntil = time.Now().Add(l.backoff)
	d.relay.log.Warn("outbox relay: publish failed, will retry",
		"topic", res.unit[0].topic, "retry_in", l.backoff, "error", res.err)
}

// deleted takes the deleter's report: the batch's rows and keys are no longer
// planned, so the keys' next rows can be.
func (d *dispatcher) deleted(res deleteResult) {
	d.deleting = false
	for _, p := range res.batch {
		d.plan.release(p.unit)
	}
	if res.err != nil {
		// The rows stay in the outbox, behind the sweep, and are published again:
		// a duplicate, never a loss.
		d.plan.sweeping = false
		d.relay.log.Warn("outbox relay: cannot delete published rows, they will be published again", "error", res.err)
	}
	d.fetch = true
}

// timerFired ends the pauses that are over and prompts a read.
func (d *dispatcher) timerFired() {
	now := time.Now()
	d.timerAt = time.Time{}
	for _, l := range d.all {
		if l.paused() && !now.Before(l.pausedUntil) {
			l.pausedUntil = time.Time{}
		}
	}
	if !now.Before(d.pollAt) {
		d.pollAt = now.Add(d.cfg.PollInterval)
	}
	d.fetch = true
}

// armTimer sets the timer for the earliest of the next poll and the end of a pause.
func (d *dispatcher) armTimer() {
	at := d.pollAt
	for _, l := range d.all {
		if l.paused() && l.pausedUntil.Before(at) {
			at = l.pausedUntil
		}
	}
	if !at.Equal(d.timerAt) {
		d.timer.Reset(time.Until(at))
		d.timerAt = at
	}
}

// shutdown lets the publishes in flight finish and deletes what was published.
// Units no publisher has taken yet are not started: they stay in the outbox.
func (d *dispatcher) shutdown() {
	if d.relay.db.Err() != nil {
		// Nothing can be deleted, and every row not deleted is in the rescued copy.
		// On Go channels a publish in flight waits for a handler that cannot record
		// anything either, and so may never return: do not wait for it.
		d.abandoned = true
		return
	}
	out := 0
	for _, l := range d.all {
		for _, u := range l.takeBack() {
			d.plan.release(u)
		}
		out += l.handed
	}
	for ; out > 0; out-- {
		d.published(<-d.results)
	}
	if d.deleting {
		d.deleted(<-d.deleter.results)
	}
	if len(d.toDelete) > 0 {
		d.deleter.batches <- d.toDelete
		d.toDelete, d.deleting = nil, true
		d.deleted(<-d.deleter.results)
	}
}

// stop ends the publishers and the deleter, and waits for them, unless shutdown
// abandoned the publishes in flight: then they end when the broker closes.
func (d *dispatcher) stop() {
	d.timer.Stop()
	for _, l := range d.all {
		close(l.units)
	}
	close(d.deleter.batches)
	if !d.abandoned {
		d.goroutines.Wait()
	}
}
