package aws_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
)

// additionalRoles are assumed in order, then role with the external id and
// session tags; the store's reads are signed with the last role's
// temporary credentials.
func TestAssumeRoleChain(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "assume/db", "through-roles", nil)
	rec := newRecorder()
	spec := smSpec()
	spec.AdditionalRoles = []string{"arn:aws:iam::111111111111:role/hop-1", "arn:aws:iam::222222222222:role/hop-2"}
	spec.Role = "arn:aws:iam::123456789012:role/team-b"
	spec.ExternalID = "ext-42"
	spec.SessionTagsPolicy = "Custom"
	spec.CustomSessionTags = map[string]string{"env": "prod", "empty": ""}
	spec.SessionTags = []*esv1.AWSTag{{Key: "cost-center", Value: "cc-7"}}
	spec.TransitiveTagKeys = []string{"env"}
	c := newClient(t, motoProvider(rec), spec)

	v, err := c.GetSecret(ctx, provider.Ref{Key: "assume/db"})
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data) != "through-roles" {
		t.Fatalf("GetSecret = %q", v.Data)
	}
	calls := rec.calls("AssumeRole")
	var roles []string
	for _, c := range calls {
		roles = append(roles, c.Form.Get("RoleArn"))
	}
	want := append(slices.Clone(spec.AdditionalRoles), spec.Role)
	if !slices.Equal(roles, want) {
		t.Fatalf("assumed roles %v, want %v in this order", roles, want)
	}
	if calls[0].AccessKey != accessKeyID {
		t.Errorf("the first AssumeRole was signed by %q, want the store's key %q", calls[0].AccessKey, accessKeyID)
	}
	for i := 1; i < len(calls); i++ {
		if k := calls[i].AccessKey; k == accessKeyID || k == "" {
			t.Errorf("AssumeRole of %s was signed by %q, want the previous role's credentials", roles[i], k)
		}
	}
	for _, hop := range calls[:2] {
		if hop.Form.Get("ExternalId") != "" || hop.Form.Get("Tags.member.1.Key") != "" {
			t.Errorf("additional role %s was assumed with an external id or tags: %v", hop.Form.Get("RoleArn"), hop.Form)
		}
	}
	last := calls[2].Form
	if got := last.Get("ExternalId"); got != "ext-42" {
		t.Errorf("role assumed with ExternalId %q, want ext-42", got)
	}
	gotTags := map[string]string{}
	for i := 1; last.Get(formKey("Tags.member.", i, ".Key")) != ""; i++ {
		gotTags[last.Get(formKey("Tags.member.", i, ".Key"))] = last.Get(formKey("Tags.member.", i, ".Value"))
	}
	wantTags := map[string]string{
		"cost-center": "cc-7", "env": "prod",
		"esoNamespace": ns, "esoStoreName": "aws", "esoStoreKind": "SecretStore",
	}
	if len(gotTags) != len(wantTags) {
		t.Errorf("session tags %v, want %v", gotTags, wantTags)
	}
	for k, v := range wantTags {
		if gotTags[k] != v {
			t.Errorf("session tag %s = %q, want %q", k, gotTags[k], v)
		}
	}
	if got := last.Get("TransitiveTagKeys.member.1"); got != "env" {
		t.Errorf("transitive tag keys start with %q, want env", got)
	}
	sm := rec.calls("GetSecretValue")
	if len(sm) != 1 || !strings.HasPrefix(sm[0].AccessKey, "ASIA") {
		t.Errorf("GetSecretValue calls %+v, want one signed by the role's temporary credentials (ASIA...)", sm)
	}
	if err := c.Validate(ctx); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func formKey(prefix string, i int, suffix string) string {
	return prefix + strconv.Itoa(i) + suffix
}

// auth.jwt requests a token of the ServiceAccount for the audience
// sts.amazonaws.com and exchanges it for the role of its
// eks.amazonaws.com/role-arn annotation (or, without one, spec.role).
func TestWebIdentity(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "jwt/db", "from-web-identity", nil)
	const annotated, plain, roleARN = "irsa", "plain", "arn:aws:iam::123456789012:role/irsa"
	for _, sa := range []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: annotated, Annotations: map[string]string{"eks.amazonaws.com/role-arn": roleARN}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: plain}},
	} {
		if err := env.kube.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
	}
	jwt := func(sa string, aud ...string) esv1.AWSAuth {
		return esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: sa, Audiences: aud}}}
	}

	tests := []struct {
		name          string
		sa            string
		role          string
		audiences     []string
		wantRole      string
		wantAssume    []string
		wantAudiences []string
	}{
		{name: "role from the annotation", sa: annotated, wantRole: roleARN, wantAudiences: []string{"sts.amazonaws.com"}},
		{name: "annotation, then role is assumed", sa: annotated, role: "arn:aws:iam::123456789012:role/next",
			wantRole: roleARN, wantAssume: []string{"arn:aws:iam::123456789012:role/next"}, wantAudiences: []string{"sts.amazonaws.com"}},
		{name: "role without an annotation", sa: plain, role: "arn:aws:iam::123456789012:role/direct",
			wantRole: "arn:aws:iam::123456789012:role/direct", wantAudiences: []string{"sts.amazonaws.com"}},
		{name: "extra audiences", sa: annotated, audiences: []string{"extra"}, wantRole: roleARN,
			wantAudiences: []string{"sts.amazonaws.com", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			spec := smSpec()
			spec.Auth = jwt(tt.sa, tt.audiences...)
			spec.Role = tt.role
			c := newClient(t, motoProvider(rec), spec)
			v, err := c.GetSecret(ctx, provider.Ref{Key: "jwt/db"})
			if err != nil {
				t.Fatal(err)
			}
			if string(v.Data) != "from-web-identity" {
				t.Fatalf("GetSecret = %q", v.Data)
			}
			wi := rec.calls("AssumeRoleWithWebIdentity")
			if len(wi) != 1 {
				t.Fatalf("%d AssumeRoleWithWebIdentity calls, want 1", len(wi))
			}
			if got := wi[0].Form.Get("RoleArn"); got != tt.wantRole {
				t.Errorf("web identity role %q, want %q", got, tt.wantRole)
			}
			claims := tokenClaims(t, wi[0].Form.Get("WebIdentityToken"))
			if want := "system:serviceaccount:" + ns + ":" + tt.sa; claims.Sub != want {
				t.Errorf("token subject %q, want %q", claims.Sub, want)
			}
			if !slices.Equal(claims.Aud, tt.wantAudiences) {
				t.Errorf("token audiences %v, want %v", claims.Aud, tt.wantAudiences)
			}
			var assumed []string
			for _, c := range rec.calls("AssumeRole") {
				assumed = append(assumed, c.Form.Get("RoleArn"))
			}
			if !slices.Equal(assumed, tt.wantAssume) {
				t.Errorf("assumed roles %v after the web identity, want %v", assumed, tt.wantAssume)
			}
		})
	}

	t.Run("STS unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String()
		_ = l.Close()
		p := motoProvider(nil)
		p.Endpoints.STS = closed
		spec := smSpec()
		spec.Auth = jwt(annotated)
		c := newClient(t, p, spec)
		_, err = c.GetSecret(ctx, provider.Ref{Key: "jwt/db"})
		// A JWT starts with the base64 of `{"`: no token in the error.
		checkErr(t, "GetSecret", err, provider.ErrUnreachable, "eyJ")
	})
	t.Run("no annotation and no role", func(t *testing.T) {
		spec := smSpec()
		spec.Region = region
		spec.Auth = jwt(plain)
		_, err := motoProvider(nil).NewClient(ctx, provider.Options{Store: store(spec), Namespace: ns, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t)})
		if !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "eks.amazonaws.com/role-arn") {
			t.Fatalf("NewClient = %v, want ErrInvalidConfig naming the annotation", err)
		}
	})
	t.Run("missing service account", func(t *testing.T) {
		spec := smSpec()
		spec.Region = region
		spec.Auth = jwt("nobody")
		_, err := motoProvider(nil).NewClient(ctx, provider.Options{Store: store(spec), Namespace: ns, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t)})
		if !errors.Is(err, provider.ErrInvalidConfig) {
			t.Fatalf("NewClient = %v, want ErrInvalidConfig", err)
		}
	})
}

type claims struct {
	Sub string   `json:"sub"`
	Aud []string `json:"aud"`
}

// tokenClaims decodes (without verifying) a JWT's claims.
func tokenClaims(t *testing.T, token string) claims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("web identity token is not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decoding the token's claims: %v", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("decoding the token's claims: %v", err)
	}
	return c
}

// Without auth, the SDK's default chain is used: here, the environment.
func TestDefaultCredentialChain(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "default-chain/db", "from-env", nil)
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKeyCanary)

	rec := newRecorder()
	spec := smSpec()
	spec.Region = region
	c, err := motoProvider(rec).NewClient(ctx, provider.Options{Store: store(spec), Namespace: ns, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetSecret(ctx, provider.Ref{Key: "default-chain/db"})
	if err != nil || string(v.Data) != "from-env" {
		t.Fatalf("GetSecret = %q, %v", v.Data, err)
	}
	if got := rec.calls("GetSecretValue")[0].AccessKey; got != "AKIAFROMENVIRONMENT1" {
		t.Errorf("request signed by %q, want the environment's key", got)
	}
}

// With no credentials anywhere, Validate says so (ErrUnauthenticated)
// rather than that the instance metadata service is unreachable.
func TestNoCredentials(t *testing.T) {
	isolateAWSEnv(t)
	spec := smSpec()
	spec.Region = region
	c, err := motoProvider(nil).NewClient(context.Background(), provider.Options{Store: store(spec), Namespace: ns, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(context.Background())
	if !errors.Is(err, provider.ErrUnauthenticated) {
		t.Fatalf("Validate without credentials = %v, want ErrUnauthenticated", err)
	}
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "anything"})
	if !errors.Is(err, provider.ErrUnauthenticated) {
		t.Fatalf("GetSecret without credentials = %v, want ErrUnauthenticated", err)
	}
}

// isolateAWSEnv keeps the SDK's default chain from finding credentials
// outside the test (files, profiles, instance metadata).
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONFIG_FILE":             dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

func TestStaticCredentialErrors(t *testing.T) {
	ctx := context.Background()
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty-key"}, Data: map[string][]byte{"id": []byte(" \n")}}
	if err := env.kube.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ref  esv1.AWSAuthSecretRef
	}{
		{"missing secret", esv1.AWSAuthSecretRef{
			AccessKeyID:     esv1.SecretKeySelector{Name: "no-such-secret", Key: "access-key"},
			SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "secret-access-key"},
		}},
		{"missing key", esv1.AWSAuthSecretRef{
			AccessKeyID:     esv1.SecretKeySelector{Name: credsSecret, Key: "access-key"},
			SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "no-such-key"},
		}},
		{"empty access key id", esv1.AWSAuthSecretRef{
			AccessKeyID:     esv1.SecretKeySelector{Name: "empty-key", Key: "id"},
			SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "secret-access-key"},
		}},
		{"missing session token key", esv1.AWSAuthSecretRef{
			AccessKeyID:     esv1.SecretKeySelector{Name: credsSecret, Key: "access-key"},
			SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "secret-access-key"},
			SessionToken:    &esv1.SecretKeySelector{Name: credsSecret, Key: "no-such-token"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := smSpec()
			spec.Region = region
			spec.Auth = esv1.AWSAuth{SecretRef: &tt.ref}
			_, err := motoProvider(nil).NewClient(ctx, provider.Options{Store: store(spec), Namespace: ns, Kube: env.kube, Log: testr.New(t)})
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("NewClient = %v, want ErrInvalidConfig", err)
			}
			assertNoCanary(t, err)
		})
	}
}

// A moto that enforces IAM: unknown keys and wrong signatures are
// ErrUnauthenticated, a user without a policy ErrForbidden — for single
// reads, batches (which then fall back to single reads), finds and role
// assumption.
func TestAuthErrorsAgainstEnforcingMoto(t *testing.T) {
	ctx := context.Background()
	// The first seven AWS requests (the setup below) are not checked.
	moto := motoserver.StartWithOptions(t, motoserver.Options{Env: []string{"INITIAL_NO_AUTH_ACTION_COUNT=7"}})
	userKey, userSecret := createIAMUser(t, moto, "no-policy", "")
	getOnlyKey, getOnlySecret := createIAMUser(t, moto, "get-only",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`)
	sm := secretsmanager.NewFromConfig(adminConfig(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(moto.Endpoint()) })
	for _, name := range []string{"guarded", "guarded-2"} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(valueCanary)}); err != nil {
			t.Fatal(err)
		}
	}

	// Credentials that may read secrets one by one but not in batches
	// (ESO's documented policies): the batch is refused once, and the
	// values are read one by one from then on.
	t.Run("batch refused, single reads allowed", func(t *testing.T) {
		rec := newRecorder()
		p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{SecretsManager: moto.Endpoint()}, HTTPClient: rec}
		c, err := staticClient(ctx, t, p, smSpec(), "creds-enforcing-get-only", getOnlyKey, getOnlySecret)
		if err != nil {
			t.Fatal(err)
		}
		refs := []provider.Ref{{Key: "guarded"}, {Key: "guarded-2"}}
		for round, wantBatch := range []int{1, 0} {
			rec.reset()
			values, errs := c.(provider.BatchGetter).GetSecrets(ctx, refs)
			for _, ref := range refs {
				if string(values[ref].Data) != valueCanary || errs[ref] != nil {
					t.Errorf("round %d: GetSecrets[%s] error %v, want the value", round, ref, errs[ref])
				}
			}
			if got := len(rec.calls("BatchGetSecretValue")); got != wantBatch {
				t.Errorf("round %d: %d BatchGetSecretValue calls, want %d", round, got, wantBatch)
			}
			if got := len(rec.calls("GetSecretValue")); got != len(refs) {
				t.Errorf("round %d: %d GetSecretValue calls, want %d", round, got, len(refs))
			}
		}
	})

	rec := newRecorder()
	p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{SecretsManager: moto.Endpoint(), STS: moto.Endpoint()}, HTTPClient: rec}
	tests := []struct {
		name   string
		id     string
		secret string
		role   string
		want   error
	}{
		{"unknown access key", "AKIAUNKNOWNKEY000001", secretKeyCanary, "", provider.ErrUnauthenticated},
		{"wrong secret key", userKey, secretKeyCanary, "", provider.ErrUnauthenticated},
		{"no permission", userKey, userSecret, "", provider.ErrForbidden},
		{"role assumption refused", userKey, userSecret, "arn:aws:iam::123456789012:role/not-trusted", provider.ErrForbidden},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := smSpec()
			spec.Role = tt.role
			c, err := staticClient(ctx, t, p, spec, "creds-enforcing-"+strconv.Itoa(i), tt.id, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetSecret(ctx, provider.Ref{Key: "guarded"})
			checkErr(t, "GetSecret", err, tt.want, userSecret)
			_, errs := c.(provider.BatchGetter).GetSecrets(ctx, []provider.Ref{{Key: "guarded"}, {Key: "other"}})
			checkErr(t, "GetSecrets", errs[provider.Ref{Key: "guarded"}], tt.want, userSecret)
			_, err = fetch.FindIn(ctx, c, provider.Find{Path: "g"})
			checkErr(t, "Find", err, tt.want, userSecret)
			if tt.role != "" {
				checkErr(t, "Validate", c.Validate(ctx), tt.want, userSecret)
				// Without credentials no Secrets Manager call is made,
				// and batching is not given up for it: the next GetSecrets
				// tries one batch again (one role assumption), not one
				// read per secret (two).
				rec.reset()
				c.(provider.BatchGetter).GetSecrets(ctx, []provider.Ref{{Key: "guarded"}, {Key: "other"}})
				if n := len(rec.calls("AssumeRole")); n != 1 {
					t.Errorf("GetSecrets tried %d role assumptions, want 1", n)
				}
				if n := len(rec.calls("GetSecretValue")) + len(rec.calls("BatchGetSecretValue")); n != 0 {
					t.Errorf("GetSecrets without credentials made %d Secrets Manager calls, want 0", n)
				}
			}
		})
	}
}

// staticClient is a client with the given static credentials, kept in a
// Secret of its own.
func staticClient(ctx context.Context, t *testing.T, p *awsprovider.Provider, spec esv1.AWSProvider, name, id, secret string) (provider.Client, error) {
	t.Helper()
	spec.Region = region
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"id": []byte(id), "secret": []byte(secret)},
	}
	if err := env.kube.Create(ctx, s); err != nil {
		return nil, err
	}
	spec.Auth = esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: name, Key: "id"},
		SecretAccessKey: esv1.SecretKeySelector{Name: name, Key: "secret"},
	}}
	return p.NewClient(ctx, provider.Options{Store: store(spec), Namespace: ns, Kube: env.kube, Log: testr.New(t)})
}

func checkErr(t *testing.T, op string, err, want error, canaries ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", op, err, want)
	}
	assertNoCanary(t, err, canaries...)
}

// A store nobody listens on is ErrUnreachable.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()
	ctx := context.Background()
	for _, spec := range []esv1.AWSProvider{smSpec(), psSpec()} {
		t.Run(string(spec.Service), func(t *testing.T) {
			p := &awsprovider.Provider{Endpoints: awsprovider.Endpoints{SecretsManager: closed, SSM: closed, STS: closed}}
			c := newClient(t, p, spec)
			_, err := c.GetSecret(ctx, provider.Ref{Key: "k"})
			checkErr(t, "GetSecret", err, provider.ErrUnreachable)
			_, errs := c.(provider.BatchGetter).GetSecrets(ctx, []provider.Ref{{Key: "a"}, {Key: "b"}})
			checkErr(t, "GetSecrets", errs[provider.Ref{Key: "a"}], provider.ErrUnreachable)
			_, err = fetch.FindIn(ctx, c, provider.Find{Path: "/p"})
			checkErr(t, "Find", err, provider.ErrUnreachable)

			spec.Role = "arn:aws:iam::123456789012:role/r"
			c = newClient(t, p, spec)
			checkErr(t, "Validate", c.Validate(ctx), provider.ErrUnreachable)
		})
	}
}

// createIAMUser creates an IAM user with an access key and, if policy is
// set, that inline policy, in three IAM calls (two without a policy).
func createIAMUser(t *testing.T, moto *motoserver.Server, name, policy string) (keyID, secret string) {
	t.Helper()
	iamCall(t, moto, url.Values{"Action": {"CreateUser"}, "UserName": {name}})
	var key struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(iamCall(t, moto, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}}), &key); err != nil || key.ID == "" {
		t.Fatalf("decoding CreateAccessKey's answer: %v", err)
	}
	if policy != "" {
		iamCall(t, moto, url.Values{"Action": {"PutUserPolicy"}, "UserName": {name}, "PolicyName": {"inline"}, "PolicyDocument": {policy}})
	}
	return key.ID, key.Secret
}

// iamCall sends a signed IAM query-protocol request to moto (the
// repository pins no IAM client) and returns the answer's body.
func iamCall(t *testing.T, moto *motoserver.Server, form url.Values) []byte {
	t.Helper()
	form.Set("Version", "2010-05-08")
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, moto.Endpoint()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "AKIAADMIN", SecretAccessKey: "admin"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iam", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("IAM %s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("IAM %s: HTTP %d: %s (%v)", form.Get("Action"), resp.StatusCode, out, err)
	}
	return out
}
