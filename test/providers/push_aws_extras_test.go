package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// applyExampleIn applies the manifests of an example file in ns, whatever
// namespace they name (ESO's examples name default), so the test does not
// share objects with others.
func applyExampleIn(t *testing.T, ns, file string) {
	t.Helper()
	objs, err := manifest.Read(filepath.Join(env.Root, file))
	if err != nil || len(objs) == 0 {
		t.Fatalf("reading %s: %d objects, %v", file, len(objs), err)
	}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			o.SetNamespace(ns)
		}
	}
	if err := manifest.Apply(context.Background(), env.Client, ns, objs); err != nil {
		t.Fatalf("applying %s: %v", file, err)
	}
}

// exampleConfigMapData is the data of the ConfigMap of an example file.
func exampleConfigMapData(t *testing.T, file string) map[string]string {
	t.Helper()
	objs, err := manifest.Read(filepath.Join(env.Root, file))
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading %s: %d objects, %v", file, len(objs), err)
	}
	data, _, err := unstructured.NestedStringMap(objs[0].Object, "data")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// editPushMetadataSpec changes the spec of data[0].metadata of a
// PushSecret (again on a conflict with the controller's status writes).
func editPushMetadataSpec(t *testing.T, ns, name string, edit func(spec map[string]any)) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(esv1alpha1.GroupVersion.String())
		u.SetKind("PushSecret")
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		data, _, err := unstructured.NestedSlice(u.Object, "spec", "data")
		if err != nil || len(data) == 0 {
			return fmt.Errorf("no spec.data: %v", err)
		}
		entry, ok := data[0].(map[string]any)
		if !ok {
			return fmt.Errorf("spec.data[0] is a %T", data[0])
		}
		spec, _, err := unstructured.NestedMap(entry, "metadata", "spec")
		if err != nil {
			return err
		}
		edit(spec)
		if err := unstructured.SetNestedMap(entry, spec, "metadata", "spec"); err != nil {
			return err
		}
		if err := unstructured.SetNestedSlice(u.Object, data, "spec", "data"); err != nil {
			return err
		}
		return env.Client.Update(ctx, u)
	})
	if err != nil {
		t.Fatalf("updating PushSecret %s/%s: %v", ns, name, err)
	}
}

// waitSMPolicy waits until the secret's resource policy is want (JSON;
// "" for none).
func waitSMPolicy(t *testing.T, name, want string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("resource policy of %s", name), func(ctx context.Context) (bool, string) {
		out, err := adminSM(awsRegion).GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(name)})
		if err != nil {
			return false, err.Error()
		}
		got := aws.ToString(out.ResourcePolicy)
		if want == "" {
			return got == "", "a policy is still there"
		}
		return got != "" && jsonEqual(got, want), "policy differs"
	})
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

// waitSMReplicas waits until the secret is replicated to exactly regions.
func waitSMReplicas(t *testing.T, name string, regions ...string) {
	t.Helper()
	slices.Sort(regions)
	testenv.Eventually(t, fmt.Sprintf("replica regions %v of %s", regions, name), func(ctx context.Context) (bool, string) {
		d, err := adminSM(awsRegion).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, s := range d.ReplicationStatus {
			got = append(got, aws.ToString(s.Region))
		}
		slices.Sort(got)
		return slices.Equal(got, regions), fmt.Sprintf("replicated to %v", got)
	})
}

// ESO's PushSecret examples of resourcePolicy and replicationLocations
// (AWS Secrets Manager guide), applied unchanged, are refused as ESO's
// parser refuses them: their metadata lacks the PushSecretMetadata object.
// In that object (30-pushsecret-metadata.yaml), resourcePolicy puts the
// policy of the referenced ConfigMap (in the PushSecret's namespace only)
// on the secret and follows its changes; removed from the metadata, the
// policy is deleted. replicationLocations replicates the secret to exactly
// the regions listed, following changes of the list; deleting the
// PushSecret (deletionPolicy Delete) removes the replicas, then the secret.
func TestPushAWSSecretsManagerResourcePolicyAndReplication(t *testing.T) {
	const ns, other = "aws-sm-extras", "aws-sm-extras-other"
	const policyRemote, replicaRemote = "my-remote-secret", "my-replicated-secret"
	ctx := context.Background()
	for _, n := range []string{ns, other} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	policyDir, replicaDir := awsPushExampleDir+"/sm-resource-policy", awsPushExampleDir+"/sm-replication"
	secretMustNotLeak(exampleStringData(t, policyDir, "00-awssm-secret.yaml")["secret-access-key"])
	env.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pokedex-credentials\nstringData:\n  my-secret-key: pikachu-"+canary+"\n")
	for _, f := range []string{"00-awssm-secret.yaml", "10-secretstore.yaml", "15-policy-configmap.yaml"} {
		applyExampleIn(t, ns, policyDir+"/"+f)
	}
	deleteAWSPushSecretsOnCleanup(t, ns, "pushsecret-example", "pushsecret-resource-policy", "pushsecret-replication", "policy-elsewhere")
	env.WaitStoreReady(t, ns, "aws-secretsmanager")

	t.Run("ESO's unchanged examples are refused, as ESO's parser refuses them", func(t *testing.T) {
		for _, dir := range []string{policyDir, replicaDir} {
			applyExampleIn(t, ns, dir+"/20-pushsecret.yaml")
			ps := waitAWSPushReady(t, ns, "pushsecret-example", corev1.ConditionFalse, pushsecret.ReasonInvalidPush)
			if msg := awsPushReadyCondition(ps).Message; !strings.Contains(msg, "unknown field") {
				t.Fatalf("Ready message %q; want it to name the field ESO refuses too", msg)
			}
			deleteAWSPushSecret(t, ns, "pushsecret-example")
		}
		if smSecret(t, policyRemote) != nil || smSecret(t, replicaRemote) != nil {
			t.Fatal("a refused example created its secret")
		}
	})

	cm := exampleConfigMapData(t, policyDir+"/15-policy-configmap.yaml")
	t.Run("resourcePolicy puts the ConfigMap's policy and deletes it once removed", func(t *testing.T) {
		applyExampleIn(t, ns, policyDir+"/30-pushsecret-metadata.yaml")
		waitAWSPushReady(t, ns, "pushsecret-resource-policy", corev1.ConditionTrue, pushsecret.ReasonSynced)
		waitSMPolicy(t, policyRemote, cm["policy.json"])

		// A changed policy is put on a later reconcile (refreshInterval 10s).
		changed := strings.Replace(cm["policy.json"], "123456789012", "210987654321", 1)
		env.Apply(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-secret-resource-policy\ndata:\n  policy.json: '"+changed+"'\n")
		waitSMPolicy(t, policyRemote, changed)

		editPushMetadataSpec(t, ns, "pushsecret-resource-policy", func(spec map[string]any) { delete(spec, "resourcePolicy") })
		waitSMPolicy(t, policyRemote, "")
		waitAWSPushReady(t, ns, "pushsecret-resource-policy", corev1.ConditionTrue, pushsecret.ReasonSynced)

		// From a Secret: put again.
		fromSecret := strings.Replace(cm["policy.json"], "123456789012", "333333333333", 1)
		env.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: policy-secret\nstringData:\n  policy.json: '"+fromSecret+"'\n")
		editPushMetadataSpec(t, ns, "pushsecret-resource-policy", func(spec map[string]any) {
			spec["resourcePolicy"] = map[string]any{"policySourceRef": map[string]any{"kind": "Secret", "name": "policy-secret", "key": "policy.json"}}
		})
		waitSMPolicy(t, policyRemote, fromSecret)
	})

	t.Run("a policySourceRef resolves only in the PushSecret's namespace", func(t *testing.T) {
		env.Apply(t, other, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: policy-elsewhere\ndata:\n  policy.json: '"+strings.ReplaceAll(cm["policy.json"], "\n", " ")+"'\n")
		objs, err := manifest.Read(filepath.Join(env.Root, policyDir, "30-pushsecret-metadata.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		ps := objs[0]
		ps.SetName("policy-elsewhere")
		ps.SetNamespace(ns)
		data, _, _ := unstructured.NestedSlice(ps.Object, "spec", "data")
		entry := data[0].(map[string]any)
		_ = unstructured.SetNestedField(entry, "policy-elsewhere", "metadata", "spec", "resourcePolicy", "policySourceRef", "name")
		_ = unstructured.SetNestedField(entry, "elsewhere-secret", "match", "remoteRef", "remoteKey")
		_ = unstructured.SetNestedSlice(ps.Object, data, "spec", "data")
		if err := manifest.Apply(ctx, env.Client, ns, []*unstructured.Unstructured{ps}); err != nil {
			t.Fatal(err)
		}
		got := waitAWSPushReady(t, ns, "policy-elsewhere", corev1.ConditionFalse, pushsecret.ReasonInvalidPush)
		if msg := awsPushReadyCondition(got).Message; !strings.Contains(msg, `does not exist in namespace "`+ns+`"`) {
			t.Fatalf("Ready message %q; want the ConfigMap looked up in the PushSecret's namespace only", msg)
		}
		if smSecret(t, "elsewhere-secret") != nil {
			t.Fatal("a push whose policy cannot be read created its secret")
		}
	})

	t.Run("replicationLocations replicates to exactly the regions listed", func(t *testing.T) {
		applyExampleIn(t, ns, replicaDir+"/30-pushsecret-metadata.yaml")
		waitAWSPushReady(t, ns, "pushsecret-replication", corev1.ConditionTrue, pushsecret.ReasonSynced)
		waitSMReplicas(t, replicaRemote, "eu-north-1", "eu-west-2")

		editPushMetadataSpec(t, ns, "pushsecret-replication", func(spec map[string]any) {
			spec["replicationLocations"] = []any{"eu-west-2", "us-east-2"}
		})
		waitSMReplicas(t, replicaRemote, "eu-west-2", "us-east-2")

		deleteAWSPushSecret(t, ns, "pushsecret-replication")
		if d := smSecret(t, replicaRemote); d == nil || d.DeletedDate == nil || len(d.ReplicationStatus) != 0 {
			t.Fatal("the replicated secret is not scheduled for deletion without its replicas")
		}
	})
	assertAWSPushNoLeak(t, ns, "pushsecret-resource-policy", "policy-elsewhere")
}
