package aws_test

import (
	"context"
	"slices"
	"testing"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// TestSessionTagsNeverCarryAnotherTenantsNamespace: a ClusterSecretStore
// whose credentials name their namespace (so they do not vary by
// requester) but whose sessionTagsPolicy tags the role session with the
// requester's namespace gets one client per requesting namespace from the
// real fetch layer: each tenant's reads are signed by a session tagged with
// its own namespace, so an IAM policy conditioned on esoNamespace keeps
// tenants apart. With one shared client, tenant B would read with tenant
// A's session.
func TestSessionTagsNeverCarryAnotherTenantsNamespace(t *testing.T) {
	createSecret(t, "tenants/db", "shared-value", nil)
	rec := newRecorder()
	reg := provider.NewRegistry()
	reg.Register("aws", motoProvider(rec))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := fetch.New(ctx, fetch.Options{Registry: reg, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t)})

	credNS := ns
	spec := smSpec()
	spec.Region = region
	spec.Auth = esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: credsSecret, Key: "access-key", Namespace: &credNS},
		SecretAccessKey: esv1.SecretKeySelector{Name: credsSecret, Key: "secret-access-key", Namespace: &credNS},
	}}
	spec.Role = "arn:aws:iam::123456789012:role/tenant-reader"
	spec.SessionTagsPolicy = "Simple"
	store := provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "aws-tenants",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AWS: &spec}}}

	ref := provider.Ref{Key: "tenants/db"}
	for round := range 2 {
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			vals, errs := l.Get(ctx, fetch.Request{Store: store, Namespace: tenant, Subscriber: tenant + "/es", MaxAge: 1 << 40}, []provider.Ref{ref})
			if errs[ref] != nil {
				t.Fatalf("round %d: %s: %v", round, tenant, errs[ref])
			}
			if string(vals[ref].Data) != "shared-value" {
				t.Fatalf("round %d: %s read %q", round, tenant, vals[ref].Data)
			}
		}
	}
	var tagged []string
	for _, c := range rec.calls("AssumeRole") {
		for i := 1; c.Form.Get(formKey("Tags.member.", i, ".Key")) != ""; i++ {
			if c.Form.Get(formKey("Tags.member.", i, ".Key")) == "esoNamespace" {
				tagged = append(tagged, c.Form.Get(formKey("Tags.member.", i, ".Value")))
			}
		}
	}
	slices.Sort(tagged)
	if !slices.Equal(tagged, []string{"tenant-a", "tenant-b"}) {
		t.Fatalf("role sessions tagged with namespaces %v, want one for tenant-a and one for tenant-b", tagged)
	}
	if n := len(rec.calls("GetSecretValue")) + len(rec.calls("BatchGetSecretValue")); n != 2 {
		t.Fatalf("%d reads, want one per tenant (2): the second round comes from each tenant's own cache", n)
	}
}
