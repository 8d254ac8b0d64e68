//go:build linux

package drills

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fault answers a request instead of the backend, or returns false to let
// the backend answer normally. key is the remote key of the request.
type fault func(w http.ResponseWriter, r *http.Request, key string) bool

// backend is the HTTP secret service the drills' stores call through the
// webhook provider: GET /<path>/<key> answers {"value": "..."}. It counts
// every request, remembers every value each key ever had (in order, so a
// drill can tell old from new), and can be switched to a fault, taken down
// (connections refused) and brought back on the same address.
type backend struct {
	addr  string
	calls atomic.Int64

	mu      sync.Mutex
	history map[string][]string // every value of a key, oldest first
	fault   fault
	latency time.Duration
	srv     *http.Server
	// release unblocks requests held by hang.
	release chan struct{}
	// firstOK is when the backend first answered a value since
	// resetFirstOK.
	firstOK time.Time
}

// newBackend starts a backend on a loopback port; keys get value
// "<key>-v1". It stops when the test ends.
func newBackend(t *testing.T, keys ...string) *backend {
	t.Helper()
	b := &backend{history: map[string][]string{}, release: make(chan struct{})}
	for _, k := range keys {
		b.history[k] = []string{k + "-v1"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.serve(l)
	t.Cleanup(func() {
		b.mu.Lock()
		srv := b.srv
		b.srv = nil
		b.mu.Unlock()
		b.unhang()
		if srv != nil {
			_ = srv.Close()
		}
	})
	return b
}

func (b *backend) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(b.handle), ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (b *backend) handle(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	b.mu.Lock()
	f, latency := b.fault, b.latency
	h := b.history[key]
	b.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if f != nil && f(w, r, key) {
		return
	}
	if len(h) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"value": h[len(h)-1]})
	b.mu.Lock()
	if b.firstOK.IsZero() {
		b.firstOK = time.Now()
	}
	b.mu.Unlock()
}

// resetFirstOK forgets when the backend first answered a value.
func (b *backend) resetFirstOK() {
	b.mu.Lock()
	b.firstOK = time.Time{}
	b.mu.Unlock()
}

// firstOKAt is when the backend first answered a value since resetFirstOK
// (zero: not yet).
func (b *backend) firstOKAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.firstOK
}

// url is the store URL template for the backend under path.
func (b *backend) url(path string) string {
	return "http://" + b.addr + "/" + path + "/{{ .remoteRef.key }}"
}

// value returns the current value of key.
func (b *backend) value(key string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.history[key]
	if len(h) == 0 {
		return ""
	}
	return h[len(h)-1]
}

// generation returns the index of v in key's history, or -1 when key never
// had the value v.
func (b *backend) generation(key, v string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, old := range b.history[key] {
		if old == v {
			return i
		}
	}
	return -1
}

// rotate gives every key listed a new value "<key>-v<n>".
func (b *backend) rotate(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		b.history[k] = append(b.history[k], k+"-v"+strconv.Itoa(len(b.history[k])+1))
	}
}

// setFault makes f answer requests (nil: answer normally). Requests that
// hang holds are released.
func (b *backend) setFault(f fault) {
	b.unhang()
	b.mu.Lock()
	b.fault = f
	b.release = make(chan struct{})
	b.mu.Unlock()
}

// setLatency delays every answer by d.
func (b *backend) setLatency(d time.Duration) {
	b.mu.Lock()
	b.latency = d
	b.mu.Unlock()
}

// down closes the listener and every connection: calls are refused until
// up.
func (b *backend) down(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("stopping the backend: %v", err)
	}
}

// up listens again on the same address.
func (b *backend) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("restarting the backend on %s: %v", b.addr, err)
	}
	b.serve(l)
}

// hang is a fault that holds every request until the caller gives up (or
// unhang).
func (b *backend) hang(w http.ResponseWriter, r *http.Request, key string) bool {
	b.mu.Lock()
	release := b.release
	b.mu.Unlock()
	select {
	case <-r.Context().Done():
	case <-release:
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	return true
}

// unhang releases the requests hang holds.
func (b *backend) unhang() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.release:
	default:
		close(b.release)
	}
}

// unavailable is a fault that answers 503 without Retry-After.
func unavailable(w http.ResponseWriter, _ *http.Request, _ string) bool {
	http.Error(w, "maintenance", http.StatusServiceUnavailable)
	return true
}
