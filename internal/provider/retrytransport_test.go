package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/keyferry/keyferry/internal/testing/testserver/dropproxy"
)

func TestRetryDroppedRepeatsOnlyIdempotentReadsOfDroppedConnections(t *testing.T) {
	for _, tt := range []struct {
		name         string
		method       string
		cut          int64
		status       int
		wantAttempts int64
		wantErr      bool
	}{
		{"GET cut once succeeds on the second attempt", http.MethodGet, 1, 200, 2, false},
		{"GET cut every time fails after two attempts", http.MethodGet, 10, 200, 2, true},
		{"POST cut once is not repeated", http.MethodPost, 1, 200, 1, true},
		{"429 is one request, answered as it is", http.MethodGet, 0, http.StatusTooManyRequests, 1, false},
		{"503 is one request, answered as it is", http.MethodGet, 0, http.StatusServiceUnavailable, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := dropproxy.StartServer(t, dropproxy.ServerOptions{Drop: tt.cut, Status: tt.status, Body: `{"value":"0123456789abcdef"}`})
			c := &http.Client{Transport: RetryDropped{Next: http.DefaultTransport.(*http.Transport).Clone()}}
			req, _ := http.NewRequestWithContext(context.Background(), tt.method, srv.URL()+"/v1/secret", strings.NewReader(`{}`))
			if tt.method == http.MethodGet {
				req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
			}
			resp, err := c.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil && resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if err == nil && !strings.HasSuffix(string(body), `"}`) {
				t.Fatalf("body %q is not whole", body)
			}
			if got := srv.Attempts(); got != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestIsDroppedConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"EOF", fmt.Errorf("reading: %w", io.EOF), true},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"broken pipe", &net.OpError{Op: "write", Err: syscall.EPIPE}, true},
		{"closed connection", fmt.Errorf("read tcp: %w", net.ErrClosed), true},
		{"text only", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection"), true},
		{"grpc transport closing", errors.New("rpc error: code = Unavailable desc = error reading from server: EOF"), true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{"refused text", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"nil", nil, false},
		{"an answer", errors.New("the webhook answered 503 Service Unavailable"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsDroppedConnection(tt.err); got != tt.want {
				t.Fatalf("IsDroppedConnection(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
