//go:build linux

package drills

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// operatorProc is `keyferry controller` running as a child process.
type operatorProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	state   *os.ProcessState
}

// startOperator runs `keyferry controller` serving ns with an admin
// kubeconfig, logging at debug level to a file; extra flags are appended.
// The process is killed when the test ends if it still runs.
func startOperator(t *testing.T, name, ns string, extra ...string) *operatorProc {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.Cluster.WriteKubeConfig(kc); err != nil {
		t.Fatal(err)
	}
	return startOperatorWith(t, name, ns, kc, extra...)
}

// startOperatorWith is startOperator with the given kubeconfig.
func startOperatorWith(t *testing.T, name, ns, kc string, extra ...string) *operatorProc {
	t.Helper()
	dir := t.TempDir()
	p := &operatorProc{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"controller",
		"--namespace=" + ns,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--log-level=debug",
	}, extra...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+kc)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// The operator dies with the test process if a test never stops it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.kill(t)
		}
		if t.Failed() {
			p.logTail(t, 15)
		}
	})
	return p
}

// running says whether the process has not exited.
func (p *operatorProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *operatorProc) kill(t *testing.T) {
	t.Helper()
	if !p.running() {
		t.Fatalf("%s exited before the drill killed it: %v", p.name, p.state)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not die after SIGKILL", p.name)
	}
}

// logs returns what the process wrote so far.
func (p *operatorProc) logs() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logTail logs the last n error-level or panic lines of the process.
func (p *operatorProc) logTail(t *testing.T, n int) {
	var picked []string
	for _, line := range strings.Split(p.logs(), "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, "panic") {
			picked = append(picked, line)
		}
	}
	if len(picked) > n {
		picked = picked[len(picked)-n:]
	}
	for _, line := range picked {
		t.Logf("%s: %.400s", p.name, line)
	}
}

// assertAlive fails when the process exited (a crash).
func (p *operatorProc) assertAlive(t *testing.T) {
	t.Helper()
	if !p.running() {
		p.logTail(t, 15)
		t.Fatalf("%s exited: %v", p.name, p.state)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
