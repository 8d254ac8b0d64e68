package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

// policyCanary is in a policy document that a Secret holds: no error may
// quote it.
const policyCanary = "kf-policy-canary-2c9d"

// fakeSM answers Secrets Manager's JSON protocol for one existing secret
// keyferry manages (value "v"), with the answers a test sets for the
// resource policy calls: what moto cannot produce (AWS refusing a policy,
// credentials without the policy permissions).
type fakeSM struct {
	mu      sync.Mutex
	answers map[string]string // action → AWS error code, "" for success
	calls   []string
}

func (f *fakeSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	target := r.Header.Get("X-Amz-Target")
	action := target[strings.LastIndex(target, ".")+1:]
	f.mu.Lock()
	f.calls = append(f.calls, action)
	code := f.answers[action]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if code != "" {
		w.WriteHeader(http.StatusBadRequest)
		msg := "refused"
		if action == "PutResourcePolicy" {
			// AWS's message may quote the policy it was sent.
			msg = "refused policy " + policyCanary
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
		return
	}
	var out map[string]any
	switch action {
	case "DescribeSecret":
		out = map[string]any{"Name": "s", "ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:s-abcdef",
			"Tags":               []map[string]string{{"Key": provider.ManagedByKey, "Value": provider.ManagedByValue}},
			"VersionIdsToStages": map[string][]string{"v1": {"AWSCURRENT"}}}
	case "GetSecretValue":
		out = map[string]any{"Name": "s", "SecretString": "v", "VersionId": "v1"}
	default:
		out = map[string]any{"Name": "s"}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeSM) called(action string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == action {
			return true
		}
	}
	return false
}

// What AWS refuses about a resource policy reaches the user without the
// policy: a malformed or public policy is an invalid push (fixing the
// policy lifts it), a denied call keeps its meaning, and neither quotes a
// policy that comes from a Secret. Credentials that may not delete a
// policy do not fail pushes that set none.
func TestPushSecretsManagerPolicyErrors(t *testing.T) {
	ctx := context.Background()
	secretPolicy := `{"resourcePolicy":{"policySourceRef":{"kind":"Secret","name":"p","key":"policy.json"}},"secretPushFormat":"string"}`
	for _, tc := range []struct {
		name    string
		answers map[string]string
		spec    string
		want    error // nil: the push succeeds
		code    string
	}{
		{name: "malformed policy", answers: map[string]string{"PutResourcePolicy": "MalformedPolicyDocumentException"}, spec: secretPolicy, want: provider.ErrInvalidPush, code: "MalformedPolicyDocumentException"},
		{name: "public policy blocked", answers: map[string]string{"PutResourcePolicy": "PublicPolicyException"}, spec: secretPolicy, want: provider.ErrInvalidPush, code: "PublicPolicyException"},
		{name: "put denied", answers: map[string]string{"PutResourcePolicy": "AccessDeniedException"}, spec: secretPolicy, want: provider.ErrForbidden, code: "AccessDeniedException"},
		{name: "get denied", answers: map[string]string{"GetResourcePolicy": "AccessDeniedException"}, spec: secretPolicy, want: provider.ErrForbidden},
		{name: "no policy, delete denied", answers: map[string]string{"DeleteResourcePolicy": "AccessDeniedException"}, spec: `{"secretPushFormat":"string"}`},
		{name: "no policy, delete fails otherwise", answers: map[string]string{"DeleteResourcePolicy": "InternalServiceError"}, spec: `{"secretPushFormat":"string"}`, want: errors.New("any")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSM{answers: tc.answers}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{SecretsManager: srv.URL, STS: srv.URL}}
			c, ok := newClient(t, p, smSpec()).(provider.Pusher)
			if !ok {
				t.Fatal("not a provider.Pusher")
			}
			ref := provider.PushRef{RemoteKey: "s"}
			st, err := c.Inspect(ctx, ref)
			if err != nil || !st.Managed {
				t.Fatalf("Inspect = %+v, %v", st, err)
			}
			v := withMeta(key("k", "v"), tc.spec)
			v.Sources = objectSources{"Secret/p": {"policy.json": `{"Version":"2012-10-17","Sid":"` + policyCanary + `"}`}}
			_, err = c.Push(ctx, ref, v, st)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Push: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Push succeeded")
			}
			if tc.want.Error() != "any" && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), policyCanary) {
				t.Fatalf("err = %q quotes the policy", err)
			}
			if !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("err = %q; want AWS's code %s", err, tc.code)
			}
			if f.called("PutSecretValue") {
				t.Fatal("the value was written after the policy failed")
			}
		})
	}
}
