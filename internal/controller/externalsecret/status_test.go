package externalsecret

import (
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
)

// testCluster is the control plane of this package's API-server tests,
// started by the first test that needs it.
var testCluster = &devcluster.Lazy{Options: devcluster.Options{CRDDirs: []string{"config/crd"}}}

func apiClient(t *testing.T) client.Client {
	t.Helper()
	c, err := testCluster.Get()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = esv1.AddToScheme(s)
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	_ = testCluster.Stop()
	os.Exit(code)
}

// TestWriteStatusLandsOnlyOnTheObjectItWasDecidedFor: the status writer's
// patch sets the whole status of the object it was decided for, and is
// refused, then dropped, when an object of the same name has been created
// since.
func TestWriteStatusLandsOnlyOnTheObjectItWasDecidedFor(t *testing.T) {
	cl := apiClient(t)
	ctx := t.Context()
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "status-writes"}}); err != nil {
		t.Fatal(err)
	}
	newES := func() *esv1.ExternalSecret {
		es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "status-writes", Name: "db"},
			Spec: esv1.ExternalSecretSpec{SecretStoreRef: esv1.SecretStoreRef{Name: "store"}}}
		if err := cl.Create(ctx, es); err != nil {
			t.Fatal(err)
		}
		return es
	}
	key := types.NamespacedName{Namespace: "status-writes", Name: "db"}
	status := func(msg string) esv1.ExternalSecretStatus {
		return esv1.ExternalSecretStatus{
			SyncedResourceVersion: "1-abc",
			RefreshTime:           esv1.NewTime(time.Now()),
			Binding:               esv1.LocalObjectReference{Name: "db"},
			Conditions: []esv1.ExternalSecretStatusCondition{{
				Type: esv1.ExternalSecretReady, Status: metav1.ConditionTrue, Reason: ReasonSecretSynced, Message: msg,
				LastTransitionTime: esv1.NewTime(time.Now()),
			}},
		}
	}
	r := &Reconciler{Client: cl}

	old := newES()
	if err := r.writeStatus(ctx, key, pendingStatus{status: status("first"), uid: old.UID, baseRV: old.ResourceVersion}); err != nil {
		t.Fatalf("writing the status of the object it was decided for: %v", err)
	}
	var got esv1.ExternalSecret
	if err := cl.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if c := got.Status.Conditions; len(c) != 1 || c[0].Message != "first" || got.Status.SyncedResourceVersion != "1-abc" {
		t.Fatalf("status after the write = %+v; want the status written", got.Status)
	}
	if rec := r.memory.Get(key); rec == nil || rec.StatusOver != old.ResourceVersion {
		t.Fatalf("record after the write = %+v; want StatusOver %q (the cache is behind this write)", rec, old.ResourceVersion)
	}

	// The object is deleted and created again before a pending status of
	// the first one is written.
	if err := cl.Delete(ctx, &got); err != nil {
		t.Fatal(err)
	}
	recreated := newES()
	if err := r.writeStatus(ctx, key, pendingStatus{status: status("of the deleted object"), uid: old.UID, baseRV: got.ResourceVersion}); err != nil {
		t.Fatalf("a status of a deleted object must be dropped, not retried: %v", err)
	}
	if err := cl.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if got.UID != recreated.UID || len(got.Status.Conditions) != 0 {
		t.Fatalf("the object created again has status %+v; want none (the deleted object's status must not land on it)", got.Status)
	}
}
