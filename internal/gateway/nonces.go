package gateway

import (
	"container/heap"
	"sync"
	"time"
)

// nonceSet remembers the payment authorizations this process has accepted, so one payment
// buys one response: an entry is added when a payment has matched the offer, before the
// facilitator is asked (two concurrent requests carrying one payment cannot both pass), and
// kept until the authorization's validBefore, after which no facilitator settles it anyway.
// It is bounded: when full of unexpired entries, new payments are refused (busy) rather than
// an entry dropped, which would reopen a replay.
//
// It is per process: replicas of one offer do not share it. They need not: every answer is
// settled before it is delivered, and the token contract (or Permit2) refuses a used nonce, so
// a second replica's settlement fails and delivers nothing. What the set adds is refusing a
// replay before it costs the facilitator or the upstream anything.
type nonceSet struct {
	mu      sync.Mutex
	max     int
	entries map[string]time.Time
	byExp   expHeap
}

type nonceResult int

const (
	nonceAdded nonceResult = iota
	nonceReplayed
	nonceFull
)

func newNonceSet(max int) *nonceSet {
	return &nonceSet{max: max, entries: make(map[string]time.Time)}
}

// add records key until exp; it reports nonceReplayed when key is already held.
func (s *nonceSet) add(key string, exp, now time.Time) nonceResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if _, ok := s.entries[key]; ok {
		return nonceReplayed
	}
	if len(s.entries) >= s.max {
		return nonceFull
	}
	if !exp.After(now) {
		// Already expired (Match refuses those): hold it for the request's lifetime anyway.
		exp = now.Add(time.Minute)
	}
	s.entries[key] = exp
	heap.Push(&s.byExp, expEntry{key: key, exp: exp})
	return nonceAdded
}

// remove forgets key: its payment was neither settled nor answered, so it may be used again.
func (s *nonceSet) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
	// The heap entry stays until it expires; expire skips entries no longer in the map (or
	// re-added with another expiry).
}

func (s *nonceSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *nonceSet) expire(now time.Time) {
	for len(s.byExp) > 0 && !s.byExp[0].exp.After(now) {
		e := heap.Pop(&s.byExp).(expEntry)
		if exp, ok := s.entries[e.key]; ok && exp.Equal(e.exp) {
			delete(s.entries, e.key)
		}
	}
	// Removed keys leave their heap entries behind; keep the heap from growing without
	// bound when many payments are released long before they expire.
	if len(s.byExp) > 2*s.max {
		s.byExp = s.byExp[:0]
		for k, exp := range s.entries {
			s.byExp = append(s.byExp, expEntry{key: k, exp: exp})
		}
		heap.Init(&s.byExp)
	}
}

type expEntry struct {
	key string
	exp time.Time
}

type expHeap []expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
