package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// The secrets distributor: files mounted at /mnt/secrets become a
// kubernetes.io/tls Secret in every labelled namespace, and follow the files
// when they are rotated. examples/distributor, applied as it is.
func TestDistributorExampleFansMountedFilesOutToNamespaces(t *testing.T) {
	const (
		store      = "mounted-secrets"
		ces        = "wildcard-tls"
		secretName = "wildcard-tls-secret"
	)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	parent := t.TempDir()
	root := filepath.Join(parent, "secrets")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// A file next to the root: no key may reach it.
	const outsideCanary = "CANARY-distributor-outside-the-root"
	if err := os.WriteFile(filepath.Join(parent, "x"), []byte(outsideCanary), 0o600); err != nil {
		t.Fatal(err)
	}
	redirect.setRoot("/mnt/secrets", root)
	mount := &atomicWriter{dir: root}
	cert1, key1 := wildcardCertificate(t, "example.com")
	mount.write(t, map[string][]byte{"WildcardCertificate": cert1, "WildcardCertificateKey": key1})
	cert2, key2 := wildcardCertificate(t, "example.com")
	canaries := []string{keyCanary(key1), keyCanary(key2), outsideCanary}

	namespaces := []string{"test-application-1", "test-application-2", "test-application-3"}
	calls := func() int64 { return env.Op.Fetch.Calls(esv1.ClusterSecretStoreKind, "", store) }
	var afterFirstSync int64

	step("every labelled namespace gets a kubernetes.io/tls Secret", func(t *testing.T) {
		env.Apply(t, "", "examples/distributor")
		for _, ns := range namespaces {
			env.WaitReady(t, ns, ces, metav1.ConditionTrue, "SecretSynced")
			s := env.WaitSecret(t, ns, secretName, testenv.HasData(map[string]string{"tls.crt": string(cert1), "tls.key": string(key1)}))
			if s.Type != corev1.SecretTypeTLS {
				t.Errorf("Secret %s/%s has type %s, want %s", ns, secretName, s.Type, corev1.SecretTypeTLS)
			}
			if got := s.Annotations["xlscsde.nhs.uk/secretUsage"]; got != "Wildcard Certificate" {
				t.Errorf("Secret %s/%s: template annotation = %q", ns, secretName, got)
			}
			if s.Labels[engine.LabelManaged] != engine.LabelManagedValue {
				t.Errorf("Secret %s/%s lacks the managed label: %v", ns, secretName, s.Labels)
			}
		}
		waitProvisioned(t, ces, namespaces)
		// Three namespaces, two files: each file is read once.
		if afterFirstSync = calls(); afterFirstSync != 2 {
			t.Fatalf("the first sync of 3 namespaces read the store %d times, want 2 (one read per file)", afterFirstSync)
		}
	})

	step("a rotation reaches every namespace through the filesystem watch", func(t *testing.T) {
		var before []*corev1.Secret
		for _, ns := range namespaces {
			before = append(before, env.GetSecret(t, ns, secretName))
		}
		// refreshInterval is 1h: only the watch on the ..data swap can
		// bring the new files within the deadline.
		mount.write(t, map[string][]byte{"WildcardCertificate": cert2, "WildcardCertificateKey": key2})
		for i, ns := range namespaces {
			s := env.WaitSecret(t, ns, secretName, testenv.HasData(map[string]string{"tls.crt": string(cert2), "tls.key": string(key2)}))
			if s.UID != before[i].UID || s.Type != corev1.SecretTypeTLS {
				t.Errorf("Secret %s/%s was recreated or changed type instead of updated", ns, secretName)
			}
			env.WaitReady(t, ns, ces, metav1.ConditionTrue, "SecretSynced")
		}
		if got := calls() - afterFirstSync; got != 2 {
			t.Fatalf("the rotation read the store %d times for 3 namespaces, want 2 (one read per file)", got)
		}
	})

	step("a namespace labelled later gets the Secret without another read", func(t *testing.T) {
		readsBefore := calls()
		late := "test-application-4"
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: late, Labels: map[string]string{"certs.example.com/wildcard": "true"},
		}}); err != nil {
			t.Fatal(err)
		}
		env.WaitReady(t, late, ces, metav1.ConditionTrue, "SecretSynced")
		s := env.WaitSecret(t, late, secretName, testenv.HasData(map[string]string{"tls.crt": string(cert2), "tls.key": string(key2)}))
		if s.Type != corev1.SecretTypeTLS {
			t.Errorf("type = %s, want %s", s.Type, corev1.SecretTypeTLS)
		}
		namespaces = append(namespaces, late)
		waitProvisioned(t, ces, namespaces)
		if got := calls(); got != readsBefore {
			t.Fatalf("provisioning one more namespace read the store %d more times, want 0 (the values are cached for the refresh window)", got-readsBefore)
		}
	})

	step("a key that leaves the root is refused and the Secret kept", func(t *testing.T) {
		ns := namespaces[0]
		probe := func(key string) string {
			return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: escape-probe
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: ClusterSecretStore, name: %s}
  target: {name: escape-probe}
  data:
    - secretKey: value
      remoteRef: {key: %q}
`, store, key)
		}
		env.Apply(t, ns, probe("WildcardCertificate"))
		env.WaitReady(t, ns, "escape-probe", metav1.ConditionTrue, "SecretSynced")
		before := env.WaitSecret(t, ns, "escape-probe", testenv.HasData(map[string]string{"value": string(cert2)}))

		env.Apply(t, ns, probe("../x"))
		es := env.WaitReady(t, ns, "escape-probe", metav1.ConditionFalse, engine.ReasonForbidden)
		if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "escapes the store root") || !strings.Contains(msg, "../x") {
			t.Errorf("message does not say which key escapes the root: %s", msg)
		}
		assertUntouched(t, before)
		testenv.Eventually(t, "a Warning Event "+engine.ReasonForbidden, func(ctx context.Context) (bool, string) {
			return hasWarning(ctx, ns, "escape-probe", engine.ReasonForbidden)
		})
		// The fanned-out Secrets are not affected.
		for _, ns := range namespaces {
			env.WaitReady(t, ns, ces, metav1.ConditionTrue, "SecretSynced")
		}
	})

	assertNoLeak(t, canaries, namespaces...)
}

// waitProvisioned waits until the ClusterExternalSecret is Ready with
// exactly the namespaces given provisioned.
func waitProvisioned(t *testing.T, name string, namespaces []string) {
	t.Helper()
	want := slices.Clone(namespaces)
	slices.Sort(want)
	testenv.Eventually(t, fmt.Sprintf("ClusterExternalSecret %s provisioned in %v", name, want), func(ctx context.Context) (bool, string) {
		var ces esv1.ClusterExternalSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &ces); err != nil {
			return false, err.Error()
		}
		ready := false
		for _, c := range ces.Status.Conditions {
			if c.Type == esv1.ClusterExternalSecretReady {
				ready = c.Status == metav1.ConditionTrue
			}
		}
		got := slices.Clone(ces.Status.ProvisionedNamespaces)
		slices.Sort(got)
		return ready && slices.Equal(got, want), fmt.Sprintf("ready=%v provisioned=%v failed=%v", ready, got, ces.Status.FailedNamespaces)
	})
}
