package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// userInfo is the identity a TokenReview returned. Cached values are shared
// between requests and never modified.
type userInfo struct {
	name   string
	uid    string
	groups []string
	extra  map[string][]string
}

// decision is a SubjectAccessReview's answer.
type decision struct {
	allowed bool
	reason  string
}

// Identities the API server gives every authenticated or anonymous user
// (k8s.io/apiserver/pkg/authentication/user).
const (
	anonymousUser      = "system:anonymous"
	allAuthenticated   = "system:authenticated"
	allUnauthenticated = "system:unauthenticated"
)

// authenticate returns the user a bearer token belongs to, and false when
// the API server does not authenticate it. An error means the review could
// not be made; it never contains the token.
func (r *reviewer) authenticate(ctx context.Context, token string) (userInfo, bool, error) {
	key := sha256.Sum256([]byte(token))
	if u, ok := r.users.get(key); ok {
		return u, true, nil
	}
	var status authnv1.TokenReviewStatus
	err := r.retry(ctx, func(ctx context.Context) error {
		res, err := r.tokens.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		status = res.Status
		return nil
	})
	if err != nil {
		return userInfo{}, false, fmt.Errorf("creating a TokenReview: %w", err)
	}
	if !status.Authenticated {
		return userInfo{}, false, nil
	}
	u := userInfo{
		name:   status.User.Username,
		uid:    status.User.UID,
		groups: withAuthenticatedGroup(status.User.Username, status.User.Groups),
	}
	if len(status.User.Extra) > 0 {
		u.extra = make(map[string][]string, len(status.User.Extra))
		for k, v := range status.User.Extra {
			u.extra[k] = slices.Clone(v)
		}
	}
	r.users.set(key, u, r.cfg.tokenTTL)
	return u, true, nil
}

// withAuthenticatedGroup adds system:authenticated to the groups of a user
// that is neither anonymous nor already in system:authenticated or
// system:unauthenticated, as the API server's delegated authentication does.
// It never modifies groups.
func withAuthenticatedGroup(name string, groups []string) []string {
	if name == anonymousUser || slices.Contains(groups, allAuthenticated) || slices.Contains(groups, allUnauthenticated) {
		return slices.Clone(groups)
	}
	return append(slices.Clone(groups), allAuthenticated)
}

// authorize asks whether user may use verb on the non-resource URL path.
func (r *reviewer) authorize(ctx context.Context, user userInfo, verb, path string) (decision, error) {
	spec := authzv1.SubjectAccessReviewSpec{
		User:                  user.name,
		UID:                   user.uid,
		Groups:                user.groups,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
	}
	if user.extra != nil {
		spec.Extra = make(map[string]authzv1.ExtraValue, len(user.extra))
		for k, v := range user.extra {
			spec.Extra[k] = v
		}
	}
	key, err := decisionKey(spec)
	if err != nil {
		return decision{}, err
	}
	if d, ok := r.decisions.get(key); ok {
		return d, nil
	}
	var status authzv1.SubjectAccessReviewStatus
	err = r.retry(ctx, func(ctx context.Context) error {
		res, err := r.access.Create(ctx, &authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		status = res.Status
		return nil
	})
	if err != nil {
		return decision{}, fmt.Errorf("creating a SubjectAccessReview: %w", err)
	}
	d := decision{allowed: status.Allowed, reason: status.Reason}
	ttl := r.cfg.denyTTL
	if d.allowed {
		ttl = r.cfg.allowTTL
	}
	r.decisions.set(key, d, ttl)
	return d, nil
}

// decisionKey identifies a SubjectAccessReview by everything it asks: user,
// UID, groups, extra, verb and path. JSON is unambiguous (strings are
// quoted, map keys sorted); hashing bounds the size of a cache entry.
func decisionKey(spec authzv1.SubjectAccessReviewSpec) ([32]byte, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encoding the SubjectAccessReview: %w", err)
	}
	return sha256.Sum256(b), nil
}

// retry calls call until it succeeds, fails in a way retrying cannot fix,
// has been tried cfg.retry.steps times, or cfg.reviewTimeout (or ctx) ends.
// It returns call's last error.
func (r *reviewer) retry(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.reviewTimeout)
	defer cancel()
	delay := r.cfg.retry.initial
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || attempt >= r.cfg.retry.steps || !retriable(err) {
			return err
		}
		wait := delay
		if j := int64(delay) / 5; j > 0 {
			wait += time.Duration(rand.Int64N(j))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, context.Cause(ctx))
		case <-t.C:
		}
		delay = time.Duration(float64(delay) * r.cfg.retry.factor)
	}
}

// retriable tells whether a failed review may succeed when tried again: the
// API server was unreachable, overloaded or failed, rather than refused the
// request (e.g. the operator may not create reviews).
func retriable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError
	}
	return true
}
