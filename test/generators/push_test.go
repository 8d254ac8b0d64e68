package generators

import (
	"fmt"
	"testing"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// generatorPush is a fake store, a Password generator and a PushSecret
// pushing its password to the store's key "pushed".
const generatorPush = `apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata:
  name: pw
spec:
  length: 32
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: gen
spec:
  refreshInterval: 1h
  secretStoreRefs: [{name: store, kind: SecretStore}]
  selector:
    generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: pw}
  data:
    - match: {secretKey: password, remoteRef: {remoteKey: pushed}}
`

// TestGeneratorPushSurvivesOperatorRestart: a PushSecret's generated
// password (selector.generatorRef) is kept in its local copy, which no
// operator restart rewrites; each new process pushes the same password
// again (the fake store's values live in the process, so an ExternalSecret
// on the store reads what the new process pushed).
func TestGeneratorPushSurvivesOperatorRestart(t *testing.T) {
	ns := env.Namespace(t)
	procs := []*proc{start(t, ns)}
	env.Apply(t, ns, fakeStore("v1")+"---\n"+generatorPush)
	procs[0].waitLogged(t, "operator 1 generated", `"generators"`, `"generated":true`, `"namespace":"`+ns+`"`)
	pw := secretValue(t, ns, "gen", "password")
	if len(pw) != 32 {
		t.Fatalf("password of %d characters; want 32", len(pw))
	}
	rv := env.GetSecret(t, ns, "gen").ResourceVersion

	for i := 1; i <= 2; i++ {
		procs[len(procs)-1].stop(t)
		p := start(t, ns)
		procs = append(procs, p)
		p.waitLogged(t, fmt.Sprintf("operator %d kept the generated values", i+1), `"generators"`, `"reason":"GeneratedValuesKept"`, `"namespace":"`+ns+`"`)
		s := env.GetSecret(t, ns, "gen")
		if string(s.Data["password"]) != pw || s.ResourceVersion != rv {
			t.Fatalf("the local copy was rewritten across restart %d", i)
		}
		reader := fmt.Sprintf("reader-%d", i)
		env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %[1]s
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  target: {name: %[1]s}
  data:
  - secretKey: password
    remoteRef: {key: pushed}
`, reader))
		env.WaitSecret(t, ns, reader, testenv.HasData(map[string]string{"password": pw}))
	}
	assertNoLeak(t, ns, pw, procs...)
}
