package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/keyferry/keyferry/internal/provider"
)

// apiError maps the error of a call to the API server onto keyferry's
// sentinels, keeping the original error in the chain. The API server's own
// messages name users, resources and namespaces, never Secret data, so they
// are kept for the user to read; what says which call failed.
func apiError(what string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", what, provider.ErrNotFound, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w: %w", what, provider.ErrForbidden, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %w: the API server refused the credentials: %w", what, provider.ErrUnauthenticated, err)
	case apierrors.IsTooManyRequests(err):
		var after time.Duration
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			after = time.Duration(s) * time.Second
		}
		return &provider.ThrottledError{RetryAfter: after, Err: fmt.Errorf("%s: %w", what, err)}
	case apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err):
		return fmt.Errorf("%s: %w: %w", what, provider.ErrUnreachable, err)
	case isTLSVerification(err):
		return fmt.Errorf("%s: %w: the server's certificate was not accepted (check server.caBundle or server.caProvider): %w", what, provider.ErrInvalidConfig, err)
	case isNetwork(err):
		return fmt.Errorf("%s: %w: %w", what, provider.ErrUnreachable, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// isTLSVerification says whether err is a refused server certificate.
func isTLSVerification(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// isNetwork says whether err means the server could not be reached or did
// not answer in time.
func isNetwork(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
		u   *url.Error
	)
	return errors.As(err, &op) || errors.As(err, &dns) || (errors.As(err, &u) && u.Timeout()) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded)
}
