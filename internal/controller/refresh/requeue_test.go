package refresh

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
)

func TestJitter(t *testing.T) {
	for range 100 {
		if d := Jitter(time.Hour); d < time.Hour || d > 66*time.Minute {
			t.Fatalf("Jitter(1h) = %s", d)
		}
	}
	if Jitter(0) != 0 {
		t.Fatal("Jitter(0) is not 0")
	}
	if got := Periodic(time.Minute); got.RequeueAfter < time.Minute || got.Priority == nil {
		t.Fatalf("Periodic: %+v", got)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		transient bool
		// retry says Retry decides; exactly, when set, is the requeue.
		retry   bool
		exactly time.Duration
	}{
		{name: "store unreachable", err: &engine.Error{Reason: engine.ReasonUnreachable, Err: errors.New("dial tcp: connection refused")}, transient: true, retry: true},
		{name: "store throttled for 5m", err: &engine.Error{Reason: engine.ReasonThrottled, RetryAfter: 5 * time.Minute, Err: errors.New("429")}, transient: true, retry: true},
		{name: "store backed off", err: fmt.Errorf("reading: %w", &fetch.BackoffError{Store: "s", Until: time.Now().Add(5 * time.Minute), Err: errors.New("auth")}), transient: true, retry: true},
		{name: "store backed off after refusing credentials", err: &engine.Error{Reason: engine.ReasonUnauthenticated, RetryAfter: 5 * time.Minute,
			Err: &fetch.BackoffError{Store: "s", Until: time.Now().Add(5 * time.Minute), Err: errors.New("401")}}, transient: true, retry: true},
		{name: "template over its budget waits as the engine asks", err: &engine.Error{Reason: engine.ReasonTemplateBudgetExceeded, RetryAfter: time.Minute, Err: errors.New("x")}, retry: true, exactly: time.Minute},
		{name: "a write that would blank waits as the engine asks", err: &engine.Error{Reason: "SecretWouldBeEmpty", RetryAfter: time.Hour, Err: errors.New("x")}, retry: true, exactly: time.Hour},
		{name: "invalid spec", err: &engine.Error{Reason: engine.ReasonInvalidSpec, Err: errors.New("x")}},
		{name: "remote value missing", err: &engine.Error{Reason: engine.ReasonRemoteNotFound, Err: errors.New("x")}},
		{name: "credentials refused", err: &engine.Error{Reason: engine.ReasonUnauthenticated, Err: errors.New("x")}},
		{name: "Secret not owned", err: &engine.Error{Reason: engine.ReasonSecretNotOwned, Err: errors.New("x")}},
		{name: "not an engine error", err: errors.New("reading Secret: timeout")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.transient {
				t.Errorf("Transient = %v; want %v", got, tt.transient)
			}
			res, ok := Retry(tt.err, time.Hour, 0)
			switch {
			case ok != tt.retry:
				t.Fatalf("Retry decides = %v; want %v", ok, tt.retry)
			case tt.exactly > 0 && res.RequeueAfter != tt.exactly:
				t.Errorf("Retry requeues after %s; want %s", res.RequeueAfter, tt.exactly)
			case tt.transient && (res.RequeueAfter < minRetry || res.RequeueAfter > DefaultProbeInterval):
				t.Errorf("Retry requeues after %s; want at most the probe interval %s", res.RequeueAfter, DefaultProbeInterval)
			}
		})
	}
}

// TestRetryDelayNeverExceedsTheProbeInterval: a transient failure is
// retried within the probe interval and the refresh interval, whatever the
// store's backoff asks.
func TestRetryDelayNeverExceedsTheProbeInterval(t *testing.T) {
	tests := []struct {
		name                        string
		interval, probe, retryAfter time.Duration
		min, max                    time.Duration
	}{
		{name: "default probe interval", interval: time.Hour, min: 27 * time.Second, max: 30 * time.Second},
		{name: "store backed off for 5m", interval: time.Hour, retryAfter: 5 * time.Minute, min: 27 * time.Second, max: 30 * time.Second},
		{name: "shorter refresh interval", interval: 10 * time.Second, retryAfter: 5 * time.Minute, min: 9 * time.Second, max: 10 * time.Second},
		{name: "no periodic refresh", interval: 0, min: 27 * time.Second, max: 30 * time.Second},
		{name: "configured probe interval", interval: time.Hour, probe: 2 * time.Second, retryAfter: time.Minute, min: 1800 * time.Millisecond, max: 2 * time.Second},
		{name: "store asks for less", interval: time.Hour, retryAfter: 5 * time.Second, min: 5 * time.Second, max: 5500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				if d := RetryDelay(tt.interval, tt.probe, tt.retryAfter); d < tt.min || d > tt.max {
					t.Fatalf("RetryDelay = %s; want within [%s, %s]", d, tt.min, tt.max)
				}
			}
		})
	}
}
