// Package operator holds integration tests of how keyferry is deployed
// beside or instead of External Secrets Operator: controller classes,
// serving one namespace, switching kinds off, ESO's metric names and the
// authenticated metrics endpoint. One control plane serves the package;
// each test starts its own operator in process with the options it tests.
package operator

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// running is an operator started by a test.
type running struct {
	op   *operator.Operator
	logs *testenv.LogBuffer
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
	logs := &testenv.LogBuffer{}
	opts := operator.Options{Log: testenv.DebugLogger(logs), StartupSpread: time.Second, SkipControllerNameValidation: true}
	if tweak != nil {
		tweak(&opts)
	}
	op := testenv.StartOperator(t, cfg, opts)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"level":"error"`) && n < 10 {
				t.Logf("operator: %.500s", line)
				n++
			}
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
