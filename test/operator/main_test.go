// Package operator holds integration tests of how keyferry is deployed
// beside or instead of External Secrets Operator: controller classes,
// serving one namespace, switching kinds off, ESO's metric names and the
// authenticated metrics endpoint. One control plane serves the package;
// each test starts its own operator in process with the options it tests.
package operator

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{NoOperator: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test environment:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// running is an operator started by a test.
type running struct {
	op   *operator.Operator
	logs *logBuffer
}

// startOperator starts an operator with the given options tweaks and stops
// it when the test ends. Its logs are kept at debug level.
func startOperator(t *testing.T, tweak func(*operator.Options)) *running {
	t.Helper()
	return startOperatorAs(t, env.Cluster.Config, tweak)
}

// startOperatorAs starts an operator with the identity of cfg.
func startOperatorAs(t *testing.T, cfg *rest.Config, tweak func(*operator.Options)) *running {
	t.Helper()
	logs := &logBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.Level(uzap.NewAtomicLevelAt(zapcore.DebugLevel)))
	opts := operator.Options{Log: logger, StartupSpread: time.Second, SkipControllerNameValidation: true}
	if tweak != nil {
		tweak(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatalf("building operator: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- op.Manager.Start(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			n := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"level":"error"`) && n < 10 {
					t.Logf("operator: %.500s", line)
					n++
				}
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("operator did not stop within 30s")
		}
	})
	return &running{op: op, logs: logs}
}

// waitLogged waits until one log line contains every part.
func (r *running) waitLogged(t *testing.T, what string, parts ...string) {
	t.Helper()
	testenv.Eventually(t, what, func(context.Context) (bool, string) {
		for _, line := range strings.Split(r.logs.String(), "\n") {
			ok := true
			for _, p := range parts {
				if !strings.Contains(line, p) {
					ok = false
					break
				}
			}
			if ok {
				return true, ""
			}
		}
		return false, "no log line with " + strings.Join(parts, ", ")
	})
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeStore is a store manifest with the fake provider, of the given kind
// and controller class ("" sets none).
func fakeStore(kind, name, class string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: external-secrets.io/v1\nkind: %s\nmetadata:\n  name: %s\nspec:\n", kind, name)
	if class != "" {
		fmt.Fprintf(&b, "  controller: %s\n", class)
	}
	b.WriteString("  provider:\n    fake:\n      data:\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "        - key: %q\n          value: %q\n", kv[i], kv[i+1])
	}
	return b.String()
}

// externalSecret is an ExternalSecret manifest reading key into the Secret
// named after it.
func externalSecret(name, storeKind, store, key string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %[1]s
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: %[2]s, name: %[3]s}
  target: {name: %[1]s}
  data:
    - secretKey: value
      remoteRef: {key: %[4]s}
`, name, storeKind, store, key)
}
