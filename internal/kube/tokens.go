// Package kube holds small Kubernetes helpers shared by providers and
// controllers.
package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TokenRequester requests ServiceAccount tokens through the TokenRequest API
// and reuses each until shortly before it expires. Tokens are never logged.
type TokenRequester struct {
	Client kubernetes.Interface
	// Now is the clock (tests).
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken
	// apiAudiences are the audiences of a token requested with none: the
	// API server's own. Learned once.
	apiAudiences []string
}

type cachedToken struct {
	token   string
	expires time.Time
}

// DefaultTokenExpiry is the lifetime requested when the caller asks for none:
// the shortest the TokenRequest API grants (600 s).
const DefaultTokenExpiry = 10 * time.Minute

// ServiceAccountToken returns a token for the ServiceAccount with the given
// audiences, valid for at least a fifth of its lifetime.
func (t *TokenRequester) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, expiry time.Duration) (string, time.Time, error) {
	if expiry <= 0 {
		expiry = DefaultTokenExpiry
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	aud := append([]string(nil), audiences...)
	sort.Strings(aud)
	key := namespace + "/" + name + "|" + strings.Join(aud, ",") + "|" + expiry.String()
	t.mu.Lock()
	if c, ok := t.cache[key]; ok && now().Add(expiry/5).Before(c.expires) {
		t.mu.Unlock()
		return c.token, c.expires, nil
	}
	t.mu.Unlock()
	secs := int64(expiry.Seconds())
	tr, err := t.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token request for service account %s/%s: %w", namespace, name, err)
	}
	c := cachedToken{token: tr.Status.Token, expires: tr.Status.ExpirationTimestamp.Time}
	t.mu.Lock()
	if t.cache == nil {
		t.cache = map[string]cachedToken{}
	}
	t.cache[key] = c
	t.mu.Unlock()
	return c.token, c.expires, nil
}

// APIAudiences returns the audiences this cluster's API server puts in a
// token requested without any, which are the audiences it accepts. It learns
// them once, from the claims of a token it requests for the ServiceAccount
// namespace/name and then discards (the token is never sent anywhere).
func (t *TokenRequester) APIAudiences(ctx context.Context, namespace, name string) ([]string, error) {
	t.mu.Lock()
	known := t.apiAudiences
	t.mu.Unlock()
	if known != nil {
		return known, nil
	}
	secs := int64(DefaultTokenExpiry.Seconds())
	tr, err := t.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token request for service account %s/%s: %w", namespace, name, err)
	}
	aud, err := TokenAudiences(tr.Status.Token)
	if err != nil {
		return nil, fmt.Errorf("reading the audiences of a token for service account %s/%s: %w", namespace, name, err)
	}
	t.mu.Lock()
	t.apiAudiences = aud
	t.mu.Unlock()
	return aud, nil
}

// TokenAudiences reads the aud claim of a JWT without verifying it (the
// caller got the token from the API server). The claim may be a string or a
// list of strings. Errors never quote the token.
func TokenAudiences(jwt string) ([]string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload is not base64url")
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("JWT payload is not a JSON object")
	}
	var one string
	if err := json.Unmarshal(claims.Aud, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(claims.Aud, &many); err != nil || len(many) == 0 {
		return nil, fmt.Errorf("JWT has no aud claim")
	}
	return many, nil
}
