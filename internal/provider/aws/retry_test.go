package aws_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/testing/testserver/dropproxy"
)

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
	proxy := dropproxy.StartProxy(t, u.Host, dropproxy.ProxyOptions{CutFirst: 1})
	rec := newRecorder()
	p := motoProvider(rec)
	p.Endpoints.SSM = "http://" + proxy.Addr()
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
	if n := proxy.Conns(); n != 2 {
		t.Fatalf("%d connections, want 2 (the dropped one and a new one)", n)
	}

	t.Run("dropped every time fails after two attempts", func(t *testing.T) {
		proxy := dropproxy.StartProxy(t, u.Host, dropproxy.ProxyOptions{CutFirst: 100})
		rec := newRecorder()
		p := motoProvider(rec)
		p.Endpoints.SSM = "http://" + proxy.Addr()
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
