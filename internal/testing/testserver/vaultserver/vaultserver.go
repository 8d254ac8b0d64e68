// Package vaultserver runs a real HashiCorp Vault server in dev mode for
// tests: in memory, unsealed, with a KV v2 engine at secret/ and a known root
// token. The binary is the one `make vault` builds (hack/vault.sh), found
// through $KEYFERRY_VAULT_BIN or bin/vault/<Version>/vault under the
// repository root.
//
// It is meant for tests only: Start fails the test (it never skips) when the
// binary is missing, and every helper fails the test on error.
package vaultserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/testing/testlog"
)

// Version is the Vault version `make vault` builds.
const Version = "v1.21.0"

// EnvBinary overrides where the vault binary is found.
const EnvBinary = "KEYFERRY_VAULT_BIN"

// Server is a running Vault dev server.
type Server struct {
	// Addr is the server's address, such as http://127.0.0.1:8200.
	Addr string
	// RootToken is a root token.
	RootToken string
	// CACert is the PEM CA certificate of a TLS server; nil for plain HTTP.
	CACert []byte

	cmd    *exec.Cmd
	done   chan struct{}
	output *testlog.Buffer
}

// Options configure a server.
type Options struct {
	// TLS serves HTTPS with a certificate Vault generates (-dev-tls); the
	// listener accepts, but does not require, client certificates.
	TLS bool
	// RootToken is the root token's ID; empty means a random one.
	RootToken string
}

// Binary finds the vault binary: $KEYFERRY_VAULT_BIN, or
// bin/vault/<Version>/vault under the repository root.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	root, err := devcluster.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "vault", Version, "vault"), nil
}

// Start starts a plain-HTTP dev server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions starts a dev server and stops it when the test ends.
func StartWithOptions(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("finding the vault binary: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vault binary not found at %s: run `make vault` (or set %s): %v", bin, EnvBinary, err)
	}
	// A port picked by the kernel can be taken before Vault binds it; try a
	// few times.
	var lastErr error
	for range 3 {
		s, err := start(t, bin, opts)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting vault dev server: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	home := t.TempDir()
	root := opts.RootToken
	if root == "" {
		root = "root-" + randomHex(8)
	}
	s := &Server{
		RootToken: root,
		done:      make(chan struct{}),
		output:    &testlog.Buffer{},
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"server", "-dev",
		"-dev-listen-address=" + listen,
		"-dev-root-token-id=" + s.RootToken,
		"-dev-no-store-token",
	}
	scheme := "http"
	certDir := filepath.Join(home, "tls")
	if opts.TLS {
		scheme = "https"
		if err := os.Mkdir(certDir, 0o700); err != nil {
			return nil, err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
	}
	s.Addr = scheme + "://" + listen
	cmd := exec.Command(bin, args...)
	// A clean environment: no VAULT_* variables from the caller, and a HOME
	// of our own so nothing is written to the user's token helper.
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = s.output, s.output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() { _ = cmd.Wait(); close(s.done) }()

	if err := s.waitReady(opts.TLS, certDir); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w; server output:\n%s", err, strings.TrimSpace(s.output.String()))
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("vault dev server output (last lines):\n%s", lastLines(strings.TrimSpace(s.output.String()), 30))
		}
	})
	return s, nil
}

// waitReady polls /v1/sys/health until the server is unsealed and active.
func (s *Server) waitReady(tls bool, certDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var (
		lastErr error
		hc      *http.Client
	)
	for {
		select {
		case <-s.done:
			return errors.New("vault exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("vault not ready after 60s: %v", lastErr)
		case <-tick.C:
		}
		if tls && s.CACert == nil {
			ca, err := os.ReadFile(filepath.Join(certDir, "vault-ca.pem"))
			if err != nil {
				lastErr = err
				continue
			}
			s.CACert = ca
		}
		if hc == nil {
			c, err := s.newClient()
			if err != nil {
				return err
			}
			hc = c.CloneConfig().HttpClient
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Addr+"/v1/sys/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		lastErr = fmt.Errorf("sys/health answered %d", resp.StatusCode)
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// newClient returns an API client for the server without a token.
func (s *Server) newClient() (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	if s.CACert != nil {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: s.CACert}); err != nil {
			return nil, err
		}
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	c.ClearNamespace()
	return c, nil
}

// Client returns an API client authenticated with the root token.
func (s *Server) Client(t testing.TB) *vaultapi.Client {
	t.Helper()
	c, err := s.newClient()
	if err != nil {
		t.Fatalf("vault client: %v", err)
	}
	c.SetToken(s.RootToken)
	return c
}

// Write writes data to path with the root token and returns the response.
func (s *Server) Write(t testing.TB, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	sec, err := s.Client(t).Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return sec
}

// Read reads path with the root token.
func (s *Server) Read(t testing.TB, path string) *vaultapi.Secret {
	t.Helper()
	sec, err := s.Client(t).Logical().ReadWithContext(context.Background(), path)
	if err != nil {
		t.Fatalf("vault read %s: %v", path, err)
	}
	return sec
}

// Delete deletes path with the root token.
func (s *Server) Delete(t testing.TB, path string) {
	t.Helper()
	if _, err := s.Client(t).Logical().DeleteWithContext(context.Background(), path); err != nil {
		t.Fatalf("vault delete %s: %v", path, err)
	}
}

// EnableKV mounts a KV secrets engine of the given version (1 or 2) at mount.
func (s *Server) EnableKV(t testing.TB, mount string, version int) {
	t.Helper()
	err := s.Client(t).Sys().MountWithContext(context.Background(), mount, &vaultapi.MountInput{
		Type:    "kv",
		Options: map[string]string{"version": strconv.Itoa(version)},
	})
	if err != nil {
		t.Fatalf("mounting kv v%d at %s: %v", version, mount, err)
	}
}

// PutKV writes data at path in a KV engine mounted at mount: a new version
// on KV v2 (returned), a replacement on KV v1 (0 returned).
func (s *Server) PutKV(t testing.TB, mount string, version int, path string, data map[string]any) int {
	t.Helper()
	if version == 1 {
		s.Write(t, mount+"/"+path, data)
		return 0
	}
	sec := s.Write(t, mount+"/data/"+path, map[string]any{"data": data})
	if sec == nil || sec.Data == nil {
		t.Fatalf("kv v2 put %s/%s returned no metadata", mount, path)
	}
	v, err := strconv.Atoi(fmt.Sprint(sec.Data["version"]))
	if err != nil {
		t.Fatalf("kv v2 put %s/%s: version %v: %v", mount, path, sec.Data["version"], err)
	}
	return v
}

// EnableAuth enables an auth method of type method at path.
func (s *Server) EnableAuth(t testing.TB, path, method string) {
	t.Helper()
	err := s.Client(t).Sys().EnableAuthWithOptionsWithContext(context.Background(), path, &vaultapi.EnableAuthOptions{Type: method})
	if err != nil {
		t.Fatalf("enabling auth %s at %s: %v", method, path, err)
	}
}

// PutPolicy writes an ACL policy.
func (s *Server) PutPolicy(t testing.TB, name, hcl string) {
	t.Helper()
	if err := s.Client(t).Sys().PutPolicyWithContext(context.Background(), name, hcl); err != nil {
		t.Fatalf("writing policy %s: %v", name, err)
	}
}

// Token creates a token with the given policies (and the default policy).
func (s *Server) Token(t testing.TB, policies ...string) string {
	t.Helper()
	sec, err := s.Client(t).Auth().Token().CreateWithContext(context.Background(), &vaultapi.TokenCreateRequest{Policies: policies})
	if err != nil {
		t.Fatalf("creating token: %v", err)
	}
	return sec.Auth.ClientToken
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
