package devcluster_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/devcluster"
)

// A Lazy nobody asked for starts nothing and stops cleanly.
func TestLazyUnusedStartsNothing(t *testing.T) {
	var l devcluster.Lazy
	if err := l.Stop(); err != nil {
		t.Fatalf("Stop of an unused Lazy = %v", err)
	}
}

// Get starts one control plane with the CRDs of a directory given relative
// to the repository root, and every Get returns it; Stop stops it.
func TestLazyStartsOnceWithRepositoryCRDs(t *testing.T) {
	l := &devcluster.Lazy{Options: devcluster.Options{CRDDirs: []string{"config/crd"}}}
	t.Cleanup(func() { _ = l.Stop() }) // a failure below must not leave it running
	c1, err := l.Get()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Get()
	if err != nil || c2 != c1 {
		t.Fatalf("second Get = %p, %v; want the first cluster %p", c2, err, c1)
	}
	hc, err := rest.HTTPClientFor(c1.Config)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, strings.TrimSuffix(c1.Config.Host, "/")+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// A CRD is served a moment after it is created.
	var code int
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		code, err = get("/apis/external-secrets.io/v1/externalsecrets")
		return err == nil && code == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("listing ExternalSecrets: HTTP %d, %v; want the repository's CRDs installed", code, err)
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := get("/healthz"); err == nil {
		t.Error("the API server still answers after Stop")
	}
}
