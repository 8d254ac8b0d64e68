package testenv

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testflags"
	"github.com/keyferry/keyferry/internal/testing/testlog"
)

// Main is a TestMain for a package that shares one Env: it starts the Env
// with opts into *env, runs the tests, stops the Env and returns the exit
// code, so that TestMain reads os.Exit(testenv.Main(m, opts, &env)).
func Main(m *testing.M, opts Options, env **Env) int {
	flag.Parse()
	if testflags.OnlyFuzzing() {
		return m.Run()
	}
	e, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment (it needs the local control plane: make control-plane):", err)
		return 1
	}
	*env = e
	defer e.Stop()
	return m.Run()
}

// DebugLogger is a JSON logger at debug level that writes to w: what an
// operator under test logs, so that tests can assert no secret value ever
// appears at any level.
func DebugLogger(w io.Writer) logr.Logger { return testlog.Debug(w) }

// StartOperator builds an operator with opts that acts as the identity cfg
// holds and runs it until the test ends (see RunManager).
func StartOperator(t testing.TB, cfg *rest.Config, opts operator.Options) *operator.Operator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatalf("building the operator: %v", err)
	}
	RunManager(ctx, t, cancel, op.Manager)
	return op
}

// managerStopTimeout bounds how long a test waits for its manager to stop.
const managerStopTimeout = 30 * time.Second

// RunManager starts mgr with ctx. When the test ends it calls cancel and
// waits for mgr to stop, failing the test when mgr returns an error or does
// not stop within 30 seconds. Cleanups a test registers before calling it
// run after the manager stopped; those it registers after, before.
func RunManager(ctx context.Context, t testing.TB, cancel context.CancelFunc, mgr manager.Manager) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the operator's manager stopped with: %v", err)
			}
		case <-time.After(managerStopTimeout):
			t.Errorf("the operator's manager did not stop within %s", managerStopTimeout)
		}
	})
}
