package providers

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// ESO's secret rotation example (PushSecret guide, "Rotate Secrets"),
// applied unchanged with the Parameter Store store it names: a PushSecret
// whose selector.generatorRef names a Password generator pushes a
// generated password of the generator's shape to prod/myql/password. The
// values are kept in the PushSecret's local copy, a Secret of its name it
// controls, which holds exactly what was pushed; a later push reads it
// rather than generating again.
func TestPushGeneratorESORotationExample(t *testing.T) {
	const remote = "prod/myql/password"
	ns := env.Namespace(t)
	env.Apply(t, ns, "examples/pushsecret/generator")
	deleteAWSPushSecretsOnCleanup(t, ns, "pushsecret-example")
	ps := waitAWSPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)

	local := env.GetSecret(t, ns, "pushsecret-example")
	pw := string(local.Data["password"])
	if len(pw) != 128 {
		t.Fatalf("the local copy's password has %d characters; want the generator's 128", len(pw))
	}
	if c := metav1.GetControllerOf(local); c == nil || c.Kind != "PushSecret" || c.UID != ps.UID {
		t.Fatalf("the local copy's controller is %v; want the PushSecret", c)
	}
	secretMustNotLeak(pw)
	testenv.Eventually(t, remote+" holds the local copy's password", func(context.Context) (bool, string) {
		p := awsParameter(t, remote)
		if p == nil {
			return false, "no parameter"
		}
		return aws.ToString(p.Value) == pw, "another value" // never print values
	})
	if got := ps.Status.SyncedPushSecrets["SecretStore/aws-parameter-store"]; len(got) != 1 {
		t.Fatalf("syncedPushSecrets = %v; want %s", ps.Status.SyncedPushSecrets, remote)
	}
	assertAWSPushNoLeak(t, ns, "pushsecret-example")
}
