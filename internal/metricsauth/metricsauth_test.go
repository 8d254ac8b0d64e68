package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/testing/poll"
	"github.com/keyferry/keyferry/internal/testing/testlog"
)

// testCluster is the API server the tests review against, started by the
// first test that needs it (the fuzz workers of this package never do).
// The package cannot use testenv: testenv runs the operator, which imports
// this package.
var testCluster devcluster.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	_ = testCluster.Stop()
	os.Exit(code)
}

// apiConfig is the admin config of the test API server.
func apiConfig(t *testing.T) *rest.Config {
	t.Helper()
	c, err := testCluster.Get()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	return c.Config
}

// testConfig is defaultConfig on clock with quick retries.
func testConfig(clock *fakeClock) config {
	c := defaultConfig()
	c.now = clock.now
	c.retry = backoff{initial: time.Millisecond, factor: 1.5, steps: 3}
	return c
}

// fixture is a namespace with two ServiceAccounts: scraper may get
// /metrics, nobody may not.
type fixture struct {
	ns string
	cs kubernetes.Interface
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(apiConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ns: ns.Name, cs: cs}
	for _, name := range []string{"scraper", "nobody"} {
		if _, err := cs.CoreV1().ServiceAccounts(f.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	role := "metrics-reader-" + f.ns
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: "scraper"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), role, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role, metav1.DeleteOptions{})
	})
	// The API server's RBAC authorizer reads bindings from an informer:
	// wait until it sees this one, or the filter would cache a denial.
	poll.Until(t, "RBAC to allow scraper get on /metrics", func(ctx context.Context) (bool, string) {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:                  f.user("scraper"),
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + f.ns, allAuthenticated},
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		return sar.Status.Allowed, "not allowed yet: " + sar.Status.Reason
	})
	return f
}

func (f *fixture) user(sa string) string { return "system:serviceaccount:" + f.ns + ":" + sa }

// token requests a token for the ServiceAccount sa and waits until the API
// server authenticates it.
func (f *fixture) token(t *testing.T, sa string) string {
	t.Helper()
	tr, err := f.cs.CoreV1().ServiceAccounts(f.ns).CreateToken(context.Background(), sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s: %v", sa, err)
	}
	token := tr.Status.Token
	poll.Until(t, "the token of "+sa+" to be authenticated", func(ctx context.Context) (bool, string) {
		rev, err := f.cs.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		return rev.Status.Authenticated, "not authenticated"
	})
	return token
}

// apiCounter counts the reviews sent through the real transport.
type apiCounter struct {
	next                        http.RoundTripper
	tokenReviews, accessReviews atomic.Int64
}

func (c *apiCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case strings.HasSuffix(req.URL.Path, "/tokenreviews"):
		c.tokenReviews.Add(1)
	case strings.HasSuffix(req.URL.Path, "/subjectaccessreviews"):
		c.accessReviews.Add(1)
	}
	return c.next.RoundTrip(req)
}

func (c *apiCounter) counts() string {
	return fmt.Sprintf("%d TokenReviews, %d SubjectAccessReviews", c.tokenReviews.Load(), c.accessReviews.Load())
}

// served is a trivial handler behind the filter, on an httptest server.
type served struct {
	url      string
	r        *reviewer
	api      *apiCounter
	logs     *testlog.Buffer
	handled  atomic.Int64
	sawToken atomic.Bool
}

func serve(t *testing.T, restCfg *rest.Config, cfg config) *served {
	t.Helper()
	hc, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{api: &apiCounter{next: hc.Transport}, logs: &testlog.Buffer{}}
	hc.Transport = s.api
	if s.r, err = newReviewer(restCfg, hc, cfg); err != nil {
		t.Fatal(err)
	}
	h, err := s.r.filter(testlog.Debug(s.logs), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.handled.Add(1)
		if req.Header.Get("Authorization") != "" {
			s.sawToken.Store(true)
		}
		_, _ = io.WriteString(w, "metrics")
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/metrics"
	return s
}

// do sends a request with the Authorization header authz (none if empty).
func (s *served) do(t *testing.T, method, authz string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// expect sends a request and checks the answer.
func (s *served) expect(t *testing.T, method, authz string, code int, body string) {
	t.Helper()
	if gotCode, gotBody := s.do(t, method, authz); gotCode != code || gotBody != body {
		t.Fatalf("%s: HTTP %d %q, want HTTP %d %q", method, gotCode, gotBody, code, body)
	}
}

// assertNoLeak fails if a token appears in what the filter logged.
func (s *served) assertNoLeak(t *testing.T, tokens ...string) {
	t.Helper()
	logs := s.logs.String()
	for _, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Fatalf("a bearer token appeared in the logs:\n%s", logs)
		}
	}
	if s.sawToken.Load() {
		t.Fatal("the wrapped handler saw the Authorization header")
	}
}

func TestFilterAnswersByTokenAndPermission(t *testing.T) {
	f := newFixture(t)
	scraper, nobody := f.token(t, "scraper"), f.token(t, "nobody")
	garbage := "not-a-token-canary"
	s := serve(t, apiConfig(t), testConfig(newFakeClock()))
	cases := []struct {
		name, method, authz string
		code                int
		body                string
	}{
		{"no Authorization header", http.MethodGet, "", http.StatusUnauthorized, "Unauthorized"},
		{"another scheme", http.MethodGet, "Basic dXNlcjpwYXNz", http.StatusUnauthorized, "Unauthorized"},
		{"Bearer without a token", http.MethodGet, "Bearer", http.StatusUnauthorized, "Unauthorized"},
		{"a token the API server does not know", http.MethodGet, "Bearer " + garbage, http.StatusUnauthorized, "Unauthorized"},
		{"a ServiceAccount without get on /metrics", http.MethodGet, "Bearer " + nobody, http.StatusForbidden, "Authorization denied for user " + f.user("nobody")},
		{"a ServiceAccount allowed to get /metrics", http.MethodGet, "Bearer " + scraper, http.StatusOK, "metrics"},
		{"the scheme in lower case", http.MethodGet, "bearer " + scraper, http.StatusOK, "metrics"},
		{"a POST by the ServiceAccount allowed to get", http.MethodPost, "Bearer " + scraper, http.StatusForbidden, "Authorization denied for user " + f.user("scraper")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.handled.Load()
			s.expect(t, c.method, c.authz, c.code, c.body)
			if ran := s.handled.Load() > before; ran != (c.code == http.StatusOK) {
				t.Errorf("the wrapped handler ran: %v", ran)
			}
		})
	}
	s.assertNoLeak(t, scraper, nobody, garbage)
	if s.r.users.len() != 2 {
		t.Errorf("%d users cached, want the 2 authenticated tokens only", s.r.users.len())
	}
}

func TestReviewsAreCached(t *testing.T) {
	f := newFixture(t)
	scraper, nobody := f.token(t, "scraper"), f.token(t, "nobody")
	clock := newFakeClock()
	s := serve(t, apiConfig(t), testConfig(clock))
	want := func(step string, tokenReviews, accessReviews int64) {
		t.Helper()
		if s.api.tokenReviews.Load() != tokenReviews || s.api.accessReviews.Load() != accessReviews {
			t.Fatalf("%s: %s, want %d and %d", step, s.api.counts(), tokenReviews, accessReviews)
		}
	}
	allowed := "Bearer " + scraper
	s.expect(t, http.MethodGet, allowed, http.StatusOK, "metrics")
	s.expect(t, http.MethodGet, allowed, http.StatusOK, "metrics")
	want("two GETs with one token", 1, 1)

	clock.advance(time.Minute) // the token's entry expires, the allowed decision not
	s.expect(t, http.MethodGet, allowed, http.StatusOK, "metrics")
	want("after a minute", 2, 1)

	clock.advance(5 * time.Minute) // both expire
	s.expect(t, http.MethodGet, allowed, http.StatusOK, "metrics")
	want("after five more minutes", 3, 2)

	denied := "Bearer " + nobody
	msg := "Authorization denied for user " + f.user("nobody")
	s.expect(t, http.MethodGet, denied, http.StatusForbidden, msg)
	s.expect(t, http.MethodGet, denied, http.StatusForbidden, msg)
	want("two denied GETs with one token", 4, 3)

	clock.advance(30 * time.Second) // the denial expires, the token not
	s.expect(t, http.MethodGet, denied, http.StatusForbidden, msg)
	want("a denied GET 30s later", 4, 4)

	s.expect(t, http.MethodGet, "Bearer not-a-token", http.StatusUnauthorized, "Unauthorized")
	s.expect(t, http.MethodGet, "Bearer not-a-token", http.StatusUnauthorized, "Unauthorized")
	want("a token the API server refuses is not cached", 6, 4)
	s.assertNoLeak(t, scraper, nobody)
}

func TestCachesAreBounded(t *testing.T) {
	f := newFixture(t)
	const max = 2
	tokens := make([]string, max+1)
	for i := range tokens {
		tokens[i] = f.token(t, "scraper")
	}
	clock := newFakeClock()
	cfg := testConfig(clock)
	cfg.maxEntries = max
	s := serve(t, apiConfig(t), cfg)
	for _, tok := range tokens {
		s.expect(t, http.MethodGet, "Bearer "+tok, http.StatusOK, "metrics")
		clock.advance(time.Second)
	}
	if users, decisions := s.r.users.len(), s.r.decisions.len(); users != max || decisions > max {
		t.Fatalf("%d users and %d decisions cached after %d tokens, want %d and at most %d", users, decisions, len(tokens), max, max)
	}
	// The newest token is still cached, the oldest was dropped.
	before := s.api.tokenReviews.Load()
	s.expect(t, http.MethodGet, "Bearer "+tokens[max], http.StatusOK, "metrics")
	if s.api.tokenReviews.Load() != before {
		t.Errorf("the newest token was reviewed again: %s", s.api.counts())
	}
	s.expect(t, http.MethodGet, "Bearer "+tokens[0], http.StatusOK, "metrics")
	if s.api.tokenReviews.Load() != before+1 {
		t.Errorf("the oldest token was not reviewed again: %s", s.api.counts())
	}
	s.assertNoLeak(t, tokens...)
}

// unreachable is a client configuration for an API server that is not
// listening.
func unreachable(t *testing.T) *rest.Config {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	return &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func TestUnreachableAPIServerAnswers500AndCachesNothing(t *testing.T) {
	token := "unreachable-token-canary"
	cfg := testConfig(newFakeClock())
	t.Run("authentication", func(t *testing.T) {
		s := serve(t, unreachable(t), cfg)
		s.expect(t, http.MethodGet, "Bearer "+token, http.StatusInternalServerError, "Authentication failed")
		if n := s.api.tokenReviews.Load(); n != int64(cfg.retry.steps) {
			t.Errorf("%d TokenReview attempts, want %d", n, cfg.retry.steps)
		}
		if n := s.r.users.len(); n != 0 {
			t.Errorf("%d users cached after a failed review", n)
		}
		if !strings.Contains(s.logs.String(), "Authentication failed") {
			t.Errorf("the failure was not logged:\n%s", s.logs.String())
		}
		s.assertNoLeak(t, token)
	})
	t.Run("authorisation", func(t *testing.T) {
		s := serve(t, unreachable(t), cfg)
		s.r.users.set(sha256.Sum256([]byte(token)), userInfo{name: "alice", groups: []string{allAuthenticated}}, time.Minute)
		s.expect(t, http.MethodGet, "Bearer "+token, http.StatusInternalServerError, "Authorization for user alice failed")
		if n := s.api.accessReviews.Load(); n != int64(cfg.retry.steps) {
			t.Errorf("%d SubjectAccessReview attempts, want %d", n, cfg.retry.steps)
		}
		if n := s.r.decisions.len(); n != 0 {
			t.Errorf("%d decisions cached after a failed review", n)
		}
		if s.handled.Load() != 0 {
			t.Error("the wrapped handler ran")
		}
		s.assertNoLeak(t, token)
	})
}

func TestRetriesStopAtTheReviewTimeout(t *testing.T) {
	cfg := testConfig(newFakeClock())
	cfg.retry = backoff{initial: 20 * time.Millisecond, factor: 1.5, steps: 1000}
	cfg.reviewTimeout = 300 * time.Millisecond
	s := serve(t, unreachable(t), cfg)
	s.expect(t, http.MethodGet, "Bearer some-token", http.StatusInternalServerError, "Authentication failed")
	// 20ms growing by half each time: the timeout leaves room for few.
	if n := s.api.tokenReviews.Load(); n < 1 || n > 10 {
		t.Errorf("%d TokenReview attempts within 300ms, want a few", n)
	}
}

func TestReviewTheOperatorMayNotMakeIsNotRetried(t *testing.T) {
	f := newFixture(t)
	scraper, nobody := f.token(t, "scraper"), f.token(t, "nobody")
	// The filter acts as nobody, who may not create TokenReviews.
	restCfg := rest.AnonymousClientConfig(apiConfig(t))
	restCfg.BearerToken = nobody
	s := serve(t, restCfg, testConfig(newFakeClock()))
	s.expect(t, http.MethodGet, "Bearer "+scraper, http.StatusInternalServerError, "Authentication failed")
	if n := s.api.tokenReviews.Load(); n != 1 {
		t.Errorf("%d TokenReview attempts, want 1: a refusal is not retried", n)
	}
	if !strings.Contains(s.logs.String(), "forbidden") {
		t.Errorf("the refusal was not logged:\n%s", s.logs.String())
	}
	s.assertNoLeak(t, scraper, nobody)
}

func ptr[T any](v T) *T { return &v }
