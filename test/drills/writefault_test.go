//go:build linux

package drills

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

const (
	// writeFaultWindow is how long the API server refuses writes.
	writeFaultWindow = 10 * time.Second
	// writeFaultRefresh is the ExternalSecrets' refreshInterval.
	writeFaultRefresh = 5 * time.Second
	// writeFaultRecoveryCap bounds the time from the end of the refusals
	// until every Secret holds the rotated values and every ExternalSecret
	// recorded the sync in its status.
	writeFaultRecoveryCap = 60 * time.Second
)

// apiProxy is a TLS reverse proxy in front of the API server that forwards
// with admin credentials and, while refusing, answers writes of Secrets and
// of ExternalSecret status with 429 (Retry-After: 1) and 500 in turn.
type apiProxy struct {
	srv      *httptest.Server
	refusing atomic.Bool
	refused  atomic.Int64
}

func newAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	upstream, err := url.Parse(env.Cluster.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = upstream.Host
		},
		Transport:     transport,
		FlushInterval: -1, // watches stream
	}
	p := &apiProxy{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.refusing.Load() && refusedWrite(r) {
			n := p.refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			if n%2 == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"drill: too many requests","reason":"TooManyRequests","code":429}`))
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"drill: etcd is slow","reason":"InternalError","code":500}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// refusedWrite says whether r writes a Secret or an ExternalSecret's
// status.
func refusedWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	return strings.Contains(r.URL.Path, "/secrets") || (strings.Contains(r.URL.Path, "/externalsecrets/") && strings.HasSuffix(r.URL.Path, "/status"))
}

// kubeconfig writes a kubeconfig that reaches the API server through the
// proxy (which adds the credentials).
func (p *apiProxy) kubeconfig(t *testing.T) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"proxy": {Server: p.srv.URL, CertificateAuthorityData: ca}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"proxy": {}},
		Contexts:       map[string]*clientcmdapi.Context{"proxy": {Cluster: "proxy", AuthInfo: "proxy"}},
		CurrentContext: "proxy",
	}
	b, err := clientcmd.Write(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The API server answers every write of a Secret or an ExternalSecret's
// status with 429 (Retry-After: 1) or 500 for 10 s while every value
// rotates: the operator does not retry in a busy loop (at most one refused
// write per ExternalSecret per second), no Secret is observed wrong, and
// once writes succeed again every Secret gets the rotated values and every
// ExternalSecret records the sync in its status (nothing lost).
func TestSecretWritesRefused(t *testing.T) {
	const n, d, k = 20, 1, 10
	w := newWorkload(t, n, d, k, writeFaultRefresh)
	o := w.observe(t)
	proxy := newAPIProxy(t)
	p := startOperatorWith(t, "keyferry", w.ns, proxy.kubeconfig(t))
	o.waitRight(t, n, killSyncTimeout)
	w.waitAllReady(t)

	proxy.refusing.Store(true)
	w.be.rotate(w.keys()...)
	waitFor(writeFaultWindow)
	proxy.refusing.Store(false)
	refused := proxy.refused.Load()
	ended := time.Now()

	testenv.Eventually(t, "every Secret rotated and every ExternalSecret's status recording it", func(ctx context.Context) (bool, string) {
		right := o.rightCount()
		recorded, err := syncedSince(ctx, w.ns, ended.Truncate(time.Second))
		if err != nil {
			return false, err.Error()
		}
		return right == n && recorded == n, fmt.Sprintf("%d of %d Secrets rotated, %d statuses record a sync since the refusals ended", right, n, recorded)
	})
	recovery := time.Since(ended)
	p.assertAlive(t)

	o.assertClean(t)
	maxRefused := int64(n) * int64(writeFaultWindow/time.Second)
	t.Logf("FIGURE write-refusals: %d ExternalSecrets, refreshInterval %s, writes refused for %s: %d refused writes (cap %d); every Secret rotated and every status recorded %.1fs after the refusals ended (cap %s)",
		n, writeFaultRefresh, writeFaultWindow, refused, maxRefused, recovery.Seconds(), writeFaultRecoveryCap)
	if refused > maxRefused {
		t.Errorf("%d refused writes in %s, want at most %d (one per ExternalSecret per second)", refused, writeFaultWindow, maxRefused)
	}
	if recovery > writeFaultRecoveryCap {
		t.Errorf("recovery took %.1fs after the refusals ended, cap %s", recovery.Seconds(), writeFaultRecoveryCap)
	}
}

// syncedSince counts the ExternalSecrets that are Ready=True with a
// status.refreshTime at or after since.
func syncedSince(ctx context.Context, ns string, since time.Time) (int, error) {
	var list esv1.ExternalSecretList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		es := &list.Items[i]
		c := testenv.ReadyCondition(es)
		if c != nil && c.Status == metav1.ConditionTrue && !es.Status.RefreshTime.Time.Time.Before(since) {
			n++
		}
	}
	return n, nil
}
