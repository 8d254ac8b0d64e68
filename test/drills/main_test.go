//go:build linux

// Package drills injects faults into keyferry while it runs as a real
// process (`keyferry controller`, built once per run) against the real
// kube-apiserver and etcd, with an HTTP secret service it reads through the
// webhook provider and that the drills control: SIGKILL mid-sync, malformed
// answers, a backend outage, an API server restart, failover between two
// replicas. Each drill asserts the invariants whose violation is a failure
// (no Secret ever observed wrong, empty or deleted; every Secret right at
// the end; bounded backend calls) and logs its figures, which
// docs/reliability.md reports.
//
// The drills run one after the other; each has its own namespace, backend
// and operator processes (serving that namespace only). They need Linux:
// the API server is found through /proc, and the processes they start die
// with the test (Pdeathsig). docs/reliability.md#fault-drills lists them.
package drills

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var (
	env *testenv.Env
	// apiServer stops and starts env's kube-apiserver in place; the server
	// it restarts runs until the package's tests end.
	apiServer *testenv.APIServer
	// binary is `keyferry` built from this tree for this run.
	binary string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keyferry-drills-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = buildKeyferry(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env, err = testenv.Start(testenv.Options{NoOperator: true}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane (make control-plane builds it):", err)
		return 1
	}
	defer env.Stop()
	if apiServer, err = env.APIServer(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer apiServer.Close()
	return m.Run()
}

// buildKeyferry builds ./cmd/keyferry into dir.
func buildKeyferry(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "keyferry")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/keyferry")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building keyferry: %w\n%s", err, b)
	}
	return out, nil
}

// repoRoot is the directory holding go.mod above this package.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Abs(filepath.Join(wd, "..", ".."))
}
