package provider

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// DefaultRetryBodyLimit is how much of a response RetryDropped reads into
// memory to see it arrive whole; a secret value is far smaller.
const DefaultRetryBodyLimit = 8 << 20

// RetryDropped is an http.RoundTripper for providers' HTTP clients: an
// idempotent request (GET, HEAD, OPTIONS) whose connection dropped before
// its response arrived whole (IsDroppedConnection) is sent again at once, on
// a new connection, at most TransportRetries times. Its response body is
// read into memory (up to BodyLimit) so that a body cut off mid-way counts
// as a dropped connection too, not as a broken value.
//
// Nothing else is retried: status codes (429, 5xx), refused connections and
// timeouts reach the provider as they are, and from it the fetch layer's
// backoff.
type RetryDropped struct {
	// Next sends the requests; nil uses http.DefaultTransport.
	Next http.RoundTripper
	// BodyLimit bounds the response body read into memory; 0 means
	// DefaultRetryBodyLimit. A larger body is passed on unread.
	BodyLimit int64
}

// RoundTrip implements http.RoundTripper.
func (r RetryDropped) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if !idempotentMethod(req.Method) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return next.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		resp, err := r.once(next, req)
		if err == nil || attempt >= TransportRetries || req.Context().Err() != nil || !IsDroppedConnection(err) {
			return resp, err
		}
		retry := req.Clone(req.Context())
		if req.GetBody != nil {
			if retry.Body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("rewinding the request body for a retry: %w", err)
			}
		}
		req = retry
	}
}

// once sends req and reads the response body into memory.
func (r RetryDropped) once(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	resp, err := next.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	limit := r.BodyLimit
	if limit <= 0 {
		limit = DefaultRetryBodyLimit
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	if int64(len(buf)) > limit {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
		return resp, nil
	}
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	return resp, nil
}

func idempotentMethod(m string) bool {
	switch m {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// CloseIdleConnections closes Next's idle connections, so that
// http.Client.CloseIdleConnections keeps working through RetryDropped.
func (r RetryDropped) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	if c, ok := r.Next.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}
