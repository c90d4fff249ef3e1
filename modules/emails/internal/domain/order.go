package domain

// The order rule. Delivery's and the dead letters' events about one email reach the
// emails module in the order Kafka hands them over, which is not always the order
// the tries happened in: after a partition grow moves the email's key, a
// rebalance, a replay racing a retry, or a forwarded retry overtaking, an older
// try's report can come after a newer one's. Every report therefore names its try
// (Try), each recipient and the email remember the try their state came from, and
// applying a report never puts an earlier state in place of a later one. A replay,
// which an operator starts from the dead letters, opens a new generation: the tries
// before it are then all earlier than any of its own.

// Try names one try of an email: the replay (generation) it belongs to, 0 for the
// original send and n after an operator's n-th replay, and its attempt, 1-based,
// counted afresh within each replay. Attempt 0 stands for the start of a replay,
// before its first try.
type Try struct {
	// Replay is the replay the try belongs to.
	Replay int
	// Attempt is the try's 1-based number within its replay; 0 before the first.
	Attempt int
}

// After reports whether t is a later try than u: of a later replay, or of the same
// replay with a higher attempt.
func (t Try) After(u Try) bool {
	if t.Replay != u.Replay {
		return t.Replay > u.Replay
	}
	return t.Attempt > u.Attempt
}

// Report is one event about an email's delivery, as the order rule sees it: a try's
// outcome (EmailAttempted), the parking of its letter (EmailDeadLettered) or an
// operator's replay (EmailReplayed). The zero Report changes nothing.
type Report struct {
	// Try is the try the report comes from: a try's outcome names it; a parked
	// letter, the replay that failed and how many tries it made; a replay, its new
	// replay number with Attempt 0.
	Try Try
	// Ordered says the report names its try. A report that does not (an event whose
	// producer left the attempt or the replay number out) is applied as it comes,
	// replacing what is there, as every report was before the rule existed.
	Ordered bool
	// Recipients are the recipient states a try's outcome reports.
	Recipients []Recipient
	// DeadLettered says the letter of replay Try.Replay is parked.
	DeadLettered bool
	// Replay says an operator replayed the email: Try.Replay is the new replay, and
	// Replayed the addresses it sends to again (empty: every one not delivered).
	Replay   bool
	Replayed []string
}

// Standing is where an email stands as the order rule sees it: the latest try
// whose report speaks for the whole email, and whether its letter is parked.
type Standing struct {
	// Try is the latest try applied to the email: its replay, and the highest
	// attempt of that replay reported so far (Email.Attempts).
	Try Try
	// DeadLettered says the email's letter is parked in the dead letters.
	DeadLettered bool
}

// Applied is what applying a Report to an email changes.
type Applied struct {
	// Recipients are the email's recipients afterwards, in their order; a
	// recipient the report names and the email did not list yet comes last.
	Recipients []Recipient
	// Changed are the recipients whose state the report set (a try's verdict or a
	// replay's fresh start); the others keep theirs.
	Changed []Recipient
	// Standing is the email's standing afterwards.
	Standing Standing
	// Current says the report speaks for the email as a whole: it is of the
	// email's latest try or a later one (or names none), so what it says of the
	// email (its last error, its next try) replaces what is recorded. A report of
	// an earlier try only adds to the timeline and to recipients it is news to.
	Current bool
	// StartsReplay says the report opened a new replay: the email's attempt count
	// and last error start over.
	StartsReplay bool
}

// Apply applies rep to an email standing at s with recipients rs, keeping each
// recipient's later state and the email's: a recipient takes a try's verdict only
// when that try is later than the one that set its state, a replay starts over
// only the recipients no try of that replay (or a later one) reported on yet, and
// the email's own fields follow only a report of its latest try or a later one. A
// report of a later replay than the email's clears its parked letter, since only a
// replay of the letter starts one. rs is not modified.
func Apply(s Standing, rs []Recipient, rep Report) Applied {
	out := Applied{Recipients: append([]Recipient(nil), rs...), Standing: s}
	if !rep.Ordered {
		return applyUnordered(out, rep)
	}
	newer := rep.Try.Replay > s.Try.Replay
	out.Current = !s.Try.After(rep.Try)
	if out.Current {
		out.Standing.Try = rep.Try
	}
	if newer {
		out.Standing.DeadLettered = false
	}
	if rep.DeadLettered && rep.Try.Replay >= s.Try.Replay {
		out.Standing.DeadLettered = true
	}
	if rep.Replay {
		out.StartsReplay = newer
		start := Try{Replay: rep.Try.Replay}
		out.startOver(rep, start, func(r Recipient) bool { return start.After(r.Try) })
	}
	for _, r := range rep.Recipients {
		r.Try = rep.Try
		out.take(r, func(old Recipient) bool { return rep.Try.After(old.Try) })
	}
	return out
}

// applyUnordered applies a report that names no try as it comes: each recipient
// it reports takes its state, a replay starts every replayed recipient over, and it
// speaks for the email.
func applyUnordered(out Applied, rep Report) Applied {
	out.Current = true
	if rep.DeadLettered {
		out.Standing.DeadLettered = true
	}
	if rep.Replay {
		out.StartsReplay = true
		out.Standing = Standing{Try: Try{Replay: out.Standing.Try.Replay}}
		out.startOver(rep, out.Standing.Try, func(Recipient) bool { return true })
	}
	for _, r := range rep.Recipients {
		r.Try = out.Standing.Try
		out.take(r, func(Recipient) bool { return true })
	}
	return out
}

// take puts r in place of the recipient of its address when newer says r is the
// later state, or adds it when the email did not list it.
func (a *Applied) take(r Recipient, newer func(old Recipient) bool) {
	for i, old := range a.Recipients {
		if old.Address != r.Address {
			continue
		}
		if !newer(old) {
			return
		}
		if r.Type == "" {
			r.Type = old.Type
		}
		a.Recipients[i] = r
		a.changed(r)
		return
	}
	a.Recipients = append(a.Recipients, r)
	a.changed(r)
}

// startOver makes the recipients rep replays pending again, with no attempts, as of
// the try start (the replay's, before its first attempt): those that due says
// the replay reaches.
func (a *Applied) startOver(rep Report, start Try, due func(Recipient) bool) {
	named := make(map[string]bool, len(rep.Replayed))
	for _, addr := range rep.Replayed {
		named[addr] = true
	}
	for i, r := range a.Recipients {
		replayed := named[r.Address] || (len(named) == 0 && r.Status != RecipientDelivered)
		if !replayed || !due(r) {
			continue
		}
		r.Status, r.Attempts, r.Detail = RecipientPending, 0, ""
		r.Try = start
		a.Recipients[i] = r
		a.changed(r)
	}
}

// changed notes r among the changed recipients, replacing an earlier note of its
// address.
func (a *Applied) changed(r Recipient) {
	for i, c := range a.Changed {
		if c.Address == r.Address {
			a.Changed[i] = r
			return
		}
	}
	a.Changed = append(a.Changed, r)
}
