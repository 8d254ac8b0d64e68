package clusterexternalsecret

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

func ns(name string, labels ...string) corev1.Namespace {
	n := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

func TestSelectNamespaces(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 0))
	terminating := ns("dying", "team", "a")
	terminating.DeletionTimestamp = &now
	all := []corev1.Namespace{
		ns("a1", "team", "a"), ns("a2", "team", "a", "env", "prod"), ns("b1", "team", "b"),
		ns("c1", "team", "c"), ns("plain"), terminating,
	}
	teamA := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	teamB := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}
	tests := []struct {
		name    string
		spec    esv1.ClusterExternalSecretSpec
		want    []string
		wantErr string
	}{
		{name: "nothing set selects nothing", want: nil},
		{name: "namespaceSelectors match any one", spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{teamA, teamB}}, want: []string{"a1", "a2", "b1"}},
		{name: "deprecated namespaceSelector still selects", spec: esv1.ClusterExternalSecretSpec{NamespaceSelector: teamB}, want: []string{"b1"}},
		{name: "namespaces by name", spec: esv1.ClusterExternalSecretSpec{Namespaces: []string{"plain", "c1"}}, want: []string{"c1", "plain"}},
		{name: "named namespace that does not exist is not selected", spec: esv1.ClusterExternalSecretSpec{Namespaces: []string{"missing", "plain"}}, want: []string{"plain"}},
		{
			name: "union of selectors, deprecated selector and names, without duplicates",
			spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{teamA}, NamespaceSelector: teamB, Namespaces: []string{"a1", "plain"}},
			want: []string{"a1", "a2", "b1", "plain"},
		},
		{name: "matchExpressions", spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "c"}}}}}}, want: []string{"b1", "c1"}},
		{name: "selector labels are ANDed", spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{{MatchLabels: map[string]string{"team": "a", "env": "prod"}}}}, want: []string{"a2"}},
		{name: "empty selector selects every namespace", spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{{}}}, want: []string{"a1", "a2", "b1", "c1", "plain"}},
		{name: "null selector selects nothing", spec: esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{nil}}, want: nil},
		{name: "terminating namespace is never selected", spec: esv1.ClusterExternalSecretSpec{Namespaces: []string{"dying"}, NamespaceSelectors: []*metav1.LabelSelector{teamA}}, want: []string{"a1", "a2"}},
		{
			name:    "invalid selector names its field",
			spec:    esv1.ClusterExternalSecretSpec{NamespaceSelectors: []*metav1.LabelSelector{teamA, {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}}},
			wantErr: "spec.namespaceSelectors[1]",
		},
		{
			name:    "invalid deprecated selector names its field",
			spec:    esv1.ClusterExternalSecretSpec{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}}},
			wantErr: "spec.namespaceSelector:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ces := &esv1.ClusterExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: tt.spec}
			got, err := SelectNamespaces(ces, all)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("selected %v, want %v", got, tt.want)
			}
		})
	}
}

func testCES() *esv1.ClusterExternalSecret {
	return &esv1.ClusterExternalSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: types.UID("ces-uid")},
		Spec: esv1.ClusterExternalSecretSpec{
			ExternalSecretSpec: esv1.ExternalSecretSpec{
				SecretStoreRef: esv1.SecretStoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "store"},
				Data:           []esv1.ExternalSecretData{{SecretKey: "token", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "/shared/token"}}},
			},
			ExternalSecretMetadata: esv1.ExternalSecretMetadata{
				Labels:      map[string]string{"app": "web"},
				Annotations: map[string]string{"note": "fanned out"},
			},
		},
	}
}

func TestDesiredExternalSecret(t *testing.T) {
	tests := []struct {
		name          string
		mutate        func(*esv1.ClusterExternalSecret)
		wantName      string
		wantForceSync string
	}{
		{name: "name defaults to the ClusterExternalSecret's", wantName: "shared"},
		{name: "externalSecretName wins", mutate: func(c *esv1.ClusterExternalSecret) { c.Spec.ExternalSecretName = "app-token" }, wantName: "app-token"},
		{
			name: "force-sync on the ClusterExternalSecret is passed on",
			mutate: func(c *esv1.ClusterExternalSecret) {
				c.Annotations = map[string]string{esv1.AnnotationForceSync: "2024-01-01"}
			},
			wantName:      "shared",
			wantForceSync: "2024-01-01",
		},
		{
			name: "force-sync in externalSecretMetadata is dropped when the ClusterExternalSecret has none",
			mutate: func(c *esv1.ClusterExternalSecret) {
				c.Spec.ExternalSecretMetadata.Annotations[esv1.AnnotationForceSync] = "stale"
			},
			wantName: "shared",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ces := testCES()
			if tt.mutate != nil {
				tt.mutate(ces)
			}
			es := DesiredExternalSecret(ces, "team-a")
			if es.Name != tt.wantName || es.Namespace != "team-a" {
				t.Fatalf("got %s/%s, want team-a/%s", es.Namespace, es.Name, tt.wantName)
			}
			if !reflect.DeepEqual(es.Spec, ces.Spec.ExternalSecretSpec) {
				t.Fatalf("spec differs from spec.externalSecretSpec: %+v", es.Spec)
			}
			wantAnnotations := map[string]string{"note": "fanned out"}
			if tt.wantForceSync != "" {
				wantAnnotations[esv1.AnnotationForceSync] = tt.wantForceSync
			}
			if !reflect.DeepEqual(es.Labels, ces.Spec.ExternalSecretMetadata.Labels) || !reflect.DeepEqual(es.Annotations, wantAnnotations) {
				t.Fatalf("metadata: labels %v annotations %v, want annotations %v", es.Labels, es.Annotations, wantAnnotations)
			}
			ref := metav1.GetControllerOf(es)
			if ref == nil || ref.UID != ces.UID || ref.Kind != "ClusterExternalSecret" || ref.APIVersion != "external-secrets.io/v1" || ref.Name != ces.Name {
				t.Fatalf("controller reference = %+v", ref)
			}
			// The result must not alias the ClusterExternalSecret.
			es.Labels["app"] = "changed"
			es.Spec.Data[0].RemoteRef.Key = "changed"
			if ces.Spec.ExternalSecretMetadata.Labels["app"] != "web" || ces.Spec.ExternalSecretSpec.Data[0].RemoteRef.Key != "/shared/token" {
				t.Fatal("DesiredExternalSecret shares maps or slices with the ClusterExternalSecret")
			}
		})
	}
}

func TestOwnershipOf(t *testing.T) {
	ces := testCES()
	yes := true
	tests := []struct {
		name       string
		refs       []metav1.OwnerReference
		want       Ownership
		wantReason string
	}{
		{name: "created by this ClusterExternalSecret", refs: DesiredExternalSecret(ces, "x").OwnerReferences, want: Owned},
		{name: "created by hand", want: Unowned, wantReason: "is not owned by this ClusterExternalSecret"},
		{name: "non-controller reference to this ClusterExternalSecret does not own", refs: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: Kind, Name: "shared", UID: ces.UID}}, want: Unowned, wantReason: "left untouched"},
		{name: "controlled by another ClusterExternalSecret", refs: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: Kind, Name: "other", UID: "other-uid", Controller: &yes}}, want: OwnedByOther, wantReason: "controlled by ClusterExternalSecret other"},
		{name: "left by an earlier ClusterExternalSecret of the same name", refs: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: Kind, Name: "shared", UID: "old-uid", Controller: &yes}}, want: OwnedByOther, wantReason: "earlier ClusterExternalSecret named shared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "x", OwnerReferences: tt.refs}}
			if got := OwnershipOf(ces, es); got != tt.want {
				t.Fatalf("OwnershipOf = %v, want %v", got, tt.want)
			}
			if tt.wantReason != "" {
				if r := ConflictReason(ces, es); !strings.Contains(r, tt.wantReason) {
					t.Fatalf("ConflictReason = %q, want it to contain %q", r, tt.wantReason)
				}
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	ces := testCES()
	desired := DesiredExternalSecret(ces, "team-a")
	stored := func(mutate func(*esv1.ExternalSecret)) *esv1.ExternalSecret {
		es := desired.DeepCopy()
		es.ResourceVersion = "42"
		es.Status.Binding.Name = "shared"
		if mutate != nil {
			mutate(es)
		}
		return es
	}
	tests := []struct {
		name        string
		existing    *esv1.ExternalSecret
		wantChanged bool
	}{
		{name: "up to date writes nothing", existing: stored(nil)},
		{name: "empty and nil maps are equal", existing: stored(func(es *esv1.ExternalSecret) {
			es.Spec.Data[0].RemoteRef.Property = ""
			es.Spec.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{}
		})},
		{name: "spec edited by someone else is restored", existing: stored(func(es *esv1.ExternalSecret) { es.Spec.Data[0].RemoteRef.Key = "/elsewhere" }), wantChanged: true},
		{name: "label added by someone else is removed", existing: stored(func(es *esv1.ExternalSecret) { es.Labels["extra"] = "x" }), wantChanged: true},
		{name: "label removed by someone else is restored", existing: stored(func(es *esv1.ExternalSecret) { es.Labels = nil }), wantChanged: true},
		{name: "annotation changed by someone else is restored", existing: stored(func(es *esv1.ExternalSecret) { es.Annotations["note"] = "edited" }), wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.existing.DeepCopy()
			got, changed := Update(tt.existing, desired)
			if changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if !reflect.DeepEqual(tt.existing, before) {
				t.Fatal("Update modified its input")
			}
			if !reflect.DeepEqual(got.Spec, desired.Spec) && tt.wantChanged {
				t.Fatalf("spec not restored: %+v", got.Spec)
			}
			if !reflect.DeepEqual(got.Labels, desired.Labels) || !reflect.DeepEqual(got.Annotations, desired.Annotations) {
				t.Fatalf("metadata not restored: labels %v annotations %v", got.Labels, got.Annotations)
			}
			if got.ResourceVersion != "42" || got.Status.Binding.Name != "shared" {
				t.Fatal("Update dropped the resourceVersion or the status")
			}
		})
	}
}

func TestStaleExternalSecrets(t *testing.T) {
	ces := testCES()
	mine := func(namespace, name string) esv1.ExternalSecret {
		es := DesiredExternalSecret(ces, namespace)
		es.Name = name
		return *es
	}
	yes := true
	other := esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "shared", OwnerReferences: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: Kind, Name: "shared", UID: "old-uid", Controller: &yes}}}}
	owned := []esv1.ExternalSecret{
		mine("kept", "shared"),
		mine("gone", "shared"),
		mine("kept", "renamed-away"),
		other,
	}
	var got []string
	for _, es := range staleExternalSecrets(ces, []string{"kept"}, owned) {
		got = append(got, es.Namespace+"/"+es.Name)
	}
	want := []string{"gone/shared", "kept/renamed-away"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stale = %v, want %v (an ExternalSecret of another owner UID must never be deleted)", got, want)
	}
}

func TestReadyCondition(t *testing.T) {
	tests := []struct {
		name       string
		selected   int
		failed     []esv1.ClusterExternalSecretNamespaceFailure
		wantStatus metav1.ConditionStatus
		wantMsg    string
	}{
		{name: "all provisioned", selected: 3, wantStatus: metav1.ConditionTrue, wantMsg: "provisioned in all 3 selected namespaces"},
		{name: "nothing selected is ready", selected: 0, wantStatus: metav1.ConditionTrue, wantMsg: "No namespace is selected"},
		{name: "one failure names namespace and reason", selected: 3, failed: []esv1.ClusterExternalSecretNamespaceFailure{{Namespace: "b", Reason: "conflict"}}, wantStatus: metav1.ConditionFalse, wantMsg: "1 of 3 selected namespaces: b: conflict."},
		{name: "several failures point to the list", selected: 3, failed: []esv1.ClusterExternalSecretNamespaceFailure{{Namespace: "a", Reason: "x"}, {Namespace: "b", Reason: "y"}}, wantStatus: metav1.ConditionFalse, wantMsg: "and 1 more, see status.failedNamespaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := ReadyCondition("shared", tt.selected, tt.failed)
			if status != tt.wantStatus || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("got %s %q, want %s containing %q", status, msg, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}
