// Package kube holds small Kubernetes helpers shared by providers and
// controllers.
package kube

import (
	"context"
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
}

type cachedToken struct {
	token   string
	expires time.Time
}

// DefaultTokenExpiry is the lifetime requested when the caller asks for none.
const DefaultTokenExpiry = time.Hour

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
