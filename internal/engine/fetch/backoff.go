// This file holds rate limiting and backoff: every call to a store is
// admitted through its rate limiter (or refused at once while the store backs
// off, and while another call tries the failing store), and its outcome
// recorded, backing a failing store off exponentially up to the probe
// interval (recovery.go), or for as long as its Retry-After asks.

package fetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// BackoffError is returned without calling the store while it backs off.
type BackoffError struct {
	Store string
	Until time.Time
	Err   error
}

// Error names the store and the failure, not the retry time, so a status
// built from it does not change (and is not rewritten) on every retry.
func (e *BackoffError) Error() string {
	return fmt.Sprintf("store %s failed recently and is backed off: %v", e.Store, e.Err)
}

func (e *BackoffError) Unwrap() error { return e.Err }

// getOne reads one value from the store, admitted and recorded.
func (l *Layer) getOne(ctx context.Context, s *backend, r provider.Ref) (provider.Value, error) {
	if err := l.admit(ctx, s); err != nil {
		l.noteFailed(s, refKey(r), probeTarget{ref: &r})
		return provider.Value{}, err
	}
	v, err := s.client.GetSecret(ctx, r)
	l.record(s, err)
	if isStoreFailure(err) {
		l.noteFailed(s, refKey(r), probeTarget{ref: &r})
	}
	return v, err
}

// admit waits for the store's rate limiter, or fails fast while it backs
// off. Once a failing store's backoff has expired, one call at a time tries
// it (a request's or a probe's); the others fail fast until it answers.
func (l *Layer) admit(ctx context.Context, s *backend) error {
	s.mu.Lock()
	if s.failures > 0 {
		now := l.opts.Now()
		if now.Before(s.backoffUntil) || s.trial {
			until := s.backoffUntil
			if !now.Before(until) {
				until = now.Add(l.probeInterval(s)) // the trial call's outcome decides
			}
			err := &BackoffError{Store: s.key.String(), Until: until, Err: s.lastErr}
			l.waitInflight(s)
			s.mu.Unlock()
			return err
		}
		s.trial = true
	}
	s.mu.Unlock()
	if err := s.limiter.Wait(ctx); err != nil {
		s.mu.Lock()
		s.trial = false
		s.mu.Unlock()
		return fmt.Errorf("waiting for store %s rate limit: %w", s.key, err)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return nil
}

// record counts a call and updates the store's backoff state after it.
// The first answer from a failing store (any answer but a failure of the
// store) ends its backoff and tells every object waiting for it at once.
func (l *Layer) record(s *backend, err error) {
	outcome := "ok"
	if err != nil && !isCacheable(err) {
		outcome = "error"
	}
	l.opts.Metrics.ProviderCalls.WithLabelValues(s.provider, outcome).Inc()
	s.mu.Lock()
	s.trial = false
	if isStoreFailure(err) {
		l.backOff(s, err)
		s.mu.Unlock()
		return
	}
	if errors.Is(err, context.Canceled) {
		// The caller gave up: the store said nothing either way.
		s.poke()
		s.mu.Unlock()
		return
	}
	recovered := s.failures > 0
	s.failures, s.backoffUntil, s.lastErr, s.notBefore = 0, time.Time{}, nil, time.Time{}
	s.target = probeTarget{}
	var waiters []string
	if recovered {
		waiters = s.takeWaiters()
		s.poke() // the probe, if any, ends
	}
	s.mu.Unlock()
	if len(waiters) > 0 {
		l.opts.Log.V(1).Info("store answers again; re-syncing the objects waiting for it", "store", s.key.String(), "waiting", len(waiters))
		l.opts.OnChange(waiters)
	}
}

// backOff records a failure of s and sets when s may be called next (under
// s.mu): BaseBackoff doubling with every failure in a row, capped by
// MaxBackoff and by the probe interval, less up to a fifth of jitter so
// that stores failing together are not called together again; never before
// the store's Retry-After.
func (l *Layer) backOff(s *backend, err error) {
	s.failures++
	d := l.opts.BaseBackoff << min(s.failures-1, 20)
	if d > l.opts.MaxBackoff || d <= 0 {
		d = l.opts.MaxBackoff
	}
	d = min(d, l.probeInterval(s))
	d -= rand.N(d/5 + 1)
	now := l.opts.Now()
	s.backoffUntil = now.Add(d)
	var te *provider.ThrottledError
	if errors.As(err, &te) && te.RetryAfter > 0 {
		s.notBefore = now.Add(te.RetryAfter)
		s.backoffUntil = later(s.backoffUntil, s.notBefore)
	}
	s.lastErr = err
	l.waitInflight(s)
	s.poke()
}

// isStoreFailure says whether an error should back the store off.
func isStoreFailure(err error) bool {
	if err == nil || errors.Is(err, provider.ErrNotFound) || errors.Is(err, context.Canceled) {
		return false
	}
	var te *provider.ThrottledError
	return errors.As(err, &te) || errors.Is(err, provider.ErrUnreachable) ||
		!(errors.Is(err, provider.ErrForbidden) || errors.Is(err, provider.ErrInvalidConfig) ||
			errors.Is(err, provider.ErrBadResponse) || errors.Is(err, provider.ErrNotSupported))
}
