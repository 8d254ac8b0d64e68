// Package poll waits in tests for a condition, with a deadline, instead of
// sleeping. It imports nothing of keyferry, so the tests of any package may
// use it.
package poll

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Timeout bounds Until.
const Timeout = 90 * time.Second

// Until calls cond every 50 ms until it reports true and fails the test
// with cond's last message after Timeout.
func Until(t testing.TB, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, Timeout, true, func(ctx context.Context) (bool, error) {
		ok, msg := cond(ctx)
		last = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s: %s", what, last)
	}
}
