package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// tlsSetup is the TLS configuration of a client and what must be released
// with it.
type tlsSetup struct {
	config *tls.Config // nil: Go's defaults
	close  func() error
}

// buildTLS assembles the client's TLS configuration: the server's CA
// (caBundle/caProvider), a client certificate from Secrets (clientTLS), or
// SPIFFE mTLS.
func buildTLS(ctx context.Context, opts provider.Options, spec *esv1.WebhookProvider, timeout time.Duration) (*tlsSetup, error) {
	if spec.SPIFFE != nil {
		return buildSPIFFE(ctx, opts.Log, spec.SPIFFE, timeout)
	}
	var cfg *tls.Config
	if len(spec.CABundle) > 0 || spec.CAProvider != nil {
		if opts.Kube == nil && spec.CAProvider != nil {
			return nil, fmt.Errorf("%w: caProvider needs a Kubernetes client", provider.ErrInvalidConfig)
		}
		pool, err := opts.CAPool(ctx, spec.CABundle, spec.CAProvider)
		if err != nil {
			return nil, fmt.Errorf("building the CA pool: %w", err)
		}
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if spec.ClientTLS != nil {
		if opts.Kube == nil {
			return nil, fmt.Errorf("%w: clientTLS needs a Kubernetes client", provider.ErrInvalidConfig)
		}
		certPEM, err := opts.SecretKey(ctx, spec.ClientTLS.CertSecretRef)
		if err != nil {
			return nil, fmt.Errorf("reading clientTLS.certSecretRef: %w", err)
		}
		keyPEM, err := opts.SecretKey(ctx, spec.ClientTLS.KeySecretRef)
		if err != nil {
			return nil, fmt.Errorf("reading clientTLS.keySecretRef: %w", err)
		}
		// X509KeyPair's errors are fixed strings; they never quote the key.
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%w: clientTLS: the certificate and key do not form a usable pair: %w", provider.ErrInvalidConfig, err)
		}
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &tlsSetup{config: cfg, close: func() error { return nil }}, nil
}

// serverAuthorizer returns the authorizer for the server's SPIFFE ID and the
// trust domain whose bundle verifies it.
func serverAuthorizer(s *esv1.WebhookSPIFFE) (tlsconfig.Authorizer, spiffeid.TrustDomain, string, error) {
	if s.ServerID != "" {
		id, err := spiffeid.FromString(s.ServerID)
		if err != nil {
			return nil, spiffeid.TrustDomain{}, "", fmt.Errorf("%w: spiffe.serverID %q is not a SPIFFE ID: %w", provider.ErrInvalidConfig, s.ServerID, err)
		}
		return tlsconfig.AuthorizeID(id), id.TrustDomain(), "the SPIFFE ID " + id.String(), nil
	}
	td, err := spiffeid.TrustDomainFromString(s.TrustDomain)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, "", fmt.Errorf("%w: spiffe.trustDomain %q is not a trust domain: %w", provider.ErrInvalidConfig, s.TrustDomain, err)
	}
	return tlsconfig.AuthorizeMemberOf(td), td, "a SPIFFE ID in the trust domain " + td.String(), nil
}

// spiffeAuthError says the server's certificate failed SPIFFE
// authentication: not signed by the trust bundle, or not the expected ID.
type spiffeAuthError struct {
	want string
	err  error
}

func (e *spiffeAuthError) Error() string {
	return fmt.Sprintf("the server failed SPIFFE authentication (want %s): %v", e.want, e.err)
}
func (e *spiffeAuthError) Unwrap() error { return e.err }

func buildSPIFFE(ctx context.Context, log logr.Logger, s *esv1.WebhookSPIFFE, timeout time.Duration) (*tlsSetup, error) {
	authorize, td, want, err := serverAuthorizer(s)
	if err != nil {
		return nil, err
	}
	var (
		svids   x509svid.Source
		bundles x509bundle.Source
		closer  = func() error { return nil }
	)
	switch {
	case s.Files != nil:
		src := &fileSource{files: *s.Files, trustDomain: td, log: log}
		if err := src.load(); err != nil {
			return nil, fmt.Errorf("%w: loading the SPIFFE SVID from files: %w", provider.ErrInvalidConfig, err)
		}
		svids, bundles = src, src
	default:
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		src, err := workloadapi.NewX509Source(wctx, workloadapi.WithClientOptions(workloadapi.WithAddr(s.WorkloadAPISocket)))
		if err != nil {
			return nil, fmt.Errorf("%w: getting an X.509 SVID from the SPIFFE Workload API at %s: %w", provider.ErrUnreachable, s.WorkloadAPISocket, err)
		}
		svids, bundles, closer = src, src, src.Close
	}
	cfg := tlsconfig.MTLSClientConfig(svids, bundles, authorize)
	verify := cfg.VerifyPeerCertificate
	cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		if err := verify(raw, chains); err != nil {
			return &spiffeAuthError{want: want, err: err}
		}
		return nil
	}
	return &tlsSetup{config: cfg, close: closer}, nil
}

// fileSource serves an X.509 SVID and trust bundle kept in PEM files (for
// example written by spiffe-helper or a CSI driver). The files are read
// again at every TLS handshake and parsed when their contents changed, so a
// rotated SVID is used from the next connection on. A rotation caught half
// way (a certificate that does not match the key) keeps the last good SVID.
type fileSource struct {
	files       esv1.SPIFFEFiles
	trustDomain spiffeid.TrustDomain
	log         logr.Logger

	mu     sync.Mutex
	raw    [3][]byte
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s *fileSource) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var raw [3][]byte
	for i, path := range []string{s.files.CertPath, s.files.KeyPath, s.files.BundlePath} {
		b, err := os.ReadFile(path)
		if err != nil {
			return s.keepOld(fmt.Errorf("reading %s: %w", path, err))
		}
		raw[i] = b
	}
	if s.svid != nil && bytes.Equal(raw[0], s.raw[0]) && bytes.Equal(raw[1], s.raw[1]) && bytes.Equal(raw[2], s.raw[2]) {
		return nil
	}
	// go-spiffe's parse errors are fixed strings; they never quote the key.
	svid, err := x509svid.Parse(raw[0], raw[1])
	if err != nil {
		return s.keepOld(fmt.Errorf("parsing the SVID in %s and %s: %w", s.files.CertPath, s.files.KeyPath, err))
	}
	bundle, err := x509bundle.Parse(s.trustDomain, raw[2])
	if err != nil {
		return s.keepOld(fmt.Errorf("parsing the trust bundle in %s: %w", s.files.BundlePath, err))
	}
	if s.svid != nil {
		s.log.V(1).Info("loaded a new SPIFFE SVID from files", "spiffeID", svid.ID.String(), "certPath", s.files.CertPath)
	}
	s.raw, s.svid, s.bundle = raw, svid, bundle
	return nil
}

// keepOld returns err when nothing was loaded yet; otherwise it logs err and
// keeps the SVID and bundle loaded before.
func (s *fileSource) keepOld(err error) error {
	if s.svid == nil {
		return err
	}
	s.log.Info("keeping the previous SPIFFE SVID: the files could not be loaded", "error", err.Error())
	return nil
}

func (s *fileSource) GetX509SVID() (*x509svid.SVID, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

func (s *fileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	if td != s.trustDomain {
		return nil, fmt.Errorf("the server's SPIFFE ID is in the trust domain %q, not %q", td, s.trustDomain)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle, nil
}

// isServerCertError says whether err is Go's own verification of the
// server's certificate failing (unknown authority, wrong host name, expired).
func isServerCertError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cierr)
}

// isClientCertRefused says whether the server ended the handshake with an
// alert about our certificate (missing, unknown, refused). crypto/tls
// reports a received alert as a *net.OpError "remote error" whose error has
// the alert's text.
func isClientCertRefused(err error) bool {
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "remote error" || opErr.Err == nil {
		return false
	}
	for _, a := range []tls.AlertError{
		42,  // bad_certificate
		43,  // unsupported_certificate
		44,  // certificate_revoked
		45,  // certificate_expired
		46,  // certificate_unknown
		48,  // unknown_ca
		49,  // access_denied
		116, // certificate_required
	} {
		if opErr.Err.Error() == a.Error() {
			return true
		}
	}
	return false
}
