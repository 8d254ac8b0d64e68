// Package e2e runs the worked examples under examples/ end to end: the
// manifests are applied as they are to a real API server, the operator runs
// in-process, and the systems behind the stores are real too — files written
// the way kubelet's atomic writer writes volumes, and an HTTPS server that
// speaks SPIFFE mTLS with SVIDs made in the test.
//
// The manifests name paths and addresses of a real cluster (/mnt/secrets,
// /run/spiffe/certs, vsecm-safe.vsecm-system.svc.cluster.local:8443). The
// providers' test-only options map those to the temporary directories and
// local ports the tests use; nothing else about the manifests changes.
//
// The examples create fixed names (namespaces, a ClusterSecretStore), so
// each test runs once per process: -count above 1 is not supported.
package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/provider/file"
	"github.com/keyferry/keyferry/internal/provider/webhook"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var (
	env *testenv.Env
	// redirect maps the manifests' paths and addresses to the tests' own.
	redirect = &redirects{roots: map[string]string{}, prefixes: map[string]string{}, addrs: map[string]string{}}
)

func TestMain(m *testing.M) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	reg.Register("file", file.NewWithOptions(file.Options{MapRoot: redirect.root}))
	reg.Register("webhook", webhook.NewWithOptions(webhook.Options{MapAddr: redirect.addr, MapPath: redirect.path}))
	var err error
	env, err = testenv.Start(testenv.Options{ControllerManager: true, Registry: reg, Operator: func(o *operator.Options) {
		// The VSecM example is a SecretStore presenting the operator's
		// SPIFFE SVID: the platform allows it (docs/security.md).
		o.StorePolicy.AmbientIdentities = []provider.IdentityGrant{{Identity: provider.IdentitySPIFFE}}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test environment:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// redirects holds where the tests put what the manifests name. Unmapped
// paths and addresses are used as they are.
type redirects struct {
	mu       sync.Mutex
	roots    map[string]string // file store root -> directory
	prefixes map[string]string // directory prefix of SVID files -> directory
	addrs    map[string]string // host:port -> local host:port
}

func (r *redirects) setRoot(from, to string) { r.set(r.roots, from, to) }
func (r *redirects) setDir(from, to string)  { r.set(r.prefixes, strings.TrimSuffix(from, "/")+"/", to) }
func (r *redirects) setAddr(from, to string) { r.set(r.addrs, from, to) }

func (r *redirects) set(m map[string]string, from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m[from] = to
}

func (r *redirects) root(p string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if to, ok := r.roots[p]; ok {
		return to
	}
	return p
}

func (r *redirects) path(p string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for from, to := range r.prefixes {
		if rest, ok := strings.CutPrefix(p, from); ok {
			return to + "/" + rest
		}
	}
	return p
}

func (r *redirects) addr(a string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if to, ok := r.addrs[a]; ok {
		return to
	}
	return a
}

// assertUntouched fails when the Secret changed since before was read.
func assertUntouched(t *testing.T, before *corev1.Secret) {
	t.Helper()
	after := env.GetSecret(t, before.Namespace, before.Name)
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("Secret %s/%s was written after a failed sync (resourceVersion %s -> %s)", before.Namespace, before.Name, before.ResourceVersion, after.ResourceVersion)
	}
}

// assertNoLeak fails when a canary value (as it is or base64-encoded, as a
// Secret's data would be printed) appears in the operator's logs, or in the
// Events or status conditions of the ExternalSecrets of the namespaces.
func assertNoLeak(t *testing.T, canaries []string, namespaces ...string) {
	t.Helper()
	var forms []string
	for _, c := range canaries {
		forms = append(forms, c, base64.StdEncoding.EncodeToString([]byte(c)))
	}
	for _, c := range forms {
		env.AssertNoLeak(t, c)
	}
	ctx := context.Background()
	for _, ns := range namespaces {
		var list esv1.ExternalSecretList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, es := range list.Items {
			evs, err := env.Events(ctx, ns, es.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range forms {
				for _, ev := range evs {
					if strings.Contains(ev.Note, c) || strings.Contains(ev.Reason, c) {
						t.Fatalf("a secret value appeared in Event %s about %s/%s", ev.Reason, ns, es.Name)
					}
				}
				for _, cond := range es.Status.Conditions {
					if strings.Contains(cond.Message, c) {
						t.Fatalf("a secret value appeared in the status of %s/%s", ns, es.Name)
					}
				}
			}
		}
	}
}

// hasWarning says whether a Warning Event with reason was emitted about the
// ExternalSecret.
func hasWarning(ctx context.Context, ns, name, reason string) (bool, string) {
	evs, err := env.Events(ctx, ns, name)
	if err != nil {
		return false, err.Error()
	}
	var seen []string
	for _, ev := range evs {
		if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
			return true, ""
		}
		seen = append(seen, ev.Type+"/"+ev.Reason)
	}
	return false, fmt.Sprintf("events %v", seen)
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
