package provider

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// TransportRetries is how many times a provider repeats an idempotent read
// at once, without waiting, when the connection dropped under it
// (IsDroppedConnection): one retry, so at most two attempts. Anything else
// (throttling, 5xx, refused connections, timeouts) is not retried by the
// provider or its SDK: it goes to the fetch layer, which backs the store off.
const TransportRetries = 1

// IsDroppedConnection says whether err means a connection closed under a
// request: the peer reset or closed it (often a keep-alive connection the
// server or a load balancer had just timed out), or the response ended
// early. Repeating an idempotent read on a fresh connection then almost
// always succeeds, and failing the fetch would back the whole store off for
// nothing.
//
// A refused connection, a timeout, a cancelled context, a TLS verification
// failure or any answer from the server are not dropped connections: a
// retry would only double the calls to a store that is down.
func IsDroppedConnection(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, net.ErrClosed):
		return true
	}
	// Errors that lost their chain on the way through an SDK or gRPC keep
	// only their text.
	msg := err.Error()
	if strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "connection refused") {
		return false
	}
	for _, s := range []string{
		"use of closed network connection",
		"connection reset by peer",
		"broken pipe",
		"server closed idle connection",
		"unexpected EOF",
		"http2: server sent GOAWAY",
		"http2: client connection lost",
		"transport is closing",      // gRPC
		"error reading from server", // gRPC
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return strings.HasSuffix(msg, ": EOF") || msg == "EOF"
}
