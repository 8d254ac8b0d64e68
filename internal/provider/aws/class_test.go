package aws_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/go-logr/logr/testr"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

// classRole is the role of the ServiceAccounts of the class tests.
const classRole = "arn:aws:iam::123456789012:role/secret-sync"

// classStore is a SecretProviderClass in ns read as serviceAccount.
func classStore(params map[string]string, serviceAccount string) provider.Store {
	return provider.Store{Kind: provider.ClassKind, Name: "spc", Namespace: ns,
		Class: &provider.Class{Provider: awsprovider.ClassName, Parameters: params, ServiceAccount: serviceAccount}}
}

// serviceAccount creates a ServiceAccount in ns, annotated with role
// unless it is empty.
func serviceAccount(t *testing.T, name, role string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if role != "" {
		sa.Annotations = map[string]string{"eks.amazonaws.com/role-arn": role}
	}
	if err := env.kube.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
}

// newClass builds the client of a class store as the fetch layer does.
func newClass(t *testing.T, p *awsprovider.Provider, st provider.Store, pol provider.Policy) (provider.Client, error) {
	t.Helper()
	if err := p.ValidateSpec(st); err != nil {
		return nil, err
	}
	opts, err := provider.Admit(p, provider.Options{Store: st, Namespace: ns, Kube: env.kube, Tokens: env.tokens, Policy: pol, Log: testr.New(t)})
	if err != nil {
		return nil, err
	}
	return p.NewClient(context.Background(), opts)
}

// readClass reads every file of the class in one GetSecrets call.
func readClass(t *testing.T, p *awsprovider.Provider, c provider.Client, params map[string]string) (map[string]string, map[string]error) {
	t.Helper()
	objs, err := p.ClassObjects(params)
	if err != nil {
		t.Fatal(err)
	}
	var refs []provider.Ref
	for _, o := range objs {
		refs = append(refs, o.Ref)
	}
	vals, errs := c.(provider.BatchGetter).GetSecrets(context.Background(), refs)
	got, failed := map[string]string{}, map[string]error{}
	for _, o := range objs {
		if v, ok := vals[o.Ref]; ok {
			got[o.File] = string(v.Data)
		}
		if err, ok := errs[o.Ref]; ok {
			failed[o.File] = err
		}
	}
	return got, failed
}

// A class reads secrets and parameters, by name and ARN, at versions and
// labels, and jmesPath fields, as the SecretSync's ServiceAccount (IRSA):
// one web identity exchange, and one batch call for the current secrets.
func TestClassReadsObjectsAsTheServiceAccount(t *testing.T) {
	ctx := context.Background()
	serviceAccount(t, "class-irsa", classRole)
	first := createSecret(t, "class/db", `{"username":"admin","password":"first-`+valueCanary+`"}`, nil)
	putSecret(t, "class/db", `{"username":"admin2","password":"p2","port":5432}`)
	putParameter(t, "/class/param", "one", ssmtypes.ParameterTypeSecureString, nil)
	putParameter(t, "/class/param", "two", ssmtypes.ParameterTypeSecureString, nil)
	if _, err := adminSSM().LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{
		Name: aws.String("/class/param"), ParameterVersion: aws.Int64(1), Labels: []string{"prod"},
	}); err != nil {
		t.Fatal(err)
	}
	v1 := aws.ToString(first.VersionId)
	params := map[string]string{"region": region, "objects": fmt.Sprintf(`
- objectName: class/db
  objectType: secretsmanager
  jmesPath:
    - path: username
      objectAlias: db-user
    - path: password
      objectAlias: db-password
- {objectName: class/db, objectType: secretsmanager, objectAlias: db-first, objectVersion: %[1]s}
- {objectName: class/db, objectType: secretsmanager, objectAlias: db-previous, objectVersionLabel: AWSPREVIOUS}
- {objectName: class/db, objectType: secretsmanager, objectAlias: db-first-previous, objectVersion: %[1]s, objectVersionLabel: AWSPREVIOUS}
- {objectName: %[2]s, objectAlias: db-by-arn}
- {objectName: /class/param, objectType: ssmparameter}
- {objectName: /class/param, objectType: ssmparameter, objectAlias: param-v1, objectVersion: "1"}
- {objectName: /class/param, objectType: ssmparameter, objectAlias: param-prod, objectVersionLabel: prod}
`, v1, aws.ToString(first.ARN))}
	rec := newRecorder()
	p := motoProvider(rec)
	c, err := newClass(t, p, classStore(params, "class-irsa"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	got, failed := readClass(t, p, c, params)
	for f, err := range failed {
		t.Errorf("%s: %v", f, err)
	}
	firstJSON := `{"username":"admin","password":"first-` + valueCanary + `"}`
	want := map[string]string{
		"class_db":          `{"username":"admin2","password":"p2","port":5432}`,
		"db-user":           "admin2",
		"db-password":       "p2",
		"db-first":          firstJSON,
		"db-previous":       firstJSON,
		"db-first-previous": firstJSON,
		"db-by-arn":         `{"username":"admin2","password":"p2","port":5432}`,
		"_class_param":      "two",
		"param-v1":          "one",
		"param-prod":        "one",
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("file %s = %q, want %q", f, got[f], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("files %v, want %d", keysOf(got), len(want))
	}

	wi := rec.calls("AssumeRoleWithWebIdentity")
	if len(wi) != 1 {
		t.Fatalf("%d AssumeRoleWithWebIdentity calls, want 1", len(wi))
	}
	if r := wi[0].Form.Get("RoleArn"); r != classRole {
		t.Errorf("web identity role %q, want the ServiceAccount's %q", r, classRole)
	}
	claims := tokenClaims(t, wi[0].Form.Get("WebIdentityToken"))
	if want := "system:serviceaccount:" + ns + ":class-irsa"; claims.Sub != want {
		t.Errorf("token subject %q, want %q", claims.Sub, want)
	}
	if len(claims.Aud) != 1 || claims.Aud[0] != "sts.amazonaws.com" {
		t.Errorf("token audiences %v, want sts.amazonaws.com", claims.Aud)
	}
	for _, action := range []string{"BatchGetSecretValue", "GetSecretValue", "GetParameters", "GetParameter"} {
		for _, r := range rec.calls(action) {
			if !strings.HasPrefix(r.AccessKey, "ASIA") {
				t.Errorf("%s signed by %q, want the role's temporary credentials", action, r.AccessKey)
			}
		}
	}
	// The current class/db (three files) and its ARN are read in one batch.
	if n := len(rec.calls("BatchGetSecretValue")); n != 1 {
		t.Errorf("%d BatchGetSecretValue calls, want 1", n)
	}
}

// jmesPath must select a string of a JSON value; failures name the object
// and path, never the value.
func TestClassJMESPathErrors(t *testing.T) {
	serviceAccount(t, "class-jmes", classRole)
	createSecret(t, "class/text", "not-json-"+valueCanary, nil)
	createSecret(t, "class/json", `{"port":5432,"user":"`+valueCanary+`"}`, nil)
	params := map[string]string{"region": region, "objects": `
- {objectName: class/text, objectType: secretsmanager, jmesPath: [{path: user, objectAlias: text-user}]}
- {objectName: class/json, objectType: secretsmanager, jmesPath: [{path: port, objectAlias: port}, {path: missing, objectAlias: missing}, {path: user, objectAlias: user}]}
`}
	p := motoProvider(nil)
	c, err := newClass(t, p, classStore(params, "class-jmes"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	got, failed := readClass(t, p, c, params)
	if got["user"] != valueCanary {
		t.Errorf("user = %q", got["user"])
	}
	for file, want := range map[string]string{"text-user": "is not JSON", "port": "selects a float64, not a string", "missing": "selects nothing"} {
		err := failed[file]
		if !errors.Is(err, provider.ErrBadResponse) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrBadResponse saying %q", file, err, want)
		}
		assertNoCanary(t, err)
	}
}

// A kubernetes.io/tls Secret takes the certificates and the private key of
// a PEM bundle.
func TestClassTLSParts(t *testing.T) {
	serviceAccount(t, "class-tls", classRole)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "class"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	createSecret(t, "class/tls", keyPEM+certPEM, nil)
	params := map[string]string{"region": region, "objects": `[{objectName: class/tls, objectType: secretsmanager, objectAlias: tls}]`}
	p := motoProvider(nil)
	c, err := newClass(t, p, classStore(params, "class-tls"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := p.ClassObjects(params)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ClassObjects = %v, %v", objs, err)
	}
	for ref, want := range map[provider.Ref]string{objs[0].CertRef: certPEM, objs[0].KeyRef: keyPEM, objs[0].Ref: keyPEM + certPEM} {
		v, err := c.GetSecret(context.Background(), ref)
		if err != nil || string(v.Data) != want {
			t.Errorf("GetSecret(%q) = %q, %v; want %q", ref.Key, v.Data, err, want)
		}
	}
}

// A ServiceAccount without a role would leave keyferry only its own AWS
// credentials: refused before any AWS call, unless the operator grants the
// namespace its AWS identity.
func TestClassOperatorIdentity(t *testing.T) {
	ctx := context.Background()
	serviceAccount(t, "class-plain", "")
	createSecret(t, "class/ambient", "ambient", nil)
	params := map[string]string{"region": region, "objects": `[{objectName: class/ambient, objectType: secretsmanager}]`}

	rec := newRecorder()
	_, err := newClass(t, motoProvider(rec), classStore(params, "class-plain"), provider.Policy{})
	if !errors.Is(err, provider.ErrOperatorIdentity) || !strings.Contains(err.Error(), "eks.amazonaws.com/role-arn") ||
		!strings.Contains(err.Error(), "--allow-ambient-identity="+ns+"/aws") {
		t.Fatalf("NewClient = %v, want ErrOperatorIdentity naming the annotation and the grant", err)
	}
	if len(rec.reqs) != 0 {
		t.Errorf("%d AWS calls before the refusal", len(rec.reqs))
	}

	t.Run("granted", func(t *testing.T) {
		isolateAWSEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOPERATORCLASS001")
		t.Setenv("AWS_SECRET_ACCESS_KEY", secretKeyCanary)
		rec := newRecorder()
		pol := provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAWS, Namespace: ns}}}
		c, err := newClass(t, motoProvider(rec), classStore(params, "class-plain"), pol)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.GetSecret(ctx, provider.Ref{Key: "class_ambient"})
		if err != nil || string(v.Data) != "ambient" {
			t.Fatalf("GetSecret = %q, %v", v.Data, err)
		}
		if calls := append(rec.calls("BatchGetSecretValue"), rec.calls("GetSecretValue")...); len(calls) == 0 || calls[0].AccessKey != "AKIAOPERATORCLASS001" {
			t.Errorf("read not signed by the operator's key: %+v", calls)
		}
	})
	t.Run("missing service account", func(t *testing.T) {
		_, err := newClass(t, motoProvider(nil), classStore(params, "nobody"), provider.Policy{})
		if !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("NewClient = %v, want ErrInvalidConfig", err)
		}
	})
}

// The README's IRSA example sets no region: keyferry uses its own
// (AWS_REGION) where the AWS provider would read the node's label, and
// says what to set without one.
func TestClassRegionDefault(t *testing.T) {
	serviceAccount(t, "class-region", classRole)
	createSecret(t, "MySecret", "from-the-readme", nil)
	params := map[string]string{"objects": `
    - objectName: "MySecret"
      objectType: "secretsmanager"
`}
	p := motoProvider(nil)
	if _, err := newClass(t, p, classStore(params, "class-region"), provider.Policy{}); !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "parameters.region") {
		t.Fatalf("NewClient without any region = %v, want ErrInvalidConfig naming parameters.region", err)
	}
	p.DefaultRegion = region
	c, err := newClass(t, p, classStore(params, "class-region"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "MySecret"})
	if err != nil || string(v.Data) != "from-the-readme" {
		t.Fatalf("GetSecret = %q, %v", v.Data, err)
	}
}

// failingRegion answers 503 to every signed request for one region and
// sends the others on.
type failingRegion struct {
	region string
	next   *recorder
}

func (f failingRegion) Do(req *http.Request) (*http.Response, error) {
	if _, cred, ok := strings.Cut(req.Header.Get("Authorization"), "Credential="); ok {
		if parts := strings.Split(cred, "/"); len(parts) > 2 && parts[2] == f.region {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
				Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body:   io.NopCloser(strings.NewReader(`{"__type":"ServiceUnavailable","message":"down"}`)), Request: req}, nil
		}
	}
	return f.next.Do(req)
}

// failoverRegion is read when the region fails with a server error, with
// the failoverObject's name; a client error (not found) is not failed over.
func TestClassFailoverRegion(t *testing.T) {
	serviceAccount(t, "class-failover", classRole)
	// moto's default region, where the admin clients create secrets, is the
	// failover region; the primary region answers 503.
	createSecret(t, "class/replicated", "from-failover", nil)
	createSecret(t, "class/failover-name", "failover-object", nil)
	const primary = "eu-west-1"
	params := map[string]string{"region": primary, "failoverRegion": region, "objects": `
- {objectName: class/replicated, objectType: secretsmanager}
- {objectName: class/primary-name, objectType: secretsmanager, objectAlias: renamed, failoverObject: {objectName: class/failover-name}}
`}
	p := motoProvider(nil)
	p.HTTPClient = failingRegion{region: primary, next: newRecorder()}
	c, err := newClass(t, p, classStore(params, "class-failover"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	got, failed := readClass(t, p, c, params)
	for f, err := range failed {
		t.Errorf("%s: %v", f, err)
	}
	if got["class_replicated"] != "from-failover" || got["renamed"] != "failover-object" {
		t.Errorf("files %q, want the failover region's values", got)
	}

	// With the primary region up, a secret missing there is not found; it
	// is not read in the failover region.
	p.HTTPClient = newRecorder()
	c, err = newClass(t, p, classStore(params, "class-failover"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "class_replicated"})
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("GetSecret with the primary region up = %v, want ErrNotFound", err)
	}
}

// podIdentityAgent is an EKS Pod Identity agent for the test cluster: it
// checks the token with the API server (TokenReview, audience
// pods.eks.amazonaws.com) and gives the ServiceAccount associated
// credentials; other ServiceAccounts are refused.
func podIdentityAgent(t *testing.T, associated, keyID string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		review, err := env.cs.AuthenticationV1().TokenReviews().Create(r.Context(), &authv1.TokenReview{Spec: authv1.TokenReviewSpec{
			Token: r.Header.Get("Authorization"), Audiences: []string{"pods.eks.amazonaws.com"},
		}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "token review failed", http.StatusInternalServerError)
			return
		}
		if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+associated {
			http.Error(w, `{"code":"AccessDeniedException"}`, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"AccessKeyId":%q,"SecretAccessKey":"pod-identity-secret","Token":"pod-identity-token","AccountId":"123456789012","Expiration":%q}`,
			keyID, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// usePodIdentity (the README's ExampleSecretProviderClass-PodIdentity.yaml):
// keyferry asks the node's Pod Identity agent for the credentials of the
// SecretSync's ServiceAccount with its token, and reads with them; a
// ServiceAccount without an association is refused by the agent.
func TestClassPodIdentity(t *testing.T) {
	ctx := context.Background()
	serviceAccount(t, "class-podid", "")
	serviceAccount(t, "class-podid-none", "")
	createSecret(t, "class/pod-identity", "from-pod-identity", nil)
	agent, calls := podIdentityAgent(t, ns+":class-podid", "AKIAPODIDENTITY00001")
	params := map[string]string{"region": region, "usePodIdentity": "true", "objects": `
      - objectName: "class/pod-identity"
        objectType: "secretsmanager"
`}
	rec := newRecorder()
	p := motoProvider(rec)
	p.PodIdentityAgent = agent.URL
	c, err := newClass(t, p, classStore(params, "class-podid"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetSecret(ctx, provider.Ref{Key: "class_pod-identity"})
	if err != nil || string(v.Data) != "from-pod-identity" {
		t.Fatalf("GetSecret = %q, %v", v.Data, err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "class_pod-identity"}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the agent was asked %d times, want once (credentials are cached until they expire)", n)
	}
	reads := append(rec.calls("BatchGetSecretValue"), rec.calls("GetSecretValue")...)
	if len(reads) == 0 || reads[0].AccessKey != "AKIAPODIDENTITY00001" {
		t.Errorf("reads %+v, want them signed by the agent's credentials", reads)
	}
	if n := len(rec.calls("AssumeRoleWithWebIdentity")); n != 0 {
		t.Errorf("%d web identity exchanges with usePodIdentity", n)
	}

	c, err = newClass(t, p, classStore(params, "class-podid-none"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "class_pod-identity"})
	if !errors.Is(err, provider.ErrUnauthenticated) || !strings.Contains(err.Error(), "pod identity association") {
		t.Fatalf("GetSecret without an association = %v, want ErrUnauthenticated", err)
	}
	checkErr(t, "GetSecret", err, provider.ErrUnauthenticated, "eyJ")

	// No agent (not an EKS node, or the add-on is missing).
	agent.Close()
	c, err = newClass(t, p, classStore(params, "class-podid"), provider.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "class_pod-identity"})
	checkErr(t, "GetSecret without an agent", err, provider.ErrUnreachable, "eyJ")
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
