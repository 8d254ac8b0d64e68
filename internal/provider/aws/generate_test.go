package aws_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

// generatorProvider is motoProvider with moto as ECR too.
func generatorProvider(rec *recorder) *awsprovider.Provider {
	p := motoProvider(rec)
	p.Endpoints.ECR = env.moto.Endpoint()
	return p
}

// generate runs the generator spec with the credentials of aws, as the
// engine's store for a generator in ns.
func generate(t *testing.T, p *awsprovider.Provider, aws esv1.AWSProvider, kind string, spec any) (map[string][]byte, error) {
	t.Helper()
	st := store(aws)
	st.Kind = kind
	return p.Generate(context.Background(), provider.Options{
		Store: st, Namespace: ns, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t),
	}, provider.GenerateRequest{Kind: kind, Spec: spec})
}

func TestGenerateECRAuthorizationTokenAgainstMoto(t *testing.T) {
	for _, tc := range []struct {
		name string
		role string
	}{
		{name: "static keys"},
		{name: "static keys then role", role: "arn:aws:iam::123456789012:role/ecr-reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			out, err := generate(t, generatorProvider(rec), esv1.AWSProvider{Region: region, Role: tc.role, Auth: secretRefAuth()},
				"ECRAuthorizationToken", &genv1alpha1.ECRAuthorizationTokenSpec{Region: region, Role: tc.role})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got := keys(out); got != "expires_at,password,proxy_endpoint,username" {
				t.Fatalf("keys = %s, want ESO's expires_at,password,proxy_endpoint,username", got)
			}
			// moto's token is base64("AWS:<account>-auth-token").
			if string(out["username"]) != "AWS" || !strings.HasSuffix(string(out["password"]), "-auth-token") {
				t.Fatalf("username/password not split from the token as ESO does")
			}
			if want := ".dkr.ecr." + region + ".amazonaws.com"; !strings.HasPrefix(string(out["proxy_endpoint"]), "https://") || !strings.HasSuffix(string(out["proxy_endpoint"]), want) {
				t.Fatalf("proxy_endpoint = %q", out["proxy_endpoint"])
			}
			if _, err := strconv.ParseInt(string(out["expires_at"]), 10, 64); err != nil {
				t.Fatalf("expires_at is not Unix seconds: %q", out["expires_at"])
			}
			calls := rec.calls("GetAuthorizationToken")
			if len(calls) != 1 {
				t.Fatalf("GetAuthorizationToken calls = %d, want 1", len(calls))
			}
			assumed := len(rec.calls("AssumeRole"))
			switch {
			case tc.role == "" && (assumed != 0 || calls[0].AccessKey != accessKeyID):
				t.Fatalf("without role: %d AssumeRole, token asked with key %q; want 0 and the secretRef's key", assumed, calls[0].AccessKey)
			case tc.role != "" && (assumed != 1 || calls[0].AccessKey == accessKeyID):
				t.Fatalf("with role: %d AssumeRole, token asked with key %q; want 1 and the role's key", assumed, calls[0].AccessKey)
			}
		})
	}
}

func TestGenerateSTSSessionTokenAgainstMoto(t *testing.T) {
	rec := newRecorder()
	dur, serial, code := int32(900), "arn:aws:iam::123456789012:mfa/user", "123456"
	before := time.Now()
	out, err := generate(t, generatorProvider(rec), esv1.AWSProvider{Region: region, Auth: secretRefAuth()}, "STSSessionToken",
		&genv1alpha1.STSSessionTokenSpec{Region: region, RequestParameters: &genv1alpha1.STSSessionTokenRequestParameters{
			SessionDuration: &dur, SerialNumber: &serial, TokenCode: &code,
		}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got := keys(out); got != "access_key_id,expiration,secret_access_key,session_token" {
		t.Fatalf("keys = %s, want ESO's access_key_id,expiration,secret_access_key,session_token", got)
	}
	exp, err := strconv.ParseInt(string(out["expiration"]), 10, 64)
	if err != nil {
		t.Fatalf("expiration is not Unix seconds: %q", out["expiration"])
	}
	// moto's session lasts DurationSeconds.
	if d := time.Unix(exp, 0).Sub(before); d < 890*time.Second || d > 910*time.Second {
		t.Fatalf("expiration is %s from now, want about sessionDuration 900s", d)
	}
	calls := rec.calls("GetSessionToken")
	if len(calls) != 1 {
		t.Fatalf("GetSessionToken calls = %d, want 1", len(calls))
	}
	f := calls[0].Form
	if f.Get("DurationSeconds") != "900" || f.Get("SerialNumber") != serial || f.Get("TokenCode") != code || calls[0].AccessKey != accessKeyID {
		t.Fatalf("GetSessionToken sent DurationSeconds=%q SerialNumber=%q TokenCode=%q with key %q", f.Get("DurationSeconds"), f.Get("SerialNumber"), f.Get("TokenCode"), calls[0].AccessKey)
	}
}

func TestGenerateRefusals(t *testing.T) {
	jwt := esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa"}}}
	for _, tc := range []struct {
		name    string
		aws     esv1.AWSProvider
		kind    string
		spec    any
		want    error
		message string
	}{
		{"STS with jwt", esv1.AWSProvider{Region: region, Auth: jwt}, "STSSessionToken", &genv1alpha1.STSSessionTokenSpec{Region: region, Auth: jwt},
			provider.ErrInvalidConfig, "spec.auth.jwt cannot be used by STSSessionToken"},
		{"ECR unknown scope", esv1.AWSProvider{Region: region, Auth: secretRefAuth()}, "ECRAuthorizationToken", &genv1alpha1.ECRAuthorizationTokenSpec{Region: region, Scope: "galactic"},
			provider.ErrInvalidConfig, `spec.scope "galactic"`},
		{"no region, named as the generator names it", esv1.AWSProvider{Auth: secretRefAuth()}, "ECRAuthorizationToken", &genv1alpha1.ECRAuthorizationTokenSpec{},
			provider.ErrInvalidConfig, "spec.region is required"},
		{"a kind the provider does not make", esv1.AWSProvider{Region: region, Auth: secretRefAuth()}, "Password", &genv1alpha1.PasswordSpec{},
			provider.ErrNotSupported, "makes no Password values"},
		{"missing credential Secret", esv1.AWSProvider{Region: region, Auth: esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
			AccessKeyID: esv1.SecretKeySelector{Name: "nope", Key: "k"}, SecretAccessKey: esv1.SecretKeySelector{Name: "nope", Key: "s"},
		}}}, "STSSessionToken", &genv1alpha1.STSSessionTokenSpec{Region: region}, provider.ErrInvalidConfig, "credential secret aws-test/nope not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			_, err := generate(t, generatorProvider(rec), tc.aws, tc.kind, tc.spec)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.message)
			}
			if strings.Contains(err.Error(), "spec.provider.aws.") {
				t.Fatalf("the message names the store's field, not the generator's: %v", err)
			}
			if len(rec.reqs) != 0 {
				t.Fatalf("%d requests sent for a refused generator", len(rec.reqs))
			}
			assertNoCanary(t, err)
		})
	}
}

func keys(m map[string][]byte) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ",")
}
