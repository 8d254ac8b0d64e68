// Package motoserver runs moto (https://github.com/getmoto/moto), a faithful
// local implementation of the AWS APIs, for tests. It starts `moto_server`
// from PATH on a free loopback port, waits until it answers and stops it when
// the test ends.
//
// It is test-only infrastructure: nothing outside _test.go files should
// import it.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Binary is the name of the moto server executable looked up in PATH.
const Binary = "moto_server"

// EnvBinary overrides the path of the moto server executable.
const EnvBinary = "KEYFERRY_MOTO_SERVER"

// readyPath is an endpoint of moto's own API: polling it does not count as an
// AWS action (which matters with INITIAL_NO_AUTH_ACTION_COUNT).
const readyPath = "/moto-api/data.json"

// Options configure a server.
type Options struct {
	// Env is added to the server's environment, for example
	// "INITIAL_NO_AUTH_ACTION_COUNT=3" to enforce IAM authentication and
	// authorisation after the first three AWS requests.
	Env []string
	// StartTimeout bounds how long Start waits for the server to answer;
	// 0 means one minute.
	StartTimeout time.Duration
	// Output receives the server's logs; nil discards them.
	Output io.Writer
}

// Server is a running moto server.
type Server struct {
	endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Start runs a moto server for the test and stops it at cleanup. It fails the
// test (never skips it) when moto_server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions is Start with options.
func StartWithOptions(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run starts a moto server; the caller must Stop it. It is Start for callers
// without a testing.TB (TestMain).
func Run(ctx context.Context, opts Options) (*Server, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A free port can be taken between choosing it and moto binding it;
	// try a few ports before giving up.
	var lastErr error
	for range 3 {
		s, err := start(ctx, bin, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	p, err := exec.LookPath(Binary)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH (install Python moto 5.x with its server extra, or set %s): %w", Binary, EnvBinary, err)
	}
	return p, nil
}

func start(ctx context.Context, bin string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("choosing a port for moto: %w", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), opts.Env...)
	if opts.Output != nil {
		cmd.Stdout, cmd.Stderr = opts.Output, opts.Output
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	s := &Server{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		done:     make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls moto until it answers, it exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+readyPath, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("moto exited before answering on %s: %v", s.endpoint, s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("moto did not answer on %s: %w", s.endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// Endpoint is the server's base URL (http://127.0.0.1:<port>), to use as the
// endpoint of every AWS service.
func (s *Server) Endpoint() string { return s.endpoint }

// Reset drops every resource moto holds (all services, all accounts).
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resetting moto: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Stop kills the server and waits for it to exit. It is safe to call more
// than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}
