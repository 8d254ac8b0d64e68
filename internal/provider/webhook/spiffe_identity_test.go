package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// Issue 9, item 2: spiffe.files presents the operator's own SVID, so the
// server would take whoever wrote the store for keyferry. Through the fetch
// layer (as the operator builds clients), a SecretStore is refused before a
// connection is made; a ClusterSecretStore, or a SecretStore in a namespace
// the operator grants spiffe, reads.
func TestSPIFFEFilesServeOnlyClusterStoresAndGrantedNamespaces(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	srv := spiffeServer(t, ca, serverID, tlsconfig.AuthorizeID(spiffeid.RequireFromString(clientID)), serveDoc)
	cert, key, bundle := writeSVIDFiles(t, t.TempDir(), ca.issue(t, "keyferry", clientID), ca.pem)
	spec := spiffeSpec(srv.URL, &esv1.SPIFFEFiles{CertPath: cert, KeyPath: key, BundlePath: bundle})
	ns := newNamespace(t)
	ctx := context.Background()
	ref := provider.Ref{Key: "db-credentials"}
	get := func(t *testing.T, pol provider.Policy, cluster bool) (provider.Value, error) {
		t.Helper()
		reg := provider.NewRegistry()
		reg.Register("webhook", New())
		lctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		l := fetch.New(lctx, fetch.Options{Registry: reg, Kube: kubeFor(t), Policy: pol, Log: testr.New(t)})
		opts := storeOpts(t, ns, spec, cluster)
		vals, errs := l.Get(ctx, fetch.Request{Store: opts.Store, Namespace: ns, Subscriber: "ExternalSecret/" + ns + "/app"}, []provider.Ref{ref})
		return vals[ref], errs[ref]
	}

	t.Run("a SecretStore is refused without a connection", func(t *testing.T) {
		hits := srv.hits.Load()
		_, err := get(t, provider.Policy{}, false)
		if !errors.Is(err, provider.ErrOperatorIdentity) || !strings.Contains(err.Error(), "spec.provider.webhook.spiffe.files") {
			t.Fatalf("err %v, want ErrOperatorIdentity naming spiffe.files", err)
		}
		if srv.hits.Load() != hits || len(srv.peers()) != 0 {
			t.Fatal("the server saw the refused store")
		}
	})
	t.Run("a ClusterSecretStore reads", func(t *testing.T) {
		v, err := get(t, provider.Policy{}, true)
		if err != nil || string(v.Data) != vsecmDoc {
			t.Fatalf("got %q, %v", v.Data, err)
		}
	})
	t.Run("a SecretStore in a granted namespace reads", func(t *testing.T) {
		v, err := get(t, provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentitySPIFFE, Namespace: ns}}}, false)
		if err != nil || string(v.Data) != vsecmDoc {
			t.Fatalf("got %q, %v", v.Data, err)
		}
	})
}
