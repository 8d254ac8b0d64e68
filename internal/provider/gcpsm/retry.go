package gcpsm

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyferry/keyferry/internal/provider"
)

// droppedRetryer is the gax.Retryer of one call: it repeats the call at
// once when the connection dropped under it (gRPC's Unavailable with a
// transport message such as "error reading from server: EOF" or
// "connection reset by peer"), left more times. Unavailable sent by the
// server, refused connections, ResourceExhausted (throttling) and every
// other code go to the engine's backoff.
type droppedRetryer struct {
	left int
}

// Retry implements gax.Retryer.
func (r *droppedRetryer) Retry(err error) (time.Duration, bool) {
	if r.left <= 0 || !isDroppedCall(err) {
		return 0, false
	}
	r.left--
	return 0, true
}

// isDroppedCall says whether err is a call lost with its connection.
func isDroppedCall(err error) bool {
	s, ok := status.FromError(err)
	if !ok {
		return provider.IsDroppedConnection(err)
	}
	return s.Code() == codes.Unavailable && provider.IsDroppedConnection(s.Err())
}
