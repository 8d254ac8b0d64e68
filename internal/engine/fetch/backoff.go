// This file holds rate limiting and backoff: every call to a store is
// admitted through its rate limiter (or refused at once while the store backs
// off), and its outcome recorded, backing a failing store off exponentially
// or for as long as its Retry-After asks.

package fetch

import (
	"context"
	"errors"
	"fmt"
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
func (l *Layer) getOne(ctx context.Context, s *store, r provider.Ref) (provider.Value, error) {
	if err := l.admit(ctx, s); err != nil {
		return provider.Value{}, err
	}
	v, err := s.client.GetSecret(ctx, r)
	l.record(s, err)
	return v, err
}

// findOne runs one find on the store, admitted and recorded.
func (l *Layer) findOne(ctx context.Context, s *store, f provider.Find) (map[string][]byte, error) {
	if err := l.admit(ctx, s); err != nil {
		return nil, err
	}
	found, err := s.client.Find(ctx, f)
	l.record(s, err)
	return found, err
}

// admit waits for the store's rate limiter, or fails fast while it backs off.
func (l *Layer) admit(ctx context.Context, s *store) error {
	s.mu.Lock()
	until, last := s.backoffUntil, s.lastErr
	s.mu.Unlock()
	if l.opts.Now().Before(until) {
		return &BackoffError{Store: s.key.String(), Until: until, Err: last}
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("waiting for store %s rate limit: %w", s.key, err)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return nil
}

// record counts a call and updates the store's backoff state after it.
func (l *Layer) record(s *store, err error) {
	outcome := "ok"
	if err != nil && !isCacheable(err) {
		outcome = "error"
	}
	l.opts.Metrics.ProviderCalls.WithLabelValues(s.provider, outcome).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isStoreFailure(err) {
		s.failures, s.backoffUntil, s.lastErr = 0, time.Time{}, nil
		return
	}
	s.failures++
	d := l.opts.BaseBackoff << min(s.failures-1, 20)
	if d > l.opts.MaxBackoff || d <= 0 {
		d = l.opts.MaxBackoff
	}
	var te *provider.ThrottledError
	if errors.As(err, &te) && te.RetryAfter > d {
		d = te.RetryAfter
	}
	s.backoffUntil = l.opts.Now().Add(d)
	s.lastErr = err
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
