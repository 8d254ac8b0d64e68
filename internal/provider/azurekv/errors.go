package azurekv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// retryOptions: the SDK repeats a request at once, on a new connection,
// only when the connection dropped under it (provider.IsDroppedConnection;
// azcore retries body downloads of GET only), at most
// provider.TransportRetries times. It never retries a 429, a 5xx, a refused
// connection or a timeout: those go straight back to the engine, which backs
// off per store, so an outage costs one call per backoff.
func retryOptions() policy.RetryOptions {
	return policy.RetryOptions{
		MaxRetries:    provider.TransportRetries,
		RetryDelay:    -1, // no delay: the connection is new
		MaxRetryDelay: -1,
		ShouldRetry: func(_ *http.Response, err error) bool {
			return err != nil && provider.IsDroppedConnection(err)
		},
	}
}

// tokenRecorder collects, for one GetToken call, what azidentity's errors
// flatten into strings: the network error behind a failed token request and
// the error of the workload identity's assertion source.
type tokenRecorder struct {
	mu        sync.Mutex
	transport error
	assertion error
}

type recorderKey struct{}

func recordAssertionError(ctx context.Context, err error) {
	if r, ok := ctx.Value(recorderKey{}).(*tokenRecorder); ok {
		r.mu.Lock()
		r.assertion = err
		r.mu.Unlock()
	}
}

// recordingTransport notes transport errors of token requests.
type recordingTransport struct{ inner policy.Transporter }

func (t recordingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.Do(req)
	if err != nil {
		if r, ok := req.Context().Value(recorderKey{}).(*tokenRecorder); ok {
			r.mu.Lock()
			r.transport = err
			r.mu.Unlock()
		}
	}
	return resp, err
}

func (p *Provider) credentialTransport() policy.Transporter {
	inner := p.opts.Transport
	if inner == nil {
		inner = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return recordingTransport{inner: inner}
}

// classifiedCredential wraps an azidentity credential so that its failures
// can be told apart (unreachable, refused, throttled, misconfigured).
type classifiedCredential struct {
	inner              azcore.TokenCredential
	auth               esv1.AzureAuthType
	clientID, tenantID string
}

func (c *classifiedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	rec := &tokenRecorder{}
	tok, err := c.inner.GetToken(context.WithValue(ctx, recorderKey{}, rec), opts)
	if err != nil {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return tok, &tokenError{err: err, transport: rec.transport, assertion: rec.assertion, cred: c}
	}
	return tok, nil
}

// tokenError is a failure to get an access token.
type tokenError struct {
	err       error
	transport error
	assertion error
	cred      *classifiedCredential
}

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

func (e *tokenError) who() string {
	switch {
	case e.cred.auth == esv1.AzureManagedIdentity && e.cred.clientID == "":
		return "the managed identity"
	case e.cred.auth == esv1.AzureManagedIdentity:
		return fmt.Sprintf("managed identity %s", e.cred.clientID)
	default:
		return fmt.Sprintf("client %s in tenant %s", e.cred.clientID, e.cred.tenantID)
	}
}

// describe maps a token failure to a sentinel with a message that names the
// identity and Entra ID's reason, never a credential.
func (e *tokenError) describe() error {
	switch {
	case e.assertion != nil:
		return fmt.Errorf("getting a client assertion for %s: %w", e.who(), e.assertion)
	case e.transport != nil:
		return fmt.Errorf("%w: cannot reach Entra ID to authenticate %s: %v", provider.ErrUnreachable, e.who(), e.transport)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(e.err, &afe) && afe.RawResponse != nil {
		resp := afe.RawResponse
		reason := entraReason(resp)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header, time.Now()), Err: fmt.Errorf("Entra ID throttled token requests for %s: %s", e.who(), reason)}
		case resp.StatusCode >= 500:
			return fmt.Errorf("%w: Entra ID answered %d authenticating %s: %s", provider.ErrUnreachable, resp.StatusCode, e.who(), reason)
		default:
			return fmt.Errorf("%w: Entra ID refused %s (%d): %s", provider.ErrUnauthenticated, e.who(), resp.StatusCode, reason)
		}
	}
	return fmt.Errorf("%w: authenticating %s: %s", provider.ErrUnauthenticated, e.who(), oneLine(e.err.Error(), 400))
}

// entraReason extracts Entra ID's (or the managed identity endpoint's)
// explanation from an error response, without trace identifiers.
func entraReason(resp *http.Response) string {
	body, err := azruntime.Payload(resp)
	if err != nil || len(body) == 0 {
		return resp.Status
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return resp.Status
	}
	desc := e.Description
	if i := strings.Index(desc, " Trace ID:"); i >= 0 {
		desc = desc[:i]
	}
	switch {
	case e.Error != "" && desc != "":
		return oneLine(e.Error+": "+desc, 400)
	case e.Error != "":
		return e.Error
	case e.Message != "":
		return oneLine(e.Message, 400)
	}
	return resp.Status
}

// mapError turns an SDK error into an error wrapping provider's sentinels;
// what names the object, such as `secret "db-password"`.
func mapError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var te *tokenError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %w", what, te.describe())
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %w", what, vaultError(re))
	}
	if isNetworkError(err) {
		return fmt.Errorf("%s: %w: %v", what, provider.ErrUnreachable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// vaultError describes a Key Vault error response.
func vaultError(re *azcore.ResponseError) error {
	code, msg := re.ErrorCode, ""
	if re.RawResponse != nil {
		if body, err := azruntime.Payload(re.RawResponse); err == nil {
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
					Inner   *struct {
						Code string `json:"code"`
					} `json:"innererror"`
				} `json:"error"`
			}
			if json.Unmarshal(body, &e) == nil {
				if e.Error.Code != "" {
					code = e.Error.Code
				}
				if e.Error.Inner != nil && e.Error.Inner.Code != "" {
					code += "/" + e.Error.Inner.Code
				}
				msg = oneLine(e.Error.Message, 400)
			}
		}
	}
	detail := fmt.Sprintf("Key Vault answered %d", re.StatusCode)
	if code != "" {
		detail += " " + code
	}
	if msg != "" {
		detail += ": " + msg
	}
	switch {
	case re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s", provider.ErrNotFound, detail)
	case re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s", provider.ErrForbidden, detail)
	case re.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", provider.ErrUnauthenticated, detail)
	case re.StatusCode == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfterOf(re), Err: errors.New(detail)}
	case re.StatusCode == http.StatusServiceUnavailable && retryAfterOf(re) > 0:
		return &provider.ThrottledError{RetryAfter: retryAfterOf(re), Err: errors.New(detail)}
	case re.StatusCode >= 500:
		return fmt.Errorf("%w: %s", provider.ErrUnreachable, detail)
	default:
		return errors.New(detail)
	}
}

func retryAfterOf(re *azcore.ResponseError) time.Duration {
	if re.RawResponse == nil {
		return 0
	}
	return retryAfter(re.RawResponse.Header, time.Now())
}

// retryAfter reads how long a response asks to wait: retry-after-ms or
// x-ms-retry-after-ms (milliseconds), or Retry-After (seconds or an HTTP
// date). It returns 0 when none is given.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

func isNetworkError(err error) bool {
	var (
		netErr  net.Error
		opErr   *net.OpError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		uaErr   x509.UnknownAuthorityError
		hostErr x509.HostnameError
	)
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &netErr) ||
		errors.As(err, &certErr) || errors.As(err, &uaErr) || errors.As(err, &hostErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// oneLine flattens and shortens a service message.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		for limit > 0 && !utf8.RuneStart(s[limit]) {
			limit--
		}
		s = s[:limit] + "…"
	}
	return s
}
