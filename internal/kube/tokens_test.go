package kube_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/kube"
)

// testCluster is the control plane of the integration tests, started by the
// first test that needs it (fuzz workers never do).
var testCluster devcluster.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	_ = testCluster.Stop()
	os.Exit(code)
}

// clientset returns a client of the control plane, started on first use.
func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := testCluster.Get()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func serviceAccount(t *testing.T, ns, name string) kubernetes.Interface {
	t.Helper()
	cs := clientset(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cs
}

// claims decodes a JWT's payload (the token comes from the API server).
func claims(t *testing.T, jwt string) (aud []string, lifetime time.Duration) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud []string `json:"aud"`
		Iat int64    `json:"iat"`
		Exp int64    `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Aud, time.Duration(c.Exp-c.Iat) * time.Second
}

// Issue 9, item 3: tokens live the shortest time the API server grants
// unless the caller asks for longer.
func TestTokensLiveTenMinutesByDefault(t *testing.T) {
	cs := serviceAccount(t, "tokens-expiry", "app")
	tok, expires, err := (&kube.TokenRequester{Client: cs}).ServiceAccountToken(context.Background(), "tokens-expiry", "app", []string{"vault"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	aud, life := claims(t, tok)
	if life != 10*time.Minute {
		t.Errorf("the token lives %s, want 10m", life)
	}
	if !slices.Equal(aud, []string{"vault"}) {
		t.Errorf("audiences %v", aud)
	}
	if d := time.Until(expires); d > 10*time.Minute || d < 8*time.Minute {
		t.Errorf("expires in %s", d)
	}
}

// APIAudiences learns the audiences of a token requested without any: the
// ones the API server accepts.
func TestAPIAudiencesAreTheAPIServersOwn(t *testing.T) {
	cs := serviceAccount(t, "tokens-audiences", "app")
	ctx := context.Background()
	tr := &kube.TokenRequester{Client: cs}
	got, err := tr.APIAudiences(ctx, "tokens-audiences", "app")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tr.ServiceAccountToken(ctx, "tokens-audiences", "app", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := claims(t, tok)
	if len(got) == 0 || !slices.Equal(got, want) {
		t.Errorf("APIAudiences = %v, want the audiences of a default token %v", got, want)
	}
}

func TestTokenAudiences(t *testing.T) {
	enc := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		jwt  string
		want []string
		ok   bool
	}{
		{enc(`{"aud":"a"}`), []string{"a"}, true},
		{enc(`{"aud":["a","b"]}`), []string{"a", "b"}, true},
		{enc(`{"aud":[]}`), nil, false},
		{enc(`{}`), nil, false},
		{enc(`not json`), nil, false},
		{"a.b", nil, false},
		{"a.!!!.c", nil, false},
	}
	for _, tt := range tests {
		got, err := kube.TokenAudiences(tt.jwt)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, %v", tt.jwt, got, err)
		}
	}
}

func FuzzTokenAudiences(f *testing.F) {
	f.Add("e30.eyJhdWQiOiJhIn0.c")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, jwt string) {
		aud, err := kube.TokenAudiences(jwt)
		if err != nil {
			if strings.Contains(err.Error(), jwt) && len(jwt) > 8 {
				t.Fatalf("the error quotes the token: %v", err)
			}
			return
		}
		if len(aud) == 0 {
			t.Fatal("no error and no audience")
		}
	})
}
