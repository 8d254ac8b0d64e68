//go:build linux

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// APIServer stops and starts the Env's kube-apiserver process in place, for
// drills of an API server that goes away and comes back: the same binary,
// arguments, port, certificates and etcd, so clients built before the stop
// (an operator's kubeconfig) work again after it. Get one with
// Env.APIServer; Close it before Env.Stop.
//
// envtest does not restart a server in place (its Stop deletes the
// certificate directory and its Start makes a new CA), so APIServer finds
// the process envtest started (a child of the test process named
// kube-apiserver, through /proc: Linux only), stops it (SIGTERM, then
// SIGKILL), and later starts the same command line itself. envtest's own
// Stop then finds its process gone and only cleans up.
type APIServer struct {
	env  *Env
	path string
	args []string

	mu   sync.Mutex
	pid  int       // the running process, 0 while stopped
	cmd  *exec.Cmd // the process this APIServer started, if any
	done chan struct{}
}

const (
	// apiServerGrace is how long Stop lets the server shut down after
	// SIGTERM before it sends SIGKILL.
	apiServerGrace = 5 * time.Second
	// apiServerStopTimeout bounds how long Stop waits for the process to
	// exit after SIGKILL.
	apiServerStopTimeout = 30 * time.Second
)

// APIServer finds the Env's running kube-apiserver.
func (e *Env) APIServer() (*APIServer, error) {
	pid, err := childNamed("kube-apiserver")
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading kube-apiserver's command line: %w", err)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	path, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return nil, fmt.Errorf("finding kube-apiserver's binary: %w", err)
	}
	return &APIServer{env: e, path: path, args: argv[1:], pid: pid}, nil
}

// childNamed returns the pid of the only child of this process whose
// command name is name.
func childNamed(name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	self := os.Getpid()
	found := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(string(stat[closing+1:]))
		if len(fields) < 2 || string(stat[open+1:closing]) != name || fields[1] != strconv.Itoa(self) {
			continue
		}
		if found != 0 {
			return 0, fmt.Errorf("more than one %s is a child of this process", name)
		}
		found = pid
	}
	if found == 0 {
		return 0, fmt.Errorf("no %s is a child of this process", name)
	}
	return found, nil
}

// Stop sends SIGTERM to the API server, then SIGKILL if it still runs
// after apiServerGrace, and waits until the process is gone.
func (a *APIServer) Stop(ctx context.Context) error {
	a.mu.Lock()
	pid, done := a.pid, a.done
	a.mu.Unlock()
	if pid == 0 {
		return errors.New("the API server is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	if err := a.waitGone(ctx, pid, done, apiServerGrace); err != nil {
		// A server with clients attached can take long to drain them.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing kube-apiserver: %w", err)
		}
		if err := a.waitGone(ctx, pid, done, apiServerStopTimeout); err != nil {
			return fmt.Errorf("kube-apiserver did not stop: %w", err)
		}
	}
	a.mu.Lock()
	a.pid, a.cmd, a.done = 0, nil, nil
	a.mu.Unlock()
	return nil
}

// waitGone waits up to timeout until the process is gone: done closes for
// a process this APIServer started; envtest's own process is reaped by
// envtest, so its pid disappears.
func (a *APIServer) waitGone(ctx context.Context, pid int, done <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if done != nil {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), nil
	})
}

// Start starts the API server again with the command line it had and waits
// until it is ready.
func (a *APIServer) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.pid != 0 {
		a.mu.Unlock()
		return errors.New("the API server is already running")
	}
	cmd := exec.Command(a.path, a.args...)
	// The server dies with the test process if the test never closes it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.pid, a.cmd, a.done = cmd.Process.Pid, cmd, done
	a.mu.Unlock()
	return a.waitReady(ctx, done)
}

// waitReady polls /readyz with the admin configuration until it answers ok.
func (a *APIServer) waitReady(ctx context.Context, exited <-chan struct{}) error {
	cs, err := kubernetes.NewForConfig(a.env.Cluster.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-exited:
			return false, errors.New("kube-apiserver exited")
		default:
		}
		_, last = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w (last: %v)", err, last)
	}
	return nil
}

// Close stops a server this APIServer started. It is a no-op when the
// running server is envtest's own (Env.Stop stops that one).
func (a *APIServer) Close() {
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	if cmd != nil {
		_ = a.Stop(context.Background())
	}
}
