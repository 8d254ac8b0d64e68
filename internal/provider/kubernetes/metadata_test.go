package kubernetes_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
	k8sprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
)

func TestMetadataIsLabelsAndAnnotations(t *testing.T) {
	ctx := context.Background()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: allowNS, Name: "db-meta",
			Labels: map[string]string{"dev": "seb", "app.kubernetes.io/name": "shop"},
			Annotations: map[string]string{
				"owner": "<team-a&b>",
				// kubectl apply keeps the applied manifest, data included.
				corev1.LastAppliedConfigAnnotation: `{"data":{"password":"` + canary + `"}}`,
			},
		},
		Data: map[string][]byte{"password": []byte(canary + "-pw")},
	}
	if err := fx.kube.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := fx.kube.Create(ctx, secret(allowNS, "bare-meta", nil, map[string][]byte{"password": []byte(canary)})); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, k8sprovider.New(nil), options(esv1.SecretStoreKind, esv1.KubernetesProvider{
		Server: remoteServer(), Auth: tokenAuth("reader-token"), RemoteNamespace: allowNS,
	}, nil))

	v, err := c.GetSecret(ctx, provider.Ref{Key: "db-meta", Metadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v.Data), canary) {
		t.Fatalf("metadata holds the Secret's data: %s", v.Data)
	}
	const want = `{"annotations":{"owner":"<team-a&b>"},"labels":{"app.kubernetes.io/name":"shop","dev":"seb"}}`
	if string(v.Data) != want {
		t.Errorf("metadata = %s\nwant       %s", v.Data, want)
	}
	for _, tt := range []struct{ property, want string }{
		{"labels", `{"app.kubernetes.io/name":"shop","dev":"seb"}`},
		{"annotations", `{"owner":"<team-a&b>"}`},
		{"labels.dev", "seb"},
		{"annotations.owner", "<team-a&b>"},
		{`labels.app\.kubernetes\.io/name`, "shop"},
	} {
		b, err := values.Property(v, tt.property)
		if err != nil || string(b) != tt.want {
			t.Errorf("property %q = %q, %v; want %q", tt.property, b, err, tt.want)
		}
	}
	if _, err := values.Property(v, "annotations."+corev1.LastAppliedConfigAnnotation); err == nil {
		t.Errorf("the last-applied-configuration annotation is readable")
	}
	m, err := values.Extract(v, "")
	if err != nil || len(m) != 2 || string(m["labels"]) != `{"app.kubernetes.io/name":"shop","dev":"seb"}` {
		t.Errorf("extract = %q, %v; want the keys labels and annotations", m, err)
	}

	bare, err := c.GetSecret(ctx, provider.Ref{Key: "bare-meta", Metadata: true})
	if err != nil || string(bare.Data) != `{"annotations":null,"labels":null}` {
		t.Errorf("metadata of a Secret without labels = %s, %v", bare.Data, err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "missing", Metadata: true})
	wantErr(t, err, provider.ErrNotFound, `"missing"`)
}
