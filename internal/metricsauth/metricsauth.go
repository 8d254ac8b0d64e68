// Package metricsauth authenticates and authorises requests to the
// operator's metrics endpoint with the Kubernetes API server, as
// controller-runtime's filters.WithAuthenticationAndAuthorization does, but
// with client-go's typed clients only, so that the operator binary does not
// link k8s.io/apiserver.
//
// A request must carry "Authorization: Bearer <token>". The token is checked
// with a TokenReview; the user it names must then be allowed, by a
// SubjectAccessReview, the non-resource URL of the request (its path) with
// the lower-case HTTP method as verb, e.g. get on /metrics. Answers:
//
//   - no bearer token, or a token the API server does not authenticate: 401;
//   - a user not allowed the path and verb: 403;
//   - a review that cannot be made (API server unreachable, operator not
//     allowed to create reviews): 500;
//   - otherwise the wrapped handler serves the request.
//
// Authenticated tokens are cached for a minute (under a SHA-256 of the
// token, never the token), authorisation decisions for five minutes when
// allowed and thirty seconds when denied. Each cache holds a bounded number
// of entries. Failed reviews are retried with backoff for at most ten
// seconds and are never cached. The token never appears in a log, an error
// or a response.
package metricsauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Filter returns a metrics server filter that authenticates each request's
// bearer token with a TokenReview and authorises its path and verb with a
// SubjectAccessReview, using the API server cfg and httpClient point at (a
// nil httpClient is built from cfg). It has the signature of
// controller-runtime's filters.WithAuthenticationAndAuthorization, so it can
// be used as metricsserver.Options.FilterProvider.
//
// The operator's identity needs create on tokenreviews.authentication.k8s.io
// and subjectaccessreviews.authorization.k8s.io; a scraper needs get on the
// non-resource URL /metrics.
func Filter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	r, err := newReviewer(cfg, httpClient, defaultConfig())
	if err != nil {
		return nil, err
	}
	return r.filter, nil
}

// config holds the caching and retry settings; tests shorten them.
type config struct {
	// tokenTTL is how long an authenticated token is remembered.
	tokenTTL time.Duration
	// allowTTL and denyTTL are how long an authorisation decision is
	// remembered.
	allowTTL, denyTTL time.Duration
	// maxEntries bounds each cache.
	maxEntries int
	// reviewTimeout bounds one review, retries included.
	reviewTimeout time.Duration
	// retry spaces the attempts of a review that failed.
	retry backoff
	// now is the clock the caches use.
	now func() time.Time
}

// backoff is a capped exponential backoff: up to steps attempts, the first
// retry after initial, each following one factor times later, with up to
// 20% jitter.
type backoff struct {
	initial time.Duration
	factor  float64
	steps   int
}

// defaultConfig is what controller-runtime configures for its filter: the
// API server's defaults for delegated authentication and authorisation.
func defaultConfig() config {
	return config{
		tokenTTL:      time.Minute,
		allowTTL:      5 * time.Minute,
		denyTTL:       30 * time.Second,
		maxEntries:    1024,
		reviewTimeout: 10 * time.Second,
		retry:         backoff{initial: 500 * time.Millisecond, factor: 1.5, steps: 5},
		now:           time.Now,
	}
}

// reviewer makes and caches TokenReviews and SubjectAccessReviews.
type reviewer struct {
	cfg       config
	tokens    authnv1client.TokenReviewInterface
	access    authzv1client.SubjectAccessReviewInterface
	users     *ttlCache[[32]byte, userInfo]
	decisions *ttlCache[[32]byte, decision]
}

func newReviewer(restCfg *rest.Config, httpClient *http.Client, cfg config) (*reviewer, error) {
	if httpClient == nil {
		var err error
		if httpClient, err = rest.HTTPClientFor(restCfg); err != nil {
			return nil, fmt.Errorf("building the HTTP client for TokenReviews and SubjectAccessReviews: %w", err)
		}
	}
	authn, err := authnv1client.NewForConfigAndClient(restCfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building the TokenReview client: %w", err)
	}
	authz, err := authzv1client.NewForConfigAndClient(restCfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building the SubjectAccessReview client: %w", err)
	}
	return &reviewer{
		cfg:       cfg,
		tokens:    authn.TokenReviews(),
		access:    authz.SubjectAccessReviews(),
		users:     newTTLCache[[32]byte, userInfo](cfg.maxEntries, cfg.now),
		decisions: newTTLCache[[32]byte, decision](cfg.maxEntries, cfg.now),
	}, nil
}

// filter wraps next so that it serves only authenticated and authorised
// requests; it is a metricsserver.Filter.
func (r *reviewer) filter(log logr.Logger, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.allow(req.Context(), log, w, req) {
			return
		}
		// As the API server does: nothing behind the filter needs the
		// token, so nothing behind it can leak it.
		req.Header.Del("Authorization")
		next.ServeHTTP(w, req)
	}), nil
}

// allow answers the request with an error and returns false unless its
// bearer token is authenticated and its user allowed the path and verb.
func (r *reviewer) allow(ctx context.Context, log logr.Logger, w http.ResponseWriter, req *http.Request) bool {
	token, ok := bearerToken(req.Header.Get("Authorization"))
	if !ok {
		log.V(4).Info("Unauthorized: no bearer token", "path", req.URL.Path)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return false
	}
	user, ok, err := r.authenticate(ctx, token)
	if err != nil {
		log.Error(err, "Authentication failed")
		http.Error(w, "Authentication failed", http.StatusInternalServerError)
		return false
	}
	if !ok {
		log.V(4).Info("Unauthorized: the API server did not authenticate the bearer token", "path", req.URL.Path)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return false
	}
	d, err := r.authorize(ctx, user, strings.ToLower(req.Method), req.URL.Path)
	if err != nil {
		msg := fmt.Sprintf("Authorization for user %s failed", user.name)
		log.Error(err, msg)
		http.Error(w, msg, http.StatusInternalServerError)
		return false
	}
	if !d.allowed {
		msg := fmt.Sprintf("Authorization denied for user %s", user.name)
		log.V(4).Info(msg, "verb", strings.ToLower(req.Method), "path", req.URL.Path, "reason", d.reason)
		http.Error(w, msg, http.StatusForbidden)
		return false
	}
	return true
}
