package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

const (
	trustDomain = "example.org"
	serverID    = "spiffe://example.org/vsecm-safe"
	clientID    = "spiffe://example.org/keyferry"
)

// spiffeServer starts a SPIFFE mTLS server the way a SPIFFE-aware service
// (such as VSecM Safe) runs one with go-spiffe: it presents its X.509 SVID
// and accepts only clients whose SVID the bundle verifies and authorize
// allows.
func spiffeServer(t *testing.T, ca *testCA, id string, authorize tlsconfig.Authorizer, h func(w http.ResponseWriter, r *http.Request, body []byte)) *recordingServer {
	t.Helper()
	l := ca.issue(t, "server", id)
	svid, err := x509svid.Parse(l.certPEM, l.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	bundle := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(trustDomain), []*x509.Certificate{ca.cert})
	cfg := tlsconfig.MTLSServerConfig(svid, bundle, authorize)
	// httptest adds its own certificate when none is set; give it the SVID.
	cfg.GetCertificate, cfg.Certificates = nil, []tls.Certificate{l.pair}
	return startServer(t, &serverTLS{config: cfg}, h)
}

func spiffeSpec(url string, files *esv1.SPIFFEFiles) *esv1.WebhookProvider {
	return &esv1.WebhookProvider{URL: url + "/secrets/{{ .remoteRef.key }}", SPIFFE: &esv1.WebhookSPIFFE{Files: files, ServerID: serverID}}
}

func serveDoc(w http.ResponseWriter, r *http.Request, _ []byte) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, vsecmDoc)
}

func TestSPIFFEMutualTLSWithFiles(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	srv := spiffeServer(t, ca, serverID, tlsconfig.AuthorizeID(spiffeid.RequireFromString(clientID)), serveDoc)
	cert, key, bundle := writeSVIDFiles(t, t.TempDir(), ca.issue(t, "keyferry", clientID), ca.pem)
	files := &esv1.SPIFFEFiles{CertPath: cert, KeyPath: key, BundlePath: bundle}
	ns := newNamespace(t)

	c := mustClient(t, ns, spiffeSpec(srv.URL, files))
	if got := mustGet(t, c, "db-credentials"); got != vsecmDoc {
		t.Fatalf("got %q, want the service's document", got)
	}
	if peers := srv.peers(); len(peers) != 1 || peers[0] != clientID {
		t.Fatalf("server saw client SVIDs %v, want [%s]", peers, clientID)
	}
	if err := c.Validate(context.Background()); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	t.Run("any server in the trust domain", func(t *testing.T) {
		spec := spiffeSpec(srv.URL, files)
		spec.SPIFFE.ServerID, spec.SPIFFE.TrustDomain = "", trustDomain
		if got := mustGet(t, mustClient(t, ns, spec), "db-credentials"); got != vsecmDoc {
			t.Fatalf("got %q", got)
		}
	})

	refused := func(t *testing.T, spec *esv1.WebhookProvider, wantInMessage ...string) {
		t.Helper()
		hits := srv.hits.Load()
		c := mustClient(t, ns, spec)
		_, err := get(t, c, "db-credentials")
		wantErr(t, err, provider.ErrUnauthenticated)
		for _, s := range wantInMessage {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		wantErr(t, c.Validate(context.Background()), provider.ErrUnauthenticated)
		if srv.hits.Load() != hits {
			t.Fatal("a request reached the handler although the server was not authorised")
		}
	}
	t.Run("wrong server SPIFFE ID is refused", func(t *testing.T) {
		spec := spiffeSpec(srv.URL, files)
		spec.SPIFFE.ServerID = "spiffe://example.org/impostor-expected"
		refused(t, spec, "SPIFFE", "spiffe://example.org/impostor-expected", serverID)
	})
	t.Run("server outside the trust domain is refused", func(t *testing.T) {
		spec := spiffeSpec(srv.URL, files)
		spec.SPIFFE.ServerID, spec.SPIFFE.TrustDomain = "", "other.org"
		refused(t, spec, "other.org")
	})
	t.Run("server certificate from another CA is refused", func(t *testing.T) {
		impostor := spiffeServer(t, newTestCA(t, trustDomain), serverID, tlsconfig.AuthorizeAny(), serveDoc)
		c := mustClient(t, ns, spiffeSpec(impostor.URL, files))
		_, err := get(t, c, "db-credentials")
		wantErr(t, err, provider.ErrUnauthenticated)
		if impostor.hits.Load() != 0 {
			t.Fatal("the request reached a server the bundle does not trust")
		}
	})
	t.Run("client SVID the server does not accept is refused by the server", func(t *testing.T) {
		cert, key, bundle := writeSVIDFiles(t, t.TempDir(), ca.issue(t, "intruder", "spiffe://example.org/intruder"), ca.pem)
		hits := srv.hits.Load()
		c := mustClient(t, ns, spiffeSpec(srv.URL, &esv1.SPIFFEFiles{CertPath: cert, KeyPath: key, BundlePath: bundle}))
		_, err := get(t, c, "db-credentials")
		wantErr(t, err, provider.ErrUnauthenticated)
		if !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("error %q does not say the server refused the client certificate", err)
		}
		if srv.hits.Load() != hits {
			t.Fatal("the handler served a client it does not authorise")
		}
	})
	t.Run("no client certificate is refused by the server", func(t *testing.T) {
		hits := srv.hits.Load()
		c := mustClient(t, ns, &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}", CABundle: ca.pem})
		_, err := get(t, c, "db-credentials")
		wantErr(t, err, provider.ErrUnauthenticated)
		if srv.hits.Load() != hits {
			t.Fatal("the handler served a client without a certificate")
		}
	})
	t.Run("missing files", func(t *testing.T) {
		_, err := newClient(t, ns, spiffeSpec(srv.URL, &esv1.SPIFFEFiles{CertPath: "/nonexistent/svid.pem", KeyPath: key, BundlePath: bundle}))
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

func TestSPIFFEFilesAreReloadedWhenRotated(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	srv := spiffeServer(t, ca, serverID, tlsconfig.AuthorizeMemberOf(spiffeid.RequireTrustDomainFromString(trustDomain)),
		func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Header().Set("Connection", "close") // every request makes a new handshake
			serveDoc(w, r, body)
		})
	dir := t.TempDir()
	first := ca.issue(t, "keyferry", clientID)
	cert, key, bundle := writeSVIDFiles(t, dir, first, ca.pem)
	c := mustClient(t, newNamespace(t), spiffeSpec(srv.URL, &esv1.SPIFFEFiles{CertPath: cert, KeyPath: key, BundlePath: bundle}))
	mustGet(t, c, "a")

	const rotatedID = "spiffe://example.org/keyferry-rotated"
	rotated := ca.issue(t, "keyferry", rotatedID)
	writeSVIDFiles(t, dir, rotated, ca.pem)
	mustGet(t, c, "b")

	// A rotation caught half way (new certificate, old key) keeps the last
	// good SVID instead of failing.
	if err := os.WriteFile(cert, first.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "c")

	peers := srv.peers()
	want := []string{clientID, rotatedID, rotatedID}
	if strings.Join(peers, " ") != strings.Join(want, " ") {
		t.Fatalf("server saw client SVIDs %v, want %v", peers, want)
	}
}

// fakeWorkloadAPI serves the SPIFFE Workload API's FetchX509SVID over the
// real gRPC protocol, as the SPIRE agent does, with one SVID.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

func (f *fakeWorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	if err := stream.Send(f.resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func startWorkloadAPI(t *testing.T, svid *leaf, ca *testCA) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wl") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(s, &fakeWorkloadAPI{resp: &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{{SpiffeId: clientID, X509Svid: svid.certDER, X509SvidKey: svid.keyDER, Bundle: ca.cert.Raw}},
	}})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return "unix://" + sock
}

func TestSPIFFEMutualTLSWithWorkloadAPI(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	srv := spiffeServer(t, ca, serverID, tlsconfig.AuthorizeID(spiffeid.RequireFromString(clientID)), serveDoc)
	socket := startWorkloadAPI(t, ca.issue(t, "keyferry", clientID), ca)
	ns := newNamespace(t)

	spec := &esv1.WebhookProvider{URL: srv.URL + "/secrets/{{ .remoteRef.key }}", Result: esv1.WebhookResult{JSONPath: "$.password"},
		SPIFFE: &esv1.WebhookSPIFFE{WorkloadAPISocket: socket, ServerID: serverID}}
	c := mustClient(t, ns, spec)
	if got := mustGet(t, c, "db-credentials"); got != canary {
		t.Fatalf("got %q, want the password", got)
	}
	if peers := srv.peers(); len(peers) != 1 || peers[0] != clientID {
		t.Fatalf("server saw client SVIDs %v, want [%s]", peers, clientID)
	}

	t.Run("wrong server SPIFFE ID is refused", func(t *testing.T) {
		spec := *spec
		spec.SPIFFE = &esv1.WebhookSPIFFE{WorkloadAPISocket: socket, ServerID: "spiffe://example.org/someone-else"}
		hits := srv.hits.Load()
		_, err := get(t, mustClient(t, ns, &spec), "db-credentials")
		wantErr(t, err, provider.ErrUnauthenticated)
		if srv.hits.Load() != hits {
			t.Fatal("a request reached the handler although the server was not authorised")
		}
	})
	t.Run("no agent listening is unreachable", func(t *testing.T) {
		spec := *spec
		spec.Timeout = &esv1.Duration{Duration: 300 * time.Millisecond}
		spec.SPIFFE = &esv1.WebhookSPIFFE{WorkloadAPISocket: "unix://" + filepath.Join(t.TempDir(), "none.sock"), ServerID: serverID}
		_, err := newClient(t, ns, &spec)
		wantErr(t, err, provider.ErrUnreachable)
	})
}

// Rotation through the Workload API is go-spiffe's job: every handshake asks
// the source for the current SVID. After Close the source is gone, and a new
// handshake fails instead of presenting a stale SVID.
func TestClosedWorkloadAPIClientStopsPresentingTheSVID(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	srv := spiffeServer(t, ca, serverID, tlsconfig.AuthorizeAny(), func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Connection", "close")
		serveDoc(w, r, body)
	})
	socket := startWorkloadAPI(t, ca.issue(t, "keyferry", clientID), ca)
	c, err := New().NewClient(context.Background(), storeOpts(t, newNamespace(t), &esv1.WebhookProvider{
		URL: srv.URL + "/{{ .remoteRef.key }}", SPIFFE: &esv1.WebhookSPIFFE{WorkloadAPISocket: socket, ServerID: serverID}}, false))
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "a")
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(context.Background(), provider.Ref{Key: "b"}); err == nil {
		t.Fatal("a closed client kept fetching with its SVID")
	}
}
