// This file holds recovery: while a store fails, the fetch layer remembers
// who waits for it (the subscribers of the requests it refused or that
// failed), probes it with one call at a time, never more than a probe
// interval apart, and the moment a call to it succeeds tells every waiter at
// once (Options.OnChange), so objects re-sync when the store is back rather
// than when their own retry backoff expires.

package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// DefaultProbeInterval is the default of Options.ProbeInterval.
const DefaultProbeInterval = 30 * time.Second

// recovery is the part of a store's state (under store.mu) that brings it
// back after it failed.
type recovery struct {
	// waiters are the subscribers to tell when the store answers again.
	waiters map[string]struct{}
	// minAge is the shortest refresh window among the waiters' requests
	// (0: none); the store is probed at least that often.
	minAge time.Duration
	// notBefore is when the store's Retry-After allows the next call.
	notBefore time.Time
	// probing says a probe goroutine runs for the store.
	probing bool
	// trial says a call to the failing store is in flight: one at a time,
	// the probe's or a request's (backoff.go admit).
	trial bool
	// target is what a probe reads: the last ref or find that failed.
	target probeTarget
	// kick wakes the probe goroutine when the state changed.
	kick chan struct{}
}

// probeTarget is one read to probe a store with; the zero value validates
// the client instead.
type probeTarget struct {
	ref  *provider.Ref
	find *provider.Find
}

// takeOver returns the recovery state for a store state that replaces the
// one holding r; trial says whether the replacement inherits the trial call.
func (r recovery) takeOver(trial bool) recovery {
	r.waiters = maps.Clone(r.waiters)
	r.trial = trial
	return r
}

// probeInterval is the cap on the wait between calls to a failing store
// (under s.mu).
func (l *Layer) probeInterval(s *backend) time.Duration {
	d := l.opts.ProbeInterval
	if d <= 0 {
		d = DefaultProbeInterval
	}
	if s.minAge > 0 && s.minAge < d {
		d = s.minAge
	}
	return d
}

// noteRequest records req's subscriber as waiting for s when s is failing,
// and brings the next call to s forward to req's refresh window when that
// is shorter than the wait.
func (l *Layer) noteRequest(s *backend, req Request) {
	if req.Subscriber == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == 0 {
		return
	}
	l.addWaiter(s, req.Subscriber, req.MaxAge)
}

// noteFailed records the requesters of the call in flight under key (a
// refKey or findKey) as waiting for s, and target, what failed, as the read
// to probe s with, when s is failing. The call's requesters got the store's
// error (or BackoffError) and, like every other request refused while s
// backs off, wait for it.
func (l *Layer) noteFailed(s *backend, key string, target probeTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == 0 {
		return
	}
	if target.ref != nil || target.find != nil {
		s.target = target
	}
	var window time.Duration
	if target.ref != nil {
		if e, ok := s.entries[*target.ref]; ok {
			window = e.window
		}
	} else if e, ok := s.finds[key]; ok {
		window = e.window
	}
	if c, ok := s.inflight[key]; ok {
		for sub := range c.requesters {
			l.addWaiter(s, sub, window)
		}
	}
}

// waitInflight records the requesters of every call in flight on s as
// waiting for it (under s.mu, s failing): when s fails or refuses a call,
// each of them gets the failure, whatever path (a single read, a batch, a
// listing) its call took.
func (l *Layer) waitInflight(s *backend) {
	for _, c := range s.inflight {
		for sub := range c.requesters {
			l.addWaiter(s, sub, 0)
		}
	}
}

// probeTarget returns what to probe s with: the last read that failed,
// else any ref or find s's cache holds (every request creates its entry
// before it calls the store, so a batch call or a listing that failed
// leaves one); the zero value (validate the client) when s has none (under
// s.mu).
func (s *backend) probeTarget() probeTarget {
	if s.target.ref != nil || s.target.find != nil {
		return s.target
	}
	for r := range s.entries {
		return probeTarget{ref: &r}
	}
	for key := range s.finds {
		var f provider.Find
		if json.Unmarshal([]byte(strings.TrimPrefix(key, "f\x00")), &f) == nil {
			return probeTarget{find: &f}
		}
	}
	return probeTarget{}
}

// addWaiter adds sub, requesting values at most maxAge old, to s's waiters
// and makes sure a probe runs (under s.mu).
func (l *Layer) addWaiter(s *backend, sub string, maxAge time.Duration) {
	if s.waiters == nil {
		s.waiters = map[string]struct{}{}
	}
	s.waiters[sub] = struct{}{}
	if maxAge > 0 && (s.minAge == 0 || maxAge < s.minAge) {
		s.minAge = maxAge
		// A shorter window than the wait set so far: probe within it,
		// unless Retry-After asked for longer.
		if next := l.opts.Now().Add(maxAge); next.Before(s.backoffUntil) {
			s.backoffUntil = later(next, s.notBefore)
			s.poke()
		}
	}
	if !s.probing {
		s.probing = true
		if s.kick == nil {
			s.kick = make(chan struct{}, 1)
		}
		go l.probe(s, s.kick)
	}
}

// takeWaiters returns s's waiters and forgets them (under s.mu).
func (s *backend) takeWaiters() []string {
	subs := make([]string, 0, len(s.waiters))
	for sub := range s.waiters {
		subs = append(subs, sub)
	}
	s.waiters, s.minAge = nil, 0
	return subs
}

// poke wakes s's probe goroutine, if any, to look at s's state again.
func (s *backend) poke() {
	if s.kick == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// current returns the store state of key, nil if it was released.
func (l *Layer) current(key backendKey) *backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backends[key]
}

// probe calls the failing store of first's key once whenever its backoff
// expires and no other call to it is in flight, until a call succeeds
// (record then tells the waiters), no one waits any more, the store is
// released, or the layer's context ends. The store state is looked up on
// every round, since it is replaced when its client is rebuilt.
func (l *Layer) probe(first *backend, kick chan struct{}) {
	key, last := first.key, first // last: the store state seen last, told when the probe ends
	defer func() {
		if last != nil {
			last.mu.Lock()
			if last.kick == kick {
				last.probing = false
			}
			last.mu.Unlock()
		}
	}()
	for {
		s := l.current(key)
		if s == nil || l.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if s.kick != kick {
			// The store was released and built afresh: not ours any more.
			s.mu.Unlock()
			return
		}
		last = s
		if len(s.waiters) == 0 || s.failures == 0 {
			// Ended in the same critical section that sees it is done, so a
			// waiter added next starts a new probe.
			s.probing, last = false, nil
			s.mu.Unlock()
			return
		}
		wait := s.backoffUntil.Sub(l.opts.Now())
		if wait <= 0 && !s.trial {
			s.trial = true
			target, rebuild := s.probeTarget(), errors.Is(s.lastErr, provider.ErrUnauthenticated)
			s.mu.Unlock()
			l.probeOnce(s, target, rebuild)
			continue
		}
		if wait <= 0 {
			// Another call is trying the store; its outcome pokes us.
			wait = l.probeInterval(s)
		}
		s.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-l.ctx.Done():
		case <-timer.C:
		case <-kick:
		}
		timer.Stop()
	}
}

// probeOnce makes one call to s, whose trial the caller holds, and records
// its outcome. After an authentication failure the client is built again
// first, so credentials fixed since (a Secret edited) are read anew.
func (l *Layer) probeOnce(s *backend, t probeTarget, rebuild bool) {
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.CallTimeout)
	defer cancel()
	if rebuild {
		ns, err := l.rebuild(ctx, s, true)
		if err != nil {
			l.opts.Log.V(1).Info("probe: rebuilding the client failed", "store", s.key.String(), "error", err.Error())
			l.opts.Metrics.StoreProbes.WithLabelValues(s.provider, "failed").Inc()
			s.mu.Lock()
			s.trial = false
			l.backOff(s, s.lastErr)
			s.mu.Unlock()
			return
		}
		s = ns
	}
	var err error
	switch {
	case t.ref != nil:
		_, err = s.client.GetSecret(ctx, *t.ref)
	case t.find != nil:
		err = probeList(ctx, s.client, *t.find) // one listing call (find.go)
	default:
		err = s.client.Validate(ctx)
	}
	outcome := "recovered"
	if isStoreFailure(err) || errors.Is(err, context.Canceled) {
		outcome = "failed"
	}
	l.opts.Metrics.StoreProbes.WithLabelValues(s.provider, outcome).Inc()
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	l.record(s, err)
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
