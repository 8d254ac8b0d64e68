package logging

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// newZap is the operator's logger (controller-runtime's zap, JSON) with
// the caller reported, writing to buf.
func newZap(buf *bytes.Buffer) logr.Logger {
	return zap.New(zap.WriteTo(buf), zap.Level(uzap.NewAtomicLevelAt(zapcore.InfoLevel)),
		zap.RawZapOpts(uzap.AddCaller()))
}

// logSome logs through l as a controller would: names, nested values, a
// disabled debug line, an enabled one, an error and a helper's line.
func logSome(l logr.Logger) {
	l = l.WithName("controller").WithValues("controller", "externalsecret")
	r := l.WithValues("namespace", "ns", "name", "es").WithValues("reconcileID", "42")
	r.V(1).Info("refresh decision", "sync", true) // disabled at info
	r.Info("synced", "keys", 3)
	r.WithName("engine").Error(errors.New("boom"), "sync failed", "reason", "ProviderError")
	helper(r.WithCallDepth(1))
	l.Info("no values of the reconcile")
}

func helper(l logr.Logger) { l.Info("from a helper") }

// The deferred logger writes the same lines as the logger it wraps: same
// names, values in the same order, same levels, same caller.
func TestDeferredLogsTheSameLines(t *testing.T) {
	var plain, deferred bytes.Buffer
	for _, l := range []logr.Logger{newZap(&plain), Deferred(newZap(&deferred))} {
		logSome(l) // one call site: the stack traces are the same
	}
	if plain.Len() == 0 {
		t.Fatal("the plain logger wrote nothing")
	}
	ts := regexp.MustCompile(`"ts":[^,]+,`)
	if got, want := ts.ReplaceAllString(deferred.String(), ""), ts.ReplaceAllString(plain.String(), ""); got != want {
		t.Errorf("deferred logger wrote\n%s\nthe plain one\n%s", got, want)
	}
	if !strings.Contains(plain.String(), `"caller":"logging/deferred_test.go:`) {
		t.Errorf("no caller of this file in %s", plain.String())
	}
}

// countingSink counts WithValues calls reaching it.
type countingSink struct {
	logr.LogSink
	withValues *int
}

func (s countingSink) WithValues(kv ...any) logr.LogSink {
	*s.withValues++
	return countingSink{s.LogSink.WithValues(kv...), s.withValues}
}

// Values given to a logger that logs nothing never reach the sink it wraps.
func TestDeferredAppliesValuesOnlyWhenALineIsLogged(t *testing.T) {
	var buf bytes.Buffer
	n := 0
	l := Deferred(logr.New(countingSink{newZap(&buf).GetSink(), &n}))
	for i := 0; i < 100; i++ {
		r := l.WithValues("reconcileID", i)
		r.V(1).Info("disabled")
	}
	if n != 0 {
		t.Errorf("%d WithValues calls reached the sink for reconciles that logged nothing", n)
	}
	l.WithValues("reconcileID", "last").Info("logged")
	if n != 1 {
		t.Errorf("%d WithValues calls for one logged line, want 1", n)
	}
	if !strings.Contains(buf.String(), `"reconcileID":"last"`) {
		t.Errorf("the logged line lost its value: %s", buf.String())
	}
}

func TestDeferredOfTheDiscardLogger(t *testing.T) {
	l := Deferred(logr.Discard())
	l.WithValues("k", "v").Info("nothing") // must not panic
}
