package engine

import (
	"sync"
	"time"
)

// OwnActions remembers the containers ARES itself is about to stop, kill, restart or remove, for
// a short while, so that the Docker sensor can tell ARES's own stop and kill events from a
// person's (operators win: a container a person stopped is left alone). The Docker actuator
// calls Expect before each such call; the sensor asks Expected when it sees the event. It is
// safe for concurrent use; the zero value is not: use NewOwnActions.
type OwnActions struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	ids map[string]time.Time // container id → until
}

// NewOwnActions returns a registry whose entries last ttl (default 2m: longer than any stop
// timeout, shorter than a person's reaction).
func NewOwnActions(ttl time.Duration) *OwnActions {
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	return &OwnActions{ttl: ttl, now: time.Now, ids: map[string]time.Time{}}
}

// Expect records that ARES is about to stop, kill, restart or remove container id.
func (o *OwnActions) Expect(id string) {
	if o == nil || id == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	for k, until := range o.ids { // bounded: forget what expired
		if now.After(until) {
			delete(o.ids, k)
		}
	}
	o.ids[id] = now.Add(o.ttl)
}

// Forget ends the expectation for container id: the sensor calls it when the container starts
// (the end of a restart) or is destroyed, so that a person's stop right after is theirs.
func (o *OwnActions) Forget(id string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids, id)
}

// Expected reports whether ARES announced an action on container id within the last ttl.
func (o *OwnActions) Expected(id string) bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	until, ok := o.ids[id]
	return ok && !o.now().After(until)
}
