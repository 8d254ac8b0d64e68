// Package gcpsmemulator runs the GCP Secret Manager emulator
// (github.com/blackwell-systems/gcp-secret-manager-emulator, built by the
// Makefile into bin/gcp-sm-emulator) for tests, and seeds it with secrets.
//
// The emulator serves the Secret Manager gRPC API in plaintext without
// authentication. It keeps secrets in memory, ignores list filters and does
// not implement ListSecretVersions, DisableSecretVersion or
// DestroySecretVersion. It ignores credentials: tests of clients that send
// them put a Front (TLS, like Google's endpoints) before it, which records
// the authorization header of each request.
//
// This package is for tests only.
package gcpsmemulator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyferry/keyferry/internal/devcluster"
)

// EnvBinary overrides where the emulator binary is found.
const EnvBinary = "KEYFERRY_GCPSM_EMULATOR_BIN"

// startTimeout bounds how long Start waits for the emulator to listen.
const startTimeout = 30 * time.Second

// Server is a running emulator.
type Server struct {
	// Addr is the host:port of the plaintext gRPC endpoint.
	Addr string
	// Client is connected to Addr, for seeding data.
	Client *secretmanager.Client
}

// Binary returns the emulator's path: $KEYFERRY_GCPSM_EMULATOR_BIN, or
// bin/gcp-sm-emulator in the repository.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	root, err := devcluster.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "gcp-sm-emulator"), nil
}

// Start starts an emulator on a free port and stops it when the test ends.
// It fails the test when the binary is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("locating the GCP Secret Manager emulator: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("GCP Secret Manager emulator not found at %s: run `make test-servers` (it builds bin/gcp-sm-emulator), or set %s to its path: %v", bin, EnvBinary, err)
	}
	// The port is chosen before the emulator binds it, so another process
	// may take it first; the emulator then exits and a new port is tried.
	var lastErr error
	for range 5 {
		addr, err := start(t, bin)
		if err == nil {
			s := &Server{Addr: addr}
			s.Client = s.NewClient(t)
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting the GCP Secret Manager emulator: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logs := &logWriter{ready: make(chan struct{})}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-logs.ready:
	case <-exited:
		return "", fmt.Errorf("emulator exited before listening on port %d:\n%s", port, logs.String())
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return "", fmt.Errorf("emulator did not listen on port %d within %s:\n%s", port, startTimeout, logs.String())
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// logWriter keeps the emulator's log and closes ready once it says it
// accepts connections.
type logWriter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	ready     chan struct{}
	signalled bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.signalled && bytes.Contains(w.buf.Bytes(), []byte("Ready to accept connections")) {
		w.signalled = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ClientOptions connect a Secret Manager client to the emulator: its
// endpoint, in plaintext, without credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// NewClient returns a client of the emulator, closed when the test ends.
func (s *Server) NewClient(t testing.TB) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(), s.ClientOptions()...)
	if err != nil {
		t.Fatalf("connecting to the GCP Secret Manager emulator: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CreateSecret creates the secret parent/secrets/id with labels, where
// parent is projects/P or projects/P/locations/L. It returns its name.
func (s *Server) CreateSecret(t testing.TB, parent, id string, labels map[string]string) string {
	t.Helper()
	sec, err := s.Client.CreateSecret(context.Background(), &secretmanagerpb.CreateSecretRequest{
		Parent:   parent,
		SecretId: id,
		Secret:   &secretmanagerpb.Secret{Labels: labels},
	})
	if err != nil {
		t.Fatalf("creating secret %s/secrets/%s: %v", parent, id, err)
	}
	return sec.GetName()
}

// AddVersion adds a version holding data to the secret name and returns its
// version ID ("1", "2", ...).
func (s *Server) AddVersion(t testing.TB, name string, data []byte) string {
	t.Helper()
	v, err := s.Client.AddSecretVersion(context.Background(), &secretmanagerpb.AddSecretVersionRequest{
		Parent:  name,
		Payload: &secretmanagerpb.SecretPayload{Data: data},
	})
	if err != nil {
		t.Fatalf("adding a version to %s: %v", name, err)
	}
	return v.GetName()[strings.LastIndex(v.GetName(), "/")+1:]
}

// Front is a TLS front of the emulator that records the authorization
// headers of the requests it forwards, so tests can check what credentials
// a client sends (the emulator itself ignores them).
type Front struct {
	// Addr is the host:port of the TLS endpoint.
	Addr string
	// Roots trusts the front's certificate (issued for 127.0.0.1).
	Roots *x509.CertPool

	mu             sync.Mutex
	authorizations []string
}

// TLS starts a Front for the emulator and stops it when the test ends.
func (s *Server) TLS(t testing.TB) *Front {
	t.Helper()
	cert, roots, err := selfSigned()
	if err != nil {
		t.Fatalf("creating a certificate for the emulator's TLS front: %v", err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("listening for the emulator's TLS front: %v", err)
	}
	f := &Front{Addr: l.Addr().String(), Roots: roots}
	var wg sync.WaitGroup
	done := make(chan struct{})
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.forward(c, s.Addr, done)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-accepting
		close(done)
		wg.Wait()
	})
	return f
}

// ClientOptions connect a client to the front; the caller adds the
// credentials.
func (f *Front) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(f.Addr),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: f.Roots, MinVersion: tls.VersionTLS12}))),
	}
}

// Authorizations returns the authorization header of every request
// forwarded so far, in order ("" for a request without one).
func (f *Front) Authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authorizations...)
}

// forward copies between c and the emulator until either side closes or
// done is closed, reading the requests' headers on the way.
func (f *Front) forward(c net.Conn, backend string, done <-chan struct{}) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	copied := make(chan struct{}, 2)
	go func() { _ = f.relayRequests(c, b); copied <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); copied <- struct{}{} }()
	select {
	case <-copied:
	case <-done:
	}
}

// relayRequests copies the client's side of an HTTP/2 connection from c to
// b one frame at a time. It records the authorization header of a request
// before passing its header block on, so every request the backend can
// answer is already on record.
func (f *Front) relayRequests(c io.Reader, b io.Writer) error {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return err
	}
	if _, err := b.Write(preface); err != nil {
		return err
	}
	var feed bytes.Buffer
	fr := http2.NewFramer(nil, &feed)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	parsing := true
	var pending []byte
	header := make([]byte, 9)
	for {
		if _, err := io.ReadFull(c, header); err != nil {
			return err
		}
		length := int(header[0])<<16 | int(header[1])<<8 | int(header[2])
		frame := make([]byte, 9+length)
		copy(frame, header)
		if _, err := io.ReadFull(c, frame[9:]); err != nil {
			return err
		}
		pending = append(pending, frame...)
		typ, flags := http2.FrameType(header[3]), http2.Flags(header[4])
		if (typ == http2.FrameHeaders || typ == http2.FrameContinuation) && !flags.Has(http2.FlagHeadersEndHeaders) {
			continue // the header block goes on in CONTINUATION frames
		}
		if parsing {
			feed.Write(pending)
			parsing = f.record(fr, &feed)
		}
		if _, err := b.Write(pending); err != nil {
			return err
		}
		pending = pending[:0]
	}
}

// record parses the frames in feed and keeps the authorization header of
// each request. It reports whether fr can go on parsing.
func (f *Front) record(fr *http2.Framer, feed *bytes.Buffer) bool {
	for feed.Len() > 0 {
		frame, err := fr.ReadFrame()
		if err != nil {
			return false
		}
		h, ok := frame.(*http2.MetaHeadersFrame)
		if !ok {
			continue
		}
		auth := ""
		for _, hf := range h.Fields {
			if hf.Name == "authorization" {
				auth = hf.Value
			}
		}
		f.mu.Lock()
		f.authorizations = append(f.authorizations, auth)
		f.mu.Unlock()
	}
	return true
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gcp-sm-emulator"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
