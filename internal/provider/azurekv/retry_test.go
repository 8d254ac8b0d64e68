package azurekv

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
	"github.com/keyferry/keyferry/internal/testing/testserver/dropproxy"
)

// TestDroppedConnectionIsRetriedOnce: a read whose keep-alive connection
// is cut in the middle of the answer succeeds with exactly two requests to
// the vault, instead of failing the fetch and backing the store off.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	srv := newServer(t)
	vault, err := url.Parse(srv.VaultURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := dropproxy.StartProxy(t, vault.Host, dropproxy.ProxyOptions{})
	c := readerThrough(t, srv, vault.Host, proxy.Addr(), nil)
	srv.SetSecret("warm", "w-"+canary)
	srv.SetSecret("hot", "h-"+canary)
	getValue(t, c, "warm", "") // authenticates and leaves a keep-alive connection

	proxy.CutNext()
	if got := getValue(t, c, "hot", ""); string(got.Data) != "h-"+canary {
		t.Fatal("wrong value after the retry")
	}
	if proxy.Armed() {
		t.Fatal("the proxy cut nothing: the test did not drop a connection")
	}
	if n := srv.VaultRequests("/secrets/hot"); n != 2 {
		t.Fatalf("the vault got %d requests for the value, want exactly 2", n)
	}
}

// TestRefusedConnectionIsNotRetried: a vault that refuses connections costs
// one attempt per fetch; the engine's backoff decides when to try again.
func TestRefusedConnectionIsNotRetried(t *testing.T) {
	srv := newServer(t)
	vault, err := url.Parse(srv.VaultURL())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close() // nothing listens there now
	var dials atomic.Int64
	c := readerThrough(t, srv, vault.Host, closed, &dials)
	if _, err := c.GetSecret(testContext(t), provider.Ref{Key: "any"}); err == nil {
		t.Fatal("got a value from a vault that refuses connections")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connection attempts, want exactly 1", n)
	}
}

// readerThrough is a client of the service principal "reader" (allowed to
// read everything in srv's vault) whose connections to vaultHost go to
// addr instead, each counted in dials when it is not nil.
func readerThrough(t *testing.T, srv *kvserver.Server, vaultHost, addr string, dials *atomic.Int64) provider.Client {
	t.Helper()
	base := srv.HTTPClient().Transport.(*http.Transport).Clone()
	dialer := &net.Dialer{}
	base.DialContext = func(ctx context.Context, network, to string) (net.Conn, error) {
		if to == vaultHost {
			if dials != nil {
				dials.Add(1)
			}
			to = addr
		}
		return dialer.DialContext(ctx, network, to)
	}
	p := providerFor(srv, nil)
	p.opts.Transport = &http.Client{Transport: base}
	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{"client-id": []byte("reader"), "client-secret": []byte("cs-" + canary)})
	srv.AddApp(kvserver.App{ClientID: "reader", ClientSecret: "cs-" + canary, Access: kvserver.ReadAll})
	return mustClient(t, p, options(spStore(srv, ns), ns, nil))
}
