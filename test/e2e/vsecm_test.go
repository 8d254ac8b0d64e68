package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// What examples/vsecm names.
const (
	vsecmTrustDomain = "vsecm.com"
	safeID           = "spiffe://vsecm.com/workload/vsecm-safe/ns/vsecm-system/sa/vsecm-safe"
	safeAddr         = "vsecm-safe.vsecm-system.svc.cluster.local:8443"
	svidDir          = "/run/spiffe/certs"
	// keyferry's own SPIFFE ID, which the test's VSecM Safe authorises.
	keyferryID = "spiffe://vsecm.com/workload/keyferry/ns/keyferry-system/sa/keyferry"
)

// safeServer stands in for VSecM Safe: an HTTPS server that presents its
// X.509 SVID, requires the client's, verifies it against the trust bundle
// and authorises one SPIFFE ID, as go-spiffe's mTLS server does. Every
// request makes a new handshake, so changes of identity apply at once.
type safeServer struct {
	hits atomic.Int64

	mu          sync.Mutex
	svid        *x509svid.SVID
	allowed     spiffeid.ID
	body        []byte
	contentType string
	peers       []string
}

func startSafe(t *testing.T, ca *testCA, id *svid, allowed string) *safeServer {
	t.Helper()
	s := &safeServer{allowed: spiffeid.RequireFromString(allowed)}
	s.present(t, id)
	bundle := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(vsecmTrustDomain), []*x509.Certificate{ca.cert})
	cfg := tlsconfig.MTLSServerConfig(s, bundle, s.authorize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		TLSConfig:         cfg,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ErrorLog:          log.New(io.Discard, "", 0),                               // the handshakes the tests make fail
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	redirect.setAddr(safeAddr, ln.Addr().String())
	return s
}

// present makes the server present id from its next handshake on.
func (s *safeServer) present(t *testing.T, id *svid) {
	t.Helper()
	sv, err := x509svid.Parse(id.certPEM, id.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid = sv
}

// allow makes the server authorise only id from its next handshake on.
func (s *safeServer) allow(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = spiffeid.RequireFromString(id)
}

// answer sets the response to GET /secrets/database-credentials.
func (s *safeServer) answer(contentType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contentType, s.body = contentType, body
}

func (s *safeServer) answerJSON(t *testing.T, doc map[string]string) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	s.answer("application/json", b)
}

// GetX509SVID makes safeServer the server's x509svid.Source.
func (s *safeServer) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

func (s *safeServer) authorize(id spiffeid.ID, _ [][]*x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.allowed {
		return fmt.Errorf("workload %s is not authorised", id)
	}
	return nil
}

func (s *safeServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/secrets/database-credentials" {
		http.NotFound(w, r)
		return
	}
	s.hits.Add(1)
	s.mu.Lock()
	if len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) > 0 {
		s.peers = append(s.peers, r.TLS.PeerCertificates[0].URIs[0].String())
	}
	contentType, body := s.contentType, s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(body)
}

func (s *safeServer) sawPeer(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		if p == id {
			return true
		}
	}
	return false
}

// writeSVID writes an SVID and the trust bundle as spiffe-helper does, each
// file replaced by a rename so that no reader sees half of one.
func writeSVID(t *testing.T, dir string, id *svid, bundle []byte) {
	t.Helper()
	for name, b := range map[string][]byte{"svid_key.pem": id.keyPEM, "svid.pem": id.certPEM, "svid_bundle.pem": bundle} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// The VSecM operator's job: one JSON document from VSecM Safe over SPIFFE
// mTLS becomes a Secret's data, a label and an annotation, refreshed
// periodically. examples/vsecm, applied as it is.
func TestVSecMExampleSyncsOverSPIFFEMutualTLS(t *testing.T) {
	const (
		name      = "database-credentials"
		password1 = "CANARY-vsecm-password-one"
		password2 = "CANARY-vsecm-password-two"
		htmlBody  = "CANARY-vsecm-maintenance-page"
	)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	ca := newTestCA(t, vsecmTrustDomain)
	own := ca.issue(t, keyferryID)
	dir := t.TempDir()
	writeSVID(t, dir, own, ca.pem)
	redirect.setDir(svidDir, dir)
	safe := startSafe(t, ca, ca.issue(t, safeID), keyferryID)
	doc := map[string]string{"username": "cocacola", "password": password1, "app": "coca-cola", "env": "production"}
	safe.answerJSON(t, doc)

	rogue := newTestCA(t, vsecmTrustDomain).issue(t, keyferryID) // right ID, unknown CA
	canaries := []string{password1, password2, htmlBody, keyCanary(own.keyPEM), keyCanary(rogue.keyPEM)}

	ns := env.Namespace(t)
	wantSecret := func(password, envName string) func(*corev1.Secret) (bool, string) {
		data := testenv.HasData(map[string]string{"username": "cocacola", "password": password})
		return func(s *corev1.Secret) (bool, string) {
			if ok, msg := data(s); !ok {
				return false, msg
			}
			if s.Labels["app"] != "coca-cola" || s.Annotations["env"] != envName {
				return false, fmt.Sprintf("label app=%q, annotation env=%q", s.Labels["app"], s.Annotations["env"])
			}
			return true, ""
		}
	}

	step("the Secret gets data, a label and an annotation from the document", func(t *testing.T) {
		env.Apply(t, ns, "examples/vsecm")
		waitStoreValid(t, ns, "vsecm-safe")
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
		env.WaitSecret(t, ns, name, wantSecret(password1, "production"))
		if !safe.sawPeer(keyferryID) {
			t.Fatalf("VSecM Safe never saw keyferry's SVID %s", keyferryID)
		}
	})

	step("a changed document reaches the Secret on the next refresh", func(t *testing.T) {
		doc["password"], doc["env"] = password2, "staging"
		safe.answerJSON(t, doc)
		env.WaitSecret(t, ns, name, wantSecret(password2, "staging"))
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
	})

	// refused breaks something, forces a sync, and checks that it fails with
	// reason and a message holding each of inMessage, that the Secret stays
	// as it was and, unless reached, that VSecM Safe served nothing; then it
	// repairs and waits for the sync to recover.
	refused := func(t *testing.T, reason string, reached bool, inMessage []string, breakIt, repair func()) {
		t.Helper()
		before := env.GetSecret(t, ns, name)
		hits := safe.hits.Load()
		breakIt()
		env.ForceSync(t, ns, name)
		es := env.WaitReady(t, ns, name, metav1.ConditionFalse, reason)
		msg := testenv.ReadyCondition(es).Message
		t.Logf("Ready=False %s: %s", reason, msg)
		for _, s := range inMessage {
			if !strings.Contains(msg, s) {
				t.Errorf("the %s message does not mention %q: %s", reason, s, msg)
			}
		}
		assertUntouched(t, before)
		testenv.Eventually(t, "a Warning Event "+reason, func(ctx context.Context) (bool, string) {
			return hasWarning(ctx, ns, name, reason)
		})
		if !reached && safe.hits.Load() != hits {
			t.Errorf("VSecM Safe served %d requests although the TLS handshake should have failed", safe.hits.Load()-hits)
		}
		assertNoLeak(t, canaries, ns)

		repair()
		env.ForceSync(t, ns, name)
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
		assertUntouched(t, before) // same values: nothing to write
	}

	step("a server presenting another SPIFFE ID is refused", func(t *testing.T) {
		impostor := ca.issue(t, "spiffe://vsecm.com/workload/impostor")
		refused(t, engine.ReasonUnauthenticated, false,
			[]string{"SPIFFE", safeID, impostor.id},
			func() { safe.present(t, impostor) },
			func() { safe.present(t, ca.issue(t, safeID)) })
	})

	step("a client certificate from an unknown CA is refused by the server", func(t *testing.T) {
		refused(t, engine.ReasonUnauthenticated, false,
			[]string{"refused the TLS client certificate"},
			func() { writeSVID(t, dir, rogue, ca.pem) },
			func() { writeSVID(t, dir, own, ca.pem) })
	})

	step("a client the server does not authorise is refused by the server", func(t *testing.T) {
		refused(t, engine.ReasonUnauthenticated, false,
			[]string{"refused the TLS client certificate"},
			func() { safe.allow("spiffe://vsecm.com/workload/someone-else") },
			func() { safe.allow(keyferryID) })
	})

	step("a response that is not JSON is refused", func(t *testing.T) {
		refused(t, engine.ReasonBadResponse, true,
			[]string{"not a JSON document"},
			func() { safe.answer("text/html", []byte("<html><body>"+htmlBody+"</body></html>")) },
			func() { safe.answerJSON(t, doc) })
	})

	step("a document without the password field is refused", func(t *testing.T) {
		partial := map[string]string{"username": doc["username"], "app": doc["app"], "env": doc["env"]}
		refused(t, engine.ReasonPropertyNotFound, true,
			[]string{`"password"`},
			func() { safe.answerJSON(t, partial) },
			func() { safe.answerJSON(t, doc) })
	})

	env.WaitSecret(t, ns, name, wantSecret(password2, "staging"))
	assertNoLeak(t, canaries, ns)
}

// waitStoreValid waits until the SecretStore is Ready: for an https
// webhook, keyferry has completed a SPIFFE mTLS handshake with it.
func waitStoreValid(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("SecretStore %s/%s Ready", ns, name), func(ctx context.Context) (bool, string) {
		var st esv1.SecretStore
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &st); err != nil {
			return false, err.Error()
		}
		for _, c := range st.Status.Conditions {
			if c.Type == esv1.SecretStoreReady {
				return c.Status == metav1.ConditionTrue && c.Reason == esv1.ReasonStoreValid, c.Reason + ": " + c.Message
			}
		}
		return false, "no Ready condition"
	})
}
