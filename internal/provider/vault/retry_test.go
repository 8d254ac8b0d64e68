package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

// cuttingProxy is a reverse proxy in front of the real Vault that cuts the
// first `cut` reads of a KV entry off mid-response (headers and part of
// the body, then the connection closes), or answers them with `status`
// when it is set.
func cuttingProxy(t *testing.T, vaultAddr string, cut int64, status int) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(vaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/data/") {
			proxy.ServeHTTP(w, r)
			return
		}
		n := reads.Add(1)
		switch {
		case status != 0:
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(status)
		case n <= cut:
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijacking: %v", err)
				return
			}
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"data\":{\"da")
			_ = buf.Flush()
			_ = conn.Close()
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &reads
}

// TestDroppedConnectionIsRetriedOnce: a read cut off mid-response (a
// keep-alive connection closed under it) succeeds with exactly two
// attempts instead of failing the fetch and backing the store off.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	e := newEnv(t)
	value := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": value})
	addr, reads := cuttingProxy(t, e.vault.Addr, 1, 0)
	spec := e.spec(e.rootAuth())
	spec.Server = addr
	v := e.get(e.client(spec), "app")
	if !strings.Contains(string(v.Data), value) {
		t.Fatal("the value read after the retry is not the stored one")
	}
	if n := reads.Load(); n != 2 {
		t.Fatalf("%d reads, want exactly 2", n)
	}
}

// TestThrottlingIsOneRequest: a 429 is one request and a ThrottledError
// for the fetch layer's backoff, with no retry below it.
func TestThrottlingIsOneRequest(t *testing.T) {
	e := newEnv(t)
	addr, reads := cuttingProxy(t, e.vault.Addr, 0, http.StatusTooManyRequests)
	spec := e.spec(e.rootAuth())
	spec.Server = addr
	_, err := e.client(spec).GetSecret(context.Background(), provider.Ref{Key: "app"})
	var te *provider.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a ThrottledError", err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d requests, want exactly 1", n)
	}
}
