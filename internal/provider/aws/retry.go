package aws

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/keyferry/keyferry/internal/provider"
)

// newRetryer is the SDK retryer of every client (the services and STS). It
// repeats a call at once, on a new connection, only when the connection
// dropped under it (provider.IsDroppedConnection: a keep-alive connection
// closed by the server or a load balancer), at most
// provider.TransportRetries times; every read keyferry makes is idempotent.
// Throttling, 5xx answers, refused connections and timeouts are not
// retried by the SDK: the error goes to the fetch layer, which backs the
// store off (Retry-After included), so an outage costs one call per
// backoff, not several, and AWS bills no extra calls.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 1 + provider.TransportRetries
		o.Retryables = []retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if provider.IsDroppedConnection(err) {
					return aws.TrueTernary
				}
				return aws.FalseTernary
			}),
		}
		// No client-side retry quota: there are at most TransportRetries
		// retries of rare dropped connections.
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}
