package generators

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// assertESOPasswordShape checks a password of ESO's Password example:
// length 42, 5 digits, 5 symbols of "-_$@", the rest letters.
func assertESOPasswordShape(t *testing.T, pw string) {
	t.Helper()
	var digits, symbols, letters int
	for _, r := range pw {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("-_$@", r):
			symbols++
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		default:
			t.Fatalf("the password has a character outside letters, digits and -_$@")
		}
	}
	if len(pw) != 42 || digits != 5 || symbols != 5 || letters != 32 {
		t.Fatalf("password shape: length %d, %d digits, %d symbols, %d letters; want 42, 5, 5, 32", len(pw), digits, symbols, letters)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestESOGeneratorExamplesProduceTheirSecrets(t *testing.T) {
	ns := env.Namespace(t)
	p := start(t, ns)
	for _, f := range []string{"password", "uuid", "fake", "cluster", "sshkey"} {
		env.Apply(t, ns, "examples/generators/"+f+".yaml")
	}
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
		_ = env.Client.Delete(context.Background(), clusterGen("cluster-gen"))
	})
	for _, name := range []string{"password", "uuid", "fake", "cluster-secret", "example-ssh-key"} {
		env.WaitReady(t, ns, name, metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	}

	pw := secretValue(t, ns, "password-secret", "password")
	assertESOPasswordShape(t, pw)
	cpw := secretValue(t, ns, "cluster-secret", "password")
	assertESOPasswordShape(t, cpw)
	if pw == cpw {
		t.Fatal("two generators gave the same password")
	}
	// Values are never shared: a second ExternalSecret of the same
	// generator gets a password of its own.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: password-2
spec:
  target: {name: password-secret-2}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: Password, name: my-password}
`)
	pw2 := secretValue(t, ns, "password-secret-2", "password")
	assertESOPasswordShape(t, pw2)
	if pw2 == pw {
		t.Fatal("two ExternalSecrets of one generator share a password")
	}
	if id := secretValue(t, ns, "uuid-secret", "uuid"); !uuidV4.MatchString(id) {
		t.Fatalf("uuid is not a version-4 UUID in canonical form")
	}
	env.WaitSecret(t, ns, "fake", testenv.HasData(map[string]string{"foo": "bar", "baz": "bang"}))

	s := env.GetSecret(t, ns, "password-secret")
	if len(s.Data) != 1 {
		t.Fatalf("password-secret keys = %v, want [password]", keysOf(s.Data))
	}
	rec, err := engine.ParseGeneratedRecord(s.Annotations[engine.AnnotationGenerated])
	if err != nil {
		t.Fatalf("generation record: %v", err)
	}
	if fmt.Sprint(rec.Keys) != "[[password]]" {
		t.Fatalf("generation record keys = %v", rec.Keys)
	}
	if strings.Contains(s.Annotations[engine.AnnotationGenerated], pw) {
		t.Fatal("the generation record holds the value")
	}
	// ESO's SSHKey example: an ed25519 pair in OpenSSH's formats, the
	// comment on the public key.
	priv := secretValue(t, ns, "ssh-key-secret", "privateKey")
	raw, err := ssh.ParseRawPrivateKey([]byte(priv))
	if err != nil {
		t.Fatalf("privateKey is not an OpenSSH private key: %v", err)
	}
	if _, ok := raw.(*ed25519.PrivateKey); !ok {
		t.Fatalf("privateKey is a %T, want ed25519", raw)
	}
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(secretValue(t, ns, "ssh-key-secret", "publicKey")))
	if err != nil || pub.Type() != ssh.KeyAlgoED25519 || comment != "user@example.com" {
		t.Fatalf("publicKey: %v type %v comment %q", err, pub, comment)
	}
	for _, v := range []string{pw, pw2, cpw, strings.Split(priv, "\n")[1]} {
		assertNoLeak(t, ns, v, p)
	}
}

// TestPasswordSurvivesOperatorRestart is issue 12's "Done when": a Password
// generator's Secret is unchanged across operator restarts. After each
// restart the new process first looks at the ExternalSecret (synced before:
// its next refresh is spread, not done at once); a label on the
// ExternalSecret (not a spec change) then makes the new process sync it,
// with no memory of the earlier process: the password is kept.
func TestPasswordSurvivesOperatorRestart(t *testing.T) {
	ns := env.Namespace(t)
	procs := []*proc{start(t, ns)}
	env.Apply(t, ns, "examples/generators/password.yaml")
	es := env.WaitReady(t, ns, "password", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	synced := es.Status.SyncedResourceVersion
	pw := secretValue(t, ns, "password-secret", "password")
	assertESOPasswordShape(t, pw)
	rv := env.GetSecret(t, ns, "password-secret").ResourceVersion

	for i := 1; i <= 2; i++ {
		procs[len(procs)-1].stop(t)
		p := start(t, ns)
		procs = append(procs, p)
		p.waitLogged(t, fmt.Sprintf("operator %d's first look at password", i+1), `"refresh decision"`, `"reason":"FirstLookSinceStart"`, `"namespace":"`+ns+`"`)
		patchES(t, ns, "password", func(es *esv1.ExternalSecret) {
			if es.Labels == nil {
				es.Labels = map[string]string{}
			}
			es.Labels["restart"] = fmt.Sprint(i)
		})
		// The status is written after the Secret: the sync is complete.
		synced = waitSyncedAt(t, ns, "password", synced)
		s := env.GetSecret(t, ns, "password-secret")
		if string(s.Data["password"]) != pw {
			t.Fatalf("the password changed across operator restart %d", i)
		}
		if s.ResourceVersion != rv {
			t.Fatalf("the Secret was rewritten across restart %d (resourceVersion %s, was %s)", i, s.ResourceVersion, rv)
		}
		p.waitLogged(t, fmt.Sprintf("operator %d kept the generated values", i+1), `"generators"`, `"reason":"GeneratedValuesKept"`, `"namespace":"`+ns+`"`)
	}
	assertNoLeak(t, ns, pw, procs...)
}

// TestUnrelatedResyncsKeepThePassword: another entry's new value, a label
// on the ExternalSecret and restoring a Secret someone edited all re-sync
// the ExternalSecret; none regenerates.
func TestUnrelatedResyncsKeepThePassword(t *testing.T) {
	ns := env.Namespace(t)
	p := start(t, ns)
	env.Apply(t, ns, fakeStore("v1")+"---\n"+`apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata:
  name: db
spec:
  length: 32
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target: {name: db}
  data:
  - secretKey: username
    remoteRef: {key: db-user}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: db}
`)
	es := env.WaitReady(t, ns, "db", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	pw := secretValue(t, ns, "db", "password")
	if len(pw) != 32 {
		t.Fatalf("password length %d, want 32", len(pw))
	}
	env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"username": "v1", "password": pw}))

	t.Run("another entry's value changes", func(t *testing.T) {
		env.Apply(t, ns, fakeStore("v2"))
		env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"username": "v2", "password": pw}))
	})
	t.Run("a label on the ExternalSecret", func(t *testing.T) {
		patchES(t, ns, "db", func(es *esv1.ExternalSecret) { es.Labels = map[string]string{"tier": "db"} })
		waitSyncedAt(t, ns, "db", es.Status.SyncedResourceVersion)
		env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"username": "v2", "password": pw}))
	})
	t.Run("restoring a Secret someone edited", func(t *testing.T) {
		s := env.GetSecret(t, ns, "db")
		s.Data["username"] = []byte("edited")
		if err := env.Client.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		env.WaitSecret(t, ns, "db", testenv.HasData(map[string]string{"username": "v2", "password": pw}))
	})
	t.Run("a Secret that lost the generated key gets a new one", func(t *testing.T) {
		s := env.GetSecret(t, ns, "db")
		delete(s.Data, "password")
		if err := env.Client.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if got := waitChanged(t, ns, "db", "password", pw); len(got) != 32 {
			t.Fatalf("regenerated password length %d", len(got))
		}
	})
	assertNoLeak(t, ns, pw, p)
}

func TestRefreshIntervalSpecChangeAndForceSyncRegenerate(t *testing.T) {
	ns := env.Namespace(t)
	p := start(t, ns)
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: UUID
metadata:
  name: id
spec: {}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: id
spec:
  refreshInterval: 1h
  target: {name: id}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: UUID, name: id}
`)
	env.WaitReady(t, ns, "id", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	seen := []string{secretValue(t, ns, "id", "uuid")}

	t.Run("a spec change", func(t *testing.T) {
		patchES(t, ns, "id", func(es *esv1.ExternalSecret) { es.Spec.RefreshInterval = &esv1.Duration{Duration: 2 * time.Hour} })
		seen = append(seen, waitChanged(t, ns, "id", "uuid", seen[len(seen)-1]))
	})
	t.Run("the force-sync annotation", func(t *testing.T) {
		env.ForceSync(t, ns, "id")
		seen = append(seen, waitChanged(t, ns, "id", "uuid", seen[len(seen)-1]))
	})
	t.Run("refreshInterval elapsing", func(t *testing.T) {
		patchES(t, ns, "id", func(es *esv1.ExternalSecret) { es.Spec.RefreshInterval = &esv1.Duration{Duration: 3 * time.Second} })
		seen = append(seen, waitChanged(t, ns, "id", "uuid", seen[len(seen)-1]))
		start := time.Now()
		seen = append(seen, waitChanged(t, ns, "id", "uuid", seen[len(seen)-1]))
		if d := time.Since(start); d < 2*time.Second {
			t.Fatalf("regenerated after %s, before the 3s interval", d)
		}
	})
	for _, v := range seen {
		assertNoLeak(t, ns, v, p)
	}
}

func TestRefreshIntervalZeroGeneratesOnce(t *testing.T) {
	ns := env.Namespace(t)
	p := start(t, ns)
	env.Apply(t, ns, fakeStore("v1")+"---\n"+`apiVersion: generators.external-secrets.io/v1alpha1
kind: UUID
metadata:
  name: id
spec: {}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: id
spec:
  refreshInterval: 0s
  secretStoreRef: {name: store}
  target: {name: id}
  data:
  - secretKey: username
    remoteRef: {key: db-user}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: UUID, name: id}
`)
	env.WaitReady(t, ns, "id", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	id := secretValue(t, ns, "id", "uuid")
	// Each re-sync (here: someone's edit being restored) keeps the UUID.
	for i := range 3 {
		s := env.GetSecret(t, ns, "id")
		s.Data["username"] = []byte(fmt.Sprint("edit-", i))
		if err := env.Client.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		env.WaitSecret(t, ns, "id", testenv.HasData(map[string]string{"username": "v1", "uuid": id}))
	}
	assertNoLeak(t, ns, id, p)
}

func TestGeneratorFailuresAreReportedWithAReasonAndAnEvent(t *testing.T) {
	ns := env.Namespace(t)
	start(t, ns)
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata:
  name: bad
spec:
  length: 20
  digits: 11
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: SSHKey
metadata:
  name: key
spec: {keyType: rsa, keySize: 1024}
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata:
  name: gh
spec: {appID: "1", installID: "2"}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: github
spec:
  target: {name: github}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: GithubAccessToken, name: gh}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: bad-password
spec:
  target: {name: bad-password}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: Password, name: bad}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: sshkey
spec:
  target: {name: sshkey}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: SSHKey, name: key}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: missing
spec:
  target: {name: missing}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: Password, name: nowhere}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: in-data
spec:
  target: {name: in-data}
  data:
  - secretKey: password
    remoteRef: {key: unused}
    sourceRef:
      generatorRef: {kind: Password, name: bad}
`)
	for _, c := range []struct{ es, reason, says string }{
		{"bad-password", engine.ReasonInvalidGeneratorSpec, "Password bad: spec.digits: 11 distinct digits are asked for"},
		{"sshkey", engine.ReasonInvalidGeneratorSpec, "SSHKey key: spec.keySize: an rsa key must have 2048 to 8192 bits, not 1024"},
		{"github", engine.ReasonGeneratorNotSupported, "does not implement the GithubAccessToken generator"},
		{"missing", engine.ReasonGeneratorNotFound, "Password nowhere does not exist in namespace " + ns},
		{"in-data", engine.ReasonInvalidSpec, "generators are not implemented in spec.data[]"},
	} {
		es := env.WaitReady(t, ns, c.es, metav1.ConditionFalse, c.reason)
		if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, c.says) {
			t.Errorf("%s: message %q does not say %q", c.es, msg, c.says)
		}
		testenv.Eventually(t, "a Warning Event "+c.reason+" for "+c.es, func(ctx context.Context) (bool, string) {
			evs, err := env.Events(ctx, ns, c.es)
			if err != nil {
				return false, err.Error()
			}
			for _, ev := range evs {
				if ev.Type == corev1.EventTypeWarning && ev.Reason == c.reason {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events", len(evs))
		})
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: c.es}, &corev1.Secret{}); err == nil {
			t.Errorf("%s: a Secret was written", c.es)
		}
	}

	t.Run("a fixed generator is used on the next retry", func(t *testing.T) {
		env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata:
  name: nowhere
spec:
  length: 16
`)
		env.WaitReady(t, ns, "missing", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		if pw := secretValue(t, ns, "missing", "password"); len(pw) != 16 {
			t.Fatalf("password length %d", len(pw))
		}
	})
}

func TestClusterGeneratorOfAnUnsupportedKind(t *testing.T) {
	ns := env.Namespace(t)
	start(t, ns)
	name := "github-" + ns
	env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: `+name+`
spec:
  kind: GithubAccessToken
  generator:
    githubAccessTokenSpec: {appID: "1", installID: "2", auth: {privateKey: {secretRef: {name: app, key: key}}}}
`)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), clusterGen(name)) })
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: ssh
spec:
  target: {name: ssh}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: ClusterGenerator, name: `+name+`}
`)
	es := env.WaitReady(t, ns, "ssh", metav1.ConditionFalse, engine.ReasonGeneratorNotSupported)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "kind GithubAccessToken") {
		t.Fatalf("message %q does not name the kind", msg)
	}
}

func fakeStore(user string) string {
	return `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    fake:
      data:
      - key: db-user
        value: ` + user + "\n"
}

func keysOf(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
