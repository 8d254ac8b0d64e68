package aws_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

// dropProxy is a TCP proxy in front of moto that cuts the first `drop`
// connections in the middle of moto's response: the headers and a few
// bytes of the body reach the client, then the connection closes.
type dropProxy struct {
	addr  string
	conns atomic.Int64
}

func startDropProxy(t *testing.T, target string, drop int64) *dropProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			n := p.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = down.Close() }()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer func() { _ = up.Close() }()
				go func() { _, _ = io.Copy(up, down) }()
				if n > drop {
					_, _ = io.Copy(down, up)
					return
				}
				var buf []byte
				chunk := make([]byte, 4096)
				for {
					k, err := up.Read(chunk)
					buf = append(buf, chunk[:k]...)
					if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 && len(buf) >= i+4+5 {
						_, _ = down.Write(buf[:i+4+5])
						return // both ends close mid-body
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestDroppedConnectionIsRetriedOnce: moto's answer is cut off mid-way on
// the first connection (as a keep-alive connection closed by a load
// balancer); the read succeeds with exactly two attempts instead of
// failing the fetch and backing the store off.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	putParameter(t, "/retry/db/password", valueCanary, ssmtypes.ParameterTypeSecureString, nil)
	u, err := url.Parse(env.moto.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startDropProxy(t, u.Host, 1)
	rec := newRecorder()
	p := motoProvider(rec)
	p.Endpoints.SSM = "http://" + proxy.addr
	c := newClient(t, p, psSpec())
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "/retry/db/password"})
	if err != nil {
		t.Fatalf("GetSecret: %v (want success after one retry)", err)
	}
	if string(v.Data) != valueCanary {
		t.Fatalf("got the wrong value")
	}
	if n := len(rec.calls("GetParameter")); n != 2 {
		t.Fatalf("%d GetParameter attempts, want exactly 2", n)
	}
	if n := proxy.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the dropped one and a new one)", n)
	}

	t.Run("dropped every time fails after two attempts", func(t *testing.T) {
		proxy := startDropProxy(t, u.Host, 100)
		rec := newRecorder()
		p := motoProvider(rec)
		p.Endpoints.SSM = "http://" + proxy.addr
		c := newClient(t, p, psSpec())
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: "/retry/db/password"})
		if err == nil {
			t.Fatal("got a value through a proxy that drops every connection")
		}
		assertNoCanary(t, err)
		if n := len(rec.calls("GetParameter")); n != 2 {
			t.Fatalf("%d GetParameter attempts, want exactly 2", n)
		}
		t.Logf("error as the user sees it: %v", err)
	})
}

// TestThrottlingGoesToTheEngineWithoutSDKRetries: a 429 (and AWS's
// ThrottlingException) is one request and a ThrottledError carrying
// Retry-After, for the fetch layer's backoff.
func TestThrottlingGoesToTheEngineWithoutSDKRetries(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusBadRequest} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
			}))
			t.Cleanup(srv.Close)
			p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{SSM: srv.URL, STS: srv.URL, SecretsManager: srv.URL}}
			c := newClient(t, p, psSpec())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.GetSecret(ctx, provider.Ref{Key: "/retry/throttled"})
			var te *provider.ThrottledError
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want a *provider.ThrottledError", err)
			}
			if n := hits.Load(); n != 1 {
				t.Fatalf("%d requests, want exactly 1", n)
			}
			t.Logf("error as the user sees it: %v (RetryAfter %s)", err, te.RetryAfter)
		})
	}
}
