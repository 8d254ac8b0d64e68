package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test; for SPIFFE tests it
// is the trust bundle of its trust domain.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, trustDomain string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "test CA " + trustDomain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if trustDomain != "" {
		tmpl.URIs = []*url.URL{{Scheme: "spiffe", Host: trustDomain}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf is an issued certificate and key.
type leaf struct {
	certPEM, keyPEM []byte
	certDER         []byte
	keyDER          []byte // PKCS#8
	pair            tls.Certificate
}

// issue signs a leaf certificate for client and server use. spiffeID, when
// set, is the only URI SAN (an X.509 SVID); the server's leaves also get
// the 127.0.0.1 IP SAN so that plain TLS verification accepts them.
func (ca *testCA) issue(t *testing.T, cn, spiffeID string) *leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if spiffeID != "" {
		u, err := url.Parse(spiffeID)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &leaf{
		certDER: der,
		keyDER:  keyDER,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if l.pair, err = tls.X509KeyPair(l.certPEM, l.keyPEM); err != nil {
		t.Fatal(err)
	}
	return l
}

// writeSVIDFiles writes an SVID and bundle as spiffe-helper would and
// returns their paths.
func writeSVIDFiles(t *testing.T, dir string, l *leaf, bundle []byte) (certPath, keyPath, bundlePath string) {
	t.Helper()
	certPath, keyPath, bundlePath = filepath.Join(dir, "svid.pem"), filepath.Join(dir, "svid_key.pem"), filepath.Join(dir, "bundle.pem")
	for path, b := range map[string][]byte{certPath: l.certPEM, keyPath: l.keyPEM, bundlePath: bundle} {
		// Write and rename, so that a handshake never reads half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath, bundlePath
}

// recordingServer is a real HTTP(S) server that counts the requests its
// handler saw and remembers the client certificates presented.
type recordingServer struct {
	*httptest.Server
	hits atomic.Int64

	mu        sync.Mutex
	peerIDs   []string // URI SAN or CN of each request's client certificate
	lastReq   *http.Request
	lastBody  []byte
	lastQuery string
}

func (s *recordingServer) record(r *http.Request, body []byte) {
	s.hits.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastReq, s.lastBody, s.lastQuery = r, body, r.URL.RawQuery
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		id := c.Subject.CommonName
		if len(c.URIs) > 0 {
			id = c.URIs[0].String()
		}
		s.peerIDs = append(s.peerIDs, id)
	}
}

func (s *recordingServer) peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peerIDs...)
}

func (s *recordingServer) last() (*http.Request, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastReq, s.lastBody
}

// serverTLS describes the TLS side of a test server; nil serves plain HTTP.
type serverTLS struct {
	cert tls.Certificate
	// clientCAs, when set, makes the server require and verify a client
	// certificate signed by them.
	clientCAs *x509.CertPool
	// config, when set, is used as it is.
	config *tls.Config
}

func startServer(t *testing.T, st *serverTLS, h func(w http.ResponseWriter, r *http.Request, body []byte)) *recordingServer {
	t.Helper()
	rs := &recordingServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rs.record(r, body)
		h(w, r, body)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests make fail
	if st != nil && st.config != nil {
		srv.TLS = st.config
		srv.StartTLS()
	} else if st != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{st.cert}, MinVersion: tls.VersionTLS12}
		if st.clientCAs != nil {
			srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
			srv.TLS.ClientCAs = st.clientCAs
		}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	rs.Server = srv
	t.Cleanup(srv.Close)
	return rs
}
