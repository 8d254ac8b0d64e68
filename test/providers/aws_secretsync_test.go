package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	authv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// awsExampleSPC is examples/ExampleSecretProviderClass-IRSA.yaml of
// aws/secrets-store-csi-driver-provider-aws, unchanged but for the
// secret's name (%s: one per test namespace, in the shared moto).
const awsExampleSPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: nginx-irsa-deployment-aws-secrets
spec:
  provider: aws
  parameters:
    objects: |
        - objectName: "%s"
          objectType: "secretsmanager"
`

// awsJMESPathSPC holds the objects of the README's jmesPath example, again
// with the secret's name changed.
const awsJMESPathSPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: jmes-path-aws-secrets
spec:
  provider: aws
  parameters:
    objects: |
        - objectName: "%s"
          objectType: "secretsmanager"
          jmesPath:
              - path: "username"
                objectAlias: "MySecretUsername"
              - path: "password"
                objectAlias: "MySecretPassword"
`

// awsPodIdentitySPC is examples/ExampleSecretProviderClass-PodIdentity.yaml,
// unchanged but for the secret's name.
const awsPodIdentitySPC = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: nginx-pod-identity-deployment-aws-secrets
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: "%s"
        objectType: "secretsmanager"
    usePodIdentity: "true"
`

// podIdentity holds the pod identity associations of the test EKS Pod
// Identity agent: "namespace:serviceaccount" -> access key id it answers.
var podIdentity struct {
	mu           sync.Mutex
	associations map[string]string
}

// associate gives the ServiceAccount ns/sa a pod identity association whose
// credentials have access key id keyID.
func associate(ns, sa, keyID string) {
	podIdentity.mu.Lock()
	defer podIdentity.mu.Unlock()
	if podIdentity.associations == nil {
		podIdentity.associations = map[string]string{}
	}
	podIdentity.associations[ns+":"+sa] = keyID
}

// startPodIdentityAgent starts an EKS Pod Identity agent for the test
// cluster: it authenticates the token with the API server (TokenReview,
// audience pods.eks.amazonaws.com) and answers with the credentials of the
// ServiceAccount's association; moto accepts any.
func startPodIdentityAgent() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		review, err := cs.AuthenticationV1().TokenReviews().Create(r.Context(), &authv1.TokenReview{Spec: authv1.TokenReviewSpec{
			Token: r.Header.Get("Authorization"), Audiences: []string{"pods.eks.amazonaws.com"},
		}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "token review failed", http.StatusInternalServerError)
			return
		}
		podIdentity.mu.Lock()
		keyID, ok := podIdentity.associations[strings.TrimPrefix(review.Status.User.Username, "system:serviceaccount:")]
		podIdentity.mu.Unlock()
		if !review.Status.Authenticated || !ok {
			http.Error(w, `{"code":"AccessDeniedException"}`, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"AccessKeyId":%q,"SecretAccessKey":"pod-identity-secret","Token":"pod-identity-token","AccountId":"123456789012","Expiration":%q}`,
			keyID, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
}

// secretSync syncs sourcePath -> targetKey pairs of class as sa.
func secretSync(name, sa, class string, pairs ...string) string {
	var data strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&data, "    - sourcePath: %q\n      targetKey: %q\n", pairs[i], pairs[i+1])
	}
	return fmt.Sprintf(`apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: %s
spec:
  serviceAccountName: %s
  secretProviderClassName: %s
  secretObject:
    type: Opaque
    data:
%s`, name, sa, class, data.String())
}

// The AWS provider's documented SecretProviderClass (IRSA, no region) and
// its jmesPath example, each with a SecretSync: the operator exchanges a
// token of the SecretSync's ServiceAccount for the role of its
// eks.amazonaws.com/role-arn annotation, reads the secret in the operator's
// region, and writes the Secrets.
func TestAWSSecretSyncServesTheProvidersExample(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "MySecret-" + ns
	role := "arn:aws:iam::123456789012:role/nginx-irsa-" + ns
	value := `{"username":"memeuser", "password":"hunter2-` + canary + `"}`
	if _, err := adminSM(awsRegion).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: nginx-irsa-deployment-sa
  annotations:
    eks.amazonaws.com/role-arn: %s
`, role))
	env.Apply(t, ns, fmt.Sprintf(awsExampleSPC, name))
	env.Apply(t, ns, fmt.Sprintf(awsJMESPathSPC, name))
	env.Apply(t, ns, secretSync("nginx-irsa-deployment-aws-secrets", "nginx-irsa-deployment-sa", "nginx-irsa-deployment-aws-secrets", name, "MySecret"))
	env.Apply(t, ns, secretSync("jmes-path", "nginx-irsa-deployment-sa", "jmes-path-aws-secrets", "MySecretUsername", "username", "MySecretPassword", "password"))

	env.WaitSecret(t, ns, "nginx-irsa-deployment-aws-secrets", testenv.HasData(map[string]string{"MySecret": value}))
	env.WaitSecret(t, ns, "jmes-path", testenv.HasData(map[string]string{"username": "memeuser", "password": "hunter2-" + canary}))
	for _, ss := range []string{"nginx-irsa-deployment-aws-secrets", "jmes-path"} {
		waitSecretSync(t, ns, ss, metav1.ConditionTrue, "")
	}

	exchanges := awsRoutes.requests(func(r awsRequest) bool {
		return r.Action == "AssumeRoleWithWebIdentity" && r.Form.Get("RoleArn") == role
	})
	if len(exchanges) == 0 {
		t.Fatalf("no AssumeRoleWithWebIdentity for %s", role)
	}
	token := exchanges[0].Form.Get("WebIdentityToken")
	secretMustNotLeak(token)
	if sub := jwtClaims(t, token)["sub"]; sub != "system:serviceaccount:"+ns+":nginx-irsa-deployment-sa" {
		t.Errorf("the web identity token's subject is %v, want the SecretSync's ServiceAccount", sub)
	}
	reads := awsRoutes.requests(func(r awsRequest) bool {
		return (r.Action == "GetSecretValue" || r.Action == "BatchGetSecretValue") && r.mentions(name)
	})
	if len(reads) == 0 {
		t.Fatalf("moto saw no read of %s", name)
	}
	for _, r := range reads {
		if !strings.HasPrefix(r.AccessKey, "ASIA") {
			t.Errorf("%s was signed by %q, want the role's temporary credentials (ASIA...)", r.Action, r.AccessKey)
		}
	}
	assertSecretSyncNoLeak(t, ns, "nginx-irsa-deployment-aws-secrets", "jmes-path")
}

// The AWS provider's documented Pod Identity SecretProviderClass with a
// SecretSync: the operator sends a token of the SecretSync's ServiceAccount
// to the node's Pod Identity agent and reads with the credentials of its
// association.
func TestAWSSecretSyncServesThePodIdentityExample(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "MySecret-" + ns
	keyID := newAccessKeyID()
	if _, err := adminSM(awsRegion).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("pod-identity-" + canary)}); err != nil {
		t.Fatal(err)
	}
	associate(ns, "nginx-pod-identity-deployment-sa", keyID)
	env.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: nginx-pod-identity-deployment-sa\n")
	env.Apply(t, ns, fmt.Sprintf(awsPodIdentitySPC, name))
	env.Apply(t, ns, secretSync("app", "nginx-pod-identity-deployment-sa", "nginx-pod-identity-deployment-aws-secrets", name, "MySecret"))
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"MySecret": "pod-identity-" + canary}))
	waitSecretSync(t, ns, "app", metav1.ConditionTrue, "")
	reads := awsRoutes.requests(func(r awsRequest) bool {
		return (r.Action == "GetSecretValue" || r.Action == "BatchGetSecretValue") && r.mentions(name)
	})
	if len(reads) == 0 {
		t.Fatalf("moto saw no read of %s", name)
	}
	for _, r := range reads {
		if r.AccessKey != keyID {
			t.Errorf("%s was signed by %q, want the association's %q", r.Action, r.AccessKey, keyID)
		}
	}
	assertSecretSyncNoLeak(t, ns, "app")
}

// A ServiceAccount without eks.amazonaws.com/role-arn would leave the
// operator only its own AWS credentials: the SecretSync fails with a
// message that says what to do, and moto sees no read.
func TestAWSSecretSyncRefusesTheOperatorsIdentity(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "unannotated-" + ns
	if _, err := adminSM(awsRegion).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: plain\n")
	env.Apply(t, ns, strings.Replace(fmt.Sprintf(awsExampleSPC, name), "nginx-irsa-deployment-aws-secrets", "spc", 1))
	env.Apply(t, ns, secretSync("app", "plain", "spc", name, "value"))
	// The status is Unknown (ControllerInternalError) until the SecretSync
	// controller maps engine.ReasonOperatorIdentityNotAllowed to
	// ControllerSpcError (False); the message is what the user acts on.
	ss := waitSecretSync(t, ns, "app", "", "eks.amazonaws.com/role-arn")
	if c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate); !strings.Contains(c.Message, "--allow-ambient-identity="+ns+"/aws") {
		t.Errorf("the message does not say how to grant the identity: %s", c.Message)
	}
	if reads := awsRoutes.requests(func(r awsRequest) bool { return r.mentions(name) }); len(reads) != 0 {
		t.Errorf("moto saw %d requests about %s", len(reads), name)
	}
	assertSecretSyncNoLeak(t, ns, "app")
}

// waitSecretSync waits for the SecretSync's SecretCreated condition to have
// status (empty: any but True), with message containing want.
func waitSecretSync(t *testing.T, ns, name string, status metav1.ConditionStatus, want string) *ssv1.SecretSync {
	t.Helper()
	ss := &ssv1.SecretSync{}
	testenv.Eventually(t, fmt.Sprintf("SecretSync %s/%s SecretCreated=%s", ns, name, status), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ss); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
		if c == nil {
			return false, fmt.Sprintf("conditions: %+v", ss.Status.Conditions)
		}
		ok := c.Status == status || (status == "" && c.Status != metav1.ConditionTrue)
		return ok && strings.Contains(c.Message, want), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return ss
}

// assertSecretSyncNoLeak fails when the canary or a registered credential
// appears in the operator's logs, or in the Events or status of the
// SecretSyncs named.
func assertSecretSyncNoLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	leaksMu.Lock()
	secrets := append([]string{canary}, leaks...)
	leaksMu.Unlock()
	for _, s := range secrets {
		env.AssertNoLeak(t, s)
	}
	ctx := context.Background()
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		var ss ssv1.SecretSync
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
			t.Fatal(err)
		}
		status, err := json.Marshal(ss.Status)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			for _, ev := range evs {
				if strings.Contains(ev.Note, s) {
					t.Fatalf("a secret value appeared in Event %s of SecretSync %s/%s", ev.Reason, ns, name)
				}
			}
			if strings.Contains(string(status), s) {
				t.Fatalf("a secret value appeared in the status of SecretSync %s/%s", ns, name)
			}
		}
	}
}
