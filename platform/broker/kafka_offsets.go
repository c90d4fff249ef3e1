package broker

import "slices"

// pendingOffsets is what a partition has read and not yet finished, in offset order,
// and from that where its committed offset may move: to the lowest offset not yet
// finished, or past everything read when all is finished. Messages finish in any
// order when several run at once; the commit never passes one still running, so a
// crash redelivers only what had not finished (and what finished after it).
type pendingOffsets struct {
	queue []pendingOffset // in offset order; the front is never done
	next  int64           // one past the highest offset read; -1 before any
}

type pendingOffset struct {
	offset int64
	done   bool
}

func newPendingOffsets() pendingOffsets { return pendingOffsets{next: -1} }

// add records offset as read and not finished. Offsets are added in increasing order.
func (p *pendingOffsets) add(offset int64) {
	p.queue = append(p.queue, pendingOffset{offset: offset})
	p.next = offset + 1
}

// len is how many offsets are read and not finished.
func (p *pendingOffsets) len() int { return len(p.queue) }

// finish records offset as finished. When that moves the commit point (offset was
// the lowest unfinished), it returns the new one, the offset to commit: the next
// offset to read on this partition.
func (p *pendingOffsets) finish(offset int64) (commit int64, moved bool) {
	i, found := slices.BinarySearchFunc(p.queue, offset, func(e pendingOffset, o int64) int {
		switch {
		case e.offset < o:
			return -1
		case e.offset > o:
			return 1
		}
		return 0
	})
	if !found {
		return 0, false
	}
	p.queue[i].done = true
	n := 0
	for n < len(p.queue) && p.queue[n].done {
		n++
	}
	if n == 0 {
		return 0, false
	}
	p.queue = slices.Delete(p.queue, 0, n)
	if len(p.queue) > 0 {
		return p.queue[0].offset, true
	}
	return p.next, true
}
