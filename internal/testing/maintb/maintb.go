// Package maintb gives TestMain a testing.TB, so that a test package can
// start its servers once with the helpers tests use (testserver's Start
// functions take a testing.TB) and share them between its tests.
//
// Only the methods those helpers call are implemented: Fatalf ends the
// helper with a panic that Do turns into an error, Cleanup and TempDir are
// undone by RunCleanups, Logf writes to standard error. Any other method of
// testing.TB panics (the embedded interface is nil), which shows at once
// that a helper needs more than TestMain can give.
package maintb

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// TB is TestMain's testing.TB. The zero value is ready to use.
type TB struct {
	testing.TB
	cleanups []func()
}

// Failure is the panic value of Fatalf.
type Failure string

// Helper does nothing.
func (tb *TB) Helper() {}

// Name is "TestMain".
func (tb *TB) Name() string { return "TestMain" }

// Failed is false: a failure ends the helper at once (Fatalf).
func (tb *TB) Failed() bool { return false }

// Cleanup registers f with RunCleanups.
func (tb *TB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }

// Logf writes a line to standard error.
func (tb *TB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Fatalf ends the helper: it panics with a Failure, which Do recovers.
func (tb *TB) Fatalf(format string, args ...any) {
	panic(Failure(fmt.Sprintf(format, args...)))
}

// TempDir makes a directory removed by RunCleanups.
func (tb *TB) TempDir() string {
	dir, err := os.MkdirTemp("", "keyferry-testmain-")
	if err != nil {
		tb.Fatalf("creating a temporary directory: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Do runs f and returns the message of a Fatalf inside it as an error.
// Any other panic goes on.
func (tb *TB) Do(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, ok := r.(Failure)
			if !ok {
				panic(r)
			}
			err = errors.New(string(msg))
		}
	}()
	f()
	return nil
}

// RunCleanups runs what Cleanup registered, last first.
func (tb *TB) RunCleanups() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	tb.cleanups = nil
}
