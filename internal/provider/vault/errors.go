package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/provider"
)

var multiErrorHeader = regexp.MustCompile(`^\s*\d+ errors? occurred:`)

// maxDetail bounds how much of Vault's own error text goes into a message.
const maxDetail = 300

// classify turns the error of a Vault request into one wrapping the
// provider's sentinels. op says what was being done ("reading secret/data/x").
// login marks a login request: any refusal is an authentication failure.
// Strings in redact (the credentials sent) are removed from Vault's text.
func classify(op string, resp *vaultapi.Response, err error, login bool, redact ...string) error {
	if err == nil {
		return nil
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		detail := fmt.Sprintf("vault answered %d", re.StatusCode)
		if d := vaultDetail(re, redact); d != "" {
			detail += ": " + d
		}
		switch {
		case re.StatusCode == http.StatusTooManyRequests:
			return &provider.ThrottledError{RetryAfter: retryAfter(resp), Err: fmt.Errorf("%s: %s", op, detail)}
		case login && re.StatusCode >= 400 && re.StatusCode < 500:
			return fmt.Errorf("%s: %w (%s)", op, provider.ErrUnauthenticated, detail)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s: %w (%s)", op, provider.ErrNotFound, detail)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w (%s)", op, provider.ErrForbidden, detail)
		case re.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%s: %w (%s)", op, provider.ErrUnauthenticated, detail)
		case re.StatusCode == http.StatusBadGateway, re.StatusCode == http.StatusServiceUnavailable, re.StatusCode == http.StatusGatewayTimeout:
			// 503 is also what a sealed Vault answers.
			return fmt.Errorf("%s: %w (%s)", op, provider.ErrUnreachable, detail)
		default:
			return fmt.Errorf("%s: %s", op, detail)
		}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", op, provider.ErrUnreachable, err)
	}
	if isTLSVerification(err) {
		return fmt.Errorf("%s: %w: the server's certificate is not trusted (check caBundle or caProvider): %v", op, provider.ErrInvalidConfig, err)
	}
	var (
		ue *url.Error
		ne net.Error
	)
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("%s: %w: %v", op, provider.ErrUnreachable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isTLSVerification(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// vaultDetail is Vault's own error text, shortened, on one line, without the
// credentials that were sent.
func vaultDetail(re *vaultapi.ResponseError, redact []string) string {
	var parts []string
	for _, e := range re.Errors {
		// Vault joins several errors as "2 errors occurred:\n\t* a\n\t* b".
		e = multiErrorHeader.ReplaceAllString(e, "")
		for _, line := range strings.Split(e, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
			if line = strings.Join(strings.Fields(line), " "); line != "" {
				parts = append(parts, line)
			}
		}
	}
	d := strings.Join(parts, "; ")
	for _, s := range redact {
		if s != "" {
			d = strings.ReplaceAll(d, s, "[redacted]")
		}
	}
	if len(d) > maxDetail {
		d = d[:maxDetail] + "..."
	}
	return d
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(resp *vaultapi.Response) time.Duration {
	if resp == nil || resp.Response == nil {
		return 0
	}
	s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// isStatus says whether err is a Vault answer with the given status.
func isStatus(err error, status int) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}
