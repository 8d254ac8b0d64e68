package azurekv

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testserver/azurekv"
)

// cuttingProxy is a TCP proxy in front of the in-repo Key Vault (TLS passes
// through it untouched). Once armed, it cuts the next response it relays
// in the middle, closing the connection: a keep-alive connection dropped
// under a request.
type cuttingProxy struct {
	addr  string
	armed atomic.Bool
}

func startCuttingProxy(t *testing.T, target string) *cuttingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{addr: l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = down.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, down, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, down); _ = up.Close() }()
			go func() {
				defer wg.Done()
				defer func() { _ = down.Close(); _ = up.Close() }()
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 && p.armed.CompareAndSwap(true, false) {
						_, _ = down.Write(buf[:n/2])
						return
					}
					if n > 0 {
						if _, werr := down.Write(buf[:n]); werr != nil {
							return
						}
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

// TestDroppedConnectionIsRetriedOnce: a read whose keep-alive connection
// is cut in the middle of the answer succeeds with exactly two requests to
// the vault, instead of failing the fetch and backing the store off.
func TestDroppedConnectionIsRetriedOnce(t *testing.T) {
	srv := newServer(t)
	vault, err := url.Parse(srv.VaultURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCuttingProxy(t, vault.Host)
	base := srv.HTTPClient().Transport.(*http.Transport).Clone()
	dialer := &net.Dialer{}
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == vault.Host {
			addr = proxy.addr
		}
		return dialer.DialContext(ctx, network, addr)
	}
	p := providerFor(srv, nil)
	p.opts.Transport = &http.Client{Transport: base}

	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{"client-id": []byte("reader"), "client-secret": []byte("cs-" + canary)})
	srv.AddApp(kvserver.App{ClientID: "reader", ClientSecret: "cs-" + canary, Access: kvserver.ReadAll})
	c := mustClient(t, p, options(spStore(srv, ns), ns, nil))
	srv.SetSecret("warm", "w-"+canary)
	srv.SetSecret("hot", "h-"+canary)
	getValue(t, c, "warm", "") // authenticates and leaves a keep-alive connection

	proxy.armed.Store(true)
	if got := getValue(t, c, "hot", ""); string(got.Data) != "h-"+canary {
		t.Fatal("wrong value after the retry")
	}
	if proxy.armed.Load() {
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
	base := srv.HTTPClient().Transport.(*http.Transport).Clone()
	dialer := &net.Dialer{}
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == vault.Host {
			dials.Add(1)
			addr = closed
		}
		return dialer.DialContext(ctx, network, addr)
	}
	p := providerFor(srv, nil)
	p.opts.Transport = &http.Client{Transport: base}
	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{"client-id": []byte("reader"), "client-secret": []byte("cs-" + canary)})
	srv.AddApp(kvserver.App{ClientID: "reader", ClientSecret: "cs-" + canary, Access: kvserver.ReadAll})
	c := mustClient(t, p, options(spStore(srv, ns), ns, nil))
	if _, err := c.GetSecret(testContext(t), provider.Ref{Key: "any"}); err == nil {
		t.Fatal("got a value from a vault that refuses connections")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connection attempts, want exactly 1", n)
	}
}
